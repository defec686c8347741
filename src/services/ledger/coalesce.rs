//! Group commit for single-transaction requests. Requests that arrive while a write is in
//! flight wait in a queue; the next write takes all of them (up to a limit) into one database
//! transaction, so one commit and one round of account locks serve many requests. Under load
//! this is what keeps a busy account (every payment to one market stall) as fast as many quiet
//! ones: its writers share commits instead of queueing for its row lock one by one.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use crate::domain::audit::AuditRecord;
use crate::domain::transaction::NewTransaction;
use crate::store::{
    IdempotencyClaim, SingleOutcome, SingleWrite, Store, StoreError, StoredResponse,
};

/// Most requests one database transaction carries.
const MAX_GROUP: usize = 128;
/// Writers running at once; more would only contend for the same rows and cores.
const WRITERS: usize = 2;
const QUEUE: usize = 4096;

pub struct Job {
    pub created_by: Uuid,
    pub claim: IdempotencyClaim,
    pub transaction: NewTransaction,
    pub response: StoredResponse,
    /// Written with the transaction when it posts: the change a person made (a reversal).
    pub audit: Option<AuditRecord>,
    pub reply: oneshot::Sender<Result<SingleOutcome, StoreError>>,
}

#[derive(Clone)]
pub struct Coalescer {
    queue: mpsc::Sender<Job>,
}

impl Coalescer {
    /// Starts the writer tasks; they stop when the last `Coalescer` clone is dropped.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_groups(store.clone(), receiver.clone()));
        }
        Self { queue }
    }

    pub async fn submit(&self, job: Job) -> Result<(), Job> {
        self.queue.send(job).await.map_err(|e| e.0)
    }
}

async fn write_groups(store: Arc<dyn Store>, receiver: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut group = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            match receiver.recv().await {
                Some(job) => group.push(job),
                None => return,
            }
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
        }
        // A key may appear twice (a client retrying while its first attempt waits): the
        // repeat goes in a later round and then replays the first one's stored response.
        while !group.is_empty() {
            let mut seen = HashSet::new();
            let (round, later): (Vec<Job>, Vec<Job>) = group
                .into_iter()
                .partition(|job| seen.insert((job.claim.user_id, job.claim.key.clone())));
            write_round(store.as_ref(), round).await;
            group = later;
        }
    }
}

async fn write_round(store: &dyn Store, round: Vec<Job>) {
    let writes: Vec<SingleWrite<'_>> = round
        .iter()
        .map(|job| SingleWrite {
            created_by: job.created_by,
            claim: &job.claim,
            transaction: &job.transaction,
            response: &job.response,
            audit: job.audit.as_ref(),
        })
        .collect();
    match store.post_singles(&writes).await {
        Ok(outcomes) => {
            for (job, outcome) in round.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
        }
        // The group failed as a whole (a concurrent write took a client-chosen id first, or
        // the database failed): each request is written alone, and answers for itself.
        Err(error) => {
            tracing::debug!(%error, size = round.len(), "group write failed; writing one by one");
            for job in round {
                let alone = SingleWrite {
                    created_by: job.created_by,
                    claim: &job.claim,
                    transaction: &job.transaction,
                    response: &job.response,
                    audit: job.audit.as_ref(),
                };
                let outcome = store
                    .post_singles(std::slice::from_ref(&alone))
                    .await
                    .map(|mut outcomes| outcomes.remove(0));
                let _ = job.reply.send(outcome);
            }
        }
    }
}
