use reqwest::StatusCode;
use serde_json::json;

use crate::common::{error_code, read, Backend, TestApp};

crate::on_both_backends!(
    accounts_are_created_and_read_by_id_or_code,
    bad_account_requests_get_clear_4xx,
    accounts_list_filters_and_paginates,
    balance_as_of_and_entries_with_running_balance,
);

async fn accounts_are_created_and_read_by_id_or_code(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let created = app
        .create_account("bank:970436:0123456789", "asset", json!({}))
        .await;
    assert_eq!(created["balance"]["balance"], "0");
    let id = created["id"].as_str().unwrap();
    let (status, by_id) = app.get(&format!("/v1/accounts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, by_code) = app.get("/v1/accounts/bank:970436:0123456789").await;
    assert_eq!(by_id, by_code);
    assert_eq!(by_code["kind"], "asset");

    let (status, body) = app
        .post("/v1/accounts", &json!({"code": "bank:970436:0123456789", "name": "again", "kind": "asset", "currency": "VND"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "ACCOUNT_CODE_TAKEN");

    let (status, body) = app.get("/v1/accounts/payee:nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "ACCOUNT_NOT_FOUND");
}

async fn bad_account_requests_get_clear_4xx(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let cases = [
        (
            json!({"code": "a b", "name": "x", "kind": "asset", "currency": "VND"}),
            "INVALID_ACCOUNT_CODE",
        ),
        (
            json!({"code": "ok", "name": "x", "kind": "cash", "currency": "VND"}),
            "INVALID_ACCOUNT_KIND",
        ),
        (
            json!({"code": "ok", "name": "x", "kind": "asset", "currency": "XYZ"}),
            "UNKNOWN_CURRENCY",
        ),
        (
            json!({"code": "ok", "name": " ", "kind": "asset", "currency": "VND"}),
            "INVALID_ACCOUNT_NAME",
        ),
        (
            json!({"code": "ok", "name": "x", "kind": "asset", "currency": "VND", "colour": "red"}),
            "INVALID_BODY",
        ),
        (
            json!({"code": 5, "name": "x", "kind": "asset", "currency": "VND"}),
            "INVALID_BODY",
        ),
        (
            json!({"code": "ok", "name": "x", "kind": "asset", "currency": "VND",
                   "flags": {"debits_must_not_exceed_credits": true, "credits_must_not_exceed_debits": true}}),
            "CONFLICTING_FLAGS",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = app.post("/v1/accounts", &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {answer}"
        );
        assert_eq!(error_code(&answer), code, "{body}");
    }

    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/v1/accounts"))
            .bearer_auth(&app.admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, answer) = read(raw("{\"code\": ", "application/json").await.unwrap()).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "MALFORMED_JSON")
    );
    let (status, answer) = read(
        raw("code=x", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
    );

    let huge = "x".repeat(3 * 1024 * 1024);
    // Its own client: the server answers before reading the body and closes that connection,
    // which must not be handed to the requests after it.
    let response = reqwest::Client::new()
        .post(app.url("/v1/accounts"))
        .bearer_auth(&app.admin)
        .header("content-type", "application/json")
        .body(format!("{{\"code\":\"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    let (status, answer) = read(response).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );

    let (status, answer) = app.get("/v1/accounts?limit=0").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "INVALID_LIMIT")
    );
    let (status, answer) = app.get("/v1/accounts?cursor=@@@").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "INVALID_CURSOR")
    );
    let (status, answer) = app.get("/v1/accounts?limit=ten").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY")
    );
    let (status, answer) = app.get("/v1/nowhere").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND")
    );
    let response = app
        .client
        .delete(app.url("/v1/accounts"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

async fn accounts_list_filters_and_paginates(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for i in 0..7 {
        app.create_account(&format!("payee:V{i:03}"), "liability", json!({}))
            .await;
    }
    app.create_account("bank:970436:1", "asset", json!({}))
        .await;

    let mut seen = Vec::new();
    let mut path = "/v1/accounts?code_prefix=payee:&limit=3".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["code"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/accounts?code_prefix=payee:&limit=3&cursor={cursor}")
            }
            None => break,
        }
    }
    seen.sort();
    let expected: Vec<String> = (0..7).map(|i| format!("payee:V{i:03}")).collect();
    assert_eq!(seen, expected);

    let (_, assets) = app.get("/v1/accounts?kind=asset").await;
    assert_eq!(assets["data"].as_array().unwrap().len(), 1);
    assert_eq!(assets["data"][0]["code"], "bank:970436:1");
}

async fn balance_as_of_and_entries_with_running_balance(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_account("bank", "asset", json!({})).await;
    app.create_account("vendor", "liability", json!({})).await;
    let day = |d: u32| format!("2026-11-{d:02}T08:00:00Z");
    for (d, amount) in [(1, "1000"), (2, "2000"), (3, "4000")] {
        let body = json!({"description": "sale", "effective_at": day(d),
                          "postings": [{"debit": "bank", "credit": "vendor", "amount": amount}]});
        let (status, answer) = read(
            app.post_idempotent("/v1/transactions", &format!("day-{d}"), &body)
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let (_, payout) = app.transfer("vendor", "bank", "500").await;
    assert!(payout["id"].is_string(), "{payout}");

    assert_eq!(app.balance("vendor").await, "6500");
    let (_, past) = app
        .get(&format!("/v1/accounts/vendor?as_of={}", day(2)))
        .await;
    assert_eq!(past["balance"]["balance"], "3000", "{past}");
    assert_eq!(past["as_of"], "2026-11-02T08:00:00Z");
    let (_, before) = app
        .get("/v1/accounts/vendor?as_of=2026-10-01T00:00:00Z")
        .await;
    assert_eq!(before["balance"]["balance"], "0");

    let (_, page) = app.get("/v1/accounts/vendor/entries?limit=3").await;
    let entries = page["data"].as_array().unwrap();
    let running: Vec<&str> = entries
        .iter()
        .map(|e| e["balance_after"]["balance"].as_str().unwrap())
        .collect();
    assert_eq!(running, ["1000", "3000", "7000"]);
    let cursor = page["next_cursor"].as_str().expect("more entries");
    let (_, rest) = app
        .get(&format!("/v1/accounts/vendor/entries?cursor={cursor}"))
        .await;
    assert_eq!(rest["data"][0]["direction"], "debit");
    assert_eq!(rest["data"][0]["balance_after"]["balance"], "6500");
    assert_eq!(rest["data"][0]["sequence"], 4);
    assert!(rest["next_cursor"].is_null());
}
