//! The school office's reminder texts for a run: each household's (or guardian's) Vietnamese
//! message, ready to copy into Zalo or an SMS by hand, and one form that sends today's through
//! the configured notifier (the same use case as `POST .../reminders/send`: a charge is never
//! reminded twice on one day, so sending again is harmless).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::{page, see_other, Frame, PageForm};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::schools::reminders::ReminderPreview;

#[derive(Template)]
#[template(path = "reminders.html")]
struct RemindersPage<'a> {
    f: &'a Frame,
    school: Uuid,
    run: Uuid,
    /// Only this class's pupils; the whole run without it.
    class: Option<Uuid>,
    preview: ReminderPreview,
    outcome: Option<SendOutcome>,
}

/// What the last send from this page did, carried back in the redirect's query.
struct SendOutcome {
    sent: usize,
    failed: usize,
}

#[derive(Deserialize)]
pub struct RemindersQuery {
    /// Only this class's pupils; the whole run without it.
    class: Option<Uuid>,
    sent: Option<usize>,
    failed: Option<usize>,
}

pub async fn reminders(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<RemindersQuery>,
) -> HttpResponse {
    let (school, run) = path.into_inner();
    let class = query.class;
    let preview = state
        .run(move |s| async move {
            s.reminders
                .preview(&caller, school, run, class)
                .await
                .map_err(ApiError::from)
        })
        .await;
    let preview = match preview {
        Ok(preview) => preview,
        Err(e) => return super::refusal(&request, &e),
    };
    let frame = Frame::new(&request);
    let outcome = query.sent.map(|sent| SendOutcome {
        sent,
        failed: query.failed.unwrap_or(0),
    });
    let body = RemindersPage {
        f: &frame,
        school,
        run,
        class,
        preview,
        outcome,
    };
    page(&request, &frame, StatusCode::OK, &body)
}

#[derive(Deserialize)]
pub struct SendForm {
    class: Option<Uuid>,
}

pub async fn send_reminders(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
    PageForm(form): PageForm<SendForm>,
) -> HttpResponse {
    let (school, run) = path.into_inner();
    let class = form.class;
    let sent = state
        .run(move |s| async move {
            s.reminders
                .send(&caller, school, run, class)
                .await
                .map_err(ApiError::from)
        })
        .await;
    match sent {
        Ok(summary) => {
            let class = class.map(|c| format!("class={c}&")).unwrap_or_default();
            see_other(&format!(
                "/app/schools/{school}/runs/{run}/reminders?{class}sent={}&failed={}",
                summary.sent,
                summary.failed.len()
            ))
        }
        Err(e) => super::refusal(&request, &e),
    }
}
