//! The web app: pages rendered on the server from askama templates compiled into the binary,
//! with their CSS, script and chime embedded too. Vietnamese first (`?lang=en` switches, and a
//! cookie remembers). Who may open which page is in [`super::policy::PAGES`]; a page is opened
//! with the session cookie of a browser login, and every form carries a CSRF token that must
//! equal the CSRF cookie (double submit; both cookies are SameSite=Strict and HttpOnly).

mod adoption;
mod assets;
mod board;
mod discrepancies;
mod onboard;
mod reminders;
mod school_office;
mod session;
mod slips;
mod stall;
mod statements;
mod suspense;
pub mod texts;
mod users;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use askama::Template;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::{get, resource};
use texts::{Texts, EN, VI};

pub const SESSION_COOKIE: &str = "ml_session";
const CSRF_COOKIE: &str = "ml_csrf";
const LANG_COOKIE: &str = "ml_lang";
/// The hidden field every form carries.
const CSRF_FIELD: &str = "csrf";

pub fn routes(config: &mut web::ServiceConfig) {
    use web::post;
    config
        .service(resource("/").route(get().to(session::root)))
        .service(resource("/app/static/{file}").route(get().to(assets::asset)))
        .service(
            resource("/app/login")
                .route(get().to(session::login_page))
                .route(post().to(session::log_in)),
        )
        .service(
            resource("/app/setup")
                .route(get().to(session::setup_page))
                .route(post().to(session::set_up)),
        )
        .service(resource("/app/logout").route(post().to(session::log_out)))
        .service(resource("/app").route(get().to(session::home)))
        // Onboarding first: "new" is not a payee's id.
        .service(
            resource("/app/payees/new")
                .route(get().to(onboard::new_payee))
                .route(post().to(onboard::create)),
        )
        .service(
            resource("/app/payees/new/scan")
                .app_data(web::PayloadConfig::new(onboard::MAX_SCAN_FORM_BYTES))
                .route(post().to(onboard::scan)),
        )
        .service(resource("/app/payees/{id}").route(get().to(stall::stall_page)))
        .service(resource("/app/payees/{id}/intents").route(post().to(stall::create_intent)))
        .service(resource("/app/payees/{id}/sticker").route(get().to(stall::sticker)))
        .service(resource("/app/adoption").route(get().to(adoption::adoption_page)))
        .service(resource("/app/suspense").route(get().to(suspense::suspense_page)))
        .service(resource("/app/suspense/{id}/resolve").route(post().to(suspense::resolve)))
        .service(resource("/app/discrepancies").route(get().to(discrepancies::discrepancies_page)))
        .service(
            resource("/app/statements")
                .route(get().to(statements::statements_page))
                .route(post().to(statements::compare)),
        )
        // The school office's and the parents' pages.
        .service(resource("/app/schools/{school}/runs/{run}").route(get().to(school_office::board)))
        .service(
            resource("/app/schools/{school}/runs/{run}/cash")
                .route(post().to(school_office::record_cash)),
        )
        .service(resource("/app/schools/{school}/runs/{run}/slips").route(get().to(slips::slips)))
        .service(
            resource("/app/schools/{school}/runs/{run}/reminders")
                .route(get().to(reminders::reminders)),
        )
        .service(
            resource("/app/schools/{school}/runs/{run}/reminders/send")
                .route(post().to(reminders::send_reminders)),
        )
        .service(
            resource("/app/schools/{school}/receipts/{receipt}")
                .route(get().to(school_office::receipt)),
        )
        .service(resource("/app/parents/{token}").route(get().to(school_office::parents)))
        // User administration (admins).
        .service(
            resource("/app/users")
                .route(get().to(users::users))
                .route(post().to(users::create_user)),
        )
        .service(resource("/app/users/{username}").route(post().to(users::change_user)))
        .service(
            resource("/app/users/{username}/reset-password")
                .route(post().to(users::reset_password)),
        )
        // The market hall's board, opened with its link's token, and the staff's page of links.
        .service(resource("/app/board/{token}").route(get().to(board::board_page)))
        .service(
            resource("/app/board/{token}/events")
                .route(get().to(crate::http::events::board_events)),
        )
        .service(
            resource("/app/board-links")
                .route(get().to(board::board_links_page))
                .route(post().to(board::create_board_link)),
        )
        .service(
            resource("/app/board-links/{id}/revoke").route(post().to(board::revoke_board_link)),
        );
}

/// The session cookie's token, if the browser sent one.
pub fn session_token(request: &HttpRequest) -> Option<String> {
    request
        .cookie(SESSION_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .filter(|token| !token.is_empty())
}

/// The language of the page: `?lang=` first, then the cookie, else Vietnamese.
fn texts_for(request: &HttpRequest) -> &'static Texts {
    let asked = web::Query::<LangQuery>::from_query(request.query_string())
        .ok()
        .and_then(|query| query.lang.clone())
        .or_else(|| request.cookie(LANG_COOKIE).map(|c| c.value().to_owned()));
    match asked.as_deref() {
        Some("en") => &EN,
        _ => &VI,
    }
}

#[derive(serde::Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

/// What every page's frame needs: its words, the CSRF token for its forms, whether someone is
/// signed in (for the logout button), and the link to the other language.
pub struct Frame {
    pub t: &'static Texts,
    pub csrf: String,
    pub signed_in: bool,
    pub switch_href: String,
}

impl Frame {
    pub fn new(request: &HttpRequest) -> Self {
        let t = texts_for(request);
        Self {
            t,
            csrf: request
                .cookie(CSRF_COOKIE)
                .map(|c| c.value().to_owned())
                .filter(|token| !token.is_empty())
                .unwrap_or_else(new_token),
            signed_in: session_token(request).is_some(),
            switch_href: format!("{}?lang={}", request.path(), t.other_lang_code),
        }
    }
}

fn new_token() -> String {
    use base64::Engine as _;
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether the request came over HTTPS (directly or as a proxy in front says): cookies are
/// then marked Secure.
fn over_https(request: &HttpRequest) -> bool {
    request.connection_info().scheme() == "https"
}

/// A cookie only this site's own pages send back, never script.
pub fn private_cookie(request: &HttpRequest, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(over_https(request))
        .finish()
}

/// A rendered page with `status`; it sets the CSRF cookie its forms need, and remembers a
/// language chosen with `?lang=`.
pub fn page(
    request: &HttpRequest,
    frame: &Frame,
    status: StatusCode,
    template: &impl Template,
) -> HttpResponse {
    let html = match template.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "page did not render");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if request.cookie(CSRF_COOKIE).is_none() {
        response.cookie(private_cookie(request, CSRF_COOKIE, frame.csrf.clone()));
    }
    if request.query_string().contains("lang=") {
        let mut lang = private_cookie(request, LANG_COOKIE, frame.t.lang.to_owned());
        lang.set_http_only(false);
        response.cookie(lang);
    }
    response.body(html)
}

/// A 303 to `location`.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    f: &'a Frame,
    title: &'a str,
    message: &'a str,
}

/// A page that says why the request was not done: a refusal of the access policy (not signed
/// in: to the login page), or an error a service answered.
pub fn refusal(request: &HttpRequest, error: &ApiError) -> HttpResponse {
    if error.status() == StatusCode::UNAUTHORIZED {
        let next = request.path();
        return see_other(&format!("/app/login?next={}", query_escape(next)));
    }
    message(request, error.status(), error.code())
}

/// A page with the sentence for `code`.
pub fn message(request: &HttpRequest, status: StatusCode, code: &str) -> HttpResponse {
    let frame = Frame::new(request);
    let text = frame.t.error_message(code);
    let body = MessagePage {
        f: &frame,
        title: frame.t.error_title,
        message: text,
    };
    let mut response = page(request, &frame, status, &body);
    if let Ok(code) = HeaderValue::from_str(code) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static("x-error-code"), code);
    }
    response
}

/// Percent-encodes a path for a query string (the login page's `next`).
fn query_escape(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|encoded| encoded.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// A form posted from one of our pages: its CSRF field must equal the CSRF cookie, or the
/// request is refused with 403 before the handler runs.
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for PageForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let refuse = |status: StatusCode, code: &str| {
                actix_web::error::InternalError::from_response(
                    code.to_owned(),
                    message(&request, status, code),
                )
                .into()
            };
            let body = body.await?;
            let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|_| refuse(StatusCode::BAD_REQUEST, "INVALID_FORM"))?;
            let sent = fields
                .iter()
                .find(|(name, _)| name == CSRF_FIELD)
                .map(|(_, value)| value.as_str());
            let expected = request.cookie(CSRF_COOKIE);
            let valid = match (sent, &expected) {
                (Some(sent), Some(expected)) => {
                    !sent.is_empty()
                        && bool::from(sent.as_bytes().ct_eq(expected.value().as_bytes()))
                }
                _ => false,
            };
            if !valid {
                return Err(refuse(StatusCode::FORBIDDEN, "CSRF_TOKEN_INVALID"));
            }
            serde_urlencoded::from_bytes::<T>(&body)
                .map(PageForm)
                .map_err(|_| refuse(StatusCode::BAD_REQUEST, "INVALID_FORM"))
        })
    }
}

/// Every payee the caller may see, for a page's list or choice (a commune has a few hundred).
fn every_payee() -> crate::services::payments::models::PayeeQuery {
    crate::services::payments::models::PayeeQuery {
        limit: Some(500),
        ..Default::default()
    }
}

/// Đồng as a person types them: Vietnamese group thousands with dots or spaces, bank apps with
/// commas ("50.000", "50 000", "50,000" are fifty thousand đồng), and đồng have no fraction.
fn typed_dong(typed: &str) -> String {
    typed
        .trim()
        .chars()
        .filter(|c| !matches!(c, '.' | ' ' | ',' | '\u{a0}'))
        .collect()
}

/// Đồng with a dot between thousands, as Vietnamese write it: 1250000 → "1.250.000".
pub fn grouped(amount: i64) -> String {
    crate::domain::number_words::grouped_dong(amount)
}

/// A figure with a decimal point as the services write it ("41.7%"), as the page's readers
/// write it: Vietnamese with a decimal comma ("41,7%"), English as it is.
pub fn local_decimal(t: &Texts, figure: &str) -> String {
    figure.replace('.', t.decimal_separator)
}

/// An amount the services write as a decimal string of đồng, grouped like [`grouped`].
pub fn grouped_text(amount: &str) -> String {
    amount
        .parse::<i64>()
        .map(grouped)
        .unwrap_or_else(|_| amount.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_amounts_drop_the_thousands_separators() {
        for typed in ["150000", "150.000", " 150 000 ", "150,000", "150\u{a0}000"] {
            assert_eq!(typed_dong(typed), "150000", "{typed:?}");
        }
    }

    #[test]
    fn amounts_are_grouped_by_thousands_with_dots() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1.000");
        assert_eq!(grouped(35_000), "35.000");
        assert_eq!(grouped(1_250_000), "1.250.000");
        assert_eq!(grouped(-50_000), "-50.000");
    }

    #[test]
    fn vietnamese_pages_write_a_decimal_comma() {
        assert_eq!(local_decimal(&VI, "0.0"), "0,0");
        assert_eq!(local_decimal(&VI, "41.7%"), "41,7%");
        assert_eq!(local_decimal(&EN, "41.7%"), "41.7%");
    }

    #[test]
    fn the_login_page_gets_the_path_back_escaped() {
        assert_eq!(query_escape("/app/payees/1"), "%2Fapp%2Fpayees%2F1");
    }
}
