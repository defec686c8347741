//! Thin handlers for school fee collection: years, classes, pupils, fee items, reductions,
//! collection runs, cash receipts, status and statements, and parents' read-only links.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, IdempotentJson, RawBody};
use super::routes::reply;
use super::AppState;
use crate::services::auth::Caller;
use crate::services::schools::models::*;
use crate::services::ErrorEnvelope;

/// Runs a school use case and answers its view as JSON with `status`.
async fn answer<T: serde::Serialize + Send + 'static, Work>(
    state: &AppState,
    status: StatusCode,
    use_case: impl FnOnce(AppState) -> Work,
) -> Result<HttpResponse, ApiError>
where
    Work: std::future::Future<Output = Result<T, crate::services::schools::SchoolError>>
        + Send
        + 'static,
{
    let view = state.run(use_case).await?;
    Ok(HttpResponse::build(status).json(view))
}

#[utoipa::path(post, path = "/v1/schools/{school}/years", tag = "schools",
    params(("school" = Uuid, Path, description = "the school's payee id")),
    request_body = NewYearRequest, security(("bearer" = [])),
    responses((status = 201, body = YearView),
        (status = 404, description = "SCHOOL_NOT_FOUND (also another school's id for a school user)", body = ErrorEnvelope),
        (status = 409, description = "SCHOOL_RECORD_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST", body = ErrorEnvelope)))]
pub async fn create_year(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewYearRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::CREATED, move |s| async move {
        s.schools.create_year(&caller, school, request).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/years", tag = "schools",
    params(("school" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = YearList), (status = 404, body = ErrorEnvelope)))]
pub async fn list_years(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.list_years(&caller, school).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/classes", tag = "schools",
    params(("school" = Uuid, Path)), request_body = NewClassRequest, security(("bearer" = [])),
    responses((status = 201, body = ClassView),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "SCHOOL_RECORD_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST", body = ErrorEnvelope)))]
pub async fn create_class(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewClassRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::CREATED, move |s| async move {
        s.schools.create_class(&caller, school, request).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/classes", tag = "schools",
    params(("school" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = ClassList), (status = 404, body = ErrorEnvelope)))]
pub async fn list_classes(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.list_classes(&caller, school).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/pupils", tag = "schools",
    params(("school" = Uuid, Path)), request_body = NewPupilRequest, security(("bearer" = [])),
    responses((status = 201, description = "the pupil, with a receivable account school:<school code>:pupil:<code>", body = PupilView),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND (class, household)", body = ErrorEnvelope),
        (status = 409, description = "SCHOOL_RECORD_TAKEN (the pupil code)", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST", body = ErrorEnvelope)))]
pub async fn create_pupil(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewPupilRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::CREATED, move |s| async move {
        s.schools.create_pupil(&caller, school, request).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/pupils", tag = "schools",
    params(("school" = Uuid, Path), PupilQuery), security(("bearer" = [])),
    responses((status = 200, description = "the school's pupils by code, each with its class history", body = PupilPage),
        (status = 400, description = "INVALID_CURSOR, INVALID_LIMIT", body = ErrorEnvelope),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND (the class)", body = ErrorEnvelope)))]
pub async fn list_pupils(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<PupilQuery>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.pupils(&caller, school, query).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/roster/import", tag = "schools",
    params(("school" = Uuid, Path), RosterQuery),
    request_body(content = String, description = "one row per pupil, as Excel saves CSV (UTF-8 with or without BOM, comma or semicolon): Lớp/class, Mã học sinh/pupil_code, Họ và tên/full_name, Mã hộ/household_code, Họ tên phụ huynh/guardian_name, Số điện thoại phụ huynh/guardian_phone, Ngày vào lớp/joined_on; see the README", content_type = "text/csv"),
    security(("bearer" = [])),
    responses((status = 200, description = "what the import did (or, on a dry run, would do), with every bad line", body = RosterSummary),
        (status = 404, body = ErrorEnvelope),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorEnvelope),
        (status = 422, description = "IMPORT_INVALID: the file has bad lines (`details.errors`: line, field, problem); nothing was written", body = ErrorEnvelope)))]
pub async fn import_roster(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<RosterQuery>,
    RawBody(body): RawBody,
) -> Result<HttpResponse, ApiError> {
    let summary = state
        .run(move |s| async move { s.schools.import_roster(&caller, school, query, &body).await })
        .await?;
    Ok(HttpResponse::Ok().json(summary))
}

#[utoipa::path(get, path = "/v1/schools/{school}/pupils/{pupil}", tag = "schools",
    params(("school" = Uuid, Path), ("pupil" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = PupilView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_pupil(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, pupil)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.pupil(&caller, school, pupil).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/pupils/{pupil}/move", tag = "schools",
    description = "Moves the pupil to another class from `on`, or with no class_id records that the pupil left on `on`. The class history is kept.",
    params(("school" = Uuid, Path), ("pupil" = Uuid, Path)), request_body = MovePupilRequest,
    security(("bearer" = [])),
    responses((status = 200, body = PupilView), (status = 404, body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST", body = ErrorEnvelope)))]
pub async fn move_pupil(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, pupil)): ApiPath<(Uuid, Uuid)>,
    ApiJson(request): ApiJson<MovePupilRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.move_pupil(&caller, school, pupil, request).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/pupils/{pupil}/statement", tag = "schools",
    params(("school" = Uuid, Path), ("pupil" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "charges, payments (online and cash), reductions and the ledger balance", body = PupilStatement),
        (status = 404, body = ErrorEnvelope)))]
pub async fn pupil_statement(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, pupil)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.statement(&caller, school, pupil).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/fee-items", tag = "schools",
    params(("school" = Uuid, Path)), request_body = NewFeeItemRequest, security(("bearer" = [])),
    responses((status = 201, body = FeeItemView), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "SCHOOL_RECORD_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST", body = ErrorEnvelope)))]
pub async fn create_fee_item(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewFeeItemRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::CREATED, move |s| async move {
        s.schools.create_fee_item(&caller, school, request).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/fee-items", tag = "schools",
    params(("school" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = FeeItemList), (status = 404, body = ErrorEnvelope)))]
pub async fn list_fee_items(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.list_fee_items(&caller, school).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/fee-items/{item}/enrolments", tag = "schools",
    params(("school" = Uuid, Path), ("item" = Uuid, Path)), request_body = EnrolRequest,
    security(("bearer" = [])),
    responses((status = 200, body = EnrolView), (status = 404, body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST (a mandatory item)", body = ErrorEnvelope)))]
pub async fn enrol(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, item)): ApiPath<(Uuid, Uuid)>,
    ApiJson(request): ApiJson<EnrolRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.enrol(&caller, school, item, request).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/exemptions", tag = "schools",
    description = "Miễn giảm: a percentage or a fixed amount off one item for one pupil, with its policy category; the caller is recorded as who approved it, now.",
    params(("school" = Uuid, Path)), request_body = NewExemptionRequest, security(("bearer" = [])),
    responses((status = 201, body = ExemptionView), (status = 404, body = ErrorEnvelope),
        (status = 409, description = "SCHOOL_RECORD_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST", body = ErrorEnvelope)))]
pub async fn create_exemption(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewExemptionRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::CREATED, move |s| async move {
        s.schools.create_exemption(&caller, school, request).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/runs", tag = "schools",
    params(("school" = Uuid, Path)), request_body = NewRunRequest, security(("bearer" = [])),
    responses((status = 201, description = "the run, not posted yet", body = RunView),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "SCHOOL_RECORD_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST, SCHOOL_DAYS_REQUIRED", body = ErrorEnvelope)))]
pub async fn create_run(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewRunRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::CREATED, move |s| async move {
        s.schools.create_run(&caller, school, request).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/runs", tag = "schools",
    params(("school" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = RunList), (status = 404, body = ErrorEnvelope)))]
pub async fn list_runs(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.list_runs(&caller, school).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/runs/{run}/preview", tag = "schools",
    description = "Every pupil's charges for the run, computed now and not posted (a posted run shows what it posted).",
    params(("school" = Uuid, Path), ("run" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = RunPreview), (status = 404, body = ErrorEnvelope),
        (status = 422, description = "SCHOOL_DAYS_REQUIRED, AMOUNT_TOO_LARGE", body = ErrorEnvelope)))]
pub async fn preview_run(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, run)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.preview_run(&caller, school, run).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/runs/{run}/post", tag = "schools",
    description = "Posts the run's charges to the pupils' receivables, uses any credit they have, and makes one VietQR intent per pupil still owing, in one database transaction. Posting it again changes nothing and answers the same.",
    params(("school" = Uuid, Path), ("run" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = PostedRun), (status = 404, body = ErrorEnvelope),
        (status = 422, description = "SCHOOL_DAYS_REQUIRED, AMOUNT_TOO_LARGE", body = ErrorEnvelope)))]
pub async fn post_run(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, run)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.post_run(&caller, school, run).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/runs/{run}/status", tag = "schools",
    params(("school" = Uuid, Path), ("run" = Uuid, Path), StatusQuery), security(("bearer" = [])),
    responses((status = 200, description = "who paid all, part or nothing of the run, with totals", body = RunStatus),
        (status = 404, body = ErrorEnvelope)))]
pub async fn run_status(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, run)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.run_status(&caller, school, run, query).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/balances", tag = "schools",
    params(("school" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "each fund's liability, uncollected charges and cash on hand, from the ledger", body = SchoolBalances),
        (status = 404, body = ErrorEnvelope)))]
pub async fn balances(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.balances(&caller, school).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/cash-receipts", tag = "schools",
    description = "Records cash taken at the school's desk for a pupil: a receipt numbered gap-free per school and school year, posted to the school's cash account and split across the pupil's open charges.",
    params(("school" = Uuid, Path),
        ("Idempotency-Key" = String, Header, description = "unique per request; retries reuse it", pattern = "^[!-~]{1,255}$")),
    request_body = CashRequest, security(("bearer" = [])),
    responses((status = 201, body = ReceiptView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "IDEMPOTENCY_KEY_IN_PROGRESS", body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST, IDEMPOTENCY_KEY_REUSED", body = ErrorEnvelope)))]
pub async fn record_cash(
    state: web::Data<AppState>,
    ApiPath(school): ApiPath<Uuid>,
    request: IdempotentJson<CashRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(reply(
        state
            .run(move |s| async move {
                s.schools
                    .record_cash(&request.caller, request.claim, school, request.body)
                    .await
            })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/schools/{school}/cash-receipts/{receipt}", tag = "schools",
    params(("school" = Uuid, Path), ("receipt" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = ReceiptView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_receipt(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, receipt)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.receipt(&caller, school, receipt).await
    })
    .await
}

#[utoipa::path(get, path = "/v1/schools/{school}/cash-receipts/{receipt}/receipt.html", tag = "schools",
    params(("school" = Uuid, Path), ("receipt" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "the receipt as a printable page in Vietnamese (a cancelled one says so)", content_type = "text/html"),
        (status = 404, body = ErrorEnvelope)))]
pub async fn receipt_html(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, receipt)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .run(move |s| async move { s.schools.receipt_html(&caller, school, receipt).await })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page))
}

#[utoipa::path(post, path = "/v1/schools/{school}/cash-receipts/{receipt}/cancel", tag = "schools",
    description = "Cancels a receipt: it keeps its number and shows as cancelled; the cash and the charges it paid are taken back in one ledger transaction. Cancelling again answers the same.",
    params(("school" = Uuid, Path), ("receipt" = Uuid, Path)), request_body = CancelReceiptRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ReceiptView), (status = 404, body = ErrorEnvelope),
        (status = 422, description = "INVALID_SCHOOL_REQUEST", body = ErrorEnvelope)))]
pub async fn cancel_receipt(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, receipt)): ApiPath<(Uuid, Uuid)>,
    ApiJson(request): ApiJson<CancelReceiptRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools
            .cancel_receipt(&caller, school, receipt, request)
            .await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/parent-links", tag = "schools",
    params(("school" = Uuid, Path)), request_body = NewParentLinkRequest, security(("bearer" = [])),
    responses((status = 201, description = "the token, shown only now", body = ParentLinkView),
        (status = 404, body = ErrorEnvelope)))]
pub async fn create_parent_link(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(school): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewParentLinkRequest>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::CREATED, move |s| async move {
        s.schools.create_parent_link(&caller, school, request).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/schools/{school}/parent-links/{link}/revoke", tag = "schools",
    params(("school" = Uuid, Path), ("link" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "revoked: the token no longer opens anything"),
        (status = 404, description = "SCHOOL_NOT_FOUND, PARENT_LINK_NOT_FOUND (also when already revoked)", body = ErrorEnvelope)))]
pub async fn revoke_parent_link(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, link)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    state
        .run(move |s| async move { s.schools.revoke_parent_link(&caller, school, link).await })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/parent-links/{token}", tag = "schools",
    description = "A parent's read-only view of one pupil's open charges, by the token the school gave; no login.",
    params(("token" = String, Path)),
    responses((status = 200, body = ParentView),
        (status = 404, description = "PARENT_LINK_NOT_FOUND (unknown or revoked)", body = ErrorEnvelope)))]
pub async fn parent_view(
    state: web::Data<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::OK, move |s| async move {
        s.schools.parent_view(&token).await
    })
    .await
}

#[utoipa::path(post, path = "/v1/households/{id}/payment-request", tag = "schools",
    description = "One VietQR for a household: the sum of the open charges of every pupil naming it, at every school; the money is split across the charges by the documented rule (oldest due first, mandatory before optional) and each school posts only its own pupils' lines. The schools owing must collect into one bank account.",
    params(("id" = Uuid, Path, description = "the registry household's id")),
    security(("bearer" = [])),
    responses((status = 201, body = HouseholdPaymentView),
        (status = 404, description = "HOUSEHOLD_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "HOUSEHOLD_NOTHING_OWING (no open charge), HOUSEHOLD_SCHOOLS_COLLECT_APART (the schools owing collect into different bank accounts)", body = ErrorEnvelope)))]
pub async fn household_payment_request(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(household): ApiPath<Uuid>,
) -> Result<HttpResponse, ApiError> {
    answer(&state, StatusCode::CREATED, move |s| async move {
        s.schools
            .household_payment_request(&caller, household)
            .await
    })
    .await
}
