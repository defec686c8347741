//! Logging in and out, the first-run setup page, and the home page.

use actix_web::cookie::time::Duration;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{message, page, private_cookie, see_other, Frame, PageForm, SESSION_COOKIE};
use crate::domain::user::Role;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::payments::models::PayeeView;
use crate::services::web::SetupError;

/// `/`: the app.
pub async fn root() -> HttpResponse {
    see_other("/app")
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    f: &'a Frame,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path of this app: never another site (`//host`) to send the user on to.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next) if next.starts_with("/app") && !next.starts_with("//") => next,
        _ => "/app",
    }
}

pub async fn login_page(request: HttpRequest, query: web::Query<NextQuery>) -> HttpResponse {
    let frame = Frame::new(&request);
    let body = LoginPage {
        f: &frame,
        next: safe_next(query.next.as_deref()),
        username: "",
        error: None,
    };
    page(&request, &frame, StatusCode::OK, &body)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn log_in(
    request: HttpRequest,
    state: web::Data<AppState>,
    PageForm(form): PageForm<LoginForm>,
) -> HttpResponse {
    let (username, password) = (form.username.clone(), form.password);
    let opened = state
        .run(move |s| async move { s.web.log_in(&username, &password).await })
        .await;
    let next = safe_next(form.next.as_deref());
    match opened {
        Ok(session) => {
            let mut cookie = private_cookie(&request, SESSION_COOKIE, session.token);
            cookie.set_max_age(Duration::seconds(session.max_age_seconds));
            let mut response = see_other(next);
            response
                .add_cookie(&cookie)
                .expect("a session cookie is a valid header");
            response
        }
        Err(refused) => {
            let frame = Frame::new(&request);
            let body = LoginPage {
                f: &frame,
                next,
                username: &form.username,
                error: Some(frame.t.error_message(refused.code())),
            };
            let mut response = page(&request, &frame, refused.status(), &body);
            if let Some(retry) = refused.retry_after_seconds() {
                response
                    .headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, retry.into());
            }
            response
        }
    }
}

#[derive(Deserialize)]
pub struct EmptyForm {}

pub async fn log_out(
    request: HttpRequest,
    state: web::Data<AppState>,
    PageForm(_): PageForm<EmptyForm>,
) -> HttpResponse {
    if let Some(token) = super::session_token(&request) {
        let ended = state
            .run(move |s| async move { s.web.log_out(&token).await })
            .await;
        if let Err(e) = ended {
            return super::refusal(&request, &e);
        }
    }
    let mut gone = private_cookie(&request, SESSION_COOKIE, String::new());
    gone.make_removal();
    let mut response = see_other("/app/login");
    response
        .add_cookie(&gone)
        .expect("a removal cookie is a valid header");
    response
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    f: &'a Frame,
    token: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

pub async fn setup_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SetupQuery>,
) -> HttpResponse {
    let token = query.token.clone().unwrap_or_default();
    let asked = token.clone();
    let open = state
        .run(move |s| async move { s.web.setup_is_open(&asked).await })
        .await;
    match open {
        Ok(true) => {
            let frame = Frame::new(&request);
            let body = SetupPage {
                f: &frame,
                token: &token,
                username: "admin",
                error: None,
            };
            page(&request, &frame, StatusCode::OK, &body)
        }
        Ok(false) => message(&request, StatusCode::NOT_FOUND, "SETUP_CLOSED"),
        Err(e) => super::refusal(&request, &e),
    }
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
}

pub async fn set_up(
    request: HttpRequest,
    state: web::Data<AppState>,
    PageForm(form): PageForm<SetupForm>,
) -> HttpResponse {
    let (token, username, password) = (form.token.clone(), form.username.clone(), form.password);
    let created = state
        .run(move |s| async move {
            match s.web.complete_setup(&token, &username, password).await {
                Ok(user) => Ok(Ok(user)),
                Err(SetupError::Closed) => Ok(Err(None)),
                Err(SetupError::Auth(refused)) => {
                    Ok::<_, ApiError>(Err(Some(ApiError::from(refused))))
                }
            }
        })
        .await;
    let frame = Frame::new(&request);
    match created {
        Ok(Ok(_)) => {
            let body = super::MessagePage {
                f: &frame,
                title: frame.t.setup_title,
                message: frame.t.setup_done,
            };
            page(&request, &frame, StatusCode::CREATED, &body)
        }
        Ok(Err(None)) => message(&request, StatusCode::NOT_FOUND, "SETUP_CLOSED"),
        Ok(Err(Some(refused))) => {
            let body = SetupPage {
                f: &frame,
                token: &form.token,
                username: &form.username,
                error: Some(frame.t.error_message(refused.code())),
            };
            page(&request, &frame, refused.status(), &body)
        }
        Err(e) => super::refusal(&request, &e),
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    f: &'a Frame,
    username: &'a str,
    payees: &'a [PayeeView],
    /// The commune staff's pages this caller's role may open: link and name.
    staff_pages: Vec<(&'static str, &'static str)>,
    /// A school office's fee runs: link to the run board and the run's name.
    runs: Vec<(String, String)>,
}

/// `/app`: vendors go straight to their stall page; a school office sees its page and its
/// fee runs; staff see every payee and their pages.
pub async fn home(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> HttpResponse {
    let school = (caller.role == Role::School)
        .then_some(caller.payee_id)
        .flatten();
    match caller.payee_id {
        Some(payee) if school.is_none() => return see_other(&format!("/app/payees/{payee}")),
        _ => {}
    }
    let username = caller.username.clone();
    let role = caller.role;
    let listed = state
        .run(move |s| async move {
            match school {
                Some(school) => {
                    let payee = s.payments.payee(&caller, school).await?;
                    let runs = s.schools.list_runs(&caller, school).await?;
                    let links = runs
                        .data
                        .into_iter()
                        .map(|run| (format!("/app/schools/{school}/runs/{}", run.id), run.name))
                        .collect();
                    Ok::<_, ApiError>((vec![payee], links))
                }
                None => {
                    let payees = s
                        .payments
                        .list_payees(&caller, super::every_payee())
                        .await?;
                    Ok((payees.data, Vec::new()))
                }
            }
        })
        .await;
    match listed {
        Ok((payees, runs)) => {
            let frame = Frame::new(&request);
            let body = HomePage {
                f: &frame,
                username: &username,
                payees: &payees,
                staff_pages: [
                    ("/app/adoption", frame.t.adoption_title),
                    ("/app/suspense", frame.t.suspense_title),
                    ("/app/discrepancies", frame.t.discrepancies_title),
                    ("/app/statements", frame.t.statements_title),
                    ("/app/board-links", frame.t.board_links_title),
                    ("/app/users", frame.t.users_title),
                ]
                .into_iter()
                .filter(|(path, _)| {
                    crate::http::policy::may(role, &actix_web::http::Method::GET, path)
                })
                .collect(),
                runs,
            };
            page(&request, &frame, StatusCode::OK, &body)
        }
        Err(e) => super::refusal(&request, &e),
    }
}
