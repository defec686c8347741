//! `market-ledger backup` on SQLite: a copy taken while transfers keep arriving restores into a
//! working service that verifies and holds every transfer acknowledged before it began.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_load_restores_and_verifies() {
    let app = Arc::new(
        TestApp::spawn(Backend::Sqlite)
            .await
            .expect("SQLite always runs"),
    );
    app.create_account("cash", "asset", json!({})).await;
    app.create_account("payee:B001", "liability", json!({}))
        .await;

    let mut acknowledged_before = Vec::new();
    for _ in 0..20 {
        let (status, posted) = app.transfer("cash", "payee:B001", "1000").await;
        assert_eq!(status, StatusCode::CREATED, "{posted}");
        acknowledged_before.push(posted["id"].as_str().unwrap().to_owned());
    }
    // Writers keep going while the copy is taken.
    let running = Arc::new(AtomicBool::new(true));
    let load = {
        let (app, running) = (app.clone(), running.clone());
        tokio::spawn(async move {
            let mut posted = 0;
            while running.load(Ordering::Relaxed) {
                let (status, body) = app.transfer("cash", "payee:B001", "500").await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                posted += 1;
            }
            posted
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    app.state
        .store
        .backup(&copy.to_string_lossy())
        .await
        .expect("an online backup");
    running.store(false, Ordering::Relaxed);
    let during = load.await.unwrap();
    assert!(during > 0, "transfers ran during the backup");
    // A backup never overwrites a file.
    assert!(app
        .state
        .store
        .backup(&copy.to_string_lossy())
        .await
        .is_err());

    let copy_url = format!("sqlite://{}", copy.display());
    let restored = TestApp::spawn_with(Backend::Sqlite, |settings| {
        settings.database_url = copy_url;
    })
    .await
    .unwrap();
    restored.assert_verified().await;
    for id in &acknowledged_before {
        let (status, body) = restored.get(&format!("/v1/transactions/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{id} is missing from the backup: {body}"
        );
    }
    // Its balances are those of one moment: the two sides of every transfer agree.
    assert_eq!(
        restored.balance("cash").await.trim_start_matches('-'),
        restored.balance("payee:B001").await
    );
}
