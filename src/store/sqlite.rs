//! The embedded default backend. SQLite allows one writer at a time, so writes queue on an
//! in-process gate (instead of spinning on SQLITE_BUSY) and start with BEGIN IMMEDIATE so a
//! transaction never has to upgrade a read lock mid-way.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{StoreError, StoreResult};

pub struct SqliteStore {
    pool: SqlitePool,
    write_gate: Arc<Mutex<()>>,
}

impl SqliteStore {
    const LOCK_ROWS: &'static str = "";

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

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    async fn begin_write(
        &self,
    ) -> StoreResult<(Option<OwnedMutexGuard<()>>, Transaction<'static, Sqlite>)> {
        let guard = self.write_gate.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok((Some(guard), tx))
    }

    /// In WAL mode a read transaction sees one snapshot from its first read on.
    async fn begin_snapshot(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin().await?)
    }
}

impl_store!(SqliteStore, Sqlite, "sqlite");
