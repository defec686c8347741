//! The production backend. Writers lock the account rows they touch (in id order, so no
//! deadlock cycles) and otherwise run concurrently; several service instances may share one
//! database.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::rows::{LockedAccountRow, ENTRY_COLUMNS, LOCKED_ACCOUNT_COLUMNS};
use super::schools::NewSchoolPayment;
use super::{unique_is_conflict, StoreResult};
use crate::domain::intent::IntentStatus;
use crate::domain::transaction::{Entry, LockedAccount, NewTransaction};

pub struct PostgresStore {
    pool: PgPool,
    /// The webhook group writer's own connection (see `begin_group_unit`).
    group_pool: PgPool,
    gate: AccountGate,
}

/// In-process queues in front of the account row locks. Writers to a busy account wait here,
/// in cheap async tasks, instead of as database backends that all wake and race for the row
/// each time it is released. The row locks still decide correctness (and order writers from
/// other instances); this only shortens the queue inside the database.
struct AccountGate {
    stripes: Vec<Arc<Mutex<()>>>,
}

impl AccountGate {
    const STRIPES: usize = 1024;

    fn new() -> Self {
        Self {
            stripes: (0..Self::STRIPES)
                .map(|_| Arc::new(Mutex::new(())))
                .collect(),
        }
    }

    /// Waits for every stripe the accounts map to, in stripe order (so gates never deadlock).
    async fn enter(&self, ids: &[Uuid]) -> Vec<OwnedMutexGuard<()>> {
        let stripes: BTreeSet<usize> = ids
            .iter()
            .map(|id| (id.as_u128() % Self::STRIPES as u128) as usize)
            .collect();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.stripes[stripe].clone().lock_owned().await);
        }
        guards
    }
}

/// Prepared statements each connection keeps (sqlx's default is 100). The group writers'
/// statements list one placeholder per row, so each group size is its own statement text, and
/// the connection a webhook group uses sees many: with 100 they evicted one another and were
/// parsed again (a round trip more). Each costs the server memory for as long as the
/// connection lives, hence a bound. PostgreSQL's own plan caching (`plan_cache_mode = auto`)
/// is left to choose: after five executions a statement whose generic plan costs no more than
/// its custom ones keeps the generic plan. Forcing a plan per execution made every statement
/// and every foreign-key check (each entry row runs two) pay for planning again; measured on
/// `bench/ledger.sh`, single transfers went from 1,395 to 2,003 a second on PostgreSQL and
/// webhooks from 1,183 to 1,824 when that was dropped.
const STATEMENT_CACHE_CAPACITY: usize = 512;

/// What the planner assumes a page read out of order costs, against 1 for one read in order
/// (PostgreSQL's default is 4, for spinning disks). This service's working set (accounts,
/// open charges, intents) lives in memory, where the two cost the same; with 4, a webhook
/// group's 40 charge updates were planned as a hash join over all of a school's 5,000
/// charges (0.75 ms) instead of 40 index lookups (0.1 ms), and its account totals as a walk
/// over every account. 1.1 is the usual figure for SSDs and cached data.
const RANDOM_PAGE_COST: &str = "1.1";

/// How a group writer's transaction begins (see `begin_group_unit`), in the same round trip.
const GROUP_BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

impl PostgresStore {
    /// Appended to a SELECT that must hold the rows it read until commit.
    pub(super) const ROW_LOCK: &'static str = " FOR UPDATE";

    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        // A lock wait this long means something is stuck; the request fails as retryable
        // (503) instead of holding its connection and account gates indefinitely.
        let options = url
            .parse::<PgConnectOptions>()?
            .options([
                ("lock_timeout", "10s"),
                ("plan_cache_mode", "auto"),
                ("random_page_cost", RANDOM_PAGE_COST),
            ])
            .statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        // One writer task writes one group at a time (`services::bank_feed::group`).
        let group_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            group_pool,
            gate: AccountGate::new(),
        })
    }

    pub(super) async fn begin_write(
        &self,
    ) -> StoreResult<(Option<OwnedMutexGuard<()>>, Transaction<'static, Postgres>)> {
        Ok((None, self.pool.begin().await?))
    }
    /// Holds a transaction-scoped advisory lock on `key` until commit or rollback.
    pub(super) async fn serialize_on(
        tx: &mut Transaction<'static, Postgres>,
        key: &str,
    ) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// [`Self::serialize_on`] every key, in the order given, in one statement.
    pub(super) async fn serialize_on_all(
        tx: &mut Transaction<'static, Postgres>,
        keys: &[String],
    ) -> StoreResult<()> {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM UNNEST($1::text[]) AS k",
        )
        .bind(keys)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn begin_snapshot_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?)
    }

    pub(super) async fn gate_accounts(&self, ids: &[Uuid]) -> Vec<OwnedMutexGuard<()>> {
        self.gate.enter(ids).await
    }

    /// Locks in id order, so two writers never wait on each other in a cycle. NO KEY UPDATE,
    /// not UPDATE: entry inserts take KEY SHARE locks on their account through the foreign key
    /// and must not queue behind a balance update.
    pub(super) async fn lock_accounts(
        tx: &mut Transaction<'static, Postgres>,
        ids: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, LockedAccount>> {
        let rows: Vec<LockedAccountRow> = sqlx::query_as(&format!(
            "SELECT {LOCKED_ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1) \
             ORDER BY id FOR NO KEY UPDATE"
        ))
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(LockedAccountRow::into_locked)
            .collect())
    }

    pub(super) async fn insert_transactions(
        tx: &mut Transaction<'static, Postgres>,
        transactions: &[(&NewTransaction, Uuid)],
    ) -> StoreResult<()> {
        let column = |pick: fn(&NewTransaction) -> Option<&str>| {
            transactions
                .iter()
                .map(|(t, _)| pick(t))
                .collect::<Vec<_>>()
        };
        sqlx::query(
            "INSERT INTO transactions (id, description, reference, metadata, effective_at, \
               created_at, reversal_of, created_by) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], \
               $5::int8[], $6::int8[], $7::uuid[], $8::uuid[])",
        )
        .bind(transactions.iter().map(|(t, _)| t.id).collect::<Vec<_>>())
        .bind(column(|t| Some(t.description.as_str())))
        .bind(column(|t| t.reference.as_deref()))
        .bind(column(|t| t.metadata.as_deref()))
        .bind(
            transactions
                .iter()
                .map(|(t, _)| t.effective_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            transactions
                .iter()
                .map(|(t, _)| t.created_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            transactions
                .iter()
                .map(|(t, _)| t.reversal_of)
                .collect::<Vec<_>>(),
        )
        .bind(transactions.iter().map(|(_, by)| *by).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(unique_is_conflict)?;
        Ok(())
    }

    /// New account totals and the entries that justify them, in one statement: the rows are
    /// locked, and every round trip here is time other writers wait for them.
    pub(super) async fn write_postings(
        tx: &mut Transaction<'static, Postgres>,
        balances: &[(Uuid, LockedAccount)],
        entries: &[Entry],
    ) -> StoreResult<()> {
        sqlx::query(&format!(
            "WITH totals AS ( \
               UPDATE accounts SET debits_posted = t.debits, credits_posted = t.credits, \
                 entry_count = t.entries \
               FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::int8[]) \
                 AS t(id, debits, credits, entries) \
               WHERE accounts.id = t.id) \
             INSERT INTO entries ({ENTRY_COLUMNS}) \
             SELECT * FROM UNNEST($5::uuid[], $6::int4[], $7::uuid[], $8::int8[], $9::bool[], \
               $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::int8[])"
        ))
        .bind(balances.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .bind(
            balances
                .iter()
                .map(|(_, s)| s.balance.debits_posted)
                .collect::<Vec<_>>(),
        )
        .bind(
            balances
                .iter()
                .map(|(_, s)| s.balance.credits_posted)
                .collect::<Vec<_>>(),
        )
        .bind(
            balances
                .iter()
                .map(|(_, s)| s.balance.entry_count)
                .collect::<Vec<_>>(),
        )
        .bind(entries.iter().map(|e| e.transaction_id).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.posting_index).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.account_id).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.account_seq).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.is_debit).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.amount).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.debits_after).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.credits_after).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.effective_at).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.created_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

impl PostgresStore {
    /// School payments, their allocations, the charges' new paid amounts and the paid
    /// intents' new amounts and statuses in one statement (the foreign keys are checked at
    /// its end): the group of webhook deliveries it runs in holds the collection account's
    /// row meanwhile. The numbers of charges and intents updated.
    pub(super) async fn insert_school_payments_with_allocations(
        tx: &mut Transaction<'static, Postgres>,
        payments: &[(&NewSchoolPayment, &[(Uuid, i64)])],
        paid_intents: &[(Uuid, i64, IntentStatus)],
        now: i64,
    ) -> StoreResult<(u64, u64)> {
        let allocations = || {
            payments.iter().flat_map(|(payment, allocations)| {
                allocations
                    .iter()
                    .map(move |allocation| (payment, allocation))
            })
        };
        let column = |f: fn(&NewSchoolPayment) -> Option<Uuid>| {
            payments.iter().map(|(p, _)| f(p)).collect::<Vec<_>>()
        };
        // Data-modifying CTEs all run, referenced or not; the counts check what they did.
        let (charges, intents): (i64, i64) = sqlx::query_as(
            "WITH payment AS ( \
               INSERT INTO school_payments (id, school_id, pupil_id, method, amount, \
                 ledger_transaction_id, bank_transaction_id, receipt_id, cancelled_at, \
                 created_at) \
               SELECT t.id, t.school_id, t.pupil_id, t.method, t.amount, t.ledger_transaction_id, \
                 t.bank_transaction_id, t.receipt_id, NULL, $9 \
               FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int8[], \
                 $6::uuid[], $7::uuid[], $8::uuid[]) AS t(id, school_id, pupil_id, method, amount, \
                 ledger_transaction_id, bank_transaction_id, receipt_id)), \
             allocations AS ( \
               INSERT INTO school_allocations (id, payment_id, charge_id, amount, \
                 ledger_transaction_id, cancelled_at, created_at) \
               SELECT t.id, t.payment_id, t.charge_id, t.amount, t.ledger_transaction_id, NULL, $9 \
               FROM UNNEST($10::uuid[], $11::uuid[], $12::uuid[], $13::int8[], $14::uuid[]) \
                 AS t(id, payment_id, charge_id, amount, ledger_transaction_id)), \
             charges AS ( \
               UPDATE school_charges SET paid = paid + t.amount \
               FROM UNNEST($12::uuid[], $13::int8[]) AS t(charge_id, amount) \
               WHERE school_charges.id = t.charge_id RETURNING 1), \
             intents AS ( \
               UPDATE payment_intents SET paid_amount = t.paid_amount, status = t.status \
               FROM UNNEST($15::uuid[], $16::int8[], $17::text[]) AS t(id, paid_amount, status) \
               WHERE payment_intents.id = t.id RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM charges), (SELECT COUNT(*) FROM intents)",
        )
        .bind(column(|p| Some(p.id)))
        .bind(column(|p| Some(p.school_id)))
        .bind(column(|p| Some(p.pupil_id)))
        .bind(payments.iter().map(|(p, _)| p.method()).collect::<Vec<_>>())
        .bind(payments.iter().map(|(p, _)| p.amount).collect::<Vec<_>>())
        .bind(column(|p| Some(p.ledger_transaction_id)))
        .bind(column(|p| p.bank_transaction_id))
        .bind(column(|p| p.receipt_id))
        .bind(now)
        .bind(allocations().map(|_| super::id_at(now)).collect::<Vec<_>>())
        .bind(allocations().map(|(p, _)| p.id).collect::<Vec<_>>())
        .bind(
            allocations()
                .map(|(_, (charge, _))| *charge)
                .collect::<Vec<_>>(),
        )
        .bind(
            allocations()
                .map(|(_, (_, amount))| *amount)
                .collect::<Vec<_>>(),
        )
        .bind(
            allocations()
                .map(|(p, _)| p.ledger_transaction_id)
                .collect::<Vec<_>>(),
        )
        .bind(
            paid_intents
                .iter()
                .map(|(id, _, _)| *id)
                .collect::<Vec<_>>(),
        )
        .bind(
            paid_intents
                .iter()
                .map(|(_, paid, _)| *paid)
                .collect::<Vec<_>>(),
        )
        .bind(
            paid_intents
                .iter()
                .map(|(_, _, status)| status.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_one(&mut **tx)
        .await?;
        Ok((charges as u64, intents as u64))
    }
}

#[async_trait::async_trait]
impl super::Backend for PostgresStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn pool(&self) -> super::Pool<'_> {
        super::Pool::Postgres(&self.pool)
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// PostgreSQL has its own tools for this (`pg_dump`, `pg_basebackup` and WAL archiving);
    /// the README says how.
    async fn backup_to(&self, _path: &str) -> StoreResult<()> {
        Err(super::StoreError::BackupByDatabaseTools)
    }

    async fn begin_snapshot(&self) -> StoreResult<super::UnitOfWork<'_>> {
        Ok(super::UnitOfWork {
            conn: super::unit_of_work::Conn::Postgres(self, self.begin_snapshot_tx().await?),
            _write_guard: None,
        })
    }

    async fn begin_unit(&self) -> StoreResult<super::UnitOfWork<'_>> {
        let (write_guard, tx) = self.begin_write().await?;
        Ok(super::UnitOfWork {
            conn: super::unit_of_work::Conn::Postgres(self, tx),
            _write_guard: write_guard,
        })
    }

    /// The group writer's statements are the same few every group, each looking rows up by
    /// key or by a list of keys, so one generic plan serves every execution; with PostgreSQL's
    /// own choice (`auto`) most of them kept being planned per execution, which took about as
    /// long as running them (pg_stat_statements on `bench/schools.sh`'s pupil payments).
    async fn begin_group_unit(&self) -> StoreResult<super::UnitOfWork<'_>> {
        let tx = self.group_pool.begin_with(GROUP_BEGIN).await?;
        Ok(super::UnitOfWork {
            conn: super::unit_of_work::Conn::Postgres(self, tx),
            _write_guard: None,
        })
    }
}
