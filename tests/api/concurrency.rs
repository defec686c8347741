//! The ledger under concurrent load: no overdraft slips through, no duplicate effect, and the
//! books balance with exactly what was acknowledged.

use std::collections::HashMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{read, Backend, TestApp};

crate::on_both_backends!(
    parallel_debits_never_overdraw,
    parallel_duplicates_take_effect_once,
    random_concurrent_transfers_balance_exactly,
);

async fn parallel_debits_never_overdraw(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = Arc::new(app);
    app.create_account("funding", "equity", json!({})).await;
    app.create_account(
        "wallet",
        "liability",
        json!({"debits_must_not_exceed_credits": true}),
    )
    .await;
    app.create_account("shop", "liability", json!({})).await;
    assert_eq!(
        app.transfer("funding", "wallet", "100").await.0,
        StatusCode::CREATED
    );

    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.transfer("wallet", "shop", "10").await })
        })
        .collect();
    let mut accepted = 0;
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        match status {
            StatusCode::CREATED => accepted += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(body["error"]["code"], "DEBITS_EXCEED_CREDITS")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(accepted, 10);
    assert_eq!(app.balance("wallet").await, "0");
    assert_eq!(app.balance("shop").await, "100");
    app.assert_verified().await;
}

async fn parallel_duplicates_take_effect_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = Arc::new(app);
    app.create_account("bank", "asset", json!({})).await;
    app.create_account("vendor", "liability", json!({})).await;
    let body = json!({"description": "one sale", "postings": [{"debit": "bank", "credit": "vendor", "amount": "25000"}]});
    let copies: Vec<_> = (0..20)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move {
                read(
                    app.post_idempotent("/v1/transactions", "same-key", &body)
                        .await,
                )
                .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for copy in copies {
        answers.push(copy.await.unwrap());
    }
    for (status, body) in &answers {
        assert_eq!(
            *status,
            StatusCode::CREATED,
            "a duplicate got {status}: {body}"
        );
    }
    assert!(
        answers.iter().all(|(_, b)| *b == answers[0].1),
        "replays are identical"
    );
    assert_eq!(app.balance("vendor").await, "25000");
    assert_eq!(app.transaction_count().await, 1);
    app.assert_verified().await;
}

async fn random_concurrent_transfers_balance_exactly(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = Arc::new(app);
    const ACCOUNTS: usize = 10;
    const TRANSFERS: usize = 2_000;
    const WORKERS: usize = 16;
    for i in 0..ACCOUNTS {
        // Half the accounts refuse overdraft, so some transfers are refused under contention.
        let flags = if i % 2 == 0 {
            json!({"debits_must_not_exceed_credits": true})
        } else {
            json!({})
        };
        app.create_account(&format!("acct:{i}"), "liability", flags)
            .await;
    }
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(worker as u64);
                let mut acknowledged: Vec<(usize, usize, i64)> = Vec::new();
                for _ in 0..TRANSFERS / WORKERS {
                    let debit = rng.gen_range(0..ACCOUNTS);
                    let credit = (debit + rng.gen_range(1..ACCOUNTS)) % ACCOUNTS;
                    let amount = rng.gen_range(1..=1000i64);
                    let (status, body) = app
                        .transfer(
                            &format!("acct:{debit}"),
                            &format!("acct:{credit}"),
                            &amount.to_string(),
                        )
                        .await;
                    match status {
                        StatusCode::CREATED => acknowledged.push((debit, credit, amount)),
                        StatusCode::UNPROCESSABLE_ENTITY => {
                            assert_eq!(body["error"]["code"], "DEBITS_EXCEED_CREDITS")
                        }
                        other => panic!("unexpected {other}: {body}"),
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut expected: HashMap<usize, i64> = HashMap::new();
    let mut acknowledged = 0;
    for worker in workers {
        for (debit, credit, amount) in worker.await.unwrap() {
            // Liability balances: credits minus debits.
            *expected.entry(debit).or_default() -= amount;
            *expected.entry(credit).or_default() += amount;
            acknowledged += 1;
        }
    }
    assert!(
        acknowledged > TRANSFERS / 2,
        "most transfers go through ({acknowledged})"
    );
    for i in 0..ACCOUNTS {
        let balance: i64 = app.balance(&format!("acct:{i}")).await.parse().unwrap();
        assert_eq!(
            balance,
            expected.get(&i).copied().unwrap_or(0),
            "account {i}"
        );
        if i % 2 == 0 {
            assert!(balance >= 0, "guarded account {i} overdrawn: {balance}");
        }
    }
    assert_eq!(app.transaction_count().await, acknowledged as i64);
    app.assert_verified().await;
}
