//! User administration: admins list, create, change, disable and reset users; every user
//! changes their own password. Each change is written with its audit record.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::{hash_password_off_thread, AuthError, AuthService, Caller, IssuedToken};
use super::{paging, present};
use crate::clock::to_datetime;
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::password::NewPassword;
use crate::domain::user::{check_binding, Role, User};
use crate::store::AuditFilter;

/// Characters of a temporary password: no 0/O, 1/l/I to misread when it is read out.
const TEMPORARY_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const TEMPORARY_LENGTH: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    #[schema(example = "hoa.vendor")]
    pub username: String,
    #[schema(example = "vendor")]
    pub role: String,
    /// The payee a vendor or school user acts for.
    pub payee_id: Option<Uuid>,
    pub disabled: bool,
    /// The user must change the password before anything else (after a reset).
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
    /// `null` until the first login.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            username: user.username.clone(),
            role: user.role.as_str().to_owned(),
            payee_id: user.payee_id,
            disabled: user.disabled,
            must_change_password: user.must_change_password,
            created_at: to_datetime(user.created_at),
            last_login_at: user.last_login_at.map(to_datetime),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub data: Vec<UserView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// 3 to 64 lowercase letters, digits, '.', '_' or '-'.
    #[schema(example = "hoa.vendor", pattern = "^[a-z0-9._-]{3,64}$")]
    pub username: String,
    /// admin, staff, auditor, vendor or school.
    #[schema(example = "vendor", pattern = "^(admin|staff|auditor|vendor|school)$")]
    pub role: String,
    /// Required for vendor and school users, refused for the others.
    pub payee_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchRequest {
    #[schema(pattern = "^(admin|staff|auditor|vendor|school)$")]
    pub role: Option<String>,
    /// `null` unbinds (for a role that acts for no payee).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>, nullable)]
    pub payee_id: Option<Option<Uuid>>,
    /// A disabled user cannot log in and their tokens stop working within seconds.
    pub disabled: Option<bool>,
}

/// A user with the one-time password to hand them; it is shown once and never stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemporaryPassword {
    pub user: UserView,
    /// Valid for one login: the user must then choose their own password.
    pub temporary_password: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    pub current_password: String,
    /// At least 12 characters, not a commonly used password.
    #[schema(min_length = 12)]
    pub new_password: String,
}

fn parse_role(text: &str) -> Result<Role, AuthError> {
    Role::parse(text).ok_or(AuthError::UnknownRole)
}

fn temporary_password() -> NewPassword {
    let mut rng = rand::rngs::OsRng;
    loop {
        let text: String = (0..TEMPORARY_LENGTH)
            .map(|_| TEMPORARY_ALPHABET[rng.gen_range(0..TEMPORARY_ALPHABET.len())] as char)
            .collect();
        // 16 random characters are practically never on the list; the rules decide anyway.
        if let Ok(password) = NewPassword::parse(text) {
            return password;
        }
    }
}

impl AuthService {
    pub async fn list_users(&self) -> Result<UserList, AuthError> {
        let users = self.store.list_users().await?;
        Ok(UserList {
            data: users.iter().map(UserView::from).collect(),
        })
    }

    pub async fn user(&self, username: &str) -> Result<UserView, AuthError> {
        self.store
            .find_user(username)
            .await?
            .map(|user| UserView::from(&user))
            .ok_or_else(|| AuthError::UserNotFound(username.to_owned()))
    }

    /// Creates a user with a temporary password they must change at their first login.
    pub async fn create_user_by_admin(
        &self,
        admin: &Caller,
        request: NewUserRequest,
    ) -> Result<TemporaryPassword, AuthError> {
        let role = parse_role(&request.role)?;
        self.require_payee(request.payee_id).await?;
        let password = temporary_password();
        let shown = password.clone().into_inner();
        let user = self
            .add_user(
                admin,
                &request.username,
                role,
                request.payee_id,
                password,
                true,
            )
            .await?;
        Ok(TemporaryPassword {
            user: UserView::from(&user),
            temporary_password: shown,
        })
    }

    /// Changes a user's role, payee binding or disabled flag. No change may leave the service
    /// without an enabled admin.
    pub async fn update_user(
        &self,
        admin: &Caller,
        username: &str,
        patch: UserPatchRequest,
    ) -> Result<UserView, AuthError> {
        let role = patch.role.as_deref().map(parse_role).transpose()?;
        if let Some(Some(payee)) = patch.payee_id {
            self.require_payee(Some(payee)).await?;
        }
        let mut unit = self.store.begin().await?;
        // Two admins demoting each other at once must not both see the other still enabled.
        unit.serialize_on("users").await?;
        let before = unit
            .lock_user(username)
            .await?
            .ok_or_else(|| AuthError::UserNotFound(username.to_owned()))?;
        let mut after = before.clone();
        after.role = role.unwrap_or(before.role);
        after.payee_id = patch.payee_id.unwrap_or(before.payee_id);
        after.disabled = patch.disabled.unwrap_or(before.disabled);
        check_binding(after.role, after.payee_id)?;
        let was_admin = before.role == Role::Admin && !before.disabled;
        let stays_admin = after.role == Role::Admin && !after.disabled;
        if was_admin && !stays_admin && unit.enabled_admins().await? <= 1 {
            return Err(AuthError::LastAdmin);
        }
        unit.save_user(&after).await?;
        self.audit(
            &mut unit,
            admin,
            AuditAction::UserUpdate,
            Some(&before),
            &after,
        )
        .await?;
        unit.commit().await?;
        self.forget_standing(after.id);
        Ok(UserView::from(&after))
    }

    /// Gives the user a temporary password and ends their sessions; until they choose a new
    /// password, their only allowed request is changing it.
    pub async fn reset_password(
        &self,
        admin: &Caller,
        username: &str,
    ) -> Result<TemporaryPassword, AuthError> {
        let password = temporary_password();
        let shown = password.clone().into_inner();
        let password_hash = hash_password_off_thread(password).await?;
        let mut unit = self.store.begin().await?;
        let before = unit
            .lock_user(username)
            .await?
            .ok_or_else(|| AuthError::UserNotFound(username.to_owned()))?;
        let after = User {
            password_hash,
            must_change_password: true,
            credentials_version: before.credentials_version + 1,
            ..before.clone()
        };
        unit.save_user(&after).await?;
        self.audit(
            &mut unit,
            admin,
            AuditAction::UserResetPassword,
            Some(&before),
            &after,
        )
        .await?;
        unit.commit().await?;
        self.forget_standing(after.id);
        Ok(TemporaryPassword {
            user: UserView::from(&after),
            temporary_password: shown,
        })
    }

    /// The caller changes their own password, proving the current one. Their other tokens
    /// stop working; the answer is a new one.
    pub async fn change_own_password(
        &self,
        caller: &Caller,
        request: PasswordChangeRequest,
    ) -> Result<IssuedToken, AuthError> {
        let new_password = NewPassword::parse(request.new_password)?;
        let current = self
            .store
            .find_user(&caller.username)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if !self
            .password_matches(&request.current_password, current.password_hash)
            .await?
        {
            return Err(AuthError::WrongCurrentPassword);
        }
        let password_hash = hash_password_off_thread(new_password).await?;
        let mut unit = self.store.begin().await?;
        let before = unit
            .lock_user(&caller.username)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let after = User {
            password_hash,
            must_change_password: false,
            credentials_version: before.credentials_version + 1,
            ..before.clone()
        };
        unit.save_user(&after).await?;
        self.audit(
            &mut unit,
            caller,
            AuditAction::UserChangePassword,
            Some(&before),
            &after,
        )
        .await?;
        unit.commit().await?;
        self.forget_standing(after.id);
        Ok(self.issue(&after))
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An action code, e.g. `user.update`.
    pub action: Option<String>,
    /// What was changed, e.g. `user`.
    pub target_kind: Option<String>,
    /// Which one: a username for users.
    pub target_id: Option<String>,
    /// The username who made the change.
    pub actor: Option<String>,
    /// Recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before this time.
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub id: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// The username who made the change (`command line` for the command line).
    pub actor: String,
    pub actor_id: Uuid,
    /// The `x-request-id` of the request that made it.
    pub request_id: Option<String>,
    #[schema(example = "user.update")]
    pub action: String,
    #[schema(example = "user")]
    pub target_kind: String,
    pub target_id: String,
    /// The target before the change (`null` for a creation); never a secret.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<AuditRecord> for AuditView {
    fn from(record: AuditRecord) -> Self {
        Self {
            id: record.id,
            recorded_at: to_datetime(record.recorded_at),
            actor: record.actor.username,
            actor_id: record.actor.user_id,
            request_id: record.actor.request_id,
            action: record.action.as_str().to_owned(),
            target_kind: record.action.target_kind().to_owned(),
            target_id: record.target_id,
            before: record.before,
            after: record.after,
        }
    }
}

impl AuthService {
    /// The audit trail, oldest first. For anyone but an admin, the before and after of a
    /// record that names a payer are left out (`null`): whose account it is stays with admins.
    pub async fn audit_trail(
        &self,
        caller: &Caller,
        query: AuditQuery,
    ) -> Result<AuditPage, AuthError> {
        let limit = paging::limit(query.limit)?;
        let after = paging::read_cursor(query.cursor.as_deref(), paging::time_and_id)?;
        let action = query
            .action
            .as_deref()
            .map(|text| AuditAction::parse(text).ok_or(AuthError::UnknownAuditAction))
            .transpose()?;
        let filter = AuditFilter {
            action,
            target_kind: query.target_kind,
            target_id: query.target_id,
            actor: query.actor,
            from: query.from.map(|t| t.timestamp_micros()),
            to: query.to.map(|t| t.timestamp_micros()),
            after,
            limit,
        };
        let records = self.store.list_audit(&filter).await?;
        let next_cursor = paging::next_cursor(&records, limit, |r| {
            paging::time_and_id_key(r.recorded_at, r.id)
        });
        let may_see_payers = caller.role == Role::Admin;
        Ok(AuditPage {
            data: records
                .into_iter()
                .map(|mut record| {
                    if record.action.names_a_payer() && !may_see_payers {
                        record.before = None;
                        record.after = None;
                    }
                    AuditView::from(record)
                })
                .collect(),
            next_cursor,
        })
    }
}
