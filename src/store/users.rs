//! Users as admins manage them, each request's check of its caller, and the audit trail.
//! Reads and writes only; the use cases decide.

use async_trait::async_trait;
use uuid::Uuid;

use super::ledger::taken_or;
use super::rows::{UserRow, USER_COLUMNS};
use super::{Backend, StoreError, StoreResult, UnitOfWork};
use crate::domain::audit::{Actor, AuditAction, AuditRecord};
use crate::domain::user::{Standing, User};

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<AuditAction>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub actor: Option<String>,
    /// Recorded at or after, microseconds.
    pub from: Option<i64>,
    /// Recorded before, microseconds.
    pub to: Option<i64>,
    /// Keyset cursor: (recorded_at, id) of the last record of the previous page.
    pub after: Option<(i64, Uuid)>,
    pub limit: u32,
}

#[async_trait]
pub trait UserStore {
    /// Every user, by username.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// What a request must know about its caller now; `None` when no such user exists.
    async fn user_standing(&self, id: Uuid) -> StoreResult<Option<Standing>>;
    async fn record_login(&self, id: Uuid, now: i64) -> StoreResult<()>;
    /// Audit records, oldest first.
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
}

type StandingRow = (String, Option<Uuid>, bool, bool, i64);

type AuditRow = (
    Uuid,
    i64,
    Uuid,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn audit_record(row: AuditRow) -> StoreResult<AuditRecord> {
    let (id, recorded_at, actor_id, actor_name, action, target_id, before, after, request_id) = row;
    let json = |text: Option<String>| {
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("audit record {id}: {e}")))
    };
    Ok(AuditRecord {
        id,
        recorded_at,
        actor: Actor {
            user_id: actor_id,
            username: actor_name,
            request_id,
        },
        action: AuditAction::parse(&action)
            .ok_or_else(|| StoreError::Corrupt(format!("audit action {action:?}")))?,
        target_id,
        before: json(before)?,
        after: json(after)?,
    })
}

#[async_trait]
impl<T: Backend> UserStore for T {
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows: Vec<UserRow> = pool_rows!(self, fetch_all, &sql)?;
        rows.into_iter().map(UserRow::into_domain).collect()
    }

    async fn user_standing(&self, id: Uuid) -> StoreResult<Option<Standing>> {
        let sql = "SELECT role, payee_id, disabled, must_change_password, credentials_version \
                   FROM users WHERE id = $1";
        let row: Option<StandingRow> = pool_rows!(self, fetch_optional, sql, id)?;
        row.map(
            |(role, payee_id, disabled, must_change_password, credentials_version)| {
                Ok(Standing {
                    role: super::role_from_column(&role)?,
                    payee_id,
                    disabled,
                    must_change_password,
                    credentials_version,
                })
            },
        )
        .transpose()
    }

    async fn record_login(&self, id: Uuid, now: i64) -> StoreResult<()> {
        let sql = "UPDATE users SET last_login_at = $2 WHERE id = $1";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let rows: Vec<AuditRow> = on_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT id, recorded_at, actor_id, actor_name, action, target_id, \
                 before_state, after_state, request_id FROM audit_log WHERE 1 = 1",
            );
            if let Some(action) = filter.action {
                query.push(" AND action = ").push_bind(action.as_str());
            }
            if let Some(kind) = &filter.target_kind {
                query.push(" AND target_kind = ").push_bind(kind.clone());
            }
            if let Some(target) = &filter.target_id {
                query.push(" AND target_id = ").push_bind(target.clone());
            }
            if let Some(actor) = &filter.actor {
                query.push(" AND actor_name = ").push_bind(actor.clone());
            }
            if let Some(from) = filter.from {
                query.push(" AND recorded_at >= ").push_bind(from);
            }
            if let Some(to) = filter.to {
                query.push(" AND recorded_at < ").push_bind(to);
            }
            if let Some((at, id)) = filter.after {
                query
                    .push(" AND (recorded_at > ")
                    .push_bind(at)
                    .push(" OR (recorded_at = ")
                    .push_bind(at)
                    .push(" AND id > ")
                    .push_bind(id)
                    .push("))");
            }
            query
                .push(" ORDER BY recorded_at, id LIMIT ")
                .push_bind(i64::from(filter.limit));
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter().map(audit_record).collect()
    }
}

/// The user and audit writes of a use case's database transaction.
impl UnitOfWork<'_> {
    /// The user, locked until commit.
    pub async fn lock_user(&mut self, username: &str) -> StoreResult<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1{}",
            self.row_lock()
        );
        let row: Option<UserRow> = tx_rows!(self, fetch_optional, &sql, username)?;
        row.map(UserRow::into_domain).transpose()
    }

    /// Writes a new user, or the changes to an existing one (everything but its name and
    /// times; the last login is the login's own to write).
    pub async fn save_user(&mut self, user: &User) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET password_hash = excluded.password_hash, \
               role = excluded.role, payee_id = excluded.payee_id, \
               disabled = excluded.disabled, \
               must_change_password = excluded.must_change_password, \
               credentials_version = excluded.credentials_version"
        );
        execute!(
            self,
            &sql,
            user.id,
            &user.username,
            &user.password_hash,
            user.role.as_str(),
            user.payee_id,
            user.disabled,
            user.must_change_password,
            user.credentials_version,
            user.created_at,
            user.last_login_at,
        )
        .map_err(|e| taken_or(e, StoreError::UsernameTaken))?;
        Ok(())
    }

    /// Admins who can still sign in.
    pub async fn enabled_admins(&mut self) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM users WHERE role = 'admin' AND NOT disabled";
        let (count,): (i64,) = tx_rows!(self, fetch_one, sql)?;
        Ok(count)
    }

    /// Appends one record to the audit trail; it commits or rolls back with the change.
    pub async fn append_audit(&mut self, record: &AuditRecord) -> StoreResult<()> {
        let sql = "INSERT INTO audit_log (id, recorded_at, actor_id, actor_name, action, \
                   target_kind, target_id, before_state, after_state, request_id) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let json = |value: &Option<serde_json::Value>| value.as_ref().map(|v| v.to_string());
        execute!(
            self,
            sql,
            record.id,
            record.recorded_at,
            record.actor.user_id,
            &record.actor.username,
            record.action.as_str(),
            record.action.target_kind(),
            &record.target_id,
            json(&record.before),
            json(&record.after),
            &record.actor.request_id,
        )?;
        Ok(())
    }
}
