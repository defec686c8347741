//! Thin handlers for banks, payees, QR codes and payment intents.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, IdempotentJson};
use super::routes::reply;
use super::AppState;
use crate::services::auth::Caller;
use crate::services::payments::models::*;
use crate::services::payments::qr_image::{Image, ImageFormat};
use crate::services::payments::QrSubject;
use crate::services::ErrorEnvelope;

/// Images depend on data that can change (a payee's bank account, an intent's status), so
/// clients keep them but ask again each time; the ETag makes that a bodiless 304.
const IMAGE_CACHE_CONTROL: &str = "private, no-cache";

/// An image answer with its ETag, or 304 when the client already has these exact bytes.
fn image_response(request_headers: &HeaderMap, image: Image) -> Response {
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&image.bytes))[..32]);
    let cached = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, image.content_type),
                // An SVG opened on its own is a document; it has no business running anything.
                (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            image.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(IMAGE_CACHE_CONTROL),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

/// What every QR image endpoint reads: who asks, for which id, at what size, and which
/// version of the picture the client already has.
pub struct ImageRequest {
    caller: Caller,
    id: Uuid,
    size: Option<u32>,
    headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for ImageRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let ApiPath(id) = ApiPath::<Uuid>::from_request_parts(parts, state).await?;
        let ApiQuery(query) = ApiQuery::<ImageQuery>::from_request_parts(parts, state).await?;
        Ok(Self {
            caller,
            id,
            size: query.size,
            headers: parts.headers.clone(),
        })
    }
}

async fn qr(
    state: &AppState,
    request: ImageRequest,
    subject: fn(Uuid) -> QrSubject,
    format: ImageFormat,
) -> Result<Response, ApiError> {
    let image = state
        .payments
        .qr_image(&request.caller, subject(request.id), format, request.size)
        .await?;
    Ok(image_response(&request.headers, image))
}

#[utoipa::path(get, path = "/v1/banks", tag = "payees",
    security(("bearer" = [])),
    responses((status = 200, description = "the bundled NAPAS bank list", body = BankList)))]
pub async fn list_banks(State(state): State<AppState>) -> Json<BankList> {
    Json(state.payments.banks())
}

#[utoipa::path(post, path = "/v1/qr/parse", tag = "payees", request_body = QrParseRequest,
    security(("bearer" = [])),
    responses((status = 200, body = QrParseView),
        (status = 422, description = "QR_CRC_MISMATCH, QR_TLV_MALFORMED, QR_NESTED_TLV_MALFORMED, QR_WRONG_GUID, ... (which rule broke)", body = ErrorEnvelope)))]
pub async fn parse_qr(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<QrParseRequest>,
) -> Result<Json<QrParseView>, ApiError> {
    Ok(Json(state.payments.parse_qr(&request)?))
}

#[utoipa::path(post, path = "/v1/payees", tag = "payees", request_body = NewPayeeRequest,
    security(("bearer" = [])),
    responses((status = 201, body = PayeeView),
        (status = 409, description = "PAYEE_CODE_TAKEN, HOLDER_NAME_MISMATCH, ACCOUNT_CODE_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "UNKNOWN_BANK, INVALID_ACCOUNT_NUMBER, HOLDER_NAME_*, INVALID_PAYEE_*", body = ErrorEnvelope)))]
pub async fn create_payee(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NewPayeeRequest>,
) -> Result<(StatusCode, Json<PayeeView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.payments.create_payee(request).await?),
    ))
}

#[utoipa::path(get, path = "/v1/payees", tag = "payees", params(PayeeQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "ordered by id; a vendor or school user sees only its own payee", body = PayeePage),
        (status = 400, body = ErrorEnvelope)))]
pub async fn list_payees(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PayeeQuery>,
) -> Result<Json<PayeePage>, ApiError> {
    Ok(Json(state.payments.list_payees(&caller, query).await?))
}

#[utoipa::path(get, path = "/v1/payees/{id}", tag = "payees", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = PayeeView),
        (status = 404, description = "PAYEE_NOT_FOUND (also another payee's id for a vendor or school user)", body = ErrorEnvelope)))]
pub async fn get_payee(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PayeeView>, ApiError> {
    Ok(Json(state.payments.payee(&caller, id).await?))
}

#[utoipa::path(patch, path = "/v1/payees/{id}", tag = "payees", params(("id" = Uuid, Path)),
    request_body = PayeePatchRequest,
    security(("bearer" = [])),
    responses((status = 200, body = PayeeView),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "HOLDER_NAME_MISMATCH, ACCOUNT_CODE_TAKEN", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn update_payee(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<PayeePatchRequest>,
) -> Result<Json<PayeeView>, ApiError> {
    Ok(Json(state.payments.update_payee(id, request).await?))
}

#[utoipa::path(get, path = "/v1/payees/{id}/qr.svg", tag = "payees",
    params(("id" = Uuid, Path), ImageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "the static VietQR code (initiation 11, purpose = payee code)", content_type = "image/svg+xml",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "If-None-Match matched"),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "PAYEE_INACTIVE", body = ErrorEnvelope),
        (status = 422, description = "IMAGE_SIZE_OUT_OF_RANGE", body = ErrorEnvelope)))]
pub async fn payee_qr_svg(
    State(state): State<AppState>,
    request: ImageRequest,
) -> Result<Response, ApiError> {
    qr(&state, request, QrSubject::Payee, ImageFormat::Svg).await
}

#[utoipa::path(get, path = "/v1/payees/{id}/qr.png", tag = "payees",
    params(("id" = Uuid, Path), ImageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "the static VietQR code (initiation 11, purpose = payee code)", content_type = "image/png",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "If-None-Match matched"),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "PAYEE_INACTIVE", body = ErrorEnvelope),
        (status = 422, description = "IMAGE_SIZE_OUT_OF_RANGE", body = ErrorEnvelope)))]
pub async fn payee_qr_png(
    State(state): State<AppState>,
    request: ImageRequest,
) -> Result<Response, ApiError> {
    qr(&state, request, QrSubject::Payee, ImageFormat::Png).await
}

#[utoipa::path(get, path = "/v1/payees/{id}/sticker.svg", tag = "payees",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "a printable 100 × 150 mm stall sticker: the static code, payee, stall, bank, account and \"Quét mã để thanh toán\"", content_type = "image/svg+xml"),
        (status = 304, description = "If-None-Match matched"),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "PAYEE_INACTIVE", body = ErrorEnvelope)))]
pub async fn payee_sticker(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let image = state.payments.payee_sticker(&caller, id).await?;
    Ok(image_response(&headers, image))
}

#[utoipa::path(get, path = "/v1/payees/{id}/payment-intents", tag = "payment intents",
    params(("id" = Uuid, Path), IntentQuery),
    security(("bearer" = [])),
    responses((status = 200, body = IntentPage),
        (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn list_payee_intents(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<IntentQuery>,
) -> Result<Json<IntentPage>, ApiError> {
    Ok(Json(state.payments.list_intents(&caller, id, query).await?))
}

#[utoipa::path(post, path = "/v1/payment-intents", tag = "payment intents",
    request_body = NewIntentRequest,
    params(("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it")),
    security(("bearer" = [])),
    responses((status = 201, body = IntentView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, description = "PAYEE_NOT_FOUND (also another payee's id for a vendor or school user)", body = ErrorEnvelope),
        (status = 409, description = "PAYEE_INACTIVE, IDEMPOTENCY_KEY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "AMOUNT_*, INVALID_DESCRIPTION, INVALID_EXPIRY, IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope)))]
pub async fn create_intent(
    State(state): State<AppState>,
    request: IdempotentJson<NewIntentRequest>,
) -> Result<Response, ApiError> {
    Ok(reply(
        state
            .payments
            .create_intent(&request.caller, request.claim, request.body)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/payment-intents/{id}", tag = "payment intents",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "status as of now: a pending intent past expires_at reads expired", body = IntentView),
        (status = 404, body = ErrorEnvelope)))]
pub async fn get_intent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<IntentView>, ApiError> {
    Ok(Json(state.payments.intent(&caller, id).await?))
}

#[utoipa::path(post, path = "/v1/payment-intents/{id}/cancel", tag = "payment intents",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "cancelled (again, if it already was)", body = IntentView),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "PAYMENT_INTENT_NOT_CANCELLABLE (paid, partially paid or expired)", body = ErrorEnvelope)))]
pub async fn cancel_intent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<IntentView>, ApiError> {
    Ok(Json(state.payments.cancel_intent(&caller, id).await?))
}

#[utoipa::path(get, path = "/v1/payment-intents/{id}/qr.svg", tag = "payment intents",
    params(("id" = Uuid, Path), ImageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "the dynamic VietQR code (initiation 12, amount, purpose = reference)", content_type = "image/svg+xml",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "If-None-Match matched"),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "PAYMENT_INTENT_NOT_PAYABLE: no longer pending", body = ErrorEnvelope),
        (status = 422, description = "IMAGE_SIZE_OUT_OF_RANGE", body = ErrorEnvelope)))]
pub async fn intent_qr_svg(
    State(state): State<AppState>,
    request: ImageRequest,
) -> Result<Response, ApiError> {
    qr(&state, request, QrSubject::Intent, ImageFormat::Svg).await
}

#[utoipa::path(get, path = "/v1/payment-intents/{id}/qr.png", tag = "payment intents",
    params(("id" = Uuid, Path), ImageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "the dynamic VietQR code (initiation 12, amount, purpose = reference)", content_type = "image/png",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "If-None-Match matched"),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "PAYMENT_INTENT_NOT_PAYABLE: no longer pending", body = ErrorEnvelope),
        (status = 422, description = "IMAGE_SIZE_OUT_OF_RANGE", body = ErrorEnvelope)))]
pub async fn intent_qr_png(
    State(state): State<AppState>,
    request: ImageRequest,
) -> Result<Response, ApiError> {
    qr(&state, request, QrSubject::Intent, ImageFormat::Png).await
}
