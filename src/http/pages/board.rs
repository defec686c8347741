//! The market hall's board (`/app/board/{token}`: every stall's payments as they arrive,
//! spoken aloud, opened with a read-only link and no login) and the staff page that creates
//! and revokes its links (`/app/board-links`), through the same use cases as
//! `/v1/board-links`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::{grouped, page, see_other, Frame, PageForm};
use crate::domain::number_words::stall_label;
use crate::domain::statistics::period::{vietnam_day, vietnam_day_start_micros, vietnam_local};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::web::board::{BoardLinkCreated, BoardLinkView, NewBoardLinkRequest};

/// How many of today's payments the board shows when it opens.
const BOARD_LATEST: usize = 12;

/// One payment on the board.
pub struct BoardLine {
    pub id: Uuid,
    pub time: String,
    pub stall: String,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage<'a> {
    f: &'a Frame,
    token: &'a str,
    latest: Vec<BoardLine>,
}

/// The board: today's latest payments, then the live stream; an unknown or revoked link 404.
pub async fn board_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let token = path.into_inner();
    let asked = token.clone();
    let read = state
        .run(move |s| async move {
            s.web.board_link(&asked).await.map_err(ApiError::from)?;
            let today_start = vietnam_day_start_micros(vietnam_day(s.clock.now_micros()));
            // Credit ids are time-ordered: the first possible id of today's first microsecond.
            let since = crate::clock::first_id_at(today_start);
            let credits = s
                .web
                .market_credits_after(since, 500)
                .await
                .map_err(ApiError::from)?;
            let mut latest = Vec::new();
            for credit in credits.iter().rev().take(BOARD_LATEST) {
                let stall = match s.store.payee(credit.payee_id).await? {
                    Some(payee) => stall_label(payee.details.stall.as_deref(), &payee.code),
                    None => continue,
                };
                latest.push(BoardLine {
                    id: credit.bank_transaction_id,
                    time: vietnam_local(crate::clock::to_datetime(credit.occurred_at))
                        .format("%H:%M")
                        .to_string(),
                    stall,
                    amount: grouped(credit.amount),
                });
            }
            Ok::<_, ApiError>(latest)
        })
        .await;
    match read {
        Ok(latest) => {
            let frame = Frame::new(&request);
            let body = BoardPage {
                f: &frame,
                token: &token,
                latest,
            };
            let mut response = page(&request, &frame, StatusCode::OK, &body);
            // The token is in the address: never sent on to another site.
            response.headers_mut().insert(
                actix_web::http::header::REFERRER_POLICY,
                actix_web::http::header::HeaderValue::from_static("no-referrer"),
            );
            response
        }
        Err(e) => super::refusal(&request, &e),
    }
}

/// One link on the staff page.
pub struct LinkLine {
    pub id: Uuid,
    pub label: String,
    pub created: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "board_links.html")]
struct LinksPage<'a> {
    f: &'a Frame,
    links: Vec<LinkLine>,
    /// A link just created: its address, shown this once.
    created: Option<&'a BoardLinkCreated>,
    error: Option<&'static str>,
    revoked: bool,
}

#[derive(Deserialize)]
pub struct LinksQuery {
    error: Option<String>,
    revoked: Option<Uuid>,
}

fn link_line(view: &BoardLinkView) -> LinkLine {
    LinkLine {
        id: view.id,
        label: view.label.clone(),
        created: format!(
            "{} · {}",
            vietnam_local(view.created_at).format("%d/%m/%Y %H:%M"),
            view.created_by
        ),
        revoked: view.revoked_at.is_some(),
    }
}

async fn links_page(
    request: &HttpRequest,
    state: &AppState,
    created: Option<&BoardLinkCreated>,
    query: &LinksQuery,
) -> HttpResponse {
    let links = match state
        .run(|s| async move { s.web.board_links().await })
        .await
    {
        Ok(links) => links,
        Err(e) => return super::refusal(request, &e),
    };
    let frame = Frame::new(request);
    let body = LinksPage {
        f: &frame,
        links: links.data.iter().map(link_line).collect(),
        created,
        error: query
            .error
            .as_deref()
            .map(|code| frame.t.error_message(code)),
        revoked: query.revoked.is_some(),
    };
    let status = if created.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    page(request, &frame, status, &body)
}

pub async fn board_links_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LinksQuery>,
) -> HttpResponse {
    links_page(&request, &state, None, &query).await
}

#[derive(Deserialize)]
pub struct NewLinkForm {
    label: String,
}

/// Creates a link and shows its address this once.
pub async fn create_board_link(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    PageForm(form): PageForm<NewLinkForm>,
) -> HttpResponse {
    let created = state
        .run(move |s| async move {
            s.web
                .create_board_link(&caller, NewBoardLinkRequest { label: form.label })
                .await
        })
        .await;
    match created {
        Ok(created) => {
            let query = LinksQuery {
                error: None,
                revoked: None,
            };
            links_page(&request, &state, Some(&created), &query).await
        }
        Err(refused) => see_other(&format!("/app/board-links?error={}", refused.code())),
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {}

/// Revokes a link: its board stops at once.
pub async fn revoke_board_link(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    PageForm(_): PageForm<RevokeForm>,
) -> HttpResponse {
    let id = path.into_inner();
    let revoked = state
        .run(move |s| async move { s.web.revoke_board_link(&caller, id).await })
        .await;
    match revoked {
        Ok(()) => see_other(&format!("/app/board-links?revoked={id}")),
        Err(refused) if refused.status() == StatusCode::NOT_FOUND => {
            super::refusal(&request, &refused)
        }
        Err(refused) => see_other(&format!("/app/board-links?error={}", refused.code())),
    }
}
