//! Live payment notifications for a payee's phone (`GET /v1/payees/{id}/events`).
//!
//! Events are published after the database transaction that moved the money has committed, so
//! a listener never hears of a payment the ledger does not hold.
//!
//! On SQLite (embedded, one instance) events go straight to this process's listeners. On
//! PostgreSQL several instances may serve one database, and the instance that processed a
//! payment is not necessarily the one the vendor's phone is connected to: `publish` sends the
//! event with `pg_notify`, and every instance (this one included) hears it through its own
//! `LISTEN` connection and hands it to its listeners. Each listener so gets every event once.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store;

/// How many events a slow listener may fall behind before it misses some.
const BACKLOG: usize = 1024;
/// The PostgreSQL notification channel every instance listens on.
pub const CHANNEL: &str = "market_ledger_payment_received";
/// A publish that cannot reach the database within this time is given up (and logged).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection attempts of the listener wait this long at first, doubling up to the maximum.
const RECONNECT_FIRST_WAIT: Duration = Duration::from_millis(250);
const RECONNECT_MAX_WAIT: Duration = Duration::from_secs(30);

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
    /// PostgreSQL: the pool `pg_notify` is sent through.
    notify: Option<PgPool>,
}

impl Default for PaymentEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl PaymentEvents {
    /// In-process only: for SQLite, and for tests.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        Self {
            sender,
            gaps: watch::Sender::new(0),
            closing: watch::Sender::new(false),
            notify: None,
        }
    }

    /// Events for the database `database_url` names: through PostgreSQL `LISTEN/NOTIFY` (so
    /// they cross instances), or in-process for SQLite. On PostgreSQL the first `LISTEN` is in
    /// place when this returns.
    pub async fn connect(database_url: &str) -> anyhow::Result<Self> {
        let mut events = Self::new();
        if !store::is_postgres_url(database_url) {
            return Ok(events);
        }
        let listener = open_listener(database_url).await?;
        events.notify = Some(
            PgPoolOptions::new()
                .max_connections(2)
                .min_connections(0)
                .acquire_timeout(PUBLISH_TIMEOUT)
                .idle_timeout(Duration::from_secs(300))
                .connect_lazy(database_url)?,
        );
        tokio::spawn(relay_notifications(
            database_url.to_owned(),
            listener,
            events.sender.clone(),
            events.gaps.clone(),
            events.closing.subscribe(),
        ));
        Ok(events)
    }

    /// Call only after the transaction that credited the payee has committed. Never fails:
    /// a notification that cannot be sent is logged, the payment itself stands.
    pub async fn publish(&self, event: PaymentReceived) {
        let Some(pool) = &self.notify else {
            // No listener is not an error: nobody has the page open.
            let _ = self.sender.send(event);
            return;
        };
        let payload = match serde_json::to_string(&event) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!(error = %e, "payment event not serializable; not sent");
                return;
            }
        };
        // In the background: the webhook that paid must not wait on the notification (a slow
        // database would otherwise hold the provider's request past its timeout).
        let pool = pool.clone();
        tokio::spawn(async move {
            let sent = tokio::time::timeout(
                PUBLISH_TIMEOUT,
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(&payload)
                    .execute(&pool),
            )
            .await;
            let failure = match sent {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {PUBLISH_TIMEOUT:?}"),
            };
            tracing::warn!(
                error = %failure,
                payee_id = %event.payee_id,
                bank_transaction_id = %event.bank_transaction_id,
                "payment event not sent; live listeners will not hear of this payment"
            );
        });
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

async fn open_listener(database_url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Hands every notification to this process's listeners until the service shuts down,
/// reconnecting with backoff whenever the `LISTEN` connection is lost.
async fn relay_notifications(
    database_url: String,
    listener: PgListener,
    sender: broadcast::Sender<PaymentReceived>,
    gaps: watch::Sender<u64>,
    mut closing: watch::Receiver<bool>,
) {
    let mut current = Some(listener);
    let mut wait = RECONNECT_FIRST_WAIT;
    loop {
        let mut listener = match current.take() {
            Some(listener) => listener,
            None => {
                let attempt = tokio::select! {
                    _ = closing.wait_for(|closing| *closing) => return,
                    attempt = open_listener(&database_url) => attempt,
                };
                match attempt {
                    Ok(listener) => {
                        tracing::info!("payment event listener reconnected");
                        wait = RECONNECT_FIRST_WAIT;
                        gaps.send_modify(|gaps| *gaps += 1);
                        listener
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            retry_in_ms = wait.as_millis() as u64,
                            "payment event listener cannot reconnect"
                        );
                        tokio::select! {
                            _ = closing.wait_for(|closing| *closing) => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                        wait = (wait * 2).min(RECONNECT_MAX_WAIT);
                        continue;
                    }
                }
            }
        };
        loop {
            let received = tokio::select! {
                _ = closing.wait_for(|closing| *closing) => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<PaymentReceived>(notification.payload()) {
                        // No listener is not an error: nobody has the page open.
                        Ok(event) => {
                            let _ = sender.send(event);
                        }
                        Err(e) => tracing::warn!(
                            error = %e,
                            payload = notification.payload(),
                            "unreadable payment notification ignored"
                        ),
                    }
                }
                Ok(None) => {
                    // PgListener has already reconnected and listens again; whatever was
                    // sent in between is lost.
                    tracing::warn!(
                        "payment event listener lost its connection and reconnected; \
                         notifications in between are lost"
                    );
                    gaps.send_modify(|gaps| *gaps += 1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "payment event listener failed; reconnecting");
                    break;
                }
            }
        }
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
