//! Thin handlers for the market board's links: commune staff create (the token shown once),
//! list and revoke them. The board itself is a page (`/app/board/{token}`).

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::AppState;
use crate::services::auth::Caller;
use crate::services::web::board::{BoardLinkCreated, BoardLinkPage, NewBoardLinkRequest};
use crate::services::ErrorEnvelope;

#[utoipa::path(post, path = "/v1/board-links", tag = "payees", request_body = NewBoardLinkRequest,
    description = "A read-only link for the market hall's screen: `url` opens a board that \
        announces every payment by stall and amount (never the payer). The token is 256 random \
        bits, shown only in this answer; the service keeps its SHA-256.",
    security(("bearer" = [])),
    responses((status = 201, description = "the link and its token, shown only now", body = BoardLinkCreated),
        (status = 400, description = "INVALID_BOARD_LINK", body = ErrorEnvelope)))]
pub async fn create_board_link(
    state: web::Data<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewBoardLinkRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = state
        .run(move |s| async move { s.web.create_board_link(&caller, request).await })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(get, path = "/v1/board-links", tag = "payees", security(("bearer" = [])),
    responses((status = 200, description = "every board link, newest first, revoked ones too (never their tokens)", body = BoardLinkPage)))]
pub async fn list_board_links(
    state: web::Data<AppState>,
) -> Result<web::Json<BoardLinkPage>, ApiError> {
    Ok(web::Json(
        state
            .run(|s| async move { s.web.board_links().await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/board-links/{id}/revoke", tag = "payees",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "revoked: the board's page answers 404 and its open streams end"),
        (status = 404, description = "BOARD_LINK_NOT_FOUND (also when already revoked)", body = ErrorEnvelope)))]
pub async fn revoke_board_link(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state
        .run(move |s| async move { s.web.revoke_board_link(&caller, id).await })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
