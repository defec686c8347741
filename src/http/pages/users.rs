//! User administration for admins (`/app/users`): every user with their role, payee, whether
//! disabled and their last login; forms to create a user, change a role, disable or enable,
//! and reset a password. Each goes through the same use case as `/v1/users` (the last enabled
//! admin cannot be demoted or disabled, and so on); a new or reset password is shown once.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::{page, see_other, Frame, PageForm};
use crate::domain::statistics::period::vietnam_local;
use crate::domain::user::Role;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::payments::models::PayeeView;
use crate::services::users::{NewUserRequest, TemporaryPassword, UserPatchRequest, UserView};

/// One user's row.
pub struct UserLine {
    pub username: String,
    pub role: &'static str,
    pub role_code: &'static str,
    pub payee: String,
    pub disabled: bool,
    pub last_login: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    f: &'a Frame,
    users: Vec<UserLine>,
    payees: &'a [PayeeView],
    /// (code, name) of every role, for the forms' choices.
    roles: Vec<(&'static str, &'static str)>,
    /// A password just made: whose, and the password, shown this once.
    issued: Option<&'a TemporaryPassword>,
    error: Option<&'static str>,
    done: bool,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    error: Option<String>,
    done: Option<String>,
}

/// The role's name in the page's language.
fn role_name(frame: &Frame, role: Role) -> &'static str {
    match role {
        Role::Admin => frame.t.role_admin,
        Role::Staff => frame.t.role_staff,
        Role::Auditor => frame.t.role_auditor,
        Role::Vendor => frame.t.role_vendor,
        Role::School => frame.t.role_school,
    }
}

fn user_line(frame: &Frame, user: &UserView, payees: &[PayeeView]) -> UserLine {
    let role = Role::parse(&user.role).unwrap_or(Role::Auditor);
    UserLine {
        username: user.username.clone(),
        role: role_name(frame, role),
        role_code: role.as_str(),
        payee: user
            .payee_id
            .and_then(|id| payees.iter().find(|p| p.id == id))
            .map(|p| format!("{} · {}", p.code, p.name))
            .unwrap_or_default(),
        disabled: user.disabled,
        last_login: user
            .last_login_at
            .map(|at| vietnam_local(at).format("%d/%m/%Y %H:%M").to_string())
            .unwrap_or_else(|| frame.t.never.to_owned()),
    }
}

async fn users_page(
    request: &HttpRequest,
    caller: Caller,
    state: &AppState,
    issued: Option<&TemporaryPassword>,
    query: &UsersQuery,
) -> HttpResponse {
    let read = state
        .run(move |s| async move {
            let users = s.auth.list_users().await.map_err(ApiError::from)?;
            let payees = s
                .payments
                .list_payees(&caller, super::every_payee())
                .await
                .map_err(ApiError::from)?;
            Ok::<_, ApiError>((users, payees))
        })
        .await;
    let (users, payees) = match read {
        Ok(read) => read,
        Err(e) => return super::refusal(request, &e),
    };
    let frame = Frame::new(request);
    let body = UsersPage {
        f: &frame,
        users: users
            .data
            .iter()
            .map(|user| user_line(&frame, user, &payees.data))
            .collect(),
        payees: &payees.data,
        roles: Role::ALL
            .into_iter()
            .map(|role| (role.as_str(), role_name(&frame, role)))
            .collect(),
        issued,
        error: query
            .error
            .as_deref()
            .map(|code| frame.t.error_message(code)),
        done: query.done.is_some(),
    };
    let status = if issued.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    page(request, &frame, status, &body)
}

pub async fn users(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<UsersQuery>,
) -> HttpResponse {
    users_page(&request, caller, &state, None, &query).await
}

/// A payee chosen in a form: none, or its id.
fn chosen_payee(field: &str) -> Result<Option<Uuid>, String> {
    match field.trim() {
        "" => Ok(None),
        id => id
            .parse()
            .map(Some)
            .map_err(|_| "PAYEE_NOT_FOUND".to_owned()),
    }
}

#[derive(Deserialize)]
pub struct NewUserForm {
    username: String,
    role: String,
    #[serde(default)]
    payee_id: String,
}

/// Creates a user and shows their temporary password once.
pub async fn create_user(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    PageForm(form): PageForm<NewUserForm>,
) -> HttpResponse {
    let payee_id = match chosen_payee(&form.payee_id) {
        Ok(payee) => payee,
        Err(code) => return see_other(&format!("/app/users?error={code}")),
    };
    let admin = caller.clone();
    let created = state
        .run(move |s| async move {
            s.auth
                .create_user_by_admin(
                    &admin,
                    NewUserRequest {
                        username: form.username.trim().to_owned(),
                        role: form.role,
                        payee_id,
                    },
                )
                .await
        })
        .await;
    show_password(&request, caller, &state, created).await
}

/// The page with a new password on it, or back to the list with why not.
async fn show_password(
    request: &HttpRequest,
    caller: Caller,
    state: &AppState,
    issued: Result<TemporaryPassword, ApiError>,
) -> HttpResponse {
    match issued {
        Ok(issued) => {
            let query = UsersQuery {
                error: None,
                done: None,
            };
            users_page(request, caller, state, Some(&issued), &query).await
        }
        Err(refused) => see_other(&format!("/app/users?error={}", refused.code())),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    /// `role` (with `role` and `payee_id`), `disable` or `enable`.
    change: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    payee_id: String,
}

/// Changes a user's role (and payee), or disables or enables them.
pub async fn change_user(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    PageForm(form): PageForm<ChangeForm>,
) -> HttpResponse {
    let username = path.into_inner();
    let patch = match form.change.as_str() {
        "role" => match chosen_payee(&form.payee_id) {
            Ok(payee) => UserPatchRequest {
                role: Some(form.role),
                payee_id: Some(payee),
                disabled: None,
            },
            Err(code) => return see_other(&format!("/app/users?error={code}")),
        },
        "disable" | "enable" => UserPatchRequest {
            disabled: Some(form.change == "disable"),
            ..Default::default()
        },
        _ => return see_other("/app/users?error=INVALID_FORM"),
    };
    let changed = state
        .run(move |s| async move { s.auth.update_user(&caller, &username, patch).await })
        .await;
    match changed {
        Ok(user) => see_other(&format!("/app/users?done={}", user.username)),
        Err(refused) => see_other(&format!("/app/users?error={}", refused.code())),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {}

/// Resets a user's password and shows the temporary one once.
pub async fn reset_password(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    PageForm(_): PageForm<ResetForm>,
) -> HttpResponse {
    let username = path.into_inner();
    let admin = caller.clone();
    let reset = state
        .run(move |s| async move { s.auth.reset_password(&admin, &username).await })
        .await;
    show_password(&request, caller, &state, reset).await
}
