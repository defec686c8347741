//! Row shapes shared by both backends, and their conversion into domain types.

use uuid::Uuid;

use super::{flags_from_columns, role_from_column, StoreError, StoreResult};
use crate::domain::account::{Account, AccountKind, Balance};
use crate::domain::money::Currency;
use crate::domain::transaction::{Entry, LockedAccount};
use crate::domain::user::User;

pub(super) const ACCOUNT_COLUMNS: &str = "id, code, name, kind, currency, \
    debits_must_not_exceed_credits, credits_must_not_exceed_debits, \
    debits_posted, credits_posted, entry_count, created_at";

#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    id: Uuid,
    code: String,
    name: String,
    kind: String,
    currency: String,
    debits_must_not_exceed_credits: bool,
    credits_must_not_exceed_debits: bool,
    debits_posted: i64,
    credits_posted: i64,
    entry_count: i64,
    created_at: i64,
}

impl AccountRow {
    pub(super) fn into_domain(self) -> StoreResult<(Account, Balance)> {
        let kind = AccountKind::parse(&self.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("account kind {:?}", self.kind)))?;
        let currency =
            Currency::parse(&self.currency).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let account = Account {
            id: self.id,
            code: self.code,
            name: self.name,
            kind,
            currency,
            flags: flags_from_columns(
                self.debits_must_not_exceed_credits,
                self.credits_must_not_exceed_debits,
            ),
            created_at: self.created_at,
        };
        let balance = Balance {
            debits_posted: self.debits_posted,
            credits_posted: self.credits_posted,
            entry_count: self.entry_count,
        };
        Ok((account, balance))
    }
}

pub(super) const LOCKED_ACCOUNT_COLUMNS: &str = "id, debits_must_not_exceed_credits, \
    credits_must_not_exceed_debits, debits_posted, credits_posted, entry_count";

#[derive(sqlx::FromRow)]
pub(super) struct LockedAccountRow {
    id: Uuid,
    debits_must_not_exceed_credits: bool,
    credits_must_not_exceed_debits: bool,
    debits_posted: i64,
    credits_posted: i64,
    entry_count: i64,
}

impl LockedAccountRow {
    pub(super) fn into_locked(self) -> (Uuid, LockedAccount) {
        let state = LockedAccount {
            flags: flags_from_columns(
                self.debits_must_not_exceed_credits,
                self.credits_must_not_exceed_debits,
            ),
            balance: Balance {
                debits_posted: self.debits_posted,
                credits_posted: self.credits_posted,
                entry_count: self.entry_count,
            },
        };
        (self.id, state)
    }
}

pub(super) const ENTRY_COLUMNS: &str = "transaction_id, posting_index, account_id, account_seq, \
    is_debit, amount, debits_after, credits_after, effective_at, created_at";

#[derive(sqlx::FromRow)]
pub(super) struct EntryRow {
    transaction_id: Uuid,
    posting_index: i32,
    account_id: Uuid,
    account_seq: i64,
    is_debit: bool,
    amount: i64,
    debits_after: i64,
    credits_after: i64,
    effective_at: i64,
    created_at: i64,
}

impl From<EntryRow> for Entry {
    fn from(row: EntryRow) -> Self {
        Entry {
            transaction_id: row.transaction_id,
            posting_index: row.posting_index,
            account_id: row.account_id,
            account_seq: row.account_seq,
            is_debit: row.is_debit,
            amount: row.amount,
            debits_after: row.debits_after,
            credits_after: row.credits_after,
            effective_at: row.effective_at,
            created_at: row.created_at,
        }
    }
}

pub(super) const TRANSACTION_COLUMNS: &str = "t.id, t.description, t.reference, t.metadata, \
    t.effective_at, t.created_at, t.created_by, t.reversal_of, \
    (SELECT r.id FROM transactions r WHERE r.reversal_of = t.id) AS reversed_by";

#[derive(sqlx::FromRow)]
pub(super) struct TransactionRow {
    pub id: Uuid,
    pub description: String,
    pub reference: Option<String>,
    pub metadata: Option<String>,
    pub effective_at: i64,
    pub created_at: i64,
    pub created_by: Uuid,
    pub reversal_of: Option<Uuid>,
    pub reversed_by: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: Uuid,
    username: String,
    password_hash: String,
    role: String,
    payee_id: Option<Uuid>,
    disabled: bool,
    must_change_password: bool,
    credentials_version: i64,
    created_at: i64,
    last_login_at: Option<i64>,
}

pub(super) const USER_COLUMNS: &str = "id, username, password_hash, role, payee_id, disabled, \
    must_change_password, credentials_version, created_at, last_login_at";

/// [`USER_COLUMNS`] of the users table under `alias`, for joins.
pub(super) fn prefixed_user_columns(alias: &str) -> String {
    USER_COLUMNS
        .split(", ")
        .map(|column| format!("{alias}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl UserRow {
    pub(super) fn into_domain(self) -> StoreResult<User> {
        Ok(User {
            id: self.id,
            username: self.username,
            password_hash: self.password_hash,
            role: role_from_column(&self.role)?,
            payee_id: self.payee_id,
            disabled: self.disabled,
            must_change_password: self.must_change_password,
            credentials_version: self.credentials_version,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct IdempotencyRow {
    pub request_hash: String,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(super) struct AccountMismatchRow {
    pub code: String,
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub entry_count: i64,
    pub entry_debits: i64,
    pub entry_credits: i64,
    pub entries: i64,
}
