//! Thin handlers for payer accounts, their links to residents and households, and cash
//! payments.

use actix_web::{web, HttpResponse};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, IdempotentJson};
use super::routes::reply;
use super::AppState;
use crate::services::auth::Caller;
use crate::services::ledger::PageQuery;
use crate::services::payers::*;
use crate::services::ErrorEnvelope;

#[utoipa::path(get, path = "/v1/payer-accounts", tag = "payers",
    params(PayerAccountQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "payer bank accounts seen on transfers or registered, by hash; never the account number, only its last four digits", body = PayerAccountPage),
        (status = 400, description = "INVALID_CURSOR, INVALID_LIMIT", body = ErrorEnvelope)))]
pub async fn list_payer_accounts(
    state: web::Data<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PayerAccountQuery>,
) -> Result<web::Json<PayerAccountPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payers.list(&caller, query).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/payer-accounts/{hash}/link", tag = "payers",
    params(("hash" = String, Path, description = "the account hash, 64 hex digits")),
    request_body = LinkRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "linked; the link and the reason are in the audit", body = PayerAccountView),
        (status = 404, description = "PAYER_ACCOUNT_NOT_FOUND, RESIDENT_NOT_FOUND, HOUSEHOLD_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "CONSENT_NOT_GIVEN (the resident's consent in force today is not given), PAYER_ALREADY_LINKED", body = ErrorEnvelope),
        (status = 422, description = "INVALID_PAYER_LINK (not exactly one of resident_id, household_id), INVALID_REASON", body = ErrorEnvelope)))]
pub async fn link_payer_account(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(hash): ApiPath<String>,
    ApiJson(request): ApiJson<LinkRequest>,
) -> Result<web::Json<PayerAccountView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payers.link(&caller, &hash, request).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/payer-accounts/{hash}/unlink", tag = "payers",
    params(("hash" = String, Path, description = "the account hash, 64 hex digits")),
    request_body = UnlinkRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "unlinked; the audit keeps whom it was linked to", body = PayerAccountView),
        (status = 404, description = "PAYER_ACCOUNT_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "PAYER_NOT_LINKED", body = ErrorEnvelope),
        (status = 422, description = "INVALID_REASON", body = ErrorEnvelope)))]
pub async fn unlink_payer_account(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(hash): ApiPath<String>,
    ApiJson(request): ApiJson<UnlinkRequest>,
) -> Result<web::Json<PayerAccountView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payers.unlink(&caller, &hash, request).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/payer-accounts/{hash}/audit", tag = "payers",
    params(("hash" = String, Path, description = "the account hash, 64 hex digits")),
    security(("bearer" = [])),
    responses((status = 200, description = "every link and unlink of the account, oldest first; of a linked account only for admins (logged in the personal-data access log), 403 for staff", body = PayerLinkAuditList),
        (status = 404, description = "PAYER_ACCOUNT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn payer_account_audit(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(hash): ApiPath<String>,
) -> Result<web::Json<PayerLinkAuditList>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payers.audit(&caller, &hash).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/residents/{id}/bank-accounts", tag = "payers",
    params(("id" = Uuid, Path)),
    request_body = ResidentBankAccountRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "the account, linked to the resident; only its hash and last four digits are kept or shown", body = PayerAccountView),
        (status = 404, description = "RESIDENT_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "CONSENT_NOT_GIVEN, PAYER_ALREADY_LINKED (to someone else)", body = ErrorEnvelope),
        (status = 422, description = "INVALID_BANK_ACCOUNT, INVALID_REASON", body = ErrorEnvelope)))]
pub async fn register_resident_bank_account(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<ResidentBankAccountRequest>,
) -> Result<web::Json<PayerAccountView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move {
                s.payers
                    .register_resident_account(&caller, id, request)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/payees/{id}/cash-payments", tag = "payees",
    description = "Records cash the payee received (one payment, or a day's cash sales as one total with its count), for statistics. Nothing is posted to the ledger: a vendor's cash never passes through the commune's bank accounts.",
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    request_body = CashPaymentRequest,
    security(("bearer" = [])),
    responses((status = 201, body = CashPaymentView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, description = "PAYEE_NOT_FOUND (also another payee's id for a vendor or school user)", body = ErrorEnvelope),
        (status = 409, description = "IDEMPOTENCY_KEY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "AMOUNT_*, INVALID_PAYMENT_COUNT, OCCURRED_AT_IN_FUTURE, NOTE_TOO_LONG, INVALID_PAYER, PAYER_NOT_FOUND, IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope)))]
pub async fn record_cash_payment(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    request: IdempotentJson<CashPaymentRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.payers
                    .record_cash(&request.caller, request.claim, id, request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/payees/{id}/cash-payments", tag = "payees",
    params(("id" = Uuid, Path), PageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "the payee's recorded cash payments, newest first (never ledger postings)", body = CashPaymentPage),
        (status = 400, description = "INVALID_CURSOR, INVALID_LIMIT", body = ErrorEnvelope),
        (status = 404, description = "PAYEE_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn list_cash_payments(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<web::Json<CashPaymentPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payers.list_cash(&caller, id, query).await })
            .await?,
    ))
}
