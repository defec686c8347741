//! Bank statement import: a CSV statement compared with what the webhooks stored and with the
//! ledger, and the lines no webhook brought recorded once, through the real server.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use market_ledger::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::common::{create_payee, error_code, read, vendor, Backend, TestApp};

crate::on_both_backends!(
    a_statement_is_compared_then_its_missing_lines_are_recorded_once,
    bad_statements_and_periods_are_refused_without_effect,
);

const FEED_KEY: &[u8] = b"commune-statement-test-key-0123456789";
const ACCOUNT_NUMBER: &str = "0123456789";
/// 1 March 2025, Vietnam time.
const FROM: &str = "2025-03-01T00:00:00+07:00";
const TO: &str = "2025-03-02T00:00:00+07:00";

struct Setup {
    collection_account: String,
    bank_account: String,
    payee_account: String,
}

/// A vendor V042 collecting into 970436/0123456789, with a `standard` feed on that account.
async fn setup(app: &TestApp) -> Setup {
    let payee = create_payee(app, &vendor("V042", ACCOUNT_NUMBER)).await;
    let collection_account = payee["collection_account"]["id"].as_str().unwrap();
    let response = app
        .client
        .put(app.url(&format!(
            "/v1/collection-accounts/{collection_account}/feed"
        )))
        .bearer_auth(&app.admin)
        .json(&json!({
            "provider": "standard",
            "secrets": [format!("whsec_{}", STANDARD.encode(FEED_KEY))],
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Setup {
        collection_account: collection_account.to_owned(),
        bank_account: payee["collection_account"]["ledger_account_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        payee_account: payee["ledger_account_id"].as_str().unwrap().to_owned(),
    }
}

/// Delivers a Standard Webhooks `bank_transaction` for the monitored account, signed now.
async fn deliver(app: &TestApp, data: Value) -> (StatusCode, Value) {
    let mut data = data;
    data["account_number"] = json!(ACCOUNT_NUMBER);
    let body = json!({ "type": "bank_transaction", "data": data }).to_string();
    let id = format!("msg_{}", Uuid::new_v4().simple());
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(FEED_KEY).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let response = app
        .client
        .post(app.url("/v1/webhooks/standard"))
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp)
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    read(response).await
}

/// Delivers one transfer and returns our bank transaction id for it.
async fn deliver_ok(app: &TestApp, data: Value) -> String {
    let (status, ack) = deliver(app, data).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["duplicate"], false, "{ack}");
    ack["transactions"][0]["id"].as_str().unwrap().to_owned()
}

async fn upload_as(
    app: &TestApp,
    token: &str,
    query: &str,
    csv: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/reconciliation/statements?{query}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn upload(
    app: &TestApp,
    account: &str,
    ingest: bool,
    csv: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let query = format!(
        "collection_account_id={account}&from={}&to={}{}",
        urlencode(FROM),
        urlencode(TO),
        if ingest { "&ingest=true" } else { "" }
    );
    upload_as(app, &app.admin, &query, csv).await
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// The statement of 1 March: line 2 matches a webhook by bank reference, line 3 one by amount
/// and time, line 4 has a webhook with the same reference but another amount, lines 5 to 7 no
/// webhook in the period (7's webhook came dated two days later, outside the period).
const STATEMENT: &str = "\
date,direction,amount,description,bank_reference,running_balance
01/03/2025 08:30:00,in,\"150,000\",\"V042 tien che, sap 12\",FT25060AAA1,
2025-03-01 09:02:00,in,50000,CK V042,,
2025-03-01T10:00:00+07:00,in,200.000,V042 mua che xanh,FT25060CCC3,
2025-03-01 14:00:00,in,70000,V042 ban che,FT25060DDD4,
2025-03-01 15:00,out,5000,Phi SMS,,
2025-03-01 16:00:00,C,40000,V042 tra no,ft25060eee6,\"515,000\"
";

fn lines_of(list: &Value) -> Vec<u64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["line"].as_u64().unwrap())
        .collect()
}

async fn a_statement_is_compared_then_its_missing_lines_are_recorded_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let setup = setup(&app).await;
    let account = setup.collection_account.as_str();

    // Just before the period and just after it: loaded for tolerance, never reported.
    let before = deliver_ok(
        &app,
        json!({"id": "sp-0", "direction": "in", "amount": 10000,
        "description": "V042 toi", "occurred_at": "2025-02-28T23:55:00+07:00"}),
    )
    .await;
    let by_reference = deliver_ok(
        &app,
        json!({"id": "sp-1", "direction": "in", "amount": 150000,
        "description": "MBVCB.1.V042 tien che", "occurred_at": "2025-03-01T08:30:05+07:00",
        "reference": "FT25060AAA1"}),
    )
    .await;
    let by_amount = deliver_ok(
        &app,
        json!({"id": "sp-2", "direction": "in", "amount": 50000,
        "description": "CK V042", "occurred_at": "2025-03-01T09:00:00+07:00"}),
    )
    .await;
    let mismatched = deliver_ok(
        &app,
        json!({"id": "sp-3", "direction": "in", "amount": 20000,
        "description": "V042 mua che xanh", "occurred_at": "2025-03-01T10:00:10+07:00",
        "reference": "FT25060CCC3"}),
    )
    .await;
    let not_in_statement = deliver_ok(
        &app,
        json!({"id": "sp-4", "direction": "in",
        "amount": 30000, "description": "V042 nuoc", "occurred_at": "2025-03-01T11:00:00+07:00"}),
    )
    .await;
    let after = deliver_ok(
        &app,
        json!({"id": "sp-5", "direction": "in", "amount": 10000,
        "description": "V042 sang", "occurred_at": "2025-03-02T00:05:00+07:00"}),
    )
    .await;
    let dated_later = deliver_ok(
        &app,
        json!({"id": "sp-6", "direction": "in", "amount": 40000,
        "description": "V042 tra no", "occurred_at": "2025-03-03T09:00:00+07:00",
        "reference": "FT25060EEE6"}),
    )
    .await;
    let _ = (before, after);
    // Webhooks before the end of the period: 10000 + 150000 + 50000 + 20000 + 30000.
    let ledger_at_end = 260_000;
    assert_eq!(app.balance(&setup.bank_account).await, "310000");

    // Compare only.
    let transactions_before = app.transaction_count().await;
    let (status, report) = upload(&app, account, false, STATEMENT).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["collection_account_id"], account);
    assert_eq!(report["from"], "2025-02-28T17:00:00Z");
    assert_eq!(report["to"], "2025-03-01T17:00:00Z");
    assert_eq!(report["ingest"], false);
    assert_eq!(
        report["counts"],
        json!({"statement_lines": 6, "known_transactions": 6, "matched": 2,
            "amount_mismatches": 1, "missing_webhooks": 3, "not_in_statement": 1}),
        "{report}"
    );
    assert_eq!(
        report["matched"],
        json!([
            {"line": 2, "bank_transaction_id": by_reference, "matched_by": "bank_reference"},
            {"line": 3, "bank_transaction_id": by_amount, "matched_by": "amount_and_time"},
        ])
    );
    assert_eq!(
        report["amount_mismatches"],
        json!([{"line": 4, "bank_transaction_id": mismatched, "matched_by": "bank_reference",
            "statement_amount": "200000", "recorded_amount": "20000"}])
    );
    assert_eq!(lines_of(&report["missing_webhooks"]), [5, 6, 7]);
    assert_eq!(
        report["missing_webhooks"][0],
        json!({"line": 5, "occurred_at": "2025-03-01T07:00:00Z", "has_time": true,
            "direction": "in", "amount": "70000", "description": "V042 ban che",
            "bank_reference": "FT25060DDD4"})
    );
    // Only the transaction inside the period; the ones just outside it are not reported.
    assert_eq!(
        report["not_in_statement"],
        json!([{"bank_transaction_id": not_in_statement,
            "occurred_at": "2025-03-01T04:00:00Z", "direction": "in", "amount": "30000",
            "description": "V042 nuoc"}])
    );
    assert_eq!(report["statement_closing_balance"], "515000");
    assert_eq!(report["ledger_closing_balance"], ledger_at_end.to_string());
    assert_eq!(
        report["closing_balance_difference"],
        (515_000 - ledger_at_end).to_string()
    );
    assert_eq!(report["ingested"], json!([]));
    assert_eq!(report["not_ingested"], json!([]));
    assert_eq!(report["ledger_closing_balance_after_ingest"], Value::Null);
    assert_eq!(app.transaction_count().await, transactions_before);

    // Record the missing lines: 5 is new money, 7 is the transfer the webhook dated later
    // (same bank reference), 6 has no reference to deduplicate on.
    let (status, imported) = upload(&app, account, true, STATEMENT).await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    assert_eq!(imported["ingest"], true);
    assert_eq!(
        imported["counts"], report["counts"],
        "the comparison is of before"
    );
    let ingested = imported["ingested"].as_array().unwrap();
    assert_eq!(lines_of(&imported["ingested"]), [5, 7], "{imported}");
    assert_eq!(ingested[0]["duplicate"], false);
    assert_eq!(ingested[0]["matched_as"], "payee");
    assert_eq!(ingested[1]["duplicate"], true);
    assert_eq!(ingested[1]["bank_transaction_id"], dated_later.as_str());
    assert_eq!(
        imported["not_ingested"],
        json!([{"line": 6, "code": "NO_BANK_REFERENCE",
            "reason": imported["not_ingested"][0]["reason"]}])
    );
    assert_eq!(
        imported["ledger_closing_balance_after_ingest"],
        (ledger_at_end + 70_000).to_string()
    );
    assert_eq!(
        imported["closing_balance_difference_after_ingest"],
        (515_000 - ledger_at_end - 70_000).to_string()
    );
    let recorded = ingested[0]["bank_transaction_id"].as_str().unwrap();
    let (status, transaction) = app.get(&format!("/v1/bank-transactions/{recorded}")).await;
    assert_eq!(status, StatusCode::OK, "{transaction}");
    assert_eq!(transaction["provider"], "standard");
    assert_eq!(
        transaction["provider_transaction_id"],
        format!("statement:{account}:in:FT25060DDD4")
    );
    assert_eq!(transaction["bank_reference"], "FT25060DDD4");
    assert_eq!(transaction["amount"], "70000");
    assert_eq!(transaction["direction"], "in");
    assert_eq!(transaction["occurred_at"], "2025-03-01T07:00:00Z");
    assert_eq!(transaction["collection_account_id"], account);
    assert_eq!(transaction["matched_as"], "payee");
    assert_eq!(transaction["running_balance"], Value::Null);
    assert_eq!(app.transaction_count().await, transactions_before + 1);
    assert_eq!(app.balance(&setup.bank_account).await, "380000");
    // The vendor's liability: every incoming transfer named V042.
    assert_eq!(app.balance(&setup.payee_account).await, "380000");
    // Recording a past line must not raise running-balance discrepancies.
    let (_, discrepancies) = app.get("/v1/reconciliation/discrepancies").await;
    assert_eq!(discrepancies["data"], json!([]), "{discrepancies}");

    // Again: line 5 now matches what was recorded; line 7 is found again; nothing changes.
    let (status, again) = upload(&app, account, true, STATEMENT).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["counts"]["matched"], 3, "{again}");
    assert_eq!(again["matched"][2]["line"], 5);
    assert_eq!(again["matched"][2]["bank_transaction_id"], recorded);
    assert_eq!(lines_of(&again["missing_webhooks"]), [6, 7]);
    assert_eq!(
        again["ingested"],
        json!([{"line": 7, "bank_transaction_id": dated_later, "matched_as": "payee",
            "duplicate": true}])
    );
    assert_eq!(
        again["ledger_closing_balance"],
        (ledger_at_end + 70_000).to_string()
    );
    assert_eq!(app.transaction_count().await, transactions_before + 1);
    assert_eq!(app.balance(&setup.bank_account).await, "380000");

    // The webhook for line 5 turns up late, under the aggregator's own id: the same money.
    let (status, ack) = deliver(
        &app,
        json!({"id": "sp-late-5", "direction": "in",
        "amount": 70000, "description": "MBVCB.9.V042 ban che",
        "occurred_at": "2025-03-01T14:00:20+07:00", "reference": "FT25060DDD4"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["duplicate"], true, "{ack}");
    assert_eq!(ack["transactions"][0]["id"], recorded);
    assert_eq!(app.transaction_count().await, transactions_before + 1);
    assert_eq!(app.balance(&setup.bank_account).await, "380000");

    // The same amount a few hours later under a reference the statement does not use: maybe
    // the same money, so it waits in suspense for staff instead of paying the vendor twice.
    let (status, ack) = deliver(
        &app,
        json!({"id": "sp-maybe-5", "direction": "in",
        "amount": 70000, "description": "V042 ban che",
        "occurred_at": "2025-03-01T17:00:00+07:00", "reference": "MBVCB.555"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["matched_as"], "suspense", "{ack}");
    let maybe = ack["transactions"][0]["id"].as_str().unwrap();
    let (_, parked) = app.get(&format!("/v1/bank-transactions/{maybe}")).await;
    assert_eq!(parked["flags"], json!(["possible_duplicate"]), "{parked}");
    assert_eq!(app.balance(&setup.payee_account).await, "380000");
    // Staff find it is the same money: it is taken back out of the ledger, once.
    let parked_total: i64 = app.balance("suspense:bank-feed").await.parse().unwrap();
    let resolve = format!("/v1/reconciliation/unmatched/{maybe}/resolve");
    let itself = json!({ "duplicate_of": maybe, "note": "same transfer" });
    let (status, refused) = read(app.post_idempotent(&resolve, "dup-0", &itself).await).await;
    assert_eq!(
        (status, error_code(&refused)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "RESOLUTION_NOT_A_DUPLICATE"
        )
    );
    let same = json!({ "duplicate_of": recorded, "note": "bank statement line 5, same transfer" });
    let (status, resolved) = read(app.post_idempotent(&resolve, "dup-1", &same).await).await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["resolution"]["action"], "duplicate");
    assert_eq!(resolved["resolution"]["duplicate_of"], recorded);
    assert_eq!(app.balance(&setup.bank_account).await, "380000");
    let parked_after: i64 = app.balance("suspense:bank-feed").await.parse().unwrap();
    assert_eq!(parked_after, parked_total - 70_000);

    // A webhook with a new reference is still recorded as usual.
    deliver_ok(
        &app,
        json!({"id": "sp-7", "direction": "in", "amount": 1000,
        "description": "V042", "occurred_at": "2025-03-01T18:00:00+07:00",
        "reference": "FT25060FFF7"}),
    )
    .await;
    assert_eq!(app.balance(&setup.bank_account).await, "381000");
    app.assert_verified().await;
}

async fn bad_statements_and_periods_are_refused_without_effect(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let setup = setup(&app).await;
    let account = setup.collection_account.as_str();
    let transactions_before = app.transaction_count().await;
    const HEADER: &str = "date,direction,amount,description,bank_reference,running_balance\n";

    let bad_amount =
        format!("{HEADER}2025-03-01 08:00,in,150000,ok,FT1,\n2025-03-01 09:00,in,12.5,V042,FT2,\n");
    let (status, body) = upload(&app, account, true, bad_amount).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "STATEMENT_LINE_INVALID");
    assert_eq!(body["error"]["details"], json!({"line": 3}));

    let outside = format!(
        "{HEADER}2025-03-01 08:00,in,150000,V042,FT1,\n\n05/03/2025 09:00,in,1000,V042,FT2,\n"
    );
    let (status, body) = upload(&app, account, true, outside).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "STATEMENT_LINE_OUTSIDE_PERIOD");
    assert_eq!(body["error"]["details"], json!({"line": 4}));

    let (status, body) = upload(&app, account, false, "date,amount\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "STATEMENT_HEADER_INVALID");
    assert_eq!(body["error"]["details"], json!({"line": 1}));

    let (status, body) = upload(&app, account, false, HEADER).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "STATEMENT_EMPTY");

    let good = format!("{HEADER}2025-03-01 08:00,in,150000,V042,FT1,\n");
    for (query, status, code) in [
        (
            format!("collection_account_id={account}&from=yesterday&to=2025-03-02T00:00:00Z"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "STATEMENT_PERIOD_INVALID",
        ),
        (
            format!(
                "collection_account_id={account}&from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z"
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "STATEMENT_PERIOD_INVALID",
        ),
        (
            format!(
                "collection_account_id={account}&from=2024-01-01T00:00:00Z&to=2025-03-02T00:00:00Z"
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "STATEMENT_PERIOD_INVALID",
        ),
        (
            format!("collection_account_id={account}&from=2025-03-01T00:00:00Z"),
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
        ),
        (
            "collection_account_id=not-a-uuid&from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z"
                .to_owned(),
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
        ),
        (
            format!(
                "collection_account_id={}&from=2025-02-28T17:00:00Z&to=2025-03-01T17:00:00Z",
                Uuid::now_v7()
            ),
            StatusCode::NOT_FOUND,
            "COLLECTION_ACCOUNT_NOT_FOUND",
        ),
    ] {
        let (got, body) = upload_as(&app, &app.admin, &query, good.clone()).await;
        assert_eq!((got, error_code(&body)), (status, code), "{query}: {body}");
    }

    // Staff and admins only: comparing reads every transfer, ingesting moves money.
    let query = format!("collection_account_id={account}&from=2025-02-28T17:00:00Z&to=2025-03-01T17:00:00Z&ingest=true");
    for role in [Role::Vendor, Role::School, Role::Auditor] {
        let token = app.token_for(role).await;
        let (status, body) = upload_as(&app, &token, &query, good.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {body}");
    }
    let staff = app.token_for(Role::Staff).await;
    let (status, body) = upload_as(&app, &staff, &query, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ingested"][0]["duplicate"], false, "{body}");
    assert_eq!(body["ingested"][0]["matched_as"], "payee", "{body}");
    let transactions_after_staff = transactions_before + 1;
    assert_eq!(app.transaction_count().await, transactions_after_staff);

    // The route takes statements larger than the service's default body limit (2 MiB), up to
    // 4 MiB.
    let long_memo = "V042 ".repeat(700_000);
    let large = format!("{HEADER}2025-03-01 10:00,in,1000,{long_memo},,\n");
    assert!(large.len() > 3 * 1024 * 1024);
    let (status, body) = upload(&app, account, false, large).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(lines_of(&body["missing_webhooks"]), [2]);
    let too_large = format!("{HEADER}{}", "x".repeat(4 * 1024 * 1024));
    let (status, body) = upload(&app, account, false, too_large).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE");

    assert_eq!(app.transaction_count().await, transactions_after_staff);
    app.assert_verified().await;
}
