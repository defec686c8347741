//! Building and running the service.

use crate::services::web::{SessionSettings, WebService};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::net::TcpListener;

use actix_web::HttpServer;

use crate::clock::Clock;
use std::io::Write as _;

use rand::RngCore as _;

use crate::config::Settings;
use crate::domain::payer::Pepper;
use crate::domain::sealing::{SealingKey, SealingKeys};
use crate::http::{self, AppState};
use crate::services::auth::{AuthService, KeySet, TokenSettings};
use crate::services::bank_feed::BankFeedService;
use crate::services::events::PaymentEvents;
use crate::services::ledger::LedgerService;
use crate::services::payers::PayerService;
use crate::services::payments::PaymentService;
use crate::services::registry::RegistryService;
use crate::services::schools::reminder_sender::{HttpSender, LogSender, ReminderSender};
use crate::services::schools::reminders::ReminderService;
use crate::services::schools::SchoolService;
use crate::services::statistics::{StatisticsService, StatisticsSettings};
use crate::store::{self, Store};
use crate::telemetry;

/// Idempotency keys are kept at least 24 hours; they are deleted after this.
const IDEMPOTENCY_RETENTION_MICROS: i64 = 48 * 3600 * 1_000_000;
/// On shutdown, how long requests in flight may take to finish before they are cut.
const SHUTDOWN_GRACE_SECONDS: u64 = 30;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    max_body_bytes: usize,
}

/// Opens the configured database and applies migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(&settings.database_url, settings.db_max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

pub fn auth_service(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<AuthService> {
    let keys = if settings.jwt_keys.trim().is_empty() {
        KeySet::load_or_generate(&settings.data_dir)?
    } else {
        KeySet::parse(&settings.jwt_keys)?
    };
    Ok(AuthService::new(
        store,
        keys,
        TokenSettings {
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            ttl_seconds: settings.jwt_ttl_seconds,
            max_failures: settings.login_max_failures,
            window_seconds: settings.login_window_seconds,
        },
    ))
}

/// The configured pepper of payer-account hashes, or the one generated into
/// `data_dir/payer-pepper` on first start.
pub fn payer_pepper(settings: &Settings) -> anyhow::Result<Pepper> {
    if !settings.pepper.trim().is_empty() {
        return Ok(Pepper::new(&settings.pepper)?);
    }
    let (path, text) = generated_secret(&settings.data_dir, PEPPER_FILE)?;
    Pepper::new(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The generated pepper's file name in the data directory.
pub const PEPPER_FILE: &str = "payer-pepper";

/// The configured key sealing feed secrets and the previous ones, or the key generated into
/// `data_dir/secret-key` on first start.
pub fn sealing_keys(settings: &Settings) -> anyhow::Result<SealingKeys> {
    let current = if settings.secret_key.trim().is_empty() {
        let (path, text) = generated_secret(&settings.data_dir, SECRET_KEY_FILE)?;
        SealingKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    } else {
        SealingKey::parse(&settings.secret_key)?
    };
    Ok(SealingKeys::new(current, settings.previous_sealing_keys()?))
}

/// The generated sealing key's file name in the data directory.
pub const SECRET_KEY_FILE: &str = "secret-key";

/// The sealing keys, after every feed secret not yet sealed under the current key has been:
/// a key that does not open them stops the start here, not each webhook later.
pub async fn sealed_feed_secrets(
    settings: &Settings,
    store: &dyn Store,
) -> anyhow::Result<SealingKeys> {
    let keys = sealing_keys(settings)?;
    let resealed = crate::services::bank_feed::secrets::reseal_all(store, &keys).await?;
    if resealed > 0 {
        tracing::info!(
            feeds = resealed,
            key = keys.current_id(),
            "feed secrets sealed under the current key"
        );
    }
    Ok(keys)
}

/// The text of the secret file `name` in `data_dir` (and its path), generated as 32 random
/// bytes in hex (mode 0600) when missing.
fn generated_secret(
    data_dir: &std::path::Path,
    name: &str,
) -> anyhow::Result<(std::path::PathBuf, String)> {
    let path = data_dir.join(name);
    if !path.exists() {
        std::fs::create_dir_all(data_dir)?;
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(mut file) => file.write_all(hex::encode(secret).as_bytes())?,
            // Another instance on the same directory wrote it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((path, text))
}

/// The notifier school reminders go through, as configured.
fn reminder_sender(settings: &Settings) -> anyhow::Result<Arc<dyn ReminderSender>> {
    Ok(match settings.reminder_notifier.as_str() {
        "http" => Arc::new(HttpSender::new(
            &settings.reminder_url,
            &settings.reminder_secret,
            Duration::from_secs(settings.reminder_timeout_seconds),
        )?),
        "log" => Arc::new(LogSender),
        other => anyhow::bail!("reminder_notifier must be log or http, not {other:?}"),
    })
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let clock = Clock::default();
        let store = open_store(settings).await?;
        let auth = auth_service(settings, store.clone())?.with_clock(clock.clone());
        let pepper = payer_pepper(settings)?;
        let sealing = sealed_feed_secrets(settings, store.as_ref()).await?;
        let listener = TcpListener::bind(&settings.listen)?;
        let events = PaymentEvents::connect(&settings.database_url).await?;
        let schools = SchoolService::new(store.clone(), clock.clone());
        let reminders = ReminderService::new(
            schools.clone(),
            store.clone(),
            clock.clone(),
            reminder_sender(settings)?,
        );
        let state = AppState {
            ledger: LedgerService::new(store.clone()).with_clock(clock.clone()),
            payments: PaymentService::new(store.clone()).with_clock(clock.clone()),
            registry: RegistryService::new(store.clone(), clock.clone()),
            statistics: StatisticsService::new(
                store.clone(),
                clock.clone(),
                StatisticsSettings {
                    min_count: settings.statistics_min_count,
                    target_percent: settings.adoption_target_percent,
                },
            ),
            bank_feed: BankFeedService::new(store.clone(), events.clone(), clock.clone(), sealing)
                .with_pepper(pepper.clone()),
            payers: PayerService::new(store.clone(), clock.clone(), pepper),
            schools,
            reminders,
            web: WebService::new(
                store.clone(),
                auth.clone(),
                SessionSettings {
                    payee_seconds: settings.web_session_payee_seconds,
                    staff_seconds: settings.web_session_seconds,
                },
                clock.clone(),
            ),
            events,
            clock,
            auth,
            store,
            metrics: telemetry::metrics_handle(),
            runtime: tokio::runtime::Handle::current(),
        };
        Ok(Self {
            listener,
            state,
            max_body_bytes: settings.max_body_bytes,
        })
    }

    /// The address the service listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let background = tokio::spawn(housekeeping(self.state.clone()));
        let events = self.state.events.clone();
        tracing::info!(address = %self.listener.local_addr()?, "market-ledger listening");
        let (state, max_body_bytes) = (self.state, self.max_body_bytes);
        let server = HttpServer::new(move || http::app(state.clone(), max_body_bytes))
            .listen(self.listener)?
            // The caller's `shutdown` decides when to stop, not actix's own signal handlers.
            .disable_signals()
            .shutdown_timeout(SHUTDOWN_GRACE_SECONDS)
            .run();
        let handle = server.handle();
        let stopper = tokio::spawn({
            let events = events.clone();
            async move {
                shutdown.await;
                // Event streams never finish on their own: end them, or the graceful shutdown
                // would wait for them until the grace period runs out.
                events.close();
                handle.stop(true).await;
            }
        });
        let result = server.await;
        stopper.abort();
        background.abort();
        events.close();
        result
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut since_cleanup = Duration::ZERO;
    loop {
        tick.tick().await;
        state.metrics.run_upkeep();
        // Reads already show expired intents as expired; writing it keeps the table honest
        // for whatever reads it directly (reports, the bank-feed matcher).
        if let Err(e) = state.payments.expire_intents().await {
            tracing::warn!(error = %e, "marking expired payment intents failed");
        }
        since_cleanup += Duration::from_secs(5);
        if since_cleanup >= Duration::from_secs(3600) {
            since_cleanup = Duration::ZERO;
            match state
                .store
                .delete_idempotency_keys_before(
                    state.clock.now_micros() - IDEMPOTENCY_RETENTION_MICROS,
                )
                .await
            {
                Ok(deleted) => tracing::info!(deleted, "expired idempotency keys removed"),
                Err(e) => tracing::warn!(error = %e, "idempotency key cleanup failed"),
            }
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down; finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::payer::PayerAccount;

    #[test]
    fn the_pepper_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            ..Settings::default()
        };
        let account = PayerAccount::parse(Some("970415"), Some("8888888888")).unwrap();
        let first = account.hash(&payer_pepper(&settings).unwrap());
        let stored = std::fs::read_to_string(settings.data_dir.join(PEPPER_FILE)).unwrap();
        assert_eq!(stored.len(), 64, "32 random bytes as hex");
        assert_eq!(account.hash(&payer_pepper(&settings).unwrap()), first);
        let configured = Settings {
            pepper: "a configured pepper, long enough".into(),
            ..settings
        };
        assert_ne!(account.hash(&payer_pepper(&configured).unwrap()), first);
    }

    #[test]
    fn the_sealing_key_is_generated_once_and_kept_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("data"),
            ..Settings::default()
        };
        let first = sealing_keys(&settings).unwrap().current_id().to_owned();
        let stored = std::fs::read_to_string(settings.data_dir.join(SECRET_KEY_FILE)).unwrap();
        assert_eq!(stored.len(), 64, "32 random bytes as hex");
        assert_ne!(
            stored,
            std::fs::read_to_string(settings.data_dir.join(PEPPER_FILE)).unwrap_or_default()
        );
        assert_eq!(sealing_keys(&settings).unwrap().current_id(), first);
        let configured = Settings {
            secret_key: hex::encode([3u8; 32]),
            ..settings
        };
        let keys = sealing_keys(&configured).unwrap();
        assert_ne!(keys.current_id(), first);
        assert_eq!(
            keys.current_id(),
            SealingKey::parse(&"03".repeat(32)).unwrap().id()
        );
    }
}
