//! Thin handlers for user administration, one's own password, and the audit trail.

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::routes::TokenResponse;
use super::AppState;
use crate::services::auth::Caller;
use crate::services::users::*;
use crate::services::ErrorEnvelope;

#[utoipa::path(get, path = "/v1/users", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, description = "every user, by username, with their last login", body = UserList)))]
pub async fn list_users(state: web::Data<AppState>) -> Result<web::Json<UserList>, ApiError> {
    Ok(web::Json(
        state
            .run(|s| async move { s.auth.list_users().await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = NewUserRequest,
    security(("bearer" = [])),
    responses((status = 201, description = "created, with a temporary password the user must change at their first login; it is shown only here", body = TemporaryPassword),
        (status = 404, description = "PAYEE_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "USERNAME_TAKEN", body = ErrorEnvelope),
        (status = 422, description = "INVALID_USERNAME, UNKNOWN_ROLE, PAYEE_REQUIRED, PAYEE_NOT_ALLOWED", body = ErrorEnvelope)))]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = state
        .run(move |s| async move { s.auth.create_user_by_admin(&caller, request).await })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(get, path = "/v1/users/{username}", tag = "users",
    params(("username" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = UserView),
        (status = 404, description = "USER_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn get_user(
    state: web::Data<AppState>,
    ApiPath(username): ApiPath<String>,
) -> Result<web::Json<UserView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.auth.user(&username).await })
            .await?,
    ))
}

#[utoipa::path(patch, path = "/v1/users/{username}", tag = "users",
    params(("username" = String, Path)),
    request_body = UserPatchRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "changed; a disabled user's tokens stop working within seconds", body = UserView),
        (status = 404, description = "USER_NOT_FOUND, PAYEE_NOT_FOUND", body = ErrorEnvelope),
        (status = 409, description = "LAST_ADMIN: the change would leave no enabled admin", body = ErrorEnvelope),
        (status = 422, description = "UNKNOWN_ROLE, PAYEE_REQUIRED, PAYEE_NOT_ALLOWED", body = ErrorEnvelope)))]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
    ApiJson(patch): ApiJson<UserPatchRequest>,
) -> Result<web::Json<UserView>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.auth.update_user(&caller, &username, patch).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/users/{username}/reset-password", tag = "users",
    params(("username" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "a temporary password, shown only here; the user's tokens stop working and they must change it at their next login", body = TemporaryPassword),
        (status = 404, description = "USER_NOT_FOUND", body = ErrorEnvelope)))]
pub async fn reset_password(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
) -> Result<web::Json<TemporaryPassword>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.auth.reset_password(&caller, &username).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", request_body = PasswordChangeRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "changed; the caller's other tokens stop working, this new one replaces them", body = TokenResponse),
        (status = 403, description = "WRONG_CURRENT_PASSWORD", body = ErrorEnvelope),
        (status = 422, description = "WEAK_PASSWORD (under 12 characters), COMMON_PASSWORD", body = ErrorEnvelope)))]
pub async fn change_own_password(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<PasswordChangeRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let issued = state
        .run(move |s| async move { s.auth.change_own_password(&caller, request).await })
        .await?;
    Ok(web::Json(TokenResponse::from(issued)))
}

#[utoipa::path(get, path = "/v1/audit", tag = "users",
    params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "every change a person made, oldest first, with who made it and in which request", body = AuditPage),
        (status = 400, description = "INVALID_CURSOR, INVALID_LIMIT, UNKNOWN_AUDIT_ACTION", body = ErrorEnvelope)))]
pub async fn audit_trail(
    state: web::Data<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<web::Json<AuditPage>, ApiError> {
    Ok(web::Json(
        state
            .run(move |s| async move { s.auth.audit_trail(&caller, query).await })
            .await?,
    ))
}
