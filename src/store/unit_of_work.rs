//! A write transaction a service holds while it gathers facts, asks the domain to decide, and
//! writes the result: [`UnitOfWork`]. Its methods only read and write; every business decision
//! is the caller's. Dropping it without [`UnitOfWork::commit`] rolls everything back.
//!
//! SQL both backends share is written once, as a plain method body run on whichever backend
//! the unit of work is open on (`on_tx!`, `on_pool!`); what truly differs (locking, how a
//! write transaction starts, the bulk posting statements) is each backend's own function.

use std::collections::{BTreeSet, HashMap};

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, StoreResult};
use crate::domain::transaction::{apply, Entry, LockedAccount, NewTransaction};

/// Runs `$body` with `$tx` bound to the unit of work's open transaction, whichever backend it
/// is on. The body is the same source text for both, type-checked for each.
macro_rules! on_tx {
    ($uow:expr, |$tx:ident| $body:expr) => {
        match &mut $uow.conn {
            $crate::store::unit_of_work::Conn::Sqlite(_, $tx) => $body,
            $crate::store::unit_of_work::Conn::Postgres(_, $tx) => $body,
        }
    };
}

/// Runs one statement that returns no rows, `$sql` with these binds, in the unit of work;
/// the number of rows it changed.
macro_rules! execute {
    ($uow:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_tx!($uow, |tx| {
            sqlx::query($sql)
                $(.bind($bind))*
                .execute(&mut **tx)
                .await
                .map(|done| done.rows_affected())
        })
    };
}

/// `query_as($sql)` with these binds, fetched with `$fetch` (`fetch_all`, `fetch_optional`,
/// `fetch_one`) in the unit of work.
macro_rules! tx_rows {
    ($uow:expr, $fetch:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_tx!($uow, |tx| {
            sqlx::query_as($sql)
                $(.bind($bind))*
                .$fetch(&mut **tx)
                .await
        })
    };
}

/// `query_as($sql)` with these binds, fetched with `$fetch` on the store's pool.
macro_rules! pool_rows {
    ($store:expr, $fetch:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_pool!($store, |pool| {
            sqlx::query_as($sql)
                $(.bind($bind))*
                .$fetch(pool)
                .await
        })
    };
}

/// Runs `$body` with `$pool` bound to the store's connection pool, whichever backend it is.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.pool() {
            $crate::store::unit_of_work::Pool::Sqlite($pool) => $body,
            $crate::store::unit_of_work::Pool::Postgres($pool) => $body,
        }
    };
}

/// A store's connection pool, for reads outside a unit of work.
pub enum Pool<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool),
}

/// What a backend gives the SQL written once: its pool and its way to open a unit of work.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    fn pool(&self) -> Pool<'_>;
    async fn run_migrations(&self) -> StoreResult<()>;
    /// Opens a write transaction the way this backend serializes writers.
    async fn begin_unit(&self) -> StoreResult<UnitOfWork<'_>>;
    /// [`Self::begin_unit`] for a group writer, which runs the same few statements group
    /// after group: on PostgreSQL each keeps the one generic plan it was given on the
    /// connection instead of being planned for its values every time.
    async fn begin_group_unit(&self) -> StoreResult<UnitOfWork<'_>>;
    /// Opens a read-only transaction that sees one consistent snapshot; roll it back.
    async fn begin_snapshot(&self) -> StoreResult<UnitOfWork<'_>>;
    /// Writes a consistent copy of the whole database to a new file while the service runs.
    async fn backup_to(&self, path: &str) -> StoreResult<()>;
}

pub(super) enum Conn<'s> {
    Sqlite(&'s SqliteStore, Transaction<'static, Sqlite>),
    Postgres(&'s PostgresStore, Transaction<'static, Postgres>),
}

/// An open write transaction on the store.
pub struct UnitOfWork<'s> {
    pub(super) conn: Conn<'s>,
    /// SQLite: the in-process gate that admits one writer at a time, held to the end.
    pub(super) _write_guard: Option<OwnedMutexGuard<()>>,
}

impl UnitOfWork<'_> {
    pub async fn commit(self) -> StoreResult<()> {
        match self.conn {
            Conn::Sqlite(_, tx) => tx.commit().await?,
            Conn::Postgres(_, tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        match self.conn {
            Conn::Sqlite(_, tx) => tx.rollback().await?,
            Conn::Postgres(_, tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// The rows of `select` (which ends in `IN (`) for every one of `ids`, followed by `tail`
    /// (`)` and what comes after it), with one statement per chunk of at most `chunk` ids.
    pub(super) async fn rows_for_ids<T>(
        &mut self,
        select: &str,
        ids: &[Uuid],
        tail: &str,
        chunk: usize,
    ) -> StoreResult<Vec<T>>
    where
        T: BackendRow,
    {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(chunk) {
            let rows: Vec<T> = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(select);
                let mut list = query.separated(", ");
                chunk.iter().for_each(|id| {
                    list.push_bind(*id);
                });
                query.push(tail);
                query.build_query_as().fetch_all(&mut **tx).await
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Appended to a SELECT whose rows must stay locked until commit.
    pub(super) fn row_lock(&self) -> &'static str {
        match self.conn {
            Conn::Sqlite(..) => SqliteStore::ROW_LOCK,
            Conn::Postgres(..) => PostgresStore::ROW_LOCK,
        }
    }

    /// Makes every other writer that serializes on `key` wait for this transaction.
    pub async fn serialize_on(&mut self, key: &str) -> StoreResult<()> {
        match &mut self.conn {
            Conn::Sqlite(_, tx) => SqliteStore::serialize_on(tx, key).await,
            Conn::Postgres(_, tx) => PostgresStore::serialize_on(tx, key).await,
        }
    }

    /// [`Self::serialize_on`] every key, in sorted order (as every holder of several takes
    /// them, so two never wait on each other in a cycle), in one round trip.
    pub async fn serialize_on_all(&mut self, keys: &mut Vec<String>) -> StoreResult<()> {
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        match &mut self.conn {
            Conn::Sqlite(_, tx) => SqliteStore::serialize_on_all(tx, keys).await,
            Conn::Postgres(_, tx) => PostgresStore::serialize_on_all(tx, keys).await,
        }
    }

    /// Locks the accounts of all candidates at once (in id order, behind the account gate, as
    /// every posting does), then posts the first candidate the accounts' rules allow, as
    /// `created_by`. Taking every lock up front means trying the next never locks out of
    /// order. `None`: no candidate fits and nothing was written.
    pub async fn post_first_that_fits(
        &mut self,
        candidates: &[NewTransaction],
        created_by: Uuid,
    ) -> StoreResult<Option<usize>> {
        self.post_first_fitting(candidates, created_by, true).await
    }

    /// [`Self::post_first_that_fits`] without waiting at the in-process account gate, for a
    /// unit of work that may already hold account rows from an earlier posting (a group of
    /// bank-feed deliveries): waiting at the gate while holding rows that the gate's holder
    /// waits for would be a deadlock neither the gate nor the database sees. Row locks alone
    /// still order the writers, and the database detects any cycle among them.
    pub async fn post_first_that_fits_ungated(
        &mut self,
        candidates: &[NewTransaction],
        created_by: Uuid,
    ) -> StoreResult<Option<usize>> {
        self.post_first_fitting(candidates, created_by, false).await
    }

    /// Locks these accounts (every account a posting to the ledger names must be among them)
    /// for postings decided in memory one after another, some from what earlier ones
    /// posted, then written together with one [`Self::write_ledger`]. Not gated, as
    /// [`Self::post_first_that_fits_ungated`], for a unit of work that may already hold
    /// account rows.
    pub async fn lock_ledger(
        &mut self,
        account_ids: impl IntoIterator<Item = Uuid>,
    ) -> StoreResult<LockedLedger> {
        let (_no_gates, ledger) = self.gate_and_lock_ledger(account_ids, false).await?;
        Ok(ledger)
    }

    /// Locks the accounts among these that `ledger` has not locked yet (in id order, not
    /// gated either) and adds them to it: for postings that can only be decided after what
    /// the earlier ones posted was followed by locks of other kinds (a school's turn).
    pub async fn lock_more(
        &mut self,
        ledger: &mut LockedLedger,
        account_ids: impl IntoIterator<Item = Uuid>,
    ) -> StoreResult<()> {
        let more: Vec<Uuid> = account_ids
            .into_iter()
            .filter(|id| !ledger.accounts.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if more.is_empty() {
            return Ok(());
        }
        let (_no_gates, accounts) = self.gate_and_lock(&more, false).await?;
        ledger.account_ids.extend(more);
        ledger.accounts.extend(accounts);
        Ok(())
    }

    /// Writes what was posted to the ledger: the transactions, their entries and the
    /// accounts' new totals.
    pub async fn write_ledger(&mut self, ledger: LockedLedger) -> StoreResult<()> {
        if ledger.posted.is_empty() {
            return Ok(());
        }
        let accepted: Vec<(&NewTransaction, Uuid)> =
            ledger.posted.iter().map(|(t, by)| (t, *by)).collect();
        self.write_applied(
            &ledger.account_ids,
            &ledger.accounts,
            &accepted,
            &ledger.entries,
        )
        .await
    }

    async fn post_first_fitting(
        &mut self,
        candidates: &[NewTransaction],
        created_by: Uuid,
        gated: bool,
    ) -> StoreResult<Option<usize>> {
        let account_ids = candidates.iter().flat_map(|t| t.account_ids());
        let (_account_gates, mut ledger) = self.gate_and_lock_ledger(account_ids, gated).await?;
        let posted = ledger.post_first_that_fits(candidates, created_by);
        self.write_ledger(ledger).await?;
        Ok(posted)
    }

    /// Queues at the account gate (when `gated`) and locks these accounts in id order, for a
    /// [`LockedLedger`]; the gates are held for as long as the caller keeps them.
    async fn gate_and_lock_ledger(
        &mut self,
        account_ids: impl IntoIterator<Item = Uuid>,
        gated: bool,
    ) -> StoreResult<(Vec<OwnedMutexGuard<()>>, LockedLedger)> {
        let account_ids: Vec<Uuid> = account_ids
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let (gates, accounts) = self.gate_and_lock(&account_ids, gated).await?;
        Ok((
            gates,
            LockedLedger {
                account_ids,
                accounts,
                posted: Vec::new(),
                entries: Vec::new(),
            },
        ))
    }
}

/// Locked accounts and the transactions posted to them in memory, not yet written
/// ([`UnitOfWork::lock_ledger`], [`UnitOfWork::write_ledger`]). Dropped unwritten, it wrote
/// nothing; the rows stay locked until the unit of work ends.
pub struct LockedLedger {
    /// In the order locked: each batch ([`UnitOfWork::lock_ledger`],
    /// [`UnitOfWork::lock_more`]) in id order.
    account_ids: Vec<Uuid>,
    accounts: HashMap<Uuid, LockedAccount>,
    posted: Vec<(NewTransaction, Uuid)>,
    entries: Vec<Entry>,
}

impl LockedLedger {
    /// Posts each posting's first candidate the accounts' rules allow, one after another as
    /// if each were posted alone. For each: the index of the candidate posted (`None`: none
    /// fits, nothing of it posted) and the (debits, credits) posted of its `watched` account
    /// after it.
    pub fn post_each_first_that_fits(
        &mut self,
        postings: &[Fitting<'_>],
        created_by: Uuid,
    ) -> Vec<Fitted> {
        postings
            .iter()
            .map(|posting| {
                let posted = self.post_first_that_fits(posting.candidates, created_by);
                let watched = self.accounts[&posting.watched].balance;
                Fitted {
                    posted,
                    totals: (watched.debits_posted, watched.credits_posted),
                }
            })
            .collect()
    }

    /// Posts the first candidate the accounts' rules allow: its index, or `None` when none
    /// fits (nothing of them posted). Every account a candidate names must be locked
    /// (`apply` panics otherwise).
    pub fn post_first_that_fits(
        &mut self,
        candidates: &[NewTransaction],
        created_by: Uuid,
    ) -> Option<usize> {
        for (index, candidate) in candidates.iter().enumerate() {
            let Ok(applied) = apply(&mut self.accounts, candidate) else {
                continue;
            };
            assert_balanced(&applied);
            self.entries.extend(applied);
            self.posted.push((candidate.clone(), created_by));
            return Some(index);
        }
        None
    }
}

/// One posting of [`LockedLedger::post_each_first_that_fits`].
pub struct Fitting<'a> {
    /// Tried in order; the first the accounts' rules allow is posted.
    pub candidates: &'a [NewTransaction],
    /// An account (locked with the others) whose totals after this posting the caller needs.
    pub watched: Uuid,
}

impl Fitting<'_> {
    /// The accounts to lock for it: every account a candidate names, and the watched one.
    pub fn account_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.candidates
            .iter()
            .flat_map(|t| t.account_ids())
            .chain([self.watched])
    }
}

/// What became of one [`Fitting`].
#[derive(Debug, Clone, Copy)]
pub struct Fitted {
    pub posted: Option<usize>,
    /// (debits posted, credits posted) of the watched account after this posting.
    pub totals: (i64, i64),
}

fn assert_balanced(entries: &[Entry]) {
    debug_assert_eq!(
        entries
            .iter()
            .filter(|e| e.is_debit)
            .map(|e| e.amount)
            .sum::<i64>(),
        entries
            .iter()
            .filter(|e| !e.is_debit)
            .map(|e| e.amount)
            .sum::<i64>(),
        "a posted transaction balances"
    );
}

/// A row type both backends can decode.
pub(super) trait BackendRow:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + Send
    + Unpin
{
}

impl<T> BackendRow for T where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin
{
}
