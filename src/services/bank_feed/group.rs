//! Group commit of webhook deliveries (see `services::group_commit`). The bank transactions
//! of deliveries that arrive while a group is being written wait in a queue; the next group
//! records many of them, in order, in ONE database transaction, so they share one commit (one
//! fsync) and the collection account's row lock is taken once per group rather than once per
//! delivery; runs of incoming transfers (those paying intents and school pupils too) are read,
//! posted and written with a few statements for the whole run (`batch.rs`), the others one by
//! one. Each keeps its own semantics: it sees what the ones before it in
//! the group wrote (a second copy of a transfer is a duplicate, an intent paid earlier in the
//! group is already paid), its answer and events come after the commit, and if the group
//! fails each is recorded again alone, so one bad delivery fails only itself.
//!
//! One writer task per instance: a group holds the rows of every posting it has made so far,
//! so two groups of one instance would only wait for each other (or deadlock, when their
//! deliveries name the same accounts in different orders). Groups of two instances sharing a
//! PostgreSQL database may still deadlock; the database aborts one, which is then written one
//! by one.

use std::time::Duration;

use super::record::{Arrival, IngestOutcome, Recorder};
use super::BankFeedError;
use crate::services::group_commit::{Coalescer, GroupWriter};

/// Deliveries one database transaction carries at most: a bigger group would hold the
/// collection account's row (and every payee's it credits) for longer than it saves.
const MAX_DELIVERIES: usize = 64;

pub(super) struct DeliveryWriter {
    recorder: Recorder,
}

pub(super) type Deliveries = Coalescer<DeliveryWriter>;

/// Starts the writer task; it stops when the last clone is dropped.
pub(super) fn start(recorder: Recorder) -> Deliveries {
    Coalescer::start(DeliveryWriter { recorder }, 1)
}

#[async_trait::async_trait]
impl GroupWriter for DeliveryWriter {
    type Request = Arrival;
    type Outcome = IngestOutcome;
    type Error = BankFeedError;
    /// Copies of one transfer may share a group: the second one's claim finds the first's.
    type Key = ();

    const MAX_GROUP: usize = MAX_DELIVERIES;
    /// A provider waits seconds for its answer; 2 ms is the time the deliveries answered by
    /// the last commit take to come back (measured on `bench/ledger.sh`: without it, half the
    /// groups carried one delivery).
    const LINGER: Duration = Duration::from_millis(2);

    async fn write(&self, arrivals: &[Arrival]) -> Result<Vec<IngestOutcome>, BankFeedError> {
        let mut unit = self.recorder.store.begin_group().await?;
        let outcomes = self.recorder.record_all(&mut unit, arrivals).await?;
        unit.commit().await?;
        metrics::histogram!("webhook_group_size").record(arrivals.len() as f64);
        Ok(outcomes)
    }

    fn key(&self, _: &Arrival) -> Option<()> {
        None
    }
}
