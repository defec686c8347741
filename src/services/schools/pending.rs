//! Settling the school's side of pupils' bank transfers after the webhook is answered.
//!
//! A webhook group that records transfers to pupils' QRs in a run (`bank_feed::batch`) posts
//! the money from the bank to the school's pending account (`school:<code>:pending`, which
//! only that group credits and only the settlement debits, so nothing else can spend the
//! money meanwhile), writes the bank record and the QR's paid amount, and leaves a pending
//! row per transfer, all in its one database transaction; it takes no school's turn. The rest
//! (the leg to the pupil's receivable, which charges the money pays, the payment and its
//! allocations, the legs from `uncollected` to the funds) is settled here, oldest first, by
//! the code that settles a transfer recorded alone ([`settle_pupil_transfers`]), for many
//! groups' transfers at once.
//!
//! Lock order: the pending account, then the school's turn, the pending rows, the pupils'
//! charges and the school's other accounts. The webhook group locks the pending account with
//! the bank's accounts and takes a turn, if at all, only after (for a delivery it records
//! alone); a transfer recorded alone, a household QR's split, a statement line and a suspense
//! resolution lock it before their turn and settle the school's pending rows first in their
//! own transaction ([`settle_pending`]), then their own money, in arrival order. Every other
//! school use case, and every school report, touches no pending account: it first waits
//! (holding nothing) until the transfers that had arrived when it started are settled
//! ([`PendingSettlements::settled`]); one arriving later is settled after it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use super::{pending_accounts, settle_pupil_transfers, PupilTransfer};
use crate::clock::Clock;
use crate::store::{Store, StoreError, UnitOfWork};

/// Pending transfers one settlement transaction takes at most: a school's turn is held for as
/// long as they take.
const MAX_PENDING_PER_SETTLEMENT: i64 = 500;
/// The worker looks for pending rows this often even when nobody wakes it: rows a crash or
/// another instance left.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// After a failed settlement the worker waits this long before trying that school again.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How long a school use case waits for the worker before it goes on without it.
const MAX_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting use case looks again.
const WAIT_STEP: Duration = Duration::from_millis(5);

/// The handle of this instance's settlement worker.
#[derive(Clone)]
pub struct PendingSettlements {
    store: Arc<dyn Store>,
    clock: Clock,
    wake: Arc<Notify>,
    /// Set by a webhook group that left pending rows, for its writer to wake the worker
    /// once the group is committed (woken before, it could look before the rows exist).
    marked: Arc<AtomicBool>,
}

impl PendingSettlements {
    /// Starts the worker. Must be called within a Tokio runtime.
    pub fn start(store: Arc<dyn Store>, clock: Clock) -> Self {
        let wake = Arc::new(Notify::new());
        tokio::spawn(supervise(store.clone(), clock.clone(), wake.clone()));
        Self {
            store,
            clock,
            wake,
            marked: Arc::default(),
        }
    }

    /// Notes that the transaction being written leaves pending rows (see [`Self::wake_marked`]).
    pub fn mark(&self) {
        self.marked.store(true, Ordering::Release);
    }

    /// Once a webhook group is committed: wakes the worker if the group left pending rows.
    pub fn wake_marked(&self) {
        if self.marked.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Waits until the school's transfers that have arrived by now are settled (or
    /// [`MAX_WAIT`] passed: the worker is failing, logged, and what waits goes on as if they
    /// arrived after it).
    pub async fn settled(&self, school_id: Uuid) -> Result<(), StoreError> {
        let arrived_by = self.clock.now_micros();
        let started = tokio::time::Instant::now();
        while self.pending(school_id, arrived_by).await? {
            if started.elapsed() > MAX_WAIT {
                tracing::error!(%school_id, "pupils' transfers still pending settlement after {MAX_WAIT:?}; going on without them");
                return Ok(());
            }
            self.wake.notify_one();
            tokio::time::sleep(WAIT_STEP).await;
        }
        Ok(())
    }

    async fn pending(&self, school_id: Uuid, arrived_by: i64) -> Result<bool, StoreError> {
        let mut snapshot = self.store.school_snapshot().await?;
        snapshot.has_pending_transfers(school_id, arrived_by).await
    }
}

/// Runs the worker, and runs it again if it panics (a bug, logged): a school's pending
/// transfers must not wait for a restart.
async fn supervise(store: Arc<dyn Store>, clock: Clock, wake: Arc<Notify>) {
    loop {
        let worker = tokio::spawn(work(store.clone(), clock.clone(), wake.clone()));
        match worker.await {
            Err(error) if error.is_panic() => {
                tracing::error!(%error, "the settlement worker panicked; starting it again");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            // Cancelled: the runtime is shutting down.
            _ => return,
        }
    }
}

/// The worker: settles every school's pending transfers whenever woken, and every
/// [`IDLE_POLL`].
async fn work(store: Arc<dyn Store>, clock: Clock, wake: Arc<Notify>) {
    loop {
        let _ = tokio::time::timeout(IDLE_POLL, wake.notified()).await;
        let schools = match schools_with_pending(store.as_ref()).await {
            Ok(schools) => schools,
            Err(error) => {
                tracing::warn!(%error, "cannot read the schools with pending transfers");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        for (school_id, account_id) in schools {
            // One school failing (logged, tried again at the next round) holds up no other.
            let settled = settle_school(store.as_ref(), &clock, school_id, account_id).await;
            if let Err(error) = settled {
                tracing::warn!(%error, %school_id, "settling pupils' pending transfers failed");
                tokio::time::sleep(RETRY_PAUSE).await;
                wake.notify_one();
            }
        }
    }
}

async fn schools_with_pending(store: &dyn Store) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    let mut snapshot = store.school_snapshot().await?;
    snapshot.schools_with_pending_transfers().await
}

/// Settles all of the school's pending transfers, [`MAX_PENDING_PER_SETTLEMENT`] per
/// database transaction.
#[tracing::instrument(skip(store, clock))]
async fn settle_school(
    store: &dyn Store,
    clock: &Clock,
    school_id: Uuid,
    account_id: Uuid,
) -> Result<(), StoreError> {
    loop {
        let mut unit = store.begin().await?;
        // Before the turn (see the module comment); left unwritten, it only holds the row.
        drop(unit.lock_ledger([account_id]).await?);
        let settled = settle_pending(&mut unit, clock, school_id).await?;
        unit.commit().await?;
        metrics::counter!("school_pending_transfers_settled_total").increment(settled as u64);
        if settled < MAX_PENDING_PER_SETTLEMENT as usize {
            return Ok(());
        }
    }
}

/// Finds (or creates) and locks the pending accounts of these schools (by payee code), for a
/// use case that will settle their pending transfers: before it takes a school's turn.
pub(super) async fn lock_pending_accounts(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    codes: &[&str],
) -> Result<(), StoreError> {
    let accounts = pending_accounts(unit, codes, clock.now_micros()).await?;
    drop(unit.lock_ledger(accounts.into_values()).await?);
    Ok(())
}

/// Settles up to [`MAX_PENDING_PER_SETTLEMENT`] of the school's pending transfers, oldest
/// first, in the caller's unit of work, which holds the school's pending account (locked
/// before the turn, which this takes if the caller has not). Returns how many it settled.
pub(super) async fn settle_pending(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    school_id: Uuid,
) -> Result<usize, StoreError> {
    super::serialize_school(unit, school_id).await?;
    let pending = unit
        .lock_pending_transfers(school_id, MAX_PENDING_PER_SETTLEMENT)
        .await?;
    let mut rest = pending.as_slice();
    while !rest.is_empty() {
        // A pupil settles once per pass, so each transfer sees what the one before it paid.
        let mut pupils = HashSet::new();
        let run = rest
            .iter()
            .take_while(|p| pupils.insert(p.target.pupil.id))
            .count();
        let transfers: Vec<PupilTransfer<'_>> = rest[..run]
            .iter()
            .map(|p| PupilTransfer {
                target: &p.target,
                credited: p.amount,
                bank_transaction_id: p.bank_transaction_id,
            })
            .collect();
        settle_pupil_transfers(unit, clock, &transfers)
            .await?
            .write(unit)
            .await?;
        rest = &rest[run..];
    }
    let settled: Vec<Uuid> = pending.iter().map(|p| p.bank_transaction_id).collect();
    unit.delete_pending_transfers(&settled).await?;
    Ok(settled.len())
}
