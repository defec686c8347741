//! Live payment notifications for a payee's phone (`GET /v1/payees/{id}/events`).
//!
//! Events are published after the database transaction that moved the money has committed, so
//! a listener never hears of a payment the ledger does not hold.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;
use uuid::Uuid;

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

/// Fan-out of payment events to the listeners of this process.
#[derive(Clone)]
pub struct PaymentEvents {
    sender: broadcast::Sender<PaymentReceived>,
}

impl Default for PaymentEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl PaymentEvents {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self { sender }
    }

    /// Call only after the transaction that credited the payee has committed.
    pub async fn publish(&self, event: PaymentReceived) {
        // No listener is not an error: nobody has the page open.
        let _ = self.sender.send(event);
    }

    /// Every event published from now on; the caller filters by payee.
    pub fn subscribe(&self) -> broadcast::Receiver<PaymentReceived> {
        self.sender.subscribe()
    }
}
