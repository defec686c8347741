use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_refused_by_the_database, error_code, read, Backend, TestApp};
use market_ledger::domain::user::Role;

crate::on_both_backends!(
    a_transfer_moves_both_balances,
    every_bad_transaction_is_refused_with_its_own_code_and_no_effect,
    idempotency_keys_replay_or_refuse,
    reversals_mirror_once,
    batches_report_each_result_or_fail_whole,
    transactions_are_listed_with_filters_and_cursor,
    entries_cannot_be_changed_in_the_database,
);

async fn a_transfer_moves_both_balances(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_account("bank", "asset", json!({})).await;
    app.create_account("vendor", "liability", json!({})).await;
    let body = json!({"description": "Bán chè 1kg", "reference": "INV-1", "metadata": {"stall": 12},
                      "postings": [{"debit": "bank", "credit": "vendor", "amount": "50000"}]});
    let (status, posted) = read(app.post_idempotent("/v1/transactions", "t-1", &body).await).await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["postings"][0]["amount"], "50000");
    assert_eq!(posted["metadata"]["stall"], 12);
    assert_eq!(app.balance("bank").await, "50000");
    assert_eq!(app.balance("vendor").await, "50000");

    let (status, read_back) = app
        .get(&format!(
            "/v1/transactions/{}",
            posted["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read_back, posted);
    app.assert_verified().await;
}

async fn every_bad_transaction_is_refused_with_its_own_code_and_no_effect(backend: Backend) {
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
    let (status, usd) = app
        .post(
            "/v1/accounts",
            &json!({"code": "usd", "name": "Dollar float", "kind": "asset", "currency": "USD"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{usd}");
    app.transfer("bank", "vendor", "100").await;

    let posting = |debit: &str, credit: &str, amount: Value| json!([{"debit": debit, "credit": credit, "amount": amount}]);
    let many: Vec<Value> = (0..129)
        .map(|_| json!({"debit": "bank", "credit": "vendor", "amount": "1"}))
        .collect();
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            posting("bank", "vendor", json!("0")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "AMOUNT_NOT_POSITIVE",
        ),
        (
            posting("bank", "vendor", json!("-5")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "AMOUNT_NOT_POSITIVE",
        ),
        (
            posting("bank", "vendor", json!("10.5")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "AMOUNT_TOO_PRECISE",
        ),
        (
            // A JSON fraction has been rounded to binary floating point before we see it.
            posting("bank", "vendor", json!(10.5)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            posting("bank", "vendor", json!(format!("1.{}1", "0".repeat(30)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "AMOUNT_TOO_PRECISE",
        ),
        (
            posting("bank", "vendor", json!("99999999999999999999")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "AMOUNT_TOO_LARGE",
        ),
        (
            posting("bank", "vendor", json!("ten")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "AMOUNT_INVALID",
        ),
        (
            posting("bank", "nobody", json!("1")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_ACCOUNT",
        ),
        (
            posting("bank", "usd", json!("1")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "CURRENCY_MISMATCH",
        ),
        (
            posting("bank", "bank", json!("1")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "SAME_ACCOUNT",
        ),
        (
            posting("vendor", "bank", json!("101")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "DEBITS_EXCEED_CREDITS",
        ),
        (
            // A posting is an object: fields taken by their order would move money by guess.
            json!([["bank", "vendor", "1"]]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (json!([]), StatusCode::UNPROCESSABLE_ENTITY, "NO_POSTINGS"),
        (
            Value::Array(many),
            StatusCode::UNPROCESSABLE_ENTITY,
            "TOO_MANY_POSTINGS",
        ),
    ];
    for (postings, status, code) in cases {
        let body = json!({"description": "bad", "postings": postings});
        let (got, answer) = read(
            app.post_idempotent("/v1/transactions", &Uuid::new_v4().to_string(), &body)
                .await,
        )
        .await;
        assert_eq!((got, error_code(&answer)), (status, code), "{answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    // A multi-posting transaction whose second posting overdraws posts nothing at all.
    let body = json!({"description": "half good", "postings": [
        {"debit": "bank", "credit": "vendor", "amount": "5"},
        {"debit": "vendor", "credit": "bank", "amount": "500"}]});
    let (status, answer) = read(app.post_idempotent("/v1/transactions", "half", &body).await).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "DEBITS_EXCEED_CREDITS")
    );

    let nul = json!({"description": "tea\u{0}", "postings": posting("bank", "vendor", json!("1"))});
    let (status, answer) = read(app.post_idempotent("/v1/transactions", "nul", &nul).await).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "NUL_CHARACTER")
    );
    let (status, _) = app.get("/v1/accounts/bank%00").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let future = json!({"description": "later", "effective_at": "2999-01-01T00:00:00Z",
                        "postings": [{"debit": "bank", "credit": "vendor", "amount": "1"}]});
    let (status, answer) = read(
        app.post_idempotent("/v1/transactions", "future", &future)
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "EFFECTIVE_AT_IN_FUTURE")
    );

    let missing_key = app
        .client
        .post(app.url("/v1/transactions"))
        .bearer_auth(&app.admin)
        .json(&json!({"description": "x", "postings": posting("bank", "vendor", json!("1"))}))
        .send()
        .await
        .unwrap();
    let (status, answer) = read(missing_key).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED")
    );
    // The key is 1 to 255 visible characters: a space is not one.
    let (status, answer) = read(
        app.post_idempotent(
            "/v1/transactions",
            "two words",
            &json!({"description": "x", "postings": posting("bank", "vendor", json!("1"))}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY")
    );

    assert_eq!(app.balance("vendor").await, "100");
    assert_eq!(app.balance("bank").await, "100");
    assert_eq!(app.transaction_count().await, 1);
    // A refused request stores no key: the same key may be used for a corrected request.
    let (status, _) = read(
        app.post_idempotent(
            "/v1/transactions",
            "half",
            &json!({"description": "fixed", "postings": posting("bank", "vendor", json!("5"))}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    app.assert_verified().await;
}

async fn idempotency_keys_replay_or_refuse(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_account("bank", "asset", json!({})).await;
    app.create_account("vendor", "liability", json!({})).await;
    let body = json!({"description": "sale", "postings": [{"debit": "bank", "credit": "vendor", "amount": "700"}]});

    let first = app
        .post_idempotent("/v1/transactions", "key-1", &body)
        .await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (status, first) = read(first).await;
    assert_eq!(status, StatusCode::CREATED);

    // Same body with keys in another order: the same request.
    let reordered: Value = serde_json::from_str(
        r#"{"postings": [{"amount": "700", "credit": "vendor", "debit": "bank"}], "description": "sale"}"#,
    )
    .unwrap();
    let again = app
        .post_idempotent("/v1/transactions", "key-1", &reordered)
        .await;
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let (status, replayed) = read(again).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replayed, first);

    let changed = json!({"description": "sale", "postings": [{"debit": "bank", "credit": "vendor", "amount": "701"}]});
    let (status, answer) = read(
        app.post_idempotent("/v1/transactions", "key-1", &changed)
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
    );

    // The same key on another endpoint is another request.
    let (status, answer) = read(
        app.post_idempotent(
            "/v1/transactions/batch",
            "key-1",
            &json!({"transactions": [body]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
    );

    // Keys are scoped per user.
    let staff = app.token_for(Role::Staff).await;
    let (status, other) = read(
        app.post_idempotent_as("/v1/transactions", "key-1", &body, &staff)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(other["id"], first["id"]);

    assert_eq!(app.balance("vendor").await, "1400");
    app.assert_verified().await;
}

async fn reversals_mirror_once(backend: Backend) {
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
    let (_, original) = app.transfer("bank", "vendor", "300").await;
    let id = original["id"].as_str().unwrap();

    // The default "Reversal of ..." description must fit even when the original is full length.
    let long = json!({"description": "đ".repeat(512),
                      "postings": [{"debit": "bank", "credit": "vendor", "amount": "1"}]});
    let (status, long) = read(app.post_idempotent("/v1/transactions", "long", &long).await).await;
    assert_eq!(status, StatusCode::CREATED, "{long}");
    let long_id = long["id"].as_str().unwrap();
    let (status, long_reversal) = read(
        app.post_idempotent(
            &format!("/v1/transactions/{long_id}/reverse"),
            "rev-long",
            &Value::Null,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{long_reversal}");
    let description = long_reversal["description"].as_str().unwrap();
    assert!(description.starts_with("Reversal of đđ"));
    assert_eq!(description.chars().count(), 512);

    let (status, reversal) = read(
        app.post_idempotent(
            &format!("/v1/transactions/{id}/reverse"),
            "rev-1",
            &Value::Null,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reversal}");
    assert_eq!(reversal["reversal_of"], id);
    assert_eq!(
        reversal["postings"][0]["debit"],
        original["postings"][0]["credit"]
    );
    assert_eq!(app.balance("vendor").await, "0");
    assert_eq!(app.balance("bank").await, "0");

    let (_, read_back) = app.get(&format!("/v1/transactions/{id}")).await;
    assert_eq!(read_back["reversed_by"], reversal["id"]);

    let (status, answer) = read(
        app.post_idempotent(
            &format!("/v1/transactions/{id}/reverse"),
            "rev-2",
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "ALREADY_REVERSED")
    );
    let reversal_id = reversal["id"].as_str().unwrap();
    let (status, answer) = read(
        app.post_idempotent(
            &format!("/v1/transactions/{reversal_id}/reverse"),
            "rev-3",
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "REVERSAL_NOT_REVERSIBLE")
    );
    let (status, answer) = read(
        app.post_idempotent(
            &format!("/v1/transactions/{}/reverse", Uuid::new_v4()),
            "rev-4",
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "TRANSACTION_NOT_FOUND")
    );

    // Reversing a credit whose money is gone would overdraw the payee: refused.
    let (_, paid_in) = app.transfer("bank", "vendor", "100").await;
    app.transfer("vendor", "bank", "100").await;
    let paid_in = paid_in["id"].as_str().unwrap();
    let (status, answer) = read(
        app.post_idempotent(
            &format!("/v1/transactions/{paid_in}/reverse"),
            "rev-5",
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "DEBITS_EXCEED_CREDITS")
    );
    app.assert_verified().await;
}

async fn batches_report_each_result_or_fail_whole(backend: Backend) {
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
    let transfer = |debit: &str, credit: &str, amount: &str| json!({"description": "batch", "postings": [{"debit": debit, "credit": credit, "amount": amount}]});
    let fixed_id = Uuid::new_v4();
    let mut repeated = transfer("bank", "vendor", "1");
    repeated["id"] = json!(fixed_id);
    let items = json!([
        transfer("bank", "vendor", "100"),
        transfer("vendor", "bank", "60"),
        transfer("vendor", "bank", "60"),
        transfer("bank", "nobody", "1"),
        repeated.clone(),
        repeated,
    ]);
    let (status, answer) = read(
        app.post_idempotent(
            "/v1/transactions/batch",
            "b-1",
            &json!({"transactions": items}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let statuses: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["posted", "posted", "rejected", "rejected", "posted", "rejected"]
    );
    assert_eq!(
        answer["results"][2]["error"]["code"],
        "DEBITS_EXCEED_CREDITS"
    );
    assert_eq!(answer["results"][3]["error"]["code"], "UNKNOWN_ACCOUNT");
    assert_eq!(answer["results"][5]["error"]["code"], "TRANSACTION_EXISTS");
    assert_eq!(
        (answer["posted"].as_u64(), answer["rejected"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(app.balance("vendor").await, "41");

    let atomic = json!({"atomic": true, "transactions": [transfer("bank", "vendor", "5"), transfer("vendor", "bank", "500")]});
    let (status, answer) = read(
        app.post_idempotent("/v1/transactions/batch", "b-2", &atomic)
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "BATCH_REJECTED")
    );
    assert_eq!(answer["error"]["details"]["index"], 1);
    assert_eq!(
        answer["error"]["details"]["cause"]["code"],
        "DEBITS_EXCEED_CREDITS"
    );
    assert_eq!(app.balance("vendor").await, "41");

    let too_many: Vec<Value> = (0..1001).map(|_| transfer("bank", "vendor", "1")).collect();
    let (status, answer) = read(
        app.post_idempotent(
            "/v1/transactions/batch",
            "b-3",
            &json!({"transactions": too_many}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "BATCH_TOO_LARGE")
    );
    let (status, answer) = read(
        app.post_idempotent(
            "/v1/transactions/batch",
            "b-4",
            &json!({"transactions": []}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "BATCH_EMPTY")
    );
    // A transaction's posting sent as an array, two levels down: refused, nothing posted.
    let nested = json!({"transactions": [
        {"description": "by order", "postings": [["bank", "vendor", "1"]]}]});
    let (status, answer) = read(
        app.post_idempotent("/v1/transactions/batch", "b-6", &nested)
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY"),
        "{answer}"
    );

    let full: Vec<Value> = (0..1000).map(|_| transfer("bank", "vendor", "1")).collect();
    let (status, answer) = read(
        app.post_idempotent(
            "/v1/transactions/batch",
            "b-5",
            &json!({"transactions": full, "atomic": true}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["posted"], 1000);
    assert_eq!(app.balance("vendor").await, "1041");
    app.assert_verified().await;
}

async fn transactions_are_listed_with_filters_and_cursor(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for code in ["bank", "a", "b"] {
        app.create_account(code, "asset", json!({})).await;
    }
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    for i in 0..5 {
        let body = json!({"description": "to a", "reference": format!("R{i}"), "postings": [{"debit": "a", "credit": "bank", "amount": "1"}]});
        read(
            app.post_idempotent("/v1/transactions", &format!("a-{i}"), &body)
                .await,
        )
        .await;
    }
    app.transfer("b", "bank", "1").await;

    let mut ids = Vec::new();
    let mut path = "/v1/transactions?account=a&limit=2".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/transactions?account=a&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 5);
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 5, "a page repeated a transaction: {ids:?}");

    let (_, by_reference) = app.get("/v1/transactions?reference=R3").await;
    assert_eq!(by_reference["data"].as_array().unwrap().len(), 1);
    let from = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, recent) = app.get(&format!("/v1/transactions?from={from}")).await;
    assert_eq!(recent["data"].as_array().unwrap().len(), 6);
    let (_, none) = app.get(&format!("/v1/transactions?to={from}")).await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    let (status, answer) = app.get("/v1/transactions/not-a-uuid").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "INVALID_PATH")
    );
}

async fn entries_cannot_be_changed_in_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_account("bank", "asset", json!({})).await;
    app.create_account("vendor", "liability", json!({})).await;
    app.transfer("bank", "vendor", "10").await;
    assert_refused_by_the_database(
        &app,
        backend,
        &[
            "UPDATE entries SET amount = 1",
            "DELETE FROM entries",
            "UPDATE transactions SET description = 'x'",
            "DELETE FROM transactions",
        ],
    )
    .await;
    app.assert_verified().await;
}
