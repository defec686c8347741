//! Onboarding a vendor or school (`/app/payees/new`, commune staff): the payee-creation use
//! case of `POST /v1/payees` behind a form, whose bank details can be filled from the QR the
//! vendor's bank app shows: its text pasted, or a screenshot or photo of it uploaded (the
//! browser redraws the picture as PNG; the service finds the code in it and reads it as
//! `POST /v1/qr/parse` does). The officer checks what was filled and saves; the sticker is next.
//!
//! A double tap makes one payee: the form carries a payee code drawn when the page was drawn,
//! codes are unique, and a second post that finds its code taken by a payee with the same bank
//! account goes on to that payee's sticker as the first did.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use base64::Engine as _;
use serde::Deserialize;

use super::{page, see_other, Frame, PageForm};
use crate::domain::payee::{PayeeCode, PayeeKind};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::payments::models::{
    BankView, CollectionAccountRequest, NewPayeeRequest, QrParseRequest,
};
use crate::services::payments::qr_scan::read_qr_png;
use crate::services::PublicError;

/// What the form shows (and was sent back with).
#[derive(Default, Deserialize)]
pub struct PayeeForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    stall: String,
    #[serde(default)]
    hamlet: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    bank_bin: String,
    #[serde(default)]
    account_number: String,
    #[serde(default)]
    holder_name: String,
}

#[derive(Template)]
#[template(path = "onboard.html")]
struct OnboardPage<'a> {
    f: &'a Frame,
    form: &'a PayeeForm,
    banks: &'a [BankView],
    /// The bank details were just read from a QR: the officer should check them.
    scanned: bool,
    error: Option<&'static str>,
}

/// Why a scan or a save was refused: its status and the sentence's choice.
#[derive(Clone, Copy)]
enum Refusal {
    /// No QR code found in the picture.
    NoCode,
    /// A code was found (or pasted) but is not a VietQR code that could be read.
    Unreadable(StatusCode),
    /// The payee could not be made: the service's error code.
    Create(StatusCode, &'static str),
}

fn onboard_page(
    request: &HttpRequest,
    state: &AppState,
    form: &PayeeForm,
    scanned: bool,
    refusal: Option<Refusal>,
) -> HttpResponse {
    let frame = Frame::new(request);
    let banks = state.payments.banks();
    let t = frame.t;
    let body = OnboardPage {
        f: &frame,
        form,
        banks: &banks.data,
        scanned,
        error: refusal.map(|refusal| match refusal {
            Refusal::NoCode => t.qr_not_found,
            Refusal::Unreadable(_) => t.qr_unreadable,
            Refusal::Create(_, "PAYEE_CODE_TAKEN") => t.payee_code_taken,
            Refusal::Create(_, code) if code.ends_with("NOT_FOUND") || code == "FORBIDDEN" => {
                t.error_message(code)
            }
            Refusal::Create(..) => t.onboard_invalid,
        }),
    };
    let refusal_status = |refusal: Refusal| match refusal {
        Refusal::NoCode => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::Unreadable(status) | Refusal::Create(status, _) => status,
    };
    let status = refusal.map_or(StatusCode::OK, refusal_status);
    page(request, &frame, status, &body)
}

pub async fn new_payee(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let form = PayeeForm {
        kind: "vendor".to_owned(),
        code: PayeeCode::generate(PayeeKind::Vendor, &mut rand::thread_rng())
            .as_str()
            .to_owned(),
        ..Default::default()
    };
    onboard_page(&request, &state, &form, false, None)
}

#[derive(Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    payload: String,
    /// A `data:image/png;base64,…` URL the page made from the chosen picture.
    #[serde(default)]
    qr_image: String,
    #[serde(flatten)]
    form: PayeeForm,
}

/// The most a scanned picture may weigh, as the browser sends it (base64 in a form).
pub const MAX_SCAN_FORM_BYTES: usize = 4 * 1024 * 1024;

/// Reads the pasted payload, or the code in the uploaded picture, into the form's bank
/// details.
pub async fn scan(
    request: HttpRequest,
    state: web::Data<AppState>,
    PageForm(scan): PageForm<ScanForm>,
) -> HttpResponse {
    let ScanForm {
        payload,
        qr_image,
        mut form,
    } = scan;
    let payload = if payload.trim().is_empty() {
        let png = qr_image
            .split_once("base64,")
            .and_then(|(_, data)| base64::engine::general_purpose::STANDARD.decode(data).ok());
        // Decoding a picture up to 4 000 px a side is CPU work: off the server's workers.
        let read = match png {
            Some(png) => web::block(move || read_qr_png(&png)).await.ok(),
            None => None,
        };
        match read {
            Some(Ok(text)) => text,
            _ => return onboard_page(&request, &state, &form, false, Some(Refusal::NoCode)),
        }
    } else {
        payload.trim().to_owned()
    };
    match state.payments.parse_qr(&QrParseRequest { payload }) {
        Ok(read) => {
            // VietQR codes carry no holder name: the officer types it as the bank app shows it.
            form.bank_bin = read.bin;
            form.account_number = read.account;
            onboard_page(&request, &state, &form, true, None)
        }
        Err(refused) => {
            let status = ApiError::from(refused).status();
            onboard_page(
                &request,
                &state,
                &form,
                false,
                Some(Refusal::Unreadable(status)),
            )
        }
    }
}

/// The refusals with a sentence of their own on this page.
const KNOWN_CODES: &[&str] = &["PAYEE_CODE_TAKEN", "FORBIDDEN", "OWNER_RESIDENT_NOT_FOUND"];

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|text| !text.is_empty())
}

/// Creates the payee and goes to its sticker.
pub async fn create(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    PageForm(form): PageForm<PayeeForm>,
) -> HttpResponse {
    let new_payee = NewPayeeRequest {
        kind: form.kind.clone(),
        name: form.name.clone(),
        code: optional(&form.code),
        hamlet: optional(&form.hamlet),
        stall: optional(&form.stall),
        phone: optional(&form.phone),
        category: None,
        collection_account: CollectionAccountRequest {
            bank_bin: form.bank_bin.clone(),
            account_number: form.account_number.trim().to_owned(),
            holder_name: form.holder_name.clone(),
        },
        owner_resident_id: None,
    };
    let (code, account) = (
        form.code.trim().to_owned(),
        form.account_number.trim().to_owned(),
    );
    let created = state
        .run(move |s| async move {
            match s.payments.create_payee(&caller, new_payee).await {
                Ok(payee) => Ok(payee.id),
                // The same form posted twice: the first made this payee.
                Err(refused) if PublicError::code(&refused) == "PAYEE_CODE_TAKEN" => {
                    let listed = s
                        .payments
                        .list_payees(&caller, super::every_payee())
                        .await?;
                    listed
                        .data
                        .into_iter()
                        .find(|p| p.code == code && p.collection_account.account_number == account)
                        .map(|p| p.id)
                        .ok_or(refused)
                }
                Err(refused) => Err(refused),
            }
        })
        .await;
    match created {
        Ok(id) => see_other(&format!("/app/payees/{id}/sticker")),
        Err(refused) => {
            // Codes are static strings; the page picks its sentence from the few it knows.
            let code = KNOWN_CODES
                .iter()
                .find(|known| **known == refused.code())
                .copied()
                .unwrap_or("INVALID_PAYEE");
            let refusal = Refusal::Create(refused.status(), code);
            onboard_page(&request, &state, &form, false, Some(refusal))
        }
    }
}
