//! The embedded default backend. SQLite allows one writer at a time, so writes queue on an
//! in-process gate (instead of spinning on SQLITE_BUSY) and start with BEGIN IMMEDIATE so a
//! transaction never has to upgrade a read lock mid-way.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};

use super::unique_is_conflict;
use tokio::sync::{Mutex, OwnedMutexGuard};

use std::collections::HashMap;

use uuid::Uuid;

use super::ledger::CHUNK_ROWS;
use super::rows::{LockedAccountRow, ENTRY_COLUMNS, LOCKED_ACCOUNT_COLUMNS};
use super::{StoreError, StoreResult};
use crate::domain::transaction::{Entry, LockedAccount, NewTransaction};

pub struct SqliteStore {
    pool: SqlitePool,
    write_gate: Arc<Mutex<()>>,
}

/// One of the totals an account row keeps.
type AccountTotal = fn(&LockedAccount) -> i64;

impl SqliteStore {
    /// BEGIN IMMEDIATE already holds the database's write lock, so reads need no row locks.
    pub(super) const ROW_LOCK: &'static str = "";

    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        if let Some(folder) = options.get_filename().parent() {
            if folder != Path::new("") {
                std::fs::create_dir_all(folder).map_err(|e| {
                    StoreError::Database(sqlx::Error::Configuration(
                        format!("cannot create database folder {}: {e}", folder.display()).into(),
                    ))
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            write_gate: Arc::new(Mutex::new(())),
        })
    }

    pub(super) async fn begin_write(
        &self,
    ) -> StoreResult<(Option<OwnedMutexGuard<()>>, Transaction<'static, Sqlite>)> {
        let guard = self.write_gate.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok((Some(guard), tx))
    }
    /// BEGIN IMMEDIATE already admits one writer at a time.
    pub(super) async fn serialize_on(
        _tx: &mut Transaction<'static, Sqlite>,
        _key: &str,
    ) -> StoreResult<()> {
        Ok(())
    }

    pub(super) async fn serialize_on_all(
        _tx: &mut Transaction<'static, Sqlite>,
        _keys: &[String],
    ) -> StoreResult<()> {
        Ok(())
    }

    /// In WAL mode a read transaction sees one snapshot from its first read on.
    async fn begin_snapshot_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin().await?)
    }

    /// The write gate already admits one writer at a time.
    pub(super) async fn gate_accounts(&self, _ids: &[Uuid]) -> Vec<OwnedMutexGuard<()>> {
        Vec::new()
    }

    /// BEGIN IMMEDIATE already holds the database's write lock: reading is locking.
    pub(super) async fn lock_accounts(
        tx: &mut Transaction<'static, Sqlite>,
        ids: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, LockedAccount>> {
        let mut locked = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK_ROWS) {
            let mut query = QueryBuilder::<Sqlite>::new(format!(
                "SELECT {LOCKED_ACCOUNT_COLUMNS} FROM accounts WHERE id IN ("
            ));
            let mut list = query.separated(", ");
            chunk.iter().for_each(|id| {
                list.push_bind(*id);
            });
            query.push(")");
            let rows: Vec<LockedAccountRow> = query.build_query_as().fetch_all(&mut **tx).await?;
            locked.extend(rows.into_iter().map(LockedAccountRow::into_locked));
        }
        Ok(locked)
    }

    pub(super) async fn insert_transactions(
        tx: &mut Transaction<'static, Sqlite>,
        transactions: &[(&NewTransaction, Uuid)],
    ) -> StoreResult<()> {
        for chunk in transactions.chunks(CHUNK_ROWS) {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO transactions (id, description, reference, metadata, \
                 effective_at, created_at, reversal_of, created_by) ",
            );
            query.push_values(chunk, |mut row, (t, created_by)| {
                row.push_bind(t.id)
                    .push_bind(t.description.as_str())
                    .push_bind(t.reference.as_deref())
                    .push_bind(t.metadata.as_deref())
                    .push_bind(t.effective_at)
                    .push_bind(t.created_at)
                    .push_bind(t.reversal_of)
                    .push_bind(*created_by);
            });
            query
                .build()
                .execute(&mut **tx)
                .await
                .map_err(unique_is_conflict)?;
        }
        Ok(())
    }

    /// New account totals and the entries that justify them.
    pub(super) async fn write_postings(
        tx: &mut Transaction<'static, Sqlite>,
        balances: &[(Uuid, LockedAccount)],
        entries: &[Entry],
    ) -> StoreResult<()> {
        // One statement per chunk, not one per account: each statement is a hop to SQLite's
        // worker thread, and a school payment touches half a dozen accounts.
        for chunk in balances.chunks(CHUNK_ROWS / 8) {
            let mut query = QueryBuilder::<Sqlite>::new("UPDATE accounts SET ");
            let columns: [(&str, AccountTotal); 3] = [
                ("debits_posted", |a| a.balance.debits_posted),
                ("credits_posted", |a| a.balance.credits_posted),
                ("entry_count", |a| a.balance.entry_count),
            ];
            for (index, (column, value)) in columns.iter().enumerate() {
                if index > 0 {
                    query.push(", ");
                }
                query.push(column).push(" = CASE id");
                for (id, state) in chunk {
                    query
                        .push(" WHEN ")
                        .push_bind(*id)
                        .push(" THEN ")
                        .push_bind(value(state));
                }
                query.push(" END");
            }
            query.push(" WHERE id IN (");
            let mut list = query.separated(", ");
            chunk.iter().for_each(|(id, _)| {
                list.push_bind(*id);
            });
            query.push(")");
            let updated = query.build().execute(&mut **tx).await?.rows_affected();
            if updated != chunk.len() as u64 {
                return Err(StoreError::Corrupt(format!(
                    "{updated} of {} posted accounts updated",
                    chunk.len()
                )));
            }
        }
        for chunk in entries.chunks(CHUNK_ROWS) {
            let mut query =
                QueryBuilder::<Sqlite>::new(format!("INSERT INTO entries ({ENTRY_COLUMNS}) "));
            query.push_values(chunk, |mut row, e| {
                row.push_bind(e.transaction_id)
                    .push_bind(e.posting_index)
                    .push_bind(e.account_id)
                    .push_bind(e.account_seq)
                    .push_bind(e.is_debit)
                    .push_bind(e.amount)
                    .push_bind(e.debits_after)
                    .push_bind(e.credits_after)
                    .push_bind(e.effective_at)
                    .push_bind(e.created_at);
            });
            query.build().execute(&mut **tx).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl super::Backend for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn pool(&self) -> super::Pool<'_> {
        super::Pool::Sqlite(&self.pool)
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    /// `VACUUM INTO` reads one snapshot (WAL mode lets writers go on meanwhile) and writes a
    /// compact, self-contained database file; it refuses to overwrite an existing file.
    async fn backup_to(&self, path: &str) -> StoreResult<()> {
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin_snapshot(&self) -> StoreResult<super::UnitOfWork<'_>> {
        Ok(super::UnitOfWork {
            conn: super::unit_of_work::Conn::Sqlite(self, self.begin_snapshot_tx().await?),
            _write_guard: None,
        })
    }

    async fn begin_unit(&self) -> StoreResult<super::UnitOfWork<'_>> {
        let (write_guard, tx) = self.begin_write().await?;
        Ok(super::UnitOfWork {
            conn: super::unit_of_work::Conn::Sqlite(self, tx),
            _write_guard: write_guard,
        })
    }

    /// SQLite plans a prepared statement once anyway.
    async fn begin_group_unit(&self) -> StoreResult<super::UnitOfWork<'_>> {
        self.begin_unit().await
    }
}
