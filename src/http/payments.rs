//! Thin handlers for banks, payees, QR codes and payment intents.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures::future::{ready, Ready};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{caller_of, ApiJson, ApiPath, ApiQuery, IdempotentJson};
use super::routes::reply;
use super::AppState;
use crate::services::auth::Caller;
use crate::services::ledger::PageQuery;
use crate::services::payments::models::*;
use crate::services::payments::qr_image::{Image, ImageFormat};
use crate::services::payments::received::{PayeeSummaryView, ReceivedPaymentPage, SummaryQuery};
use crate::services::payments::QrSubject;
use crate::services::ErrorEnvelope;

/// Images depend on data that can change (a payee's bank account, an intent's status), so
/// clients keep them but ask again each time; the ETag makes that a bodiless 304.
const IMAGE_CACHE_CONTROL: &str = "private, no-cache";

/// An image answer with its ETag, or 304 when the client already has these exact bytes.
fn image_response(request: &HttpRequest, image: Image) -> HttpResponse {
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&image.bytes))[..32]);
    let cached = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*");
    let mut response = if cached {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response.insert_header((
        header::CACHE_CONTROL,
        HeaderValue::from_static(IMAGE_CACHE_CONTROL),
    ));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        response.insert_header((header::ETAG, etag));
    }
    if cached {
        return response.finish();
    }
    response
        .content_type(image.content_type)
        // An SVG opened on its own is a document; it has no business running anything.
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(image.bytes)
}

/// What every QR image endpoint reads: who asks, for which id, at what size; the request
/// itself says which version of the picture the client already has.
pub struct ImageRequest {
    caller: Caller,
    id: Uuid,
    size: Option<u32>,
    request: HttpRequest,
}

impl FromRequest for ImageRequest {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mut read = || {
            let caller = caller_of(request)?;
            let ApiPath(id) = ApiPath::<Uuid>::from_request(request, payload).into_inner()?;
            let ApiQuery(query) =
                ApiQuery::<ImageQuery>::from_request(request, payload).into_inner()?;
            Ok(Self {
                caller,
                id,
                size: query.size,
                request: request.clone(),
            })
        };
        ready(read())
    }
}

async fn qr(
    state: &AppState,
    request: ImageRequest,
    subject: fn(Uuid) -> QrSubject,
    format: ImageFormat,
) -> Result<HttpResponse, ApiError> {
    let (caller, id, size) = (request.caller, request.id, request.size);
    let image = state
        .run(move |s| async move {
            s.payments
                .qr_image(&caller, subject(id), format, size)
                .await
        })
        .await?;
    Ok(image_response(&request.request, image))
}

#[utoipa::path(get, path = "/v1/banks", tag = "payees",
    security(("bearer" = [])),
    responses((status = 200, description = "the bundled NAPAS bank list", body = BankList)))]
pub async fn list_banks(state: web::Data<AppState>) -> web::Json<BankList> {
    web::Json(state.payments.banks())
}

#[utoipa::path(post, path = "/v1/qr/parse", tag = "payees", request_body = QrParseRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "the decoded code; `warnings` (always present, empty for a clean code) lists what EMVCo permits but our own codes never do: QR_PURPOSE_UNUSUAL_CHARACTERS, QR_PURPOSE_LONG, QR_AMOUNT_ZERO_FRACTION, QR_LENGTHS_COUNTED_IN_BYTES", body = QrParseView),
        (status = 422, description = "QR_CRC_MISMATCH, QR_TLV_MALFORMED, QR_NESTED_TLV_MALFORMED, QR_WRONG_GUID, QR_INVALID_AMOUNT (also a non-zero fraction), ... (which rule broke); QR_NOT_A_BANK_TRANSFER for another scheme's code (no NAPAS tag 38, e.g. VNPAY-QR in tag 26), with `details` listing what could be read: merchant_accounts [{tag, guid, scheme}], amount, currency, purpose, merchant_name, merchant_city", body = ErrorEnvelope)))]
pub async fn parse_qr(
    state: web::Data<AppState>,
    ApiJson(request): ApiJson<QrParseRequest>,
) -> Result<web::Json<QrParseView>, ApiError> {
    Ok(web::Json(state.payments.parse_qr(&request)?))
}

#[utoipa::path(post, path = "/v1/payees", tag = "payees", request_body = NewPayeeRequest,
    security(("bearer" = [])),
    responses((status = 201, body = PayeeView),
        (status = 409, description = "PAYEE_CODE_TAKEN, HOLDER_NAME_MISMATCH, ACCOUNT_CODE_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "UNKNOWN_BANK, INVALID_ACCOUNT_NUMBER, HOLDER_NAME_*, INVALID_PAYEE_*, OWNER_RESIDENT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn create_payee(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewPayeeRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(
        state
            .run(move |s| async move { s.payments.create_payee(&caller, request).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/payees", tag = "payees", params(PayeeQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "ordered by id; a vendor or school user sees only its own payee", body = PayeePage),
        (status = 400, body = ErrorEnvelope),
        (status = 422, description = "INVALID_PAYEE_KIND", body = ErrorEnvelope)))]
pub async fn list_payees(
    state: web::Data<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PayeeQuery>,
) -> Result<web::Json<PayeePage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payments.list_payees(&caller, query).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/payees/{id}", tag = "payees", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = PayeeView),
        (status = 404, description = "PAYEE_NOT_FOUND (also another payee's id for a vendor or school user)", body = ErrorEnvelope)))]
pub async fn get_payee(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<web::Json<PayeeView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payments.payee(&caller, id).await })
            .await?,
    ))
}

#[utoipa::path(patch, path = "/v1/payees/{id}", tag = "payees", params(("id" = Uuid, Path)),
    request_body = PayeePatchRequest,
    security(("bearer" = [])),
    responses((status = 200, body = PayeeView),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "HOLDER_NAME_MISMATCH, ACCOUNT_CODE_TAKEN", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn update_payee(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<PayeePatchRequest>,
) -> Result<web::Json<PayeeView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payments.update_payee(&caller, id, request).await })
            .await?,
    ))
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
    state: web::Data<AppState>,
    request: ImageRequest,
) -> Result<HttpResponse, ApiError> {
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
    state: web::Data<AppState>,
    request: ImageRequest,
) -> Result<HttpResponse, ApiError> {
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
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let image = state
        .run(move |s| async move { s.payments.payee_sticker(&caller, id).await })
        .await?;
    Ok(image_response(&request, image))
}

#[utoipa::path(get, path = "/v1/payees/{id}/payment-intents", tag = "payment intents",
    params(("id" = Uuid, Path), IntentQuery),
    security(("bearer" = [])),
    responses((status = 200, body = IntentPage),
        (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn list_payee_intents(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<IntentQuery>,
) -> Result<web::Json<IntentPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payments.list_intents(&caller, id, query).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/payment-intents", tag = "payment intents",
    request_body = NewIntentRequest,
    params(("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    security(("bearer" = [])),
    responses((status = 201, body = IntentView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, description = "PAYEE_NOT_FOUND (also another payee's id for a vendor or school user)", body = ErrorEnvelope),
        (status = 409, description = "PAYEE_INACTIVE, IDEMPOTENCY_KEY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "AMOUNT_*, INVALID_DESCRIPTION, INVALID_EXPIRY, IDEMPOTENCY_KEY_REUSED, INVALID_PAYER, PAYER_NOT_FOUND (the payer names no known resident or household)", body = ErrorEnvelope)))]
pub async fn create_intent(
    state: web::Data<AppState>,
    request: IdempotentJson<NewIntentRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.payments
                    .create_intent(&request.caller, request.claim, request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/payment-intents/{id}", tag = "payment intents",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "status as of now: a pending intent past expires_at reads expired", body = IntentView),
        (status = 404, body = ErrorEnvelope)))]
pub async fn get_intent(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<web::Json<IntentView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payments.intent(&caller, id).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/payment-intents/{id}/cancel", tag = "payment intents",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "cancelled (again, if it already was)", body = IntentView),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "PAYMENT_INTENT_NOT_CANCELLABLE (paid, partially paid or expired)", body = ErrorEnvelope)))]
pub async fn cancel_intent(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<web::Json<IntentView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payments.cancel_intent(&caller, id).await })
            .await?,
    ))
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
    state: web::Data<AppState>,
    request: ImageRequest,
) -> Result<HttpResponse, ApiError> {
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
    state: web::Data<AppState>,
    request: ImageRequest,
) -> Result<HttpResponse, ApiError> {
    qr(&state, request, QrSubject::Intent, ImageFormat::Png).await
}

// A payee's own money: its vendor or school user reads these for its own payee only.

#[utoipa::path(get, path = "/v1/payees/{id}/payments", tag = "payees",
    params(("id" = Uuid, Path), PageQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Every payment the payee received by bank transfer \
            (static QR and payment intents alike), with the bank's memo, oldest first. Vendor \
            and school users read their own payee only.", body = ReceivedPaymentPage),
        (status = 400, body = ErrorEnvelope),
        (status = 404, description = "PAYEE_NOT_FOUND (also another payee's id for a vendor or school user)", body = ErrorEnvelope)))]
pub async fn list_received_payments(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<web::Json<ReceivedPaymentPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payments.received_payments(&caller, id, query).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/payees/{id}/summary", tag = "payees",
    params(("id" = Uuid, Path), SummaryQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The payee's ledger balance and its takings per \
            Vietnam calendar day, today first.", body = PayeeSummaryView),
        (status = 400, description = "INVALID_QUERY: days out of range", body = ErrorEnvelope),
        (status = 404, description = "PAYEE_NOT_FOUND (also another payee's id for a vendor or school user)", body = ErrorEnvelope)))]
pub async fn payee_summary(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<SummaryQuery>,
) -> Result<web::Json<PayeeSummaryView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.payments.payee_summary(&caller, id, query).await })
            .await?,
    ))
}
