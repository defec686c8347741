//! The school office's board for one fee run (per class: paid, partly paid, unpaid; per pupil
//! what is owed, with a form to record cash taken at the desk), the printable receipt, and the
//! parents' read-only page opened with a parent link. The board's numbers are the schools
//! service's run status; the cash form goes through the same cash-desk use case as the API, with
//! an idempotency key made when the page was drawn, so a double tap records the cash once.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{grouped, page, see_other, Frame, PageForm};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::schools::models::{
    CashRequest, ParentView, PupilStatus, ReceiptView, StatusQuery,
};

/// One class's line on the board.
pub struct ClassLine {
    pub id: Uuid,
    pub name: String,
    pub paid: usize,
    pub partly_paid: usize,
    pub unpaid: usize,
    pub collected: String,
    pub owed: String,
    pub pupils: Vec<PupilLine>,
}

/// One pupil's row, with the key of its cash form.
pub struct PupilLine {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub status: &'static str,
    pub owed: String,
    pub key: String,
}

#[derive(Template)]
#[template(path = "school_board.html")]
struct BoardPage<'a> {
    f: &'a Frame,
    school: Uuid,
    run: Uuid,
    run_name: String,
    paid: usize,
    partly_paid: usize,
    unpaid: usize,
    collected: String,
    owed: String,
    paid_percent: String,
    classes: Vec<ClassLine>,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct BoardQuery {
    error: Option<String>,
}

fn status_text(frame: &Frame, status: &str) -> &'static str {
    match status {
        "paid" => frame.t.paid,
        "partly_paid" => frame.t.partly_paid,
        _ => frame.t.unpaid,
    }
}

fn class_line(frame: &Frame, (name, id): (&str, Uuid), pupils: &[&PupilStatus]) -> ClassLine {
    let count = |status: &str| pupils.iter().filter(|p| p.status == status).count();
    ClassLine {
        id,
        name: name.to_owned(),
        paid: count("paid"),
        partly_paid: count("partly_paid"),
        unpaid: count("unpaid"),
        collected: grouped(pupils.iter().map(|p| p.paid).sum()),
        owed: grouped(pupils.iter().map(|p| p.owing).sum()),
        pupils: pupils
            .iter()
            .map(|p| PupilLine {
                id: p.pupil_id,
                code: p.code.clone(),
                name: p.full_name.clone(),
                status: status_text(frame, &p.status),
                owed: grouped(p.owing),
                key: Uuid::new_v4().to_string(),
            })
            .collect(),
    }
}

pub async fn board(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<BoardQuery>,
) -> HttpResponse {
    let (school, run) = path.into_inner();
    let read = state
        .run(move |s| async move {
            let status = s
                .schools
                .run_status(&caller, school, run, StatusQuery { class_id: None })
                .await
                .map_err(ApiError::from)?;
            let classes = s
                .schools
                .list_classes(&caller, school)
                .await
                .map_err(ApiError::from)?;
            let runs = s
                .schools
                .list_runs(&caller, school)
                .await
                .map_err(ApiError::from)?;
            Ok::<_, ApiError>((status, classes, runs))
        })
        .await;
    let (status, classes, runs) = match read {
        Ok(read) => read,
        Err(e) => return super::refusal(&request, &e),
    };
    let frame = Frame::new(&request);
    let class_names: BTreeMap<Uuid, String> =
        classes.data.into_iter().map(|c| (c.id, c.name)).collect();
    let mut by_class: BTreeMap<(&str, Uuid), Vec<&PupilStatus>> = BTreeMap::new();
    for pupil in &status.data {
        let name = class_names
            .get(&pupil.class_id)
            .map(String::as_str)
            .unwrap_or_default();
        by_class
            .entry((name, pupil.class_id))
            .or_default()
            .push(pupil);
    }
    let body = BoardPage {
        f: &frame,
        school,
        run,
        run_name: runs
            .data
            .into_iter()
            .find(|r| r.id == run)
            .map(|r| r.name)
            .unwrap_or_default(),
        paid: status.paid,
        partly_paid: status.partly_paid,
        unpaid: status.unpaid,
        collected: grouped(status.paid_total),
        owed: grouped(status.owing_total),
        paid_percent: super::local_decimal(frame.t, &status.paid_percent),
        classes: by_class
            .into_iter()
            .map(|(class, pupils)| class_line(&frame, class, &pupils))
            .collect(),
        error: query
            .error
            .as_deref()
            .map(|code| frame.t.error_message(code)),
    };
    page(&request, &frame, StatusCode::OK, &body)
}

#[derive(Deserialize)]
pub struct CashForm {
    key: String,
    pupil_id: Uuid,
    amount: String,
    payer_name: String,
}

/// Records cash for a pupil and shows its printable receipt; a refusal goes back to the board.
pub async fn record_cash(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    PageForm(form): PageForm<CashForm>,
) -> HttpResponse {
    let (school, run) = path.into_inner();
    let board = format!("/app/schools/{school}/runs/{run}");
    let Ok(amount) = super::typed_dong(&form.amount).parse::<i64>() else {
        return see_other(&format!("{board}?error=INVALID_AMOUNT"));
    };
    let claim = crate::store::IdempotencyClaim {
        user_id: caller.user_id,
        key: format!("web-cash:{}", form.key),
        request_hash: hex::encode(Sha256::digest(
            format!(
                "POST {board}/cash\n{}\n{amount}\n{}",
                form.pupil_id, form.payer_name
            )
            .as_bytes(),
        )),
    };
    let cash = CashRequest {
        pupil_id: form.pupil_id,
        amount,
        payer_name: form.payer_name,
    };
    let recorded = state
        .run(move |s| async move { s.schools.record_cash(&caller, claim, school, cash).await })
        .await;
    match recorded {
        Ok(reply) => match serde_json::from_str::<ReceiptView>(&reply.body) {
            Ok(receipt) => see_other(&format!("/app/schools/{school}/receipts/{}", receipt.id)),
            Err(e) => {
                tracing::error!(error = %e, "a cash reply is not a receipt");
                HttpResponse::InternalServerError().finish()
            }
        },
        Err(refused) if refused.code() == "SCHOOL_NOT_FOUND" => super::refusal(&request, &refused),
        Err(refused) => see_other(&format!("{board}?error={}", refused.code())),
    }
}

/// The printable receipt, the same page the API's receipt.html serves, for a session.
pub async fn receipt(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> HttpResponse {
    let (school, receipt) = path.into_inner();
    let html = state
        .run(move |s| async move { s.schools.receipt_html(&caller, school, receipt).await })
        .await;
    match html {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .body(html),
        Err(e) => super::refusal(&request, &e),
    }
}

/// One open charge on the parents' page.
pub struct OwedLine {
    pub item: String,
    pub run: String,
    pub owed: String,
}

#[derive(Template)]
#[template(path = "parents.html")]
struct ParentsPage<'a> {
    f: &'a Frame,
    school_name: String,
    pupil_name: String,
    owed: Vec<OwedLine>,
    total: String,
}

fn parents_page<'a>(frame: &'a Frame, view: ParentView) -> ParentsPage<'a> {
    ParentsPage {
        f: frame,
        school_name: view.school_name,
        pupil_name: view.pupil_name,
        total: grouped(view.owing_total),
        owed: view
            .open_charges
            .into_iter()
            .map(|c| OwedLine {
                item: c.fee_item_name,
                run: c.run_name,
                owed: grouped(c.owing),
            })
            .collect(),
    }
}

/// The parents' page: no login, the link's token is the key; an unknown or revoked one is 404.
pub async fn parents(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let token = path.into_inner();
    let view = state
        .run(move |s| async move { s.schools.parent_view(&token).await })
        .await;
    match view {
        Ok(view) => {
            let frame = Frame::new(&request);
            let body = parents_page(&frame, view);
            page(&request, &frame, StatusCode::OK, &body)
        }
        Err(e) => super::refusal(&request, &e),
    }
}
