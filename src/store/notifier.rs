//! Notifications that must reach every instance serving the database (a vendor's live
//! "paid"), behind one interface. On SQLite (one instance) a notification goes straight to
//! this process. On PostgreSQL it is sent with `pg_notify`, and every instance (this one
//! included) hears it through its own `LISTEN` connection, reconnecting when that drops.
//! Payloads are text (JSON); what they mean is the caller's business.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::{mpsc, watch};

use super::{is_postgres_url, StoreResult};

/// The PostgreSQL notification channel every instance listens on.
pub const CHANNEL: &str = "market_ledger_payment_received";
/// One attempt to send a notification waits this long for the database.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// A notification is sent again until this long after the payment: a failover (the primary
/// gone, its replica promoted behind the proxy) takes a few seconds, and a notification lost
/// in it would leave the phones unaware of a payment the ledger holds. (A connection lost
/// just after the database took a notification sends it twice: at least once, not exactly.)
const PUBLISH_GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// Reconnection attempts (of the listener, and of a publish) wait this long at first,
/// doubling up to the maximum: short enough that live events resume within seconds of a new
/// primary answering.
const RECONNECT_FIRST_WAIT: Duration = Duration::from_millis(250);
const RECONNECT_MAX_WAIT: Duration = Duration::from_secs(5);
/// Notifications sent in one statement at most; each payload is a few hundred bytes.
const MAX_PAYLOADS_PER_SEND: usize = 256;

/// Hands a received payload to this process's listeners.
pub type Deliver = Arc<dyn Fn(&str) + Send + Sync>;

/// Where received notifications go, and how the listener reports and stops.
pub struct Relay {
    pub deliver: Deliver,
    /// Counts the times notifications may have been lost for every listener at once.
    pub gaps: watch::Sender<u64>,
    /// The listener stops when this becomes true.
    pub closing: watch::Receiver<bool>,
}

#[derive(Clone)]
pub struct Notifier {
    deliver: Deliver,
    /// PostgreSQL: the queue of the task that sends the `pg_notify`s.
    notify: Option<mpsc::UnboundedSender<String>>,
}

impl Notifier {
    /// Notifications stay in this process: SQLite, and tests.
    pub fn in_process(deliver: Deliver) -> Self {
        Self {
            deliver,
            notify: None,
        }
    }

    /// Notifications for the database `database_url` names: through PostgreSQL
    /// `LISTEN/NOTIFY` (so they cross instances), or in-process for SQLite. On PostgreSQL the
    /// first `LISTEN` is in place when this returns.
    pub async fn connect(database_url: &str, relay: Relay) -> StoreResult<Self> {
        if !is_postgres_url(database_url) {
            return Ok(Self::in_process(relay.deliver));
        }
        let listener = open_listener(database_url).await?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(PUBLISH_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy(database_url)?;
        tokio::spawn(relay_notifications(
            database_url.to_owned(),
            listener,
            relay.deliver.clone(),
            relay.gaps,
            relay.closing,
        ));
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(send_notifications(pool, waiting));
        Ok(Self {
            deliver: relay.deliver,
            notify: Some(queue),
        })
    }

    /// Sends `payload` to every listener of every instance. Never fails and never waits on
    /// the database: a notification that cannot be sent is logged.
    pub fn publish(&self, payload: String) {
        let Some(queue) = &self.notify else {
            (self.deliver)(&payload);
            return;
        };
        // In the background: the request that caused it must not wait on the notification (a
        // slow database would otherwise hold a provider's webhook past its timeout).
        if let Err(unsent) = queue.send(payload) {
            tracing::warn!(payload = %unsent.0, "notification not sent: the sender has stopped");
        }
    }
}

/// Sends the queued notifications in order, all those waiting in one transaction (one
/// commit for a whole group of webhook deliveries' payments, not one each), until every
/// clone of the notifier is gone.
async fn send_notifications(pool: PgPool, mut waiting: mpsc::UnboundedReceiver<String>) {
    let mut payloads = Vec::new();
    while waiting
        .recv_many(&mut payloads, MAX_PAYLOADS_PER_SEND)
        .await
        > 0
    {
        send_with_retries(&pool, &payloads).await;
        payloads.clear();
    }
}

async fn send_with_retries(pool: &PgPool, payloads: &[String]) {
    let give_up = tokio::time::Instant::now() + PUBLISH_GIVE_UP_AFTER;
    let mut wait = RECONNECT_FIRST_WAIT;
    loop {
        let sent = tokio::time::timeout(
            PUBLISH_TIMEOUT,
            sqlx::query("SELECT pg_notify($1, payload) FROM UNNEST($2::text[]) AS payload")
                .bind(CHANNEL)
                .bind(payloads)
                .execute(pool),
        )
        .await;
        let failure = match sent {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {PUBLISH_TIMEOUT:?}"),
        };
        if tokio::time::Instant::now() + wait >= give_up {
            tracing::warn!(
                error = %failure,
                payloads = ?payloads,
                "notifications not sent; live listeners will not hear of them"
            );
            return;
        }
        tracing::info!(error = %failure, retry_in_ms = wait.as_millis() as u64,
            notifications = payloads.len(), "notifications not sent yet; trying again");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_MAX_WAIT);
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
    deliver: Deliver,
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
                        tracing::info!("notification listener reconnected");
                        wait = RECONNECT_FIRST_WAIT;
                        gaps.send_modify(|gaps| *gaps += 1);
                        listener
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            retry_in_ms = wait.as_millis() as u64,
                            "notification listener cannot reconnect"
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
                Ok(Some(notification)) => deliver(notification.payload()),
                Ok(None) => {
                    // PgListener has already reconnected and listens again; whatever was
                    // sent in between is lost.
                    tracing::warn!(
                        "notification listener lost its connection and reconnected; \
                         notifications in between are lost"
                    );
                    gaps.send_modify(|gaps| *gaps += 1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "notification listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}
