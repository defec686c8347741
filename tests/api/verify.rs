//! `verify` on totals past the 64-bit range, and balance flags checked at every transaction
//! boundary of a guarded account's history, not only on its current totals.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{read, Backend, TestApp};

crate::on_both_backends!(
    totals_past_the_64_bit_range_verify,
    flags_are_verified_after_every_transaction,
);

/// The largest amount one posting may carry, 10^15 đồng.
const LARGEST_AMOUNT: &str = "1000000000000000";

async fn post(app: &TestApp, postings: Value) -> (StatusCode, Value) {
    let body = json!({ "description": "tổng lớn", "postings": postings });
    let key = Uuid::new_v4().to_string();
    read(app.post_idempotent("/v1/transactions", &key, &body).await).await
}

async fn verify(app: &TestApp) -> Value {
    let (status, report) = app.get("/v1/ledger/verify").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    report
}

async fn totals_past_the_64_bit_range_verify(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for code in ["big:a1", "big:a2"] {
        app.create_account(code, "asset", json!({})).await;
    }
    for code in ["big:b1", "big:b2"] {
        app.create_account(code, "liability", json!({})).await;
    }
    // No account may pass i64, so two pairs share the load: 79 transactions of 128 postings of
    // 10^15, half on each pair, are 1.0112 × 10^19 in all, each account about half of that.
    let postings: Vec<Value> = (0..128)
        .map(|i| {
            let (debit, credit) = if i % 2 == 0 {
                ("big:a1", "big:b1")
            } else {
                ("big:a2", "big:b2")
            };
            json!({ "debit": debit, "credit": credit, "amount": LARGEST_AMOUNT })
        })
        .collect();
    for _ in 0..79 {
        let (status, body) = post(&app, Value::Array(postings.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let report = verify(&app).await;
    assert_eq!(report["ok"], true, "{report}");
    let total = (79u128 * 128 * 1_000_000_000_000_000).to_string();
    assert!(total.parse::<u128>().unwrap() > i64::MAX as u128);
    assert_eq!(report["total_debits"], total.as_str(), "{report}");
    assert_eq!(report["total_credits"], total.as_str(), "{report}");
}

/// Runs each statement with its UUIDs bound in order, straight on the app's database.
async fn forge(app: &TestApp, backend: Backend, statements: &[(&str, Vec<Uuid>)]) {
    let url = &app.settings.database_url;
    for (sql, binds) in statements {
        match backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(url).await.unwrap();
                let query = binds.iter().fold(sqlx::query(sql), |q, id| q.bind(*id));
                query.execute(&pool).await.unwrap();
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let query = binds.iter().fold(sqlx::query(sql), |q, id| q.bind(*id));
                query.execute(&pool).await.unwrap();
            }
        }
    }
}

async fn flags_are_verified_after_every_transaction(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let guard = json!({ "debits_must_not_exceed_credits": true });
    app.create_account("wallet", "liability", guard).await;
    app.create_account("till", "asset", json!({})).await;
    app.create_account("bank", "asset", json!({})).await;
    // The flag is checked on the transaction's net effect: the wallet, empty, pays out before
    // it is paid in, within one transaction. Its first entry passes below zero; the last
    // entry of the transaction does not.
    let (status, body) = post(
        &app,
        json!([
            { "debit": "wallet", "credit": "till", "amount": "100" },
            { "debit": "bank", "credit": "wallet", "amount": "100" },
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(
        &app,
        json!([{ "debit": "wallet", "credit": "till", "amount": "1" }]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(verify(&app).await["ok"], true);

    // Forged past the service: a guarded account overdrawn by one transaction and made whole
    // by the next. Its totals now keep the flag; its history does not.
    let [guarded, other, first, second] = [(); 4].map(|_| Uuid::now_v7());
    forge(
        &app,
        backend,
        &[
            (
                "INSERT INTO accounts (id, code, name, kind, currency, \
                   debits_must_not_exceed_credits, credits_must_not_exceed_debits, \
                   debits_posted, credits_posted, entry_count, created_at) \
                 VALUES ($1, 'forged:guarded', 'g', 'liability', 'VND', true, false, 7, 7, 2, 0), \
                        ($2, 'forged:other', 'o', 'asset', 'VND', false, false, 7, 7, 2, 0)",
                vec![guarded, other],
            ),
            (
                "INSERT INTO transactions (id, description, effective_at, created_at, created_by) \
                 VALUES ($1, 'overdraws', 0, 0, $2), ($3, 'pays back', 0, 0, $4)",
                vec![first, first, second, second],
            ),
            (
                "INSERT INTO entries (account_id, account_seq, transaction_id, posting_index, \
                   is_debit, amount, debits_after, credits_after, effective_at, created_at) \
                 VALUES ($1, 1, $2, 0, true, 7, 7, 0, 0, 0), ($3, 1, $4, 0, false, 7, 0, 7, 0, 0), \
                        ($5, 2, $6, 0, true, 7, 7, 7, 0, 0), ($7, 2, $8, 0, false, 7, 7, 7, 0, 0)",
                vec![guarded, first, other, first, other, second, guarded, second],
            ),
        ],
    )
    .await;
    let report = verify(&app).await;
    assert_eq!(report["ok"], false, "{report}");
    let violations = report["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{report}");
    assert_eq!(violations[0]["kind"], "ENTRY_FLAG_BROKEN", "{report}");
    let detail = violations[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("forged:guarded") && detail.contains("entry 1"),
        "{detail}"
    );
}
