//! The production backend. Writers lock the account rows they touch (in id order, so no
//! deadlock cycles) and otherwise run concurrently; several service instances may share one
//! database.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::OwnedMutexGuard;

use super::StoreResult;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// NO KEY UPDATE, not UPDATE: entry inserts take KEY SHARE locks on their account through
    /// the foreign key, and must not queue behind a balance update.
    const LOCK_ROWS: &'static str = " FOR NO KEY UPDATE";

    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin_write(
        &self,
    ) -> StoreResult<(Option<OwnedMutexGuard<()>>, Transaction<'static, Postgres>)> {
        Ok((None, self.pool.begin().await?))
    }

    async fn begin_snapshot(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?)
    }
}

impl_store!(PostgresStore, Postgres, "postgres");
