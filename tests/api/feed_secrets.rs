//! Webhook feed secrets at rest: sealed in the database, opened to verify deliveries, sealed
//! on start when written readable, sealed again under a rotated key, and a key that opens
//! nothing stops the start.

use chrono::Utc;
use reqwest::StatusCode;

use market_ledger::config::Settings;
use market_ledger::domain::sealing::SealingKey;
use market_ledger::services::bank_feed::BankFeedService;
use market_ledger::startup::{Application, SECRET_KEY_FILE};

use crate::common::{Backend, TestApp};
use crate::webhooks::{configure, deliver, standard_headers, transfer, vendor, STANDARD_SECRET};

crate::on_both_backends!(
    feed_secrets_are_sealed_at_rest_and_deliveries_still_verify,
    readable_secrets_are_sealed_on_start_and_again_under_a_rotated_key,
);

const ACCOUNT: &str = "0055667788";

/// The one feed's stored secrets column and key id, read past the service.
async fn stored_feed(settings: &Settings, backend: Backend) -> (String, Option<String>) {
    let sql = "SELECT secrets, secrets_key_id FROM bank_feeds";
    let url = &settings.database_url;
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query_as(sql).fetch_one(&pool).await.unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_as(sql).fetch_one(&pool).await.unwrap()
        }
    }
}

async fn execute(settings: &Settings, backend: Backend, sql: &str) {
    let url = &settings.database_url;
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    };
}

fn key_id(key: &str) -> Option<String> {
    Some(SealingKey::parse(key).unwrap().id().to_owned())
}

fn assert_sealed(secrets: &str) {
    let encoded = STANDARD_SECRET.trim_start_matches("whsec_");
    assert!(
        !secrets.contains(encoded),
        "readable secret stored: {secrets}"
    );
    let values: Vec<String> = serde_json::from_str(secrets).unwrap();
    assert_eq!(values.len(), 1, "{secrets}");
}

/// A transfer signed with the feed's secret, as the provider would send it.
fn signed_transfer(id: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = transfer(id, ACCOUNT, "in", 25_000, "tien hang", Utc::now());
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = standard_headers(STANDARD_SECRET, id, Utc::now().timestamp(), &bytes)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    (headers, bytes)
}

async fn assert_delivery_posts(bank_feed: &BankFeedService, id: &str) {
    let (headers, bytes) = signed_transfer(id);
    let ack = bank_feed
        .receive("standard", &headers, &bytes)
        .await
        .unwrap_or_else(|e| panic!("{id} refused: {e}"));
    assert_eq!(ack.transactions.len(), 1, "{id}");
}

async fn feed_secrets_are_sealed_at_rest_and_deliveries_still_verify(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, collection) = vendor(&app, "V101", "970436", ACCOUNT).await;
    let listed = configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    assert_eq!(listed["feed"]["secret_count"], 1, "{listed}");

    let (secrets, stored_key) = stored_feed(&app.settings, backend).await;
    assert_sealed(&secrets);
    let generated = std::fs::read_to_string(app.settings.data_dir.join(SECRET_KEY_FILE)).unwrap();
    assert_eq!(
        stored_key,
        key_id(&generated),
        "sealed under the generated key"
    );

    let (headers, bytes) = signed_transfer("tx-sealed");
    let headers: Vec<(&str, String)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let (status, ack) = deliver(&app, "standard", &headers, &bytes).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"].as_array().unwrap().len(), 1, "{ack}");
    app.assert_verified().await;
}

async fn readable_secrets_are_sealed_on_start_and_again_under_a_rotated_key(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, collection) = vendor(&app, "V102", "970436", ACCOUNT).await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let first_key = std::fs::read_to_string(app.settings.data_dir.join(SECRET_KEY_FILE)).unwrap();

    // A row as written before secrets were sealed.
    execute(
        &app.settings,
        backend,
        &format!(
            "UPDATE bank_feeds SET secrets = '[\"{STANDARD_SECRET}\"]', secrets_key_id = NULL"
        ),
    )
    .await;
    let restarted = Application::build(&app.settings).await.unwrap();
    let (secrets, stored_key) = stored_feed(&app.settings, backend).await;
    assert_sealed(&secrets);
    assert_eq!(stored_key, key_id(&first_key));
    assert_delivery_posts(&restarted.state().bank_feed, "tx-converted").await;
    drop(restarted);

    // Rotation: a new current key, the old one kept to open what it sealed.
    let new_key = hex::encode([7u8; 32]);
    let rotated = Settings {
        secret_key: new_key.clone(),
        previous_secret_keys: format!("{},{first_key}", hex::encode([8u8; 32])),
        ..app.settings.clone()
    };
    let restarted = Application::build(&rotated).await.unwrap();
    let (resealed, stored_key) = stored_feed(&app.settings, backend).await;
    assert_sealed(&resealed);
    assert_eq!(stored_key, key_id(&new_key));
    assert_ne!(resealed, secrets);
    assert_delivery_posts(&restarted.state().bank_feed, "tx-rotated").await;
    drop(restarted);
    let without_old_keys = Settings {
        previous_secret_keys: String::new(),
        ..rotated.clone()
    };
    let restarted = Application::build(&without_old_keys).await.unwrap();
    assert_delivery_posts(&restarted.state().bank_feed, "tx-old-key-gone").await;
    drop(restarted);

    // A key that opens nothing: a clear refusal to start, the rows untouched.
    for wrong in [first_key.as_str(), &hex::encode([9u8; 32])] {
        let settings = Settings {
            secret_key: wrong.to_owned(),
            ..app.settings.clone()
        };
        let error = match Application::build(&settings).await {
            Ok(_) => panic!("started with a key that opens no secret"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains(&collection), "{error}");
        assert!(
            error.contains("MARKET_LEDGER_PREVIOUS_SECRET_KEYS"),
            "says what to do: {error}"
        );
        assert!(!error.contains(STANDARD_SECRET), "{error}");
        assert_eq!(
            stored_feed(&app.settings, backend).await,
            (resealed.clone(), key_id(&new_key))
        );
    }
}
