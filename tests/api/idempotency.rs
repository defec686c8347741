//! Idempotency holds before every other rule: a retry with the same key and body gets the
//! stored answer even when the state has changed since, and would now be refused if new.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::common::{error_code, payee_id, read, Backend, TestApp};

crate::on_both_backends!(
    a_retried_reversal_replays_after_it_was_done,
    a_retried_intent_replays_after_the_payee_was_deactivated,
    a_retried_transfer_or_batch_replays_after_the_balance_is_gone,
);

/// The retry's answer: the first one's status and body, marked as a replay.
async fn assert_replay_of(retry: Response, first: &(StatusCode, Value)) {
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(&read(retry).await, first);
}

async fn a_retried_reversal_replays_after_it_was_done(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_account("bank", "asset", json!({})).await;
    app.create_account("vendor", "liability", json!({})).await;
    let (_, paid_in) = app.transfer("bank", "vendor", "50000").await;
    let path = format!(
        "/v1/transactions/{}/reverse",
        paid_in["id"].as_str().unwrap()
    );
    let first = read(app.post_idempotent(&path, "reverse-once", &json!({})).await).await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    assert_replay_of(
        app.post_idempotent(&path, "reverse-once", &json!({})).await,
        &first,
    )
    .await;
    // A new key is a new request, refused on the rule.
    let (status, answer) = read(
        app.post_idempotent(&path, "reverse-twice", &json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "ALREADY_REVERSED")
    );
    assert_eq!(app.balance("vendor").await, "0");
}

async fn a_retried_intent_replays_after_the_payee_was_deactivated(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let body = json!({"payee_id": payee, "amount": "25000"});
    let first = read(
        app.post_idempotent("/v1/payment-intents", "intent-1", &body)
            .await,
    )
    .await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    let (status, patched) = read(
        app.client
            .patch(app.url(&format!("/v1/payees/{payee}")))
            .bearer_auth(&app.admin)
            .json(&json!({"active": false}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_replay_of(
        app.post_idempotent("/v1/payment-intents", "intent-1", &body)
            .await,
        &first,
    )
    .await;
    let (status, answer) = read(
        app.post_idempotent("/v1/payment-intents", "intent-2", &body)
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYEE_INACTIVE")
    );
}

async fn a_retried_transfer_or_batch_replays_after_the_balance_is_gone(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_account("bank", "asset", json!({})).await;
    app.create_account(
        "vendor",
        "liability",
        json!({"debits_must_not_exceed_credits": true}),
    )
    .await;
    app.transfer("bank", "vendor", "100").await;
    let payout = json!({"description": "payout",
                        "postings": [{"debit": "vendor", "credit": "bank", "amount": "60"}]});
    let batch = json!({"transactions": [payout.clone()], "atomic": true});
    let first = read(
        app.post_idempotent("/v1/transactions", "payout-1", &payout)
            .await,
    )
    .await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    // 40 left: the same payout is now an overdraft, but its retries replay.
    assert_replay_of(
        app.post_idempotent("/v1/transactions", "payout-1", &payout)
            .await,
        &first,
    )
    .await;
    let (status, answer) = read(
        app.post_idempotent("/v1/transactions", "payout-2", &payout)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");

    app.transfer("bank", "vendor", "20").await;
    let first = read(
        app.post_idempotent("/v1/transactions/batch", "batch-1", &batch)
            .await,
    )
    .await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first.1["posted"], 1);
    assert_replay_of(
        app.post_idempotent("/v1/transactions/batch", "batch-1", &batch)
            .await,
        &first,
    )
    .await;
    assert_eq!(app.balance("vendor").await, "0");
    app.assert_verified().await;
}
