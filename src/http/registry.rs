//! Thin handlers for the commune's registry: hamlets, households, residents, consents.

use actix_web::{web, HttpResponse};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::AppState;
use crate::services::auth::Caller;
use crate::services::registry::models::*;
use crate::services::ErrorEnvelope;

#[utoipa::path(post, path = "/v1/hamlets", tag = "registry", request_body = NewHamletRequest,
    security(("bearer" = [])),
    responses((status = 201, body = HamletView),
        (status = 409, description = "HAMLET_CODE_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "REGISTRY_FIELD_INVALID (`details.field` names the field)", body = ErrorEnvelope)))]
pub async fn create_hamlet(
    state: web::Data<AppState>,
    ApiJson(request): ApiJson<NewHamletRequest>,
) -> Result<HttpResponse, ApiError> {
    let hamlet = state
        .run(move |s| async move { s.registry.create_hamlet(request).await })
        .await?;
    Ok(HttpResponse::Created().json(hamlet))
}

#[utoipa::path(get, path = "/v1/hamlets", tag = "registry", params(HamletQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "every hamlet by code, or those that existed on the day `on`", body = HamletList),
        (status = 422, description = "REGISTRY_FIELD_INVALID: `on` is not a date", body = ErrorEnvelope)))]
pub async fn list_hamlets(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<HamletQuery>,
) -> Result<web::Json<HamletList>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.hamlets(query).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/hamlets/{code}", tag = "registry", params(("code" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = HamletView),
        (status = 404, description = "HAMLET_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_hamlet(
    state: web::Data<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<web::Json<HamletView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.hamlet(&code).await })
            .await?,
    ))
}

#[utoipa::path(patch, path = "/v1/hamlets/{code}", tag = "registry", params(("code" = String, Path)),
    request_body = HamletPatchRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "renamed in place (a correction); a change that reports should date is a new hamlet and a merge", body = HamletView),
        (status = 404, description = "HAMLET_NOT_FOUND", body = ErrorEnvelope),
        (status = 422, description = "REGISTRY_FIELD_INVALID", body = ErrorEnvelope)))]
pub async fn rename_hamlet(
    state: web::Data<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(request): ApiJson<HamletPatchRequest>,
) -> Result<web::Json<HamletView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.rename_hamlet(&code, request).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/hamlets/{code}/merge", tag = "registry",
    params(("code" = String, Path)), request_body = HamletMergeRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "the merged hamlet: `valid_to` is the day before `on`, `merged_into` the target; its households keep their hamlet code, so earlier months still count them in it", body = HamletView),
        (status = 404, description = "HAMLET_NOT_FOUND (the hamlet or the target)", body = ErrorEnvelope),
        (status = 409, description = "HAMLET_CLOSED (already merged or closed), HAMLET_MERGE_TARGET_NOT_OPEN (the target did not exist on `on`)", body = ErrorEnvelope),
        (status = 422, description = "REGISTRY_FIELD_INVALID, HAMLET_MERGE_INTO_ITSELF, HAMLET_MERGE_TOO_EARLY (`on` must come after `valid_from`)", body = ErrorEnvelope)))]
pub async fn merge_hamlet(
    state: web::Data<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(request): ApiJson<HamletMergeRequest>,
) -> Result<web::Json<HamletView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.merge_hamlet(&code, request).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/households", tag = "registry", request_body = NewHouseholdRequest,
    security(("bearer" = [])),
    responses((status = 201, body = HouseholdView),
        (status = 404, description = "HAMLET_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "HOUSEHOLD_CODE_TAKEN, HAMLET_CLOSED", body = ErrorEnvelope),
        (status = 422, description = "REGISTRY_FIELD_INVALID (`details.field` names the field)", body = ErrorEnvelope)))]
pub async fn create_household(
    state: web::Data<AppState>,
    ApiJson(request): ApiJson<NewHouseholdRequest>,
) -> Result<HttpResponse, ApiError> {
    let household = state
        .run(move |s| async move { s.registry.create_household(request).await })
        .await?;
    Ok(HttpResponse::Created().json(household))
}

#[utoipa::path(get, path = "/v1/households", tag = "registry", params(HouseholdQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "ordered by id (creation order)", body = HouseholdPage),
        (status = 400, body = ErrorEnvelope)))]
pub async fn list_households(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<HouseholdQuery>,
) -> Result<web::Json<HouseholdPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.households(query).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/households/{id}", tag = "registry", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = HouseholdView),
        (status = 404, description = "HOUSEHOLD_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_household(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<web::Json<HouseholdView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.household(id).await })
            .await?,
    ))
}

#[utoipa::path(patch, path = "/v1/households/{id}", tag = "registry", params(("id" = Uuid, Path)),
    request_body = HouseholdPatchRequest,
    security(("bearer" = [])),
    responses((status = 200, body = HouseholdView),
        (status = 404, description = "HOUSEHOLD_NOT_FOUND, HAMLET_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "HAMLET_CLOSED", body = ErrorEnvelope),
        (status = 422, description = "REGISTRY_FIELD_INVALID (e.g. `head_resident_id` not a resident of this household)", body = ErrorEnvelope)))]
pub async fn update_household(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<HouseholdPatchRequest>,
) -> Result<web::Json<HouseholdView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.update_household(id, request).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/residents", tag = "registry", request_body = NewResidentRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ResidentView),
        (status = 404, description = "HOUSEHOLD_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "RESIDENT_CODE_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "REGISTRY_FIELD_INVALID (`details.field` names the field)", body = ErrorEnvelope)))]
pub async fn create_resident(
    state: web::Data<AppState>,
    ApiJson(request): ApiJson<NewResidentRequest>,
) -> Result<HttpResponse, ApiError> {
    let resident = state
        .run(move |s| async move { s.registry.create_resident(request).await })
        .await?;
    Ok(HttpResponse::Created().json(resident))
}

#[utoipa::path(get, path = "/v1/residents", tag = "registry", params(ResidentQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "ordered by id (creation order)", body = ResidentPage),
        (status = 400, body = ErrorEnvelope)))]
pub async fn list_residents(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<ResidentQuery>,
) -> Result<web::Json<ResidentPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.residents(query).await })
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/residents/{id}", tag = "registry", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ResidentView),
        (status = 404, description = "RESIDENT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_resident(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<web::Json<ResidentView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.resident(id).await })
            .await?,
    ))
}

#[utoipa::path(patch, path = "/v1/residents/{id}", tag = "registry", params(("id" = Uuid, Path)),
    request_body = ResidentPatchRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ResidentView),
        (status = 404, description = "RESIDENT_NOT_FOUND, HOUSEHOLD_NOT_FOUND", body = ErrorEnvelope),
        (status = 422, description = "REGISTRY_FIELD_INVALID (e.g. `left_on` missing for moved_away or deceased)", body = ErrorEnvelope)))]
pub async fn update_resident(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<ResidentPatchRequest>,
) -> Result<web::Json<ResidentView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.update_resident(id, request).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/residents/{id}/consents", tag = "registry",
    params(("id" = Uuid, Path)), request_body = NewConsentRequest,
    security(("bearer" = [])),
    responses((status = 201, description = "appended to the history, recorded as the caller's", body = ConsentView),
        (status = 404, description = "RESIDENT_NOT_FOUND", body = ErrorEnvelope),
        (status = 422, description = "REGISTRY_FIELD_INVALID", body = ErrorEnvelope)))]
pub async fn record_consent(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<NewConsentRequest>,
) -> Result<HttpResponse, ApiError> {
    let consent = state
        .run(move |s| async move { s.registry.record_consent(&caller, id, request).await })
        .await?;
    Ok(HttpResponse::Created().json(consent))
}

#[utoipa::path(get, path = "/v1/residents/{id}/consents", tag = "registry",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "the consent history, oldest effective day first", body = ConsentList),
        (status = 404, description = "RESIDENT_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn list_consents(
    state: web::Data<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<web::Json<ConsentList>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.consents(id).await })
            .await?,
    ))
}
