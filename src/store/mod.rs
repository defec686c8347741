//! Storage: reads and writes, nothing else. The storage traits are implemented once for any
//! [`Backend`] (`ledger.rs`, `payments.rs`, `bank_feed.rs`, `registry.rs`), with the SQL both backends share
//! written once; only locking, transaction start and connection set-up differ (`sqlite.rs`,
//! `postgres.rs`). A use case that reads, decides and writes in one database transaction
//! holds a [`UnitOfWork`].

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::account::{Account, AccountFlags, AccountKind, Balance, NewAccount};
use crate::domain::money::Currency;
use crate::domain::transaction::{ApplyError, Entry, NewTransaction};
use crate::domain::user::{Role, User};

// `unit_of_work` defines the `on_tx!`/`on_pool!` family the others use, so it comes first.
#[macro_use]
mod unit_of_work;
pub mod bank_feed;
mod ledger;
pub mod notifier;
mod payers;
mod payments;
mod postgres;
pub mod registry;
mod rows;
pub mod school_corrections;
pub mod school_io;
pub mod schools;
mod sqlite;
pub mod statistics;
mod users;
pub mod web;

pub use payers::{CashPayment, PayerAccountFilter, PayerAccountRecord, PayerStore};
pub use payments::{
    IntentFilter, IntentInsert, NewPayee, PayeeChanges, PayeeFilter, PayeeRejection, PaymentStore,
};
pub use postgres::PostgresStore;
pub use registry::RegistryStore;
pub use schools::SchoolStore;
pub use sqlite::SqliteStore;
pub use unit_of_work::{Backend, Fitted, Fitting, LockedLedger, Pool, UnitOfWork};
pub use users::{AuditFilter, UserStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the account code is already taken")]
    AccountCodeTaken,
    #[error("the username is already taken")]
    UsernameTaken,
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still being processed")]
    IdempotencyKeyInProgress,
    /// A concurrent write took a unique value (transaction id, reversal) first; retrying the
    /// request gives the precise answer.
    #[error("a concurrent write conflicted with this one")]
    WriteConflict,
    #[error("back up PostgreSQL with pg_dump or pg_basebackup (see the README), not this command")]
    BackupByDatabaseTools,
}

impl StoreError {
    /// True when PostgreSQL broke a deadlock by aborting this transaction: it was rolled back
    /// whole, and the same work in a new transaction will most likely go through.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(error))
            if error.code().as_deref() == Some(POSTGRES_DEADLOCK_DETECTED))
    }

    /// True when the database itself is unreachable, overloaded, shutting down, read-only (a
    /// replica, or a primary being demoted during a failover), or gave up waiting for a lock;
    /// not when a query is wrong. The request may be sent again: with its Idempotency-Key, a
    /// retry after a commit whose answer was lost replays the stored response.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => true,
            StoreError::Database(sqlx::Error::Database(error)) => {
                let code = error.code().unwrap_or_default();
                if error
                    .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                    .is_some()
                {
                    // Extended result codes keep the primary code in the low byte.
                    code.parse::<i32>()
                        .is_ok_and(|code| SQLITE_GAVE_UP_WAITING.contains(&(code & 0xff)))
                } else {
                    POSTGRES_GAVE_UP_WAITING.contains(&code.as_ref())
                        || POSTGRES_NOT_SERVING_WRITES.contains(&code.as_ref())
                        // Class 08: connection exceptions.
                        || code.starts_with("08")
                }
            }
            _ => false,
        }
    }
}

/// deadlock_detected, serialization_failure, lock_not_available.
const POSTGRES_GAVE_UP_WAITING: [&str; 3] = [POSTGRES_DEADLOCK_DETECTED, "40001", "55P03"];
const POSTGRES_DEADLOCK_DETECTED: &str = "40P01";
/// read_only_sql_transaction (a replica, or a demoted primary, answered a write),
/// too_many_connections, admin_shutdown, crash_shutdown, cannot_connect_now (starting up or
/// in recovery), database_dropped.
const POSTGRES_NOT_SERVING_WRITES: [&str; 6] =
    ["25006", "53300", "57P01", "57P02", "57P03", "57P04"];
/// SQLITE_BUSY, SQLITE_LOCKED.
const SQLITE_GAVE_UP_WAITING: [i32; 2] = [5, 6];

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct AccountWithBalance {
    pub account: Account,
    pub balance: Balance,
}

#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub kind: Option<AccountKind>,
    pub currency: Option<Currency>,
    pub code_prefix: Option<String>,
    /// Keyset cursor: accounts with an id greater than this.
    pub after: Option<Uuid>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub account_id: Option<Uuid>,
    /// Posted at or after, microseconds.
    pub from: Option<i64>,
    /// Posted before, microseconds.
    pub to: Option<i64>,
    pub reference: Option<String>,
    /// Keyset cursor: (created_at, id) of the last transaction of the previous page.
    pub after: Option<(i64, Uuid)>,
    pub limit: u32,
}

/// A posted transaction as read back, with its entries in posting order.
#[derive(Debug, Clone)]
pub struct StoredTransaction {
    pub id: Uuid,
    pub description: String,
    pub reference: Option<String>,
    pub metadata: Option<String>,
    pub effective_at: i64,
    pub created_at: i64,
    /// The user who posted it; the service's own posters (the school desk, the bank feed)
    /// have ids of their own.
    pub created_by: Uuid,
    pub reversal_of: Option<Uuid>,
    pub reversed_by: Option<Uuid>,
    pub entries: Vec<Entry>,
}

/// An `Idempotency-Key` as scoped to its user, with the hash of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub user_id: Uuid,
    pub key: String,
    pub request_hash: String,
}

/// The response a request produced, stored with its idempotency key for replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

pub enum Idempotent<T> {
    Fresh(T),
    Replay(StoredResponse),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Any rejected transaction rolls back all of them.
    AllOrNothing,
    /// Each transaction stands alone; the accepted ones commit.
    Independent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PostRejection {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("transaction {0} already exists")]
    TransactionExists(Uuid),
    #[error("transaction {0} has already been reversed")]
    AlreadyReversed(Uuid),
}

pub type PostResults = Vec<Result<(), PostRejection>>;

/// One request posting one transaction, written together with others in one database
/// transaction; each keeps its own idempotency key, response and outcome.
#[derive(Debug, Clone, Copy)]
pub struct SingleWrite<'a> {
    pub created_by: Uuid,
    pub claim: &'a IdempotencyClaim,
    pub transaction: &'a NewTransaction,
    /// Stored with the key if the transaction posts.
    pub response: &'a StoredResponse,
    /// Appended in the same database transaction if the transaction posts.
    pub audit: Option<&'a crate::domain::audit::AuditRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SingleOutcome {
    Posted,
    Rejected(PostRejection),
    Replay(StoredResponse),
    KeyReused,
    KeyInProgress,
}

/// Renders the response to store with the idempotency key, from the per-transaction results.
pub type Responder<'a> = &'a (dyn Fn(&[Result<(), PostRejection>]) -> StoredResponse + Send + Sync);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub transactions_checked: i64,
    pub accounts_checked: i64,
    /// Sums over all entries, as decimal text: they may exceed i64 in a long-lived ledger.
    pub total_debits: String,
    pub total_credits: String,
    pub violations: Vec<Violation>,
}

#[async_trait]
pub trait Store:
    PaymentStore
    + bank_feed::BankFeedStore
    + RegistryStore
    + PayerStore
    + statistics::StatisticsStore
    + SchoolStore
    + web::WebStore
    + UserStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> StoreResult<()>;
    /// A consistent copy of the database in a new file, taken while the service runs.
    async fn backup(&self, path: &str) -> StoreResult<()>;
    async fn ping(&self) -> StoreResult<()>;

    async fn find_user(&self, username: &str) -> StoreResult<Option<User>>;
    /// Whether anyone can administer the service yet.
    async fn admin_exists(&self) -> StoreResult<bool>;
    /// Counts a login attempt in the current throttle window (a success clears the count);
    /// returns attempts so far and the window's start.
    async fn record_login_attempt(
        &self,
        username: &str,
        now: i64,
        window_micros: i64,
    ) -> StoreResult<(i64, i64)>;
    async fn clear_login_failures(&self, username: &str) -> StoreResult<()>;

    async fn create_account(
        &self,
        account: &NewAccount,
        id: Uuid,
        now: i64,
    ) -> StoreResult<Account>;
    async fn find_accounts(&self, ids: &[Uuid], codes: &[String]) -> StoreResult<Vec<Account>>;
    async fn account_with_balance(
        &self,
        id: Uuid,
        as_of: Option<i64>,
    ) -> StoreResult<Option<AccountWithBalance>>;
    async fn list_accounts(&self, filter: &AccountFilter) -> StoreResult<Vec<AccountWithBalance>>;
    async fn list_entries(
        &self,
        account_id: Uuid,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Entry>>;

    /// Posts transactions in one database transaction, together with the idempotency key and
    /// the response `respond` renders for them.
    async fn post_transactions(
        &self,
        created_by: Uuid,
        claim: Option<&IdempotencyClaim>,
        transactions: &[NewTransaction],
        mode: WriteMode,
        respond: Responder<'_>,
        now: i64,
    ) -> StoreResult<Idempotent<PostResults>>;
    /// Posts many independent single-transaction requests in one database transaction (one
    /// commit for all). No two writes may share an idempotency key.
    async fn post_singles(&self, writes: &[SingleWrite<'_>]) -> StoreResult<Vec<SingleOutcome>>;
    async fn transaction(&self, id: Uuid) -> StoreResult<Option<StoredTransaction>>;
    async fn list_transactions(
        &self,
        filter: &TransactionFilter,
    ) -> StoreResult<Vec<StoredTransaction>>;

    async fn verify(&self) -> StoreResult<VerifyReport>;
    async fn delete_idempotency_keys_before(&self, cutoff: i64) -> StoreResult<u64>;
    /// What an earlier request with this idempotency key answered, without claiming the key:
    /// `None` when no request holds it; otherwise its stored response, or why it cannot be
    /// replayed (another request, or still in progress).
    async fn stored_response(
        &self,
        claim: &IdempotencyClaim,
    ) -> StoreResult<Option<StoreResult<StoredResponse>>>;
}

/// A new time-ordered id (UUIDv7) for a row written at `now` (microseconds): the store never
/// reads the clock itself.
pub(crate) fn id_at(now: i64) -> Uuid {
    let now = now.max(0);
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        (now / 1_000_000) as u64,
        (now % 1_000_000) as u32 * 1_000,
    ))
}

/// True for `postgres://` and `postgresql://` URLs; anything else is opened as SQLite.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store a database URL names: `sqlite:` paths or `postgres://` URLs.
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Arc<dyn Store>> {
    if is_postgres_url(url) {
        Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        ))
    } else {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    }
}

/// Flags as stored in two boolean columns.
fn flags_from_columns(debits_guard: bool, credits_guard: bool) -> AccountFlags {
    AccountFlags {
        debits_must_not_exceed_credits: debits_guard,
        credits_must_not_exceed_debits: credits_guard,
    }
}

/// A unique violation while writing ledger rows means a concurrent write got there first.
fn unique_is_conflict(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => StoreError::WriteConflict,
        other => other.into(),
    }
}

fn role_from_column(text: &str) -> StoreResult<Role> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown role {text:?}")))
}
