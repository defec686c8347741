//! The suspense queue for commune staff: bank transfers the service could not match, each with
//! a form to credit a payee, count it towards a payment intent or pay it back, with a note.
//! The form goes through the same resolution as `POST /v1/reconciliation/unmatched/{id}/resolve`,
//! with an idempotency key made when the page was drawn, so a double tap resolves once.

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{grouped_text, page, see_other, Frame, PageForm};
use crate::domain::statistics::period::vietnam_local;
use crate::http::error::ApiError;
use crate::http::policy::may;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::bank_feed::models::{BankTransactionView, ResolveRequest};
use crate::services::ledger::PageQuery;
use crate::services::payments::models::PayeeView;
use crate::store::IdempotencyClaim;

const RESOLVE_PATH: &str = "/app/suspense/{id}/resolve";

/// One transfer waiting in suspense.
pub struct Waiting {
    pub id: Uuid,
    pub when: String,
    pub direction_in: bool,
    pub amount: String,
    pub memo: String,
    pub flags: String,
    /// The idempotency key of this item's form.
    pub key: String,
}

#[derive(Template)]
#[template(path = "suspense.html")]
struct SuspensePage<'a> {
    f: &'a Frame,
    waiting: Vec<Waiting>,
    payees: &'a [PayeeView],
    may_resolve: bool,
    error: Option<&'static str>,
    done: bool,
}

#[derive(Deserialize)]
pub struct SuspenseQuery {
    error: Option<String>,
    done: Option<Uuid>,
}

fn waiting(view: &BankTransactionView) -> Waiting {
    Waiting {
        id: view.id,
        when: vietnam_local(view.occurred_at)
            .format("%d/%m %H:%M")
            .to_string(),
        direction_in: view.direction == "in",
        amount: grouped_text(&view.suspense_amount),
        memo: view.description.clone(),
        flags: view.flags.join(", "),
        key: Uuid::new_v4().to_string(),
    }
}

pub async fn suspense_page(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<SuspenseQuery>,
) -> HttpResponse {
    let may_resolve = may(caller.role, &Method::POST, RESOLVE_PATH);
    let read = state
        .run(move |s| async move {
            let unmatched = s
                .bank_feed
                .unmatched(PageQuery {
                    cursor: None,
                    limit: Some(500),
                })
                .await
                .map_err(ApiError::from)?;
            let payees = s
                .payments
                .list_payees(&caller, super::every_payee())
                .await
                .map_err(ApiError::from)?;
            Ok::<_, ApiError>((unmatched, payees))
        })
        .await;
    let (unmatched, payees) = match read {
        Ok(read) => read,
        Err(e) => return super::refusal(&request, &e),
    };
    let frame = Frame::new(&request);
    let body = SuspensePage {
        f: &frame,
        waiting: unmatched.data.iter().map(waiting).collect(),
        payees: &payees.data,
        may_resolve,
        // Here a payee or intent "not found" is the form's target, not the page.
        error: query.error.as_deref().map(|code| {
            if code.ends_with("NOT_FOUND") {
                frame.t.resolution_not_possible
            } else {
                frame.t.error_message(code)
            }
        }),
        done: query.done.is_some(),
    };
    page(&request, &frame, StatusCode::OK, &body)
}

#[derive(Deserialize)]
pub struct ResolveForm {
    key: String,
    /// payee, intent or refund
    action: String,
    #[serde(default)]
    payee_id: String,
    #[serde(default)]
    intent_id: String,
    #[serde(default)]
    note: String,
}

/// The resolution the form asks for; `None` when it names no valid target.
fn resolution(form: &ResolveForm) -> Option<ResolveRequest> {
    let mut request = ResolveRequest {
        payment_intent_id: None,
        payee_id: None,
        refund: None,
        duplicate_of: None,
        note: form.note.clone(),
    };
    match form.action.as_str() {
        "payee" => request.payee_id = Some(form.payee_id.trim().parse().ok()?),
        "intent" => request.payment_intent_id = Some(form.intent_id.trim().parse().ok()?),
        "refund" => request.refund = Some(true),
        _ => return None,
    }
    Some(request)
}

/// Resolves one item and goes back to the queue.
pub async fn resolve(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    PageForm(form): PageForm<ResolveForm>,
) -> HttpResponse {
    let id = path.into_inner();
    let Some(resolution) = resolution(&form) else {
        return see_other("/app/suspense?error=INVALID_RESOLUTION");
    };
    let claim = IdempotencyClaim {
        user_id: caller.user_id,
        key: format!("web-resolve:{}", form.key),
        request_hash: hex::encode(Sha256::digest(
            format!(
                "POST /app/suspense/{id}/resolve\n{}\n{}\n{}\n{}",
                form.action, form.payee_id, form.intent_id, form.note
            )
            .as_bytes(),
        )),
    };
    let resolved = state
        .run(move |s| async move { s.bank_feed.resolve(&caller, claim, id, resolution).await })
        .await;
    match resolved {
        Ok(_) => see_other(&format!("/app/suspense?done={id}")),
        Err(refused) if refused.code() == "BANK_TRANSACTION_NOT_FOUND" => {
            super::refusal(&request, &refused)
        }
        Err(refused) => see_other(&format!("/app/suspense?error={}", refused.code())),
    }
}
