//! Group commit. Requests that arrive while a write is in flight wait in a queue; the next
//! writer takes many of them (up to a limit) into one database transaction, so one commit and
//! one round of row locks serve them all. Under load this is what keeps a busy account (every
//! payment to one market stall, every webhook into one collection account) as fast as many
//! quiet ones: its writers share commits instead of queueing for its row lock one by one.
//!
//! What a group writes is the [`GroupWriter`]'s business (single transfers in
//! `ledger::coalesce`, bank-feed deliveries in `bank_feed::group`); this module only queues,
//! groups, and falls back to writing one by one when a group fails, so one request that fails
//! never fails the others that happened to share its transaction.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::{timeout_at, Instant};

const QUEUE: usize = 4096;

/// Writes a group of requests in one database transaction.
#[async_trait::async_trait]
pub trait GroupWriter: Send + Sync + 'static {
    type Request: Send + Sync + 'static;
    type Outcome: Send + 'static;
    type Error: std::fmt::Display + Send + 'static;
    /// Two requests with the same key never share a transaction: the later one goes in the
    /// next round and sees the first one's result.
    type Key: Hash + Eq + Send;

    /// Most requests one database transaction carries.
    const MAX_GROUP: usize;

    /// How long a group stays open for more requests after its first one, unless full: with
    /// one writer, the requests answered by the last commit come back a moment after the next
    /// group started, and without a wait every other group would carry one request and cost
    /// a whole commit.
    const LINGER: Duration = Duration::ZERO;

    /// Writes every request in one database transaction: one outcome each, in order; or an
    /// error and nothing written.
    async fn write(&self, requests: &[Self::Request]) -> Result<Vec<Self::Outcome>, Self::Error>;

    fn key(&self, request: &Self::Request) -> Option<Self::Key>;
}

struct Pending<W: GroupWriter> {
    request: W::Request,
    reply: oneshot::Sender<Result<W::Outcome, W::Error>>,
}

/// The queue in front of a writer's tasks.
pub struct Coalescer<W: GroupWriter> {
    queue: mpsc::Sender<Pending<W>>,
}

impl<W: GroupWriter> Clone for Coalescer<W> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

/// The writer tasks stopped (the service is shutting down); the request was not written.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the group-commit writer tasks stopped")]
pub struct WriterStopped;

impl<W: GroupWriter> Coalescer<W> {
    /// Starts `tasks` writer tasks (each writes one group at a time); they stop when the last
    /// clone of the `Coalescer` is dropped. Must be called within a Tokio runtime.
    pub fn start(writer: W, tasks: usize) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        let writer = Arc::new(writer);
        for _ in 0..tasks {
            tokio::spawn(write_groups(writer.clone(), receiver.clone()));
        }
        Self { queue }
    }

    /// Queues `request` and waits until the group that carries it has committed (or failed).
    pub async fn write(
        &self,
        request: W::Request,
    ) -> Result<Result<W::Outcome, W::Error>, WriterStopped> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { request, reply })
            .await
            .map_err(|_| WriterStopped)?;
        answer.await.map_err(|_| WriterStopped)
    }
}

async fn write_groups<W: GroupWriter>(
    writer: Arc<W>,
    receiver: Arc<Mutex<mpsc::Receiver<Pending<W>>>>,
) {
    let mut recent = RecentSizes::new();
    loop {
        let expected = recent.expected(W::MAX_GROUP);
        let mut group = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            match receiver.recv().await {
                Some(pending) => group.push(pending),
                None => return,
            }
            let open_until = Instant::now() + W::LINGER;
            while group.len() < W::MAX_GROUP {
                match receiver.try_recv() {
                    Ok(pending) => group.push(pending),
                    Err(_) if W::LINGER.is_zero() || group.len() >= expected => break,
                    Err(_) => match timeout_at(open_until, receiver.recv()).await {
                        Ok(Some(pending)) => group.push(pending),
                        Ok(None) | Err(_) => break,
                    },
                }
            }
        }
        recent.push(group.len());
        while !group.is_empty() {
            let mut seen = HashSet::new();
            let (round, later): (Vec<_>, Vec<_>) = group.into_iter().partition(|pending| {
                writer
                    .key(&pending.request)
                    .is_none_or(|key| seen.insert(key))
            });
            write_round(writer.as_ref(), round).await;
            group = later;
        }
    }
}

/// When a lingering group closes early: as soon as it is as big as the biggest of the last
/// few groups. The clients those commits answered are back, and waiting out the rest of the
/// linger would only add latency. The last group alone would not do: one client late for a
/// group (a busy machine) splits the clients into two halves that then alternate, every
/// group closing as soon as its half is in, each half paying a whole group's statements and
/// commit for half the requests; a few groups' memory waits for the late half instead.
struct RecentSizes {
    sizes: [usize; REMEMBERED_GROUPS],
    next: usize,
}

/// How many groups [`RecentSizes`] remembers: after this many smaller groups (the load fell)
/// a group closes early again.
const REMEMBERED_GROUPS: usize = 8;

impl RecentSizes {
    fn new() -> Self {
        Self {
            sizes: [0; REMEMBERED_GROUPS],
            next: 0,
        }
    }

    /// The size a lingering group waits for; `full` before any group.
    fn expected(&self, full: usize) -> usize {
        match self.sizes.iter().max() {
            Some(&size) if size > 0 => size,
            _ => full,
        }
    }

    fn push(&mut self, size: usize) {
        self.sizes[self.next] = size;
        self.next = (self.next + 1) % REMEMBERED_GROUPS;
    }
}

async fn write_round<W: GroupWriter>(writer: &W, round: Vec<Pending<W>>) {
    let (requests, replies): (Vec<_>, Vec<_>) = round
        .into_iter()
        .map(|pending| (pending.request, pending.reply))
        .unzip();
    match writer.write(&requests).await {
        Ok(outcomes) => {
            debug_assert_eq!(outcomes.len(), requests.len(), "one outcome per request");
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        // The group failed as a whole (a concurrent write took a client-chosen id first, a
        // deadlock with another instance, one bad request, or the database failed): each
        // request is written alone, and answers for itself.
        Err(error) => {
            tracing::debug!(%error, size = requests.len(), "group write failed; writing one by one");
            for (request, reply) in requests.iter().zip(replies) {
                let outcome = writer
                    .write(std::slice::from_ref(request))
                    .await
                    .map(|mut outcomes| outcomes.remove(0));
                let _ = reply.send(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_waits_for_the_biggest_of_the_last_few() {
        let mut recent = RecentSizes::new();
        assert_eq!(recent.expected(64), 64, "before any group, a full one");
        recent.push(8);
        recent.push(5);
        recent.push(3);
        assert_eq!(
            recent.expected(64),
            8,
            "a late half does not make the next groups close at half size"
        );
        for _ in 0..REMEMBERED_GROUPS - 1 {
            recent.push(2);
        }
        assert_eq!(recent.expected(64), 3, "the eight of long ago is forgotten");
        recent.push(2);
        assert_eq!(
            recent.expected(64),
            2,
            "the load fell: groups close early again"
        );
    }
}
