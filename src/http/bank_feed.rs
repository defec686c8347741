//! Thin handlers for bank feeds, webhooks and reconciliation.

use actix_web::{web, HttpRequest, HttpResponse};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, IdempotentJson, RawBody};
use super::routes::reply;
use super::AppState;
use crate::services::auth::Caller;
use crate::services::bank_feed::models::*;
use crate::services::ErrorEnvelope;

#[utoipa::path(get, path = "/v1/collection-accounts", tag = "bank feed",
    security(("bearer" = [])),
    responses((status = 200, description = "monitored bank accounts, their payees and feed (secrets never shown)", body = CollectionAccountList)))]
pub async fn list_collection_accounts(
    state: web::Data<AppState>,
) -> Result<web::Json<CollectionAccountList>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.collection_accounts().await })
            .await?,
    ))
}

#[utoipa::path(put, path = "/v1/collection-accounts/{id}/feed", tag = "bank feed",
    params(("id" = Uuid, Path)), request_body = FeedRequest,
    security(("bearer" = [])),
    responses((status = 200, body = CollectionAccountView),
        (status = 404, description = "COLLECTION_ACCOUNT_NOT_FOUND, WEBHOOK_PROVIDER_UNKNOWN", body = ErrorEnvelope),
        (status = 422, description = "WEBHOOK_SECRET_COUNT, WEBHOOK_SECRET_EMPTY, WEBHOOK_SECRET_NOT_BASE64", body = ErrorEnvelope)))]
pub async fn set_feed(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<FeedRequest>,
) -> Result<web::Json<CollectionAccountView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.set_feed(&caller, id, request).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/collection-accounts/{id}/test-delivery", tag = "bank feed",
    params(("id" = Uuid, Path)), request_body = SendDeliveryRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "the delivery the account's feed provider would send for this incoming transfer, signed with the configured secret and processed like any other (the transfer is posted as real; the stored delivery names who sent it), with the service's answer", body = SentDeliveryView),
        (status = 404, description = "COLLECTION_ACCOUNT_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "FEED_NOT_CONFIGURED", body = ErrorEnvelope),
        (status = 422, description = "AMOUNT_INVALID, AMOUNT_NOT_POSITIVE, AMOUNT_TOO_LARGE, INVALID_MEMO", body = ErrorEnvelope)))]
pub async fn send_test_delivery(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<SendDeliveryRequest>,
) -> Result<web::Json<SentDeliveryView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.send_test_delivery(&caller, id, request).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/webhooks/{provider}", tag = "bank feed",
    params(("provider" = String, Path, description = "sepay, payos, casso or standard")),
    request_body(content = String, description = "the provider's signed JSON, verified byte for byte before it is read (at most 64 KiB)", content_type = "application/json"),
    responses((status = 200, description = "recorded (or already recorded: `duplicate`), or a verified delivery that moves no money (`ignored`): a provider's test delivery, whatever account it names, or a non-transaction event", body = WebhookAck),
        (status = 401, description = "WEBHOOK_SIGNATURE_INVALID, WEBHOOK_SIGNATURE_MISSING, WEBHOOK_MALFORMED (unreadable signature header), WEBHOOK_TIMESTAMP_OUT_OF_WINDOW, WEBHOOK_NOT_CONFIGURED: nothing stored", body = ErrorEnvelope),
        (status = 404, description = "WEBHOOK_PROVIDER_UNKNOWN", body = ErrorEnvelope),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorEnvelope),
        (status = 422, description = "WEBHOOK_BODY_NOT_JSON, WEBHOOK_FIELD_*, WEBHOOK_AMOUNT_*, WEBHOOK_ACCOUNT_UNKNOWN: verified but unusable (the delivery is kept for audit)", body = ErrorEnvelope)))]
pub async fn receive_webhook(
    state: web::Data<AppState>,
    ApiPath(provider): ApiPath<String>,
    request: HttpRequest,
    RawBody(body): RawBody,
) -> Result<web::Json<WebhookAck>, ApiError> {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.receive(&provider, &headers, &body).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/webhooks/test-deliveries", tag = "bank feed",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "providers' test deliveries (payOS webhook URL confirmation, SePay and Casso test buttons): verified, answered 2xx, never posted; oldest first", body = TestDeliveryPage),
        (status = 400, description = "INVALID_CURSOR, INVALID_LIMIT", body = ErrorEnvelope)))]
pub async fn list_test_deliveries(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<web::Json<TestDeliveryPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.test_deliveries(query).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/bank-transactions/{id}", tag = "reconciliation",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = BankTransactionView),
        (status = 404, description = "BANK_TRANSACTION_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_bank_transaction(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<web::Json<BankTransactionView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.bank_transaction(id).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/reconciliation/unmatched", tag = "reconciliation",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "bank transactions with money in suspense and no resolution, oldest first", body = BankTransactionPage),
        (status = 400, description = "INVALID_CURSOR, INVALID_LIMIT", body = ErrorEnvelope)))]
pub async fn list_unmatched(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<web::Json<BankTransactionPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.unmatched(query).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/reconciliation/unmatched/{id}/resolve", tag = "reconciliation",
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    request_body = ResolveRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "the bank transaction with its resolution", body = BankTransactionView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, description = "BANK_TRANSACTION_NOT_FOUND, PAYMENT_INTENT_NOT_FOUND, PAYEE_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "SUSPENSE_ALREADY_RESOLVED, NOT_IN_SUSPENSE, IDEMPOTENCY_KEY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "INVALID_RESOLUTION, RESOLUTION_NOT_APPLICABLE, PAYEE_BALANCE_SHORT, IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope)))]
pub async fn resolve_unmatched(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    request: IdempotentJson<ResolveRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.bank_feed
                    .resolve(&request.caller, request.claim, id, request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/reconciliation/discrepancies", tag = "reconciliation",
    params(PageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "times the bank's reported running balance differed from the ledger's, oldest first", body = DiscrepancyPage),
        (status = 400, description = "INVALID_CURSOR, INVALID_LIMIT", body = ErrorEnvelope)))]
pub async fn list_discrepancies(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<web::Json<DiscrepancyPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.discrepancies(query).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/reconciliation/statements", tag = "reconciliation",
    params(StatementQuery),
    request_body(content = String, description = "the bank's statement of the account for the period, as CSV (at most 4 MiB, 50,000 rows): a header naming date, direction, amount, description, bank_reference, running_balance, then one row per transaction; see the README", content_type = "text/csv"),
    security(("bearer" = [])),
    responses((status = 200, description = "the statement compared with the stored bank transactions and the ledger (as before anything was recorded), and with `ingest=true` the lines recorded", body = StatementImportView),
        (status = 400, description = "INVALID_QUERY (collection_account_id, from and to are required)", body = ErrorEnvelope),
        (status = 404, description = "COLLECTION_ACCOUNT_NOT_FOUND", body = ErrorEnvelope),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorEnvelope),
        (status = 422, description = "STATEMENT_NOT_UTF8, STATEMENT_TOO_LARGE, STATEMENT_EMPTY, STATEMENT_HEADER_INVALID, STATEMENT_LINE_INVALID, STATEMENT_LINE_OUTSIDE_PERIOD (with `details.line`), STATEMENT_PERIOD_INVALID", body = ErrorEnvelope)))]
pub async fn import_statement(
    state: web::Data<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<StatementQuery>,
    RawBody(body): RawBody,
) -> Result<web::Json<StatementImportView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.bank_feed.import_statement(&caller, query, &body).await })
            .await?,
    ))
}
