//! The vendor's stall page (also a school's desk page): the static QR ready to show, a QR for
//! one sale's amount, payments arriving live and spoken aloud, today's takings and the last
//! seven days; and the printable A6 sticker.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{grouped, page, see_other, Frame, PageForm};
use crate::domain::statistics::period::{vietnam_day, vietnam_day_start_micros, vietnam_local};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::ledger::models::AmountText;
use crate::services::payments::models::{IntentView, NewIntentRequest, PayeeView};
use crate::services::payments::received::{PayeeSummaryView, SummaryQuery};
use crate::store::web::ReceivedPayment;
use crate::store::IdempotencyClaim;

/// One payment in today's list.
pub struct PaymentRow {
    pub id: String,
    pub time: String,
    pub amount: String,
    pub memo: String,
}

/// One day of the 7-day summary.
pub struct DayRow {
    pub date: String,
    pub total: String,
    pub count: u32,
}

#[derive(Template)]
#[template(path = "stall.html")]
struct StallPage<'a> {
    f: &'a Frame,
    payee: &'a PayeeView,
    intent: Option<&'a IntentView>,
    intent_amount: String,
    error: Option<&'static str>,
    today_total: String,
    today: Vec<PaymentRow>,
    days: Vec<DayRow>,
    /// A fresh idempotency key for the sale form: submitting it twice makes one QR.
    sale_key: String,
}

#[derive(Deserialize)]
pub struct StallQuery {
    intent: Option<Uuid>,
    error: Option<String>,
}

/// What the stall page shows, read for the caller (another payee's: 404).
struct StallFacts {
    payee: PayeeView,
    summary: PayeeSummaryView,
    today: Vec<ReceivedPayment>,
    intent: Option<IntentView>,
}

async fn stall_facts(
    state: &AppState,
    caller: Caller,
    payee_id: Uuid,
    intent: Option<Uuid>,
) -> Result<StallFacts, ApiError> {
    state
        .run(move |s| async move {
            let payee = s.payments.payee(&caller, payee_id).await?;
            let summary = s
                .payments
                .payee_summary(&caller, payee_id, SummaryQuery { days: Some(7) })
                .await?;
            let today_start = vietnam_day_start_micros(vietnam_day(s.clock.now_micros()));
            let today = s
                .payments
                .received_since(&caller, payee_id, today_start)
                .await?;
            let intent = match intent {
                // Only an intent of this payee is shown on its page.
                Some(id) => Some(s.payments.intent(&caller, id).await?)
                    .filter(|intent| intent.payee_id == payee_id),
                None => None,
            };
            Ok::<_, crate::services::payments::PaymentError>(StallFacts {
                payee,
                summary,
                today,
                intent,
            })
        })
        .await
}

pub async fn stall_page(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    query: web::Query<StallQuery>,
) -> HttpResponse {
    let facts = match stall_facts(&state, caller, path.into_inner(), query.intent).await {
        Ok(facts) => facts,
        Err(e) => return super::refusal(&request, &e),
    };
    let frame = Frame::new(&request);
    let today_total: i64 = facts.today.iter().map(|p| p.amount).sum();
    let body = StallPage {
        f: &frame,
        payee: &facts.payee,
        intent: facts.intent.as_ref(),
        intent_amount: facts
            .intent
            .as_ref()
            .and_then(|intent| intent.amount.parse::<i64>().ok())
            .map(grouped)
            .unwrap_or_default(),
        error: query
            .error
            .as_deref()
            .map(|code| frame.t.error_message(code)),
        today_total: grouped(today_total),
        today: facts
            .today
            .iter()
            .rev()
            .map(|payment| PaymentRow {
                id: payment.bank_transaction_id.to_string(),
                time: vietnam_local(crate::clock::to_datetime(payment.occurred_at))
                    .format("%H:%M")
                    .to_string(),
                amount: grouped(payment.amount),
                memo: payment.memo.clone(),
            })
            .collect(),
        days: facts
            .summary
            .days
            .iter()
            .map(|day| DayRow {
                date: day.date.format("%d/%m").to_string(),
                total: day.total.parse::<i64>().map(grouped).unwrap_or_default(),
                count: day.count,
            })
            .collect(),
        sale_key: Uuid::new_v4().to_string(),
    };
    page(&request, &frame, StatusCode::OK, &body)
}

#[derive(Deserialize)]
pub struct SaleForm {
    amount: String,
    key: String,
}

/// Makes a payment intent for the amount typed and shows its QR on the stall page.
pub async fn create_intent(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    PageForm(form): PageForm<SaleForm>,
) -> HttpResponse {
    let payee_id = path.into_inner();
    let amount = super::typed_dong(&form.amount);
    let claim = IdempotencyClaim {
        user_id: caller.user_id,
        key: format!("web-sale:{}", form.key),
        request_hash: hex::encode(Sha256::digest(
            format!("POST /app/payees/{payee_id}/intents\n{amount}").as_bytes(),
        )),
    };
    let created = state
        .run(move |s| async move {
            s.payments
                .create_intent(
                    &caller,
                    claim,
                    NewIntentRequest {
                        payee_id,
                        amount: AmountText(amount),
                        description: None,
                        expires_in_seconds: None,
                        payer: None,
                    },
                )
                .await
        })
        .await;
    let page_url = format!("/app/payees/{payee_id}");
    match created {
        Ok(reply) => {
            let intent = serde_json::from_str::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|body| body["id"].as_str().map(str::to_owned));
            match intent {
                Some(intent) => see_other(&format!("{page_url}?intent={intent}")),
                None => super::message(&request, StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED"),
            }
        }
        Err(refused) if refused.status() == StatusCode::NOT_FOUND => {
            super::refusal(&request, &refused)
        }
        Err(refused) => see_other(&format!("{page_url}?error={}", refused.code())),
    }
}

#[derive(Template)]
#[template(path = "sticker.html")]
struct StickerPage<'a> {
    f: &'a Frame,
    payee: &'a PayeeView,
}

/// The payee's sticker as an A6 page to print.
pub async fn sticker(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
) -> HttpResponse {
    let payee_id = path.into_inner();
    let payee = match state
        .run(move |s| async move { s.payments.payee(&caller, payee_id).await })
        .await
    {
        Ok(payee) => payee,
        Err(e) => return super::refusal(&request, &e),
    };
    let frame = Frame::new(&request);
    page(
        &request,
        &frame,
        StatusCode::OK,
        &StickerPage {
            f: &frame,
            payee: &payee,
        },
    )
}
