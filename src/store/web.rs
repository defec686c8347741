//! What the web app keeps and reads: browser sessions, and the payments a payee received (its
//! own money, for the stall page and the payee's API). Reads and writes only.

use async_trait::async_trait;
use uuid::Uuid;

use super::rows::{prefixed_user_columns, UserRow};
use super::{Backend, StoreResult, UnitOfWork};
use crate::domain::user::User;

/// A browser session as written at login. Only the token's hash is kept.
#[derive(Debug, Clone)]
pub struct NewWebSession {
    pub id: Uuid,
    pub token_hash: String,
    pub user_id: Uuid,
    /// The user's credentials version at login: a later password change or reset ends it.
    pub credentials_version: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct LiveWebSession {
    pub id: Uuid,
    pub user: User,
    pub last_used_at: i64,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    session_id: Uuid,
    session_last_used_at: i64,
    #[sqlx(flatten)]
    user: UserRow,
}

/// Money a bank transfer credited to a payee (what did not go to suspense).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceivedPayment {
    pub bank_transaction_id: Uuid,
    pub amount: i64,
    /// The bank's transfer memo, as the bank sent it.
    pub memo: String,
    pub payment_intent_id: Option<Uuid>,
    pub reference: Option<String>,
    pub occurred_at: i64,
}

/// Which of a payee's received payments to read, oldest first by bank transaction id.
#[derive(Debug, Clone)]
pub struct ReceivedFilter {
    pub payee_id: Uuid,
    /// Only those recorded after this bank transaction (ids are time-ordered).
    pub after: Option<Uuid>,
    /// Only those the bank booked at or after this time (microseconds).
    pub occurred_from: Option<i64>,
    pub limit: u32,
}

/// One crediting of a payee, in the order the ledger made them: money a transfer brought
/// straight to the payee (its id is the bank transaction's), or money staff later took out of
/// suspense for it (its id is the resolution's, made when staff resolved it). What a live
/// stream that lost its connection missed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Credit {
    pub credit_id: Uuid,
    pub payee_id: Uuid,
    pub bank_transaction_id: Uuid,
    pub amount: i64,
    pub payment_intent_id: Option<Uuid>,
    pub reference: Option<String>,
    pub occurred_at: i64,
}

/// A market board link as stored (its token only as a hash).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BoardLinkRow {
    pub id: Uuid,
    pub label: String,
    pub created_by_username: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[async_trait]
pub trait WebStore {
    async fn create_web_session(&self, session: &NewWebSession) -> StoreResult<()>;
    /// The session whose token hashes to `token_hash`, unless it expired before `now` or was
    /// revoked.
    async fn live_web_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<LiveWebSession>>;
    /// Slides a live session's expiry.
    async fn extend_web_session(&self, id: Uuid, now: i64, expires_at: i64) -> StoreResult<()>;
    /// Ends a session; true if it was live.
    async fn revoke_web_session(&self, token_hash: &str, now: i64) -> StoreResult<bool>;
    async fn received_payments(&self, filter: &ReceivedFilter)
        -> StoreResult<Vec<ReceivedPayment>>;
    /// At most `limit` credits made after credit `after` (ids are time-ordered), to `payee`
    /// or, with `None`, to every payee; oldest first.
    async fn credits_after(
        &self,
        payee: Option<Uuid>,
        after: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<Credit>>;
    /// Every market board link, newest first.
    async fn board_links(&self) -> StoreResult<Vec<BoardLinkRow>>;
    /// The link in force whose token hashes to `token_hash`.
    async fn live_board_link(&self, token_hash: &str) -> StoreResult<Option<Uuid>>;
}

#[async_trait]
impl<T: Backend> WebStore for T {
    async fn create_web_session(&self, session: &NewWebSession) -> StoreResult<()> {
        let sql = "INSERT INTO web_sessions \
                   (id, token_hash, user_id, created_at, last_used_at, expires_at, \
                    credentials_version) \
                   VALUES ($1, $2, $3, $4, $4, $5, $6)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(session.id)
            .bind(&session.token_hash)
            .bind(session.user_id)
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.credentials_version)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    async fn live_web_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StoreResult<Option<LiveWebSession>> {
        // A disabled user, or one whose credentials changed since this login, has no live
        // session: read here on every request, so it ends at once.
        let sql = format!(
            "SELECT s.id AS session_id, s.last_used_at AS session_last_used_at, {} \
             FROM web_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
               AND NOT u.disabled AND s.credentials_version = u.credentials_version",
            prefixed_user_columns("u")
        );
        let row: Option<SessionRow> = pool_rows!(self, fetch_optional, &sql, token_hash, now)?;
        row.map(|row| {
            Ok(LiveWebSession {
                id: row.session_id,
                last_used_at: row.session_last_used_at,
                user: row.user.into_domain()?,
            })
        })
        .transpose()
    }

    async fn extend_web_session(&self, id: Uuid, now: i64, expires_at: i64) -> StoreResult<()> {
        let sql = "UPDATE web_sessions SET last_used_at = $2, expires_at = $3 \
                   WHERE id = $1 AND revoked_at IS NULL";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    async fn revoke_web_session(&self, token_hash: &str, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE web_sessions SET revoked_at = $2 \
                   WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2";
        let changed = on_pool!(self, |pool| sqlx::query(sql)
            .bind(token_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed > 0)
    }

    async fn credits_after(
        &self,
        payee: Option<Uuid>,
        after: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<Credit>> {
        // A transfer partly parked in suspense and later resolved to the payee is two credits,
        // each announced when it was made.
        let sql = "SELECT * FROM ( \
                     SELECT b.id AS credit_id, b.payee_id AS payee_id, \
                       b.id AS bank_transaction_id, b.amount - b.suspense_amount AS amount, \
                       b.payment_intent_id AS payment_intent_id, i.reference AS reference, \
                       b.occurred_at AS occurred_at \
                     FROM bank_transactions b \
                     LEFT JOIN payment_intents i ON i.id = b.payment_intent_id \
                     WHERE b.direction = 'in' AND b.matched_as IN ('intent', 'payee') \
                       AND b.amount > b.suspense_amount AND b.id > $2 \
                       AND ($1 IS NULL OR b.payee_id = $1) \
                     UNION ALL \
                     SELECT r.id, COALESCE(r.payee_id, ri.payee_id), b.id, b.suspense_amount, \
                       r.payment_intent_id, ri.reference, b.occurred_at \
                     FROM suspense_resolutions r \
                     JOIN bank_transactions b ON b.id = r.bank_transaction_id \
                     LEFT JOIN payment_intents ri ON ri.id = r.payment_intent_id \
                     WHERE b.direction = 'in' AND r.action IN ('intent', 'payee') \
                       AND r.id > $2 AND ($1 IS NULL OR COALESCE(r.payee_id, ri.payee_id) = $1) \
                   ) credits ORDER BY credit_id LIMIT $3";
        Ok(pool_rows!(
            self,
            fetch_all,
            sql,
            payee,
            after,
            i64::from(limit)
        )?)
    }

    async fn board_links(&self) -> StoreResult<Vec<BoardLinkRow>> {
        let sql = "SELECT id, label, created_by_username, created_at, revoked_at \
                   FROM market_board_links ORDER BY id DESC";
        Ok(pool_rows!(self, fetch_all, sql)?)
    }

    async fn live_board_link(&self, token_hash: &str) -> StoreResult<Option<Uuid>> {
        let sql = "SELECT id FROM market_board_links WHERE token_hash = $1 AND revoked_at IS NULL";
        let found: Option<(Uuid,)> = pool_rows!(self, fetch_optional, sql, token_hash)?;
        Ok(found.map(|(id,)| id))
    }

    async fn received_payments(
        &self,
        filter: &ReceivedFilter,
    ) -> StoreResult<Vec<ReceivedPayment>> {
        // Incoming money matched to the payee, less any part parked in suspense, plus what
        // staff later took out of suspense for the payee (to it or to one of its intents).
        let sql = "SELECT b.id AS bank_transaction_id, \
                     CASE WHEN b.payee_id = $1 AND b.matched_as IN ('intent', 'payee') \
                          THEN b.amount - b.suspense_amount ELSE 0 END \
                     + CASE WHEN r.id IS NULL THEN 0 ELSE b.suspense_amount END AS amount, \
                     b.description AS memo, \
                     COALESCE(b.payment_intent_id, r.payment_intent_id) AS payment_intent_id, \
                     COALESCE(i.reference, ri.reference) AS reference, b.occurred_at \
                   FROM bank_transactions b \
                   LEFT JOIN suspense_resolutions r ON r.bank_transaction_id = b.id \
                     AND r.action IN ('intent', 'payee') AND r.payee_id = $1 \
                   LEFT JOIN payment_intents i ON i.id = b.payment_intent_id \
                   LEFT JOIN payment_intents ri ON ri.id = r.payment_intent_id \
                   WHERE b.direction = 'in' AND b.id > $2 AND b.occurred_at >= $3 \
                     AND ((b.payee_id = $1 AND b.matched_as IN ('intent', 'payee') \
                           AND b.amount > b.suspense_amount) \
                          OR r.id IS NOT NULL) \
                   ORDER BY b.id LIMIT $4";
        Ok(pool_rows!(
            self,
            fetch_all,
            sql,
            filter.payee_id,
            filter.after.unwrap_or(Uuid::nil()),
            filter.occurred_from.unwrap_or(i64::MIN),
            i64::from(filter.limit)
        )?)
    }
}

/// Market board links are written with their audit record, in one transaction.
impl UnitOfWork<'_> {
    pub async fn insert_board_link(
        &mut self,
        link: &BoardLinkRow,
        token_hash: &str,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO market_board_links \
                   (id, label, token_hash, created_by_username, created_at, revoked_at) \
                   VALUES ($1, $2, $3, $4, $5, NULL)";
        execute!(
            self,
            sql,
            link.id,
            &link.label,
            token_hash,
            &link.created_by_username,
            link.created_at
        )?;
        Ok(())
    }

    /// Revokes a link; false when no such link is still in force.
    pub async fn revoke_board_link(&mut self, id: Uuid, now: i64) -> StoreResult<bool> {
        let sql = "UPDATE market_board_links SET revoked_at = $2 \
                   WHERE id = $1 AND revoked_at IS NULL";
        Ok(execute!(self, sql, id, now)? == 1)
    }
}
