//! Thin handlers: extract, call a service, answer.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, IdempotentJson};
use super::AppState;
use crate::services::auth::IssuedToken;
use crate::services::ledger::models::*;
use crate::services::ledger::{AccountQuery, BatchResponse, PageQuery, Reply, TransactionQuery};
use crate::services::ErrorEnvelope;

pub const REPLAYED_HEADER: &str = "idempotent-replayed";

pub(super) fn reply(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.content_type("application/json");
    if reply.replayed {
        response.insert_header((REPLAYED_HEADER, "true"));
    }
    response.body(reply.body)
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorEnvelope)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, ApiError> {
    state
        .run(|s| async move {
            s.ledger.check_ready().await.map_err(|e| {
                tracing::warn!(error = %e, "database not reachable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "DATABASE_UNREACHABLE",
                    "the database is not reachable",
                )
            })
        })
        .await?;
    Ok(web::Json(Health {
        status: "ready".into(),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires (at most 900).
    pub expires_in: u64,
}

impl From<IssuedToken> for TokenResponse {
    fn from(issued: IssuedToken) -> Self {
        Self {
            access_token: issued.access_token,
            token_type: "Bearer".into(),
            expires_in: issued.expires_in,
        }
    }
}

#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse),
        (status = 401, description = "INVALID_CREDENTIALS: wrong username or password; USER_DISABLED", body = ErrorEnvelope),
        (status = 429, description = "too many failed logins for this username", body = ErrorEnvelope)))]
pub async fn token(
    state: web::Data<AppState>,
    ApiJson(request): ApiJson<TokenRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let issued = state
        .run(move |s| async move { s.auth.login(&request.username, &request.password).await })
        .await?;
    Ok(web::Json(TokenResponse::from(issued)))
}

#[utoipa::path(post, path = "/v1/accounts", tag = "ledger", request_body = NewAccountRequest,
    security(("bearer" = [])),
    responses((status = 201, body = AccountView),
        (status = 409, description = "ACCOUNT_CODE_TAKEN", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn create_account(
    state: web::Data<AppState>,
    ApiJson(request): ApiJson<NewAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(
        state
            .run(move |s| async move { s.ledger.create_account(request).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/accounts", tag = "ledger", params(AccountQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AccountPage), (status = 400, body = ErrorEnvelope),
        (status = 422, description = "INVALID_ACCOUNT_KIND, UNKNOWN_CURRENCY", body = ErrorEnvelope)))]
pub async fn list_accounts(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<AccountQuery>,
) -> Result<web::Json<AccountPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.ledger.list_accounts(query).await })
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// The balance at this time (entries effective at or before it).
    pub as_of: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/v1/accounts/{account}", tag = "ledger",
    params(("account" = String, Path, description = "account id or code"), AsOfQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_account(
    state: web::Data<AppState>,
    ApiPath(account): ApiPath<String>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> Result<web::Json<AccountView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.ledger.account(&account, query.as_of).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/accounts/{account}/entries", tag = "ledger",
    params(("account" = String, Path, description = "account id or code"), PageQuery),
    security(("bearer" = [])),
    responses((status = 200, body = EntryPage), (status = 404, body = ErrorEnvelope)))]
pub async fn account_entries(
    state: web::Data<AppState>,
    ApiPath(account): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<web::Json<EntryPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.ledger.entries(&account, query).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/transactions", tag = "ledger", request_body = TransactionRequest,
    params(("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    security(("bearer" = [])),
    responses((status = 201, body = TransactionView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "TRANSACTION_EXISTS", body = ErrorEnvelope),
        (status = 422, description = "invalid amount, unknown account, overdraft, IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope)))]
pub async fn post_transaction(
    state: web::Data<AppState>,
    request: IdempotentJson<TransactionRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.ledger
                    .post_one(&request.caller, request.claim, request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/transactions/batch", tag = "ledger", request_body = BatchRequest,
    params(("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    security(("bearer" = [])),
    responses((status = 200, description = "each transaction's result", body = BatchResponse),
        (status = 422, description = "BATCH_REJECTED (atomic), BATCH_TOO_LARGE, ...", body = ErrorEnvelope)))]
pub async fn post_batch(
    state: web::Data<AppState>,
    request: IdempotentJson<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.ledger
                    .post_batch(&request.caller, request.claim, request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/transactions", tag = "ledger", params(TransactionQuery),
    security(("bearer" = [])),
    responses((status = 200, body = TransactionPage), (status = 400, body = ErrorEnvelope),
        (status = 404, description = "ACCOUNT_NOT_FOUND: the account filter names no account", body = ErrorEnvelope)))]
pub async fn list_transactions(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<TransactionQuery>,
) -> Result<web::Json<TransactionPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.ledger.list_transactions(query).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/transactions/{id}", tag = "ledger",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = TransactionView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_transaction(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<web::Json<TransactionView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.ledger.transaction(id).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/transactions/{id}/reverse", tag = "ledger",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    request_body(content = Option<ReverseRequest>, description = "optional"),
    security(("bearer" = [])),
    responses((status = 201, body = TransactionView),
        (status = 409, description = "ALREADY_REVERSED, TRANSACTION_KEPT_ELSEWHERE (posted by school fee collection or the bank feed: corrected there)", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn reverse_transaction(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    request: IdempotentJson<Option<ReverseRequest>>,
) -> Result<HttpResponse, ApiError> {
    let body = request.body.unwrap_or_default();
    Ok(reply(
        state
            .run(move |s| async move {
                s.ledger
                    .reverse(&request.caller, request.claim, id, body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/ledger/verify", tag = "ledger",
    security(("bearer" = [])),
    responses((status = 200, description = "`ok` is false when any invariant is broken", body = VerifyView)))]
pub async fn verify(state: web::Data<AppState>) -> Result<web::Json<VerifyView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.ledger.verify().await })
            .await?,
    ))
}
