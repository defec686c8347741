//! Live payment notifications for a payee's phone (`GET /v1/payees/{id}/events`).
//!
//! Events are published after the database transaction that moved the money has committed, so
//! a listener never hears of a payment the ledger does not hold. They travel through the
//! store's [`Notifier`]: in-process on SQLite, through PostgreSQL `LISTEN/NOTIFY` when several
//! instances serve one database, so each listener gets every event once, whichever instance
//! processed the payment.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::notifier::{Notifier, Relay};

/// How many events a slow listener may fall behind before it misses some.
const BACKLOG: usize = 1024;

/// Money from a bank transaction was credited to a payee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PaymentReceived {
    pub payee_id: Uuid,
    /// The bank transaction that brought the money.
    pub bank_transaction_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Decimal string in minor units, like every amount in the API.
    pub amount: String,
    /// The intent's status after this payment (`paid`, `partially_paid`, ...), when one matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// RFC 3339.
    pub occurred_at: String,
}

/// Fan-out of payment events to the listeners of this process (and, on PostgreSQL, of every
/// instance on the same database).
#[derive(Clone)]
pub struct PaymentEvents {
    sender: broadcast::Sender<PaymentReceived>,
    /// Counts the times events may have been lost for every listener at once (the `LISTEN`
    /// connection dropped and came back): listeners should refetch.
    gaps: watch::Sender<u64>,
    /// Becomes true when the service shuts down: open streams end, the listener stops.
    closing: watch::Sender<bool>,
    notifier: Notifier,
}

impl Default for PaymentEvents {
    fn default() -> Self {
        Self::new()
    }
}

/// Hands a notification's payload, an event, to this process's listeners.
fn deliver_to(sender: broadcast::Sender<PaymentReceived>) -> crate::store::notifier::Deliver {
    Arc::new(
        move |payload: &str| match serde_json::from_str::<PaymentReceived>(payload) {
            // No listener is not an error: nobody has the page open.
            Ok(event) => {
                let _ = sender.send(event);
            }
            Err(e) => tracing::warn!(
                error = %e,
                payload,
                "unreadable payment notification ignored"
            ),
        },
    )
}

impl PaymentEvents {
    /// In-process only: for SQLite, and for tests.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self {
            notifier: Notifier::in_process(deliver_to(sender.clone())),
            sender,
            gaps: watch::Sender::new(0),
            closing: watch::Sender::new(false),
        }
    }

    /// Events for the database `database_url` names: through PostgreSQL `LISTEN/NOTIFY` (so
    /// they cross instances), or in-process for SQLite. On PostgreSQL the first `LISTEN` is in
    /// place when this returns.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        let mut events = Self::new();
        events.notifier = Notifier::connect(
            database_url,
            Relay {
                deliver: deliver_to(events.sender.clone()),
                gaps: events.gaps.clone(),
                closing: events.closing.subscribe(),
            },
        )
        .await?;
        Ok(events)
    }

    /// Call only after the transaction that credited the payee has committed. Never fails:
    /// a notification that cannot be sent is logged, the payment itself stands.
    pub async fn publish(&self, event: PaymentReceived) {
        match serde_json::to_string(&event) {
            Ok(payload) => self.notifier.publish(payload),
            Err(e) => tracing::warn!(error = %e, "payment event not serializable; not sent"),
        }
    }

    /// Every event published from now on; the caller filters by payee.
    pub fn subscribe(&self) -> broadcast::Receiver<PaymentReceived> {
        self.sender.subscribe()
    }

    /// Changes each time events may have been lost for every listener (the PostgreSQL
    /// `LISTEN` connection was lost and has been re-established).
    pub fn gaps(&self) -> watch::Receiver<u64> {
        self.gaps.subscribe()
    }

    /// Becomes true when the service shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every open stream and stops listening: open streams would otherwise keep a
    /// graceful shutdown waiting forever.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payee_id: Uuid) -> PaymentReceived {
        PaymentReceived {
            payee_id,
            bank_transaction_id: Uuid::now_v7(),
            payment_intent_id: None,
            reference: Some("8K2H9QX4".into()),
            amount: "150000".into(),
            status: Some("paid".into()),
            occurred_at: "2024-05-01T08:00:00Z".into(),
        }
    }

    #[tokio::test]
    async fn sqlite_events_stay_in_process() {
        let events = PaymentEvents::connect("sqlite://data/unused.db")
            .await
            .unwrap();
        let mut receiver = events.subscribe();
        let sent = event(Uuid::now_v7());
        events.publish(sent.clone()).await;
        assert_eq!(receiver.recv().await.unwrap(), sent);
        assert!(receiver.try_recv().is_err(), "delivered once");
    }

    #[tokio::test]
    async fn close_is_seen_by_every_clone() {
        let events = PaymentEvents::new();
        let mut closing = events.clone().closing();
        assert!(!*closing.borrow());
        events.close();
        closing.wait_for(|c| *c).await.unwrap();
    }
}
