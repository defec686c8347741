//! Thin handlers for corrections of posted school runs (reversal, adjustment), refunds of a
//! pupil's credit, and household parent links.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, IdempotentJson};
use super::routes::reply;
use super::AppState;
use crate::services::auth::Caller;
use crate::services::schools::corrections::*;
use crate::services::ErrorEnvelope;

#[utoipa::path(post, path = "/v1/schools/{school}/runs/{run}/reverse", tag = "schools",
    description = "Reverses a posted run, whole or (with `pupil_id`) one pupil's charges in it: new ledger transactions take the charges back, what had been paid on them becomes the pupil's credit, the pupil's QR for the run is closed. Reversing what is already reversed changes nothing (`already_reversed`).",
    params(("school" = Uuid, Path), ("run" = Uuid, Path),
        ("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    request_body = ReverseRunRequest, security(("bearer" = [])),
    responses((status = 200, body = RunReversalView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND (the run, the pupil, or no charge of the pupil in the run)", body = ErrorEnvelope),
        (status = 409, description = "RUN_NOT_POSTED, IDEMPOTENCY_KEY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST (the reason), IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope)))]
pub async fn reverse_run(
    state: web::Data<AppState>,
    ApiPath((school, run)): ApiPath<(Uuid, Uuid)>,
    request: IdempotentJson<ReverseRunRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.schools
                    .reverse_run(&request.caller, request.claim, (school, run), request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/schools/{school}/adjustments", tag = "schools",
    description = "Adjusts one pupil's charge for one fee item in a posted run by a signed amount (e.g. the wrong number of school days), with a reason: its own ledger transaction and statement line. Money paid beyond what the charge asks now becomes the pupil's credit; more owed is paid first from the pupil's credit. The pupil's QR for the run then asks for the new remainder (a new QR: a QR's amount is part of its code).",
    params(("school" = Uuid, Path),
        ("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    request_body = AdjustmentRequest, security(("bearer" = [])),
    responses((status = 201, body = AdjustmentView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND (the run, the pupil, or the charge)", body = ErrorEnvelope),
        (status = 409, description = "RUN_NOT_POSTED, CHARGE_REVERSED, IDEMPOTENCY_KEY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "ADJUSTMENT_OUT_OF_RANGE, AMOUNT_BEYOND_QR_LIMIT, INVALID_SCHOOL_REQUEST, IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope)))]
pub async fn adjust_charge(
    state: web::Data<AppState>,
    ApiPath(school): ApiPath<Uuid>,
    request: IdempotentJson<AdjustmentRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.schools
                    .adjust_charge(&request.caller, request.claim, school, request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/schools/{school}/refunds", tag = "schools",
    description = "Pays back a pupil's credit (an overpayment, or money paid on reversed charges), in cash at the desk or by bank transfer (give the bank's reference in `reason`); never more than the credit.",
    params(("school" = Uuid, Path),
        ("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    request_body = RefundRequest, security(("bearer" = [])),
    responses((status = 201, body = RefundView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "REFUND_EXCEEDS_CREDIT (`details.credit`), IDEMPOTENCY_KEY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST, IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope)))]
pub async fn refund_credit(
    state: web::Data<AppState>,
    ApiPath(school): ApiPath<Uuid>,
    request: IdempotentJson<RefundRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.schools
                    .refund_credit(&request.caller, request.claim, school, request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/schools/{school}/household-links", tag = "schools",
    description = "A read-only link for a household's parents: the open charges of the household's pupils at this school (and the household's QR if one is open). The household must be named by one of the school's pupils.",
    params(("school" = Uuid, Path)), request_body = NewHouseholdLinkRequest, security(("bearer" = [])),
    responses((status = 201, description = "the token, shown only now", body = HouseholdLinkView),
        (status = 404, description = "SCHOOL_NOT_FOUND, HOUSEHOLD_NOT_FOUND (no pupil of the school names it)", body = ErrorEnvelope)))]
pub async fn create_household_link(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewHouseholdLinkRequest>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .run(move |s| async move {
            s.schools
                .create_household_link(&caller, school, request)
                .await
        })
        .await?;
    Ok(HttpResponse::build(StatusCode::CREATED).json(view))
}

#[utoipa::path(post, path = "/v1/schools/{school}/household-links/{link}/revoke", tag = "schools",
    params(("school" = Uuid, Path), ("link" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "revoked: the token no longer opens anything"),
        (status = 404, description = "SCHOOL_NOT_FOUND, PARENT_LINK_NOT_FOUND (also when already revoked)", body = ErrorEnvelope)))]
pub async fn revoke_household_link(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, link)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    state
        .run(move |s| async move { s.schools.revoke_household_link(&caller, school, link).await })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/household-links/{token}", tag = "schools",
    description = "A household's parents' read-only view of the open charges of its pupils at the school that gave the token; no login.",
    params(("token" = String, Path)),
    responses((status = 200, body = HouseholdParentView),
        (status = 404, description = "PARENT_LINK_NOT_FOUND (unknown or revoked)", body = ErrorEnvelope)))]
pub async fn household_parent_view(
    state: web::Data<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .run(move |s| async move { s.schools.household_parent_view(&token).await })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
