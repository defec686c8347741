//! Bank-feed webhooks through the real server: the real signed samples of every provider,
//! refusals that store nothing, exactly-once posting under replays, matching, suspense and
//! its resolution, running-balance discrepancies.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Sha256, Sha512};
use uuid::Uuid;

use market_ledger::domain::user::Role;

use crate::common::{error_code, read, Backend, TestApp};

crate::on_both_backends!(
    payos_transfer_verifies_posts_once_and_refuses_a_flipped_byte,
    payos_webhook_confirmation_is_answered_recorded_as_a_test_and_posts_nothing,
    casso_v2_verifies_inside_its_window_only,
    sepay_apikey_transfer_posts_and_records_the_balance_discrepancy,
    sepay_and_casso_test_buttons_are_answered_and_post_nothing,
    casso_v1_secure_token_sample_posts,
    standard_webhooks_refuse_tampering_stale_timestamps_and_retired_secrets,
    feeds_are_configured_by_staff_and_bad_deliveries_are_refused,
    fifty_concurrent_copies_post_once,
    references_settle_intents_partially_fully_late_and_cancelled,
    static_codes_unmatched_money_and_outgoing_transfers,
    staff_resolve_suspense_once_with_who_when_and_why,
    a_test_delivery_is_signed_as_each_provider_signs_and_lands,
);

pub(crate) const STANDARD_SECRET: &str = "whsec_Y29tbXVuZS1mZWVkLWtleS0wMTIzNDU2Nzg5YWJjZGVm";

fn samples() -> Value {
    serde_json::from_str(include_str!("../fixtures/webhooks.json")).expect("fixture is JSON")
}

pub(crate) fn sample(group: &str) -> Value {
    samples()[group][0].clone()
}

/// `body` with its `signature` set as payOS's official SDKs compute it: HMAC-SHA256 (hex) with
/// the checksum key over `data`'s fields sorted by key as `key=value&...`, strings as they are,
/// numbers as digits, null as nothing. Returns the serialized body.
pub(crate) fn payos_signed(mut body: Value, checksum_key: &str) -> Vec<u8> {
    let data = body["data"].as_object().expect("a data object");
    let mut keys: Vec<&String> = data.keys().collect();
    keys.sort();
    let signed = keys
        .iter()
        .map(|key| {
            let value = match &data[key.as_str()] {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join("&");
    let mut mac = Hmac::<Sha256>::new_from_slice(checksum_key.as_bytes()).expect("any key");
    mac.update(signed.as_bytes());
    body["signature"] = json!(hex::encode(mac.finalize().into_bytes()));
    serde_json::to_vec(&body).expect("serializable")
}

/// A Casso v2 `X-Casso-Signature` for `body` at `t_millis`: HMAC-SHA512 (hex) over
/// `t.` + the body as compact JSON with sorted keys (serde_json's map is sorted).
fn casso_signature(checksum_key: &str, t_millis: i64, body: &Value) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(checksum_key.as_bytes()).expect("any key");
    mac.update(format!("{t_millis}.").as_bytes());
    mac.update(&serde_json::to_vec(body).expect("serializable"));
    format!(
        "t={t_millis},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// The providers' test deliveries staff see, oldest first.
async fn test_deliveries(app: &TestApp) -> Vec<Value> {
    let (status, page) = app.get("/v1/webhooks/test-deliveries?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().expect("data").clone()
}

/// Asserts that a delivery was answered 2xx as a test of `provider`, with nothing recorded.
fn assert_test_ack(status: StatusCode, ack: &Value, provider: &str) {
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["success"], true, "{ack}");
    assert_eq!(ack["transactions"], json!([]), "{ack}");
    let ignored = ack["ignored"].as_str().expect("ignored says why");
    assert!(
        ignored.starts_with(&format!("a {provider} test delivery")),
        "{ack}"
    );
}

/// Onboards a vendor collecting into `account_number`; returns (payee, collection account id).
pub(crate) async fn vendor(
    app: &TestApp,
    code: &str,
    bin: &str,
    account_number: &str,
) -> (Value, String) {
    let (status, payee) = app
        .post(
            "/v1/payees",
            &json!({
                "kind": "vendor", "code": code, "name": format!("Vendor {code}"),
                "collection_account": {
                    "bank_bin": bin, "account_number": account_number,
                    "holder_name": "NGUYEN VAN A"
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payee}");
    let collection = payee["collection_account"]["id"]
        .as_str()
        .expect("collection account id")
        .to_owned();
    (payee, collection)
}

pub(crate) async fn configure(
    app: &TestApp,
    collection: &str,
    provider: &str,
    secrets: &[&str],
) -> Value {
    let response = app
        .client
        .put(app.url(&format!("/v1/collection-accounts/{collection}/feed")))
        .bearer_auth(&app.admin)
        .json(&json!({ "provider": provider, "secrets": secrets }))
        .send()
        .await
        .expect("request sent");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// POSTs raw bytes to a webhook route with the given headers.
pub(crate) async fn deliver(
    app: &TestApp,
    provider: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/webhooks/{provider}")))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    read(request.send().await.expect("request sent")).await
}

fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = BASE64
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

pub(crate) fn standard_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            standard_signature(secret, id, timestamp, body),
        ),
    ]
}

/// A transfer on `account_number` in our documented shape.
pub(crate) fn transfer(
    id: &str,
    account_number: &str,
    direction: &str,
    amount: i64,
    description: &str,
    occurred_at: DateTime<Utc>,
) -> Value {
    json!({
        "type": "bank_transaction",
        "data": {
            "id": id, "account_number": account_number, "direction": direction,
            "amount": amount, "description": description,
            "occurred_at": occurred_at.to_rfc3339(),
        }
    })
}

/// Delivers `body` signed with `secret` now; returns status and answer.
pub(crate) async fn send_standard(
    app: &TestApp,
    secret: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).expect("serializable");
    let id = format!("msg_{}", Uuid::new_v4().simple());
    let headers = standard_headers(secret, &id, Utc::now().timestamp(), &bytes);
    deliver(app, "standard", &headers, &bytes).await
}

/// Sends one transfer and returns the bank transaction it recorded.
pub(crate) async fn record(
    app: &TestApp,
    account_number: &str,
    direction: &str,
    amount: i64,
    memo: &str,
) -> Value {
    record_at(app, account_number, direction, amount, memo, Utc::now()).await
}

async fn record_at(
    app: &TestApp,
    account_number: &str,
    direction: &str,
    amount: i64,
    memo: &str,
    occurred_at: DateTime<Utc>,
) -> Value {
    let id = Uuid::new_v4().to_string();
    let body = transfer(&id, account_number, direction, amount, memo, occurred_at);
    let (status, ack) = send_standard(app, STANDARD_SECRET, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["success"], true, "{ack}");
    assert_eq!(ack["transactions"][0]["duplicate"], false, "{ack}");
    let bank_transaction = ack["transactions"][0]["id"].as_str().expect("id");
    let (status, stored) = app
        .get(&format!("/v1/bank-transactions/{bank_transaction}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    stored
}

async fn unmatched(app: &TestApp) -> Vec<Value> {
    let (status, page) = app.get("/v1/reconciliation/unmatched?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().expect("data").clone()
}

pub(crate) async fn intent(
    app: &TestApp,
    payee: &Value,
    amount: &str,
    expires_in: Option<u32>,
) -> Value {
    let mut request = json!({ "payee_id": payee["id"], "amount": amount });
    if let Some(seconds) = expires_in {
        request["expires_in_seconds"] = json!(seconds);
    }
    let (status, body) = read(
        app.post_idempotent("/v1/payment-intents", &Uuid::new_v4().to_string(), &request)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn payos_transfer_verifies_posts_once_and_refuses_a_flipped_byte(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let sample = sample("payos");
    let key = sample["checksum_key"].as_str().unwrap();
    // The SDK's signing rule reproduces payOS's own signature of its documented sample.
    assert_eq!(
        payos_signed(sample["body"].clone(), key),
        serde_json::to_vec(&sample["body"]).unwrap()
    );
    let account = sample["body"]["data"]["accountNumber"].as_str().unwrap();
    let (_, collection) = vendor(&app, "V001", "970422", account).await;
    configure(&app, &collection, "payos", &[key]).await;
    let before = app.transaction_count().await;

    // A real payment in the sample's shape: another order, another bank reference.
    let mut payment = sample["body"].clone();
    payment["data"]["orderCode"] = json!(4821);
    payment["data"]["description"] = json!("VQRIO4821");
    payment["data"]["reference"] = json!("FT24061234567890");
    let body = payos_signed(payment.clone(), key);
    let mut flipped = body.clone();
    let position = String::from_utf8(body.clone())
        .unwrap()
        .find("3000")
        .unwrap();
    flipped[position] ^= 1; // amount 3000 → 2000
    let (status, refused) = deliver(&app, "payos", &[], &flipped).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(error_code(&refused), "WEBHOOK_SIGNATURE_INVALID");
    assert_eq!(
        app.transaction_count().await,
        before,
        "a refused delivery posts nothing"
    );

    let (status, ack) = deliver(&app, "payos", &[], &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["success"], true);
    assert_eq!(ack.get("ignored"), None, "{ack}");
    assert_eq!(
        ack["transactions"][0]["provider_transaction_id"],
        "FT24061234567890"
    );
    assert_eq!(ack["transactions"][0]["matched_as"], "suspense");
    // payOS signs the data fields, not the bytes: the same delivery re-serialized still
    // verifies, and is the same transaction.
    let reserialized: Value = serde_json::from_slice(&body).unwrap();
    let pretty = serde_json::to_vec_pretty(&reserialized).unwrap();
    let (status, again) = deliver(&app, "payos", &[], &pretty).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["transactions"][0]["duplicate"], true);
    assert_eq!(again["transactions"][0]["id"], ack["transactions"][0]["id"]);
    assert_eq!(app.transaction_count().await, before + 1);
    assert_eq!(app.balance("suspense:bank-feed").await, "3000");
    assert_eq!(app.balance(&format!("bank:970422:{account}")).await, "3000");
    assert!(test_deliveries(&app).await.is_empty());
    app.assert_verified().await;
}

async fn payos_webhook_confirmation_is_answered_recorded_as_a_test_and_posts_nothing(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let sample = sample("payos");
    let key = sample["checksum_key"].as_str().unwrap();
    let (_, collection) = vendor(&app, "V010", "970422", "0123456789").await;
    configure(&app, &collection, "payos", &[key]).await;
    let bank = "bank:970422:0123456789";
    // A minute ago, so tokens issued later in the test are still valid.
    let at = Utc::now() - Duration::seconds(60);
    app.state.clock.set(at);

    // payOS's confirm-webhook delivery: its documented sample, signed with this account's
    // checksum key, naming account 12345678, which is not ours. It used to be refused with
    // 422 WEBHOOK_ACCOUNT_UNKNOWN, so payOS would not register the URL.
    let confirmation = serde_json::to_vec(&sample["body"]).unwrap();
    let (status, ack) = deliver(&app, "payos", &[], &confirmation).await;
    assert_test_ack(status, &ack, "payos");
    // A retry is answered the same way.
    let (status, ack) = deliver(&app, "payos", &[], &confirmation).await;
    assert_test_ack(status, &ack, "payos");

    // The same markers on our real account, with a real-looking amount: still a test.
    let mut on_ours = sample["body"].clone();
    on_ours["data"]["accountNumber"] = json!("0123456789");
    on_ours["data"]["amount"] = json!(150_000);
    let signed = payos_signed(on_ours, key);
    app.state.clock.set(at + Duration::seconds(30));
    let (status, ack) = deliver(&app, "payos", &[], &signed).await;
    assert_test_ack(status, &ack, "payos");

    // Tampered (150000 → 150001 after signing): refused, nothing stored.
    let mut tampered = signed.clone();
    let amount = String::from_utf8(signed.clone())
        .unwrap()
        .find("150000")
        .unwrap();
    tampered[amount + 5] ^= 1;
    let (status, refused) = deliver(&app, "payos", &[], &tampered).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(error_code(&refused), "WEBHOOK_SIGNATURE_INVALID");

    // No money moved, on any account.
    assert_eq!(app.transaction_count().await, 0);
    assert_eq!(app.balance(bank).await, "0");
    assert_eq!(app.balance("suspense:bank-feed").await, "0");
    assert!(unmatched(&app).await.is_empty());
    app.assert_verified().await;

    // Staff see every test delivery, with its time and what it named.
    let seen = test_deliveries(&app).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (delivery, (account, received)) in seen.iter().zip([
        ("12345678", at),
        ("12345678", at),
        ("0123456789", at + Duration::seconds(30)),
    ]) {
        assert_eq!(delivery["provider"], "payos");
        assert_eq!(delivery["collection_account_id"], collection.as_str());
        assert_eq!(delivery["sample_id"], "TF230204212323");
        let recognised = delivery["recognised_by"].as_str().unwrap();
        assert!(recognised.contains("VQRIO123"), "{delivery}");
        assert_eq!(delivery["body"]["data"]["accountNumber"], account);
        let received_at: DateTime<Utc> = delivery["received_at"].as_str().unwrap().parse().unwrap();
        // The clock runs on from where the test set it.
        assert!(
            received <= received_at && received_at < received + Duration::seconds(10),
            "{delivery}"
        );
    }
    let auditor = app.token_for(Role::Auditor).await;
    let (status, _) = app.get_as("/v1/webhooks/test-deliveries", &auditor).await;
    assert_eq!(status, StatusCode::OK);
    let vendor_token = app.token_for(Role::Vendor).await;
    let (status, _) = app
        .get_as("/v1/webhooks/test-deliveries", &vendor_token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = read(
        app.client
            .get(app.url("/v1/webhooks/test-deliveries"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn casso_v2_verifies_inside_its_window_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let sample = sample("casso_v2");
    let key = sample["checksum_key"].as_str().unwrap();
    let account = sample["body"]["data"]["accountNumber"].as_str().unwrap();
    let (_, collection) = vendor(&app, "V002", "970432", account).await;
    configure(&app, &collection, "casso", &[key]).await;
    let published = sample["headers"]["X-Casso-Signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed_at: i64 = published[2..published.find(',').unwrap()].parse().unwrap();
    // Casso's signing rule reproduces the published signature of its sample.
    assert_eq!(casso_signature(key, signed_at, &sample["body"]), published);

    // A real transfer in the sample's shape, signed when the sample was.
    let mut transfer = sample["body"].clone();
    transfer["data"]["id"] = json!(218_897);
    transfer["data"]["reference"] = json!("FT24277012345678");
    transfer["data"]["description"] = json!("CT DEN 218897 chuyen tien");
    let body = serde_json::to_vec(&transfer).unwrap();
    let headers = [(
        "X-Casso-Signature",
        casso_signature(key, signed_at, &transfer),
    )];

    // Signed in 2024: today it is far outside the 5-minute window.
    let (status, stale) = deliver(&app, "casso", &headers, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{stale}");
    assert_eq!(error_code(&stale), "WEBHOOK_TIMESTAMP_OUT_OF_WINDOW");

    let signed_at = DateTime::from_timestamp_millis(signed_at).unwrap();
    app.state.clock.set(signed_at + Duration::seconds(299));
    let flipped = {
        let mut bytes = body.clone();
        let at = String::from_utf8(body.clone())
            .unwrap()
            .find("599000")
            .unwrap();
        bytes[at] ^= 1;
        bytes
    };
    let (status, refused) = deliver(&app, "casso", &headers, &flipped).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(error_code(&refused), "WEBHOOK_SIGNATURE_INVALID");
    let (status, ack) = deliver(&app, "casso", &headers, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["duplicate"], false);
    assert_eq!(ack["transactions"][0]["provider_transaction_id"], "218897");
    // Casso reports the running balance: 25,000,000 at the bank, 599,000 in our ledger.
    let (_, discrepancies) = app.get("/v1/reconciliation/discrepancies").await;
    assert_eq!(discrepancies["data"][0]["bank_balance"], "25000000");
    assert_eq!(discrepancies["data"][0]["ledger_balance"], "599000");
    assert_eq!(discrepancies["data"][0]["difference"], "24401000");

    app.state.clock.set(signed_at + Duration::seconds(301));
    let (status, late) = deliver(&app, "casso", &headers, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{late}");
    app.state.clock.set(signed_at - Duration::seconds(301));
    let (status, early) = deliver(&app, "casso", &headers, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{early}");
    assert_eq!(error_code(&early), "WEBHOOK_TIMESTAMP_OUT_OF_WINDOW");
    // The published sample itself is Casso's test webhook: outside the window it is refused
    // like any delivery, inside it is answered and posts nothing.
    let test_headers = [("X-Casso-Signature", published)];
    let test_body = serde_json::to_vec(&sample["body"]).unwrap();
    let (status, stale) = deliver(&app, "casso", &test_headers, &test_body).await;
    assert_eq!(
        error_code(&stale),
        "WEBHOOK_TIMESTAMP_OUT_OF_WINDOW",
        "{status}"
    );
    app.state.clock.set(signed_at);
    let (status, ack) = deliver(&app, "casso", &test_headers, &test_body).await;
    assert_test_ack(status, &ack, "casso");
    assert_eq!(
        app.balance(&format!("bank:970432:{account}")).await,
        "599000"
    );
    app.assert_verified().await;
}

async fn sepay_apikey_transfer_posts_and_records_the_balance_discrepancy(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let sample = sample("sepay");
    let account = sample["body"]["accountNumber"].as_str().unwrap();
    let (_, collection) = vendor(&app, "V003", "970436", account).await;
    let key = "sepay-api-key-0123456789";
    configure(&app, &collection, "sepay", &[key]).await;
    // A real transfer in the documented shape; the documented id 92704 marks SePay's sample.
    let mut transfer = sample["body"].clone();
    transfer["id"] = json!(92705);
    let body = serde_json::to_vec(&transfer).unwrap();

    for wrong in ["Apikey not-the-key", "Bearer sepay-api-key-0123456789"] {
        let (status, refused) =
            deliver(&app, "sepay", &[("Authorization", wrong.into())], &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}: {refused}");
    }
    let (status, missing) = deliver(&app, "sepay", &[], &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&missing), "WEBHOOK_SIGNATURE_MISSING");
    assert!(unmatched(&app).await.is_empty(), "refusals store nothing");

    let auth = [("Authorization", format!("Apikey {key}"))];
    let (status, ack) = deliver(&app, "sepay", &auth, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(
        ack["success"], true,
        "SePay waits for {{\"success\": true}}"
    );
    let stored = &unmatched(&app).await[0];
    assert_eq!(stored["provider_transaction_id"], "92705");
    assert_eq!(stored["amount"], "2277000");
    assert_eq!(stored["running_balance"], "19077000");
    assert_eq!(stored["bank_reference"], "MBVCB.3278907687");
    let (_, discrepancies) = app.get("/v1/reconciliation/discrepancies").await;
    let found = &discrepancies["data"][0];
    assert_eq!(found["bank_transaction_id"], stored["id"]);
    assert_eq!(found["difference"], "16800000");
    app.assert_verified().await;
}

async fn sepay_and_casso_test_buttons_are_answered_and_post_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // SePay "Gửi thử": its documented sample (id 92704), on our account and on one that is not.
    let sepay = sample("sepay");
    let sepay_account = sepay["body"]["accountNumber"].as_str().unwrap();
    let (_, sepay_collection) = vendor(&app, "V011", "970436", sepay_account).await;
    let key = "sepay-api-key-0123456789";
    configure(&app, &sepay_collection, "sepay", &[key]).await;
    let auth = [("Authorization", format!("Apikey {key}"))];
    let body = serde_json::to_vec(&sepay["body"]).unwrap();
    let (status, ack) = deliver(&app, "sepay", &auth, &body).await;
    assert_test_ack(status, &ack, "sepay");
    let mut foreign = sepay["body"].clone();
    foreign["accountNumber"] = json!("1017588888");
    let foreign = serde_json::to_vec(&foreign).unwrap();
    let (status, ack) = deliver(&app, "sepay", &auth, &foreign).await;
    assert_test_ack(status, &ack, "sepay");
    // Only with the configured key.
    let wrong = [("Authorization", "Apikey guess".to_owned())];
    let (status, refused) = deliver(&app, "sepay", &wrong, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");

    // Casso "Gọi thử": its test webhook (id 0, MA_GIAO_DICH_THU_NGHIEM), signed now.
    let casso = sample("casso_v2");
    let casso_key = casso["checksum_key"].as_str().unwrap();
    let casso_account = casso["body"]["data"]["accountNumber"].as_str().unwrap();
    let (_, casso_collection) = vendor(&app, "V012", "970432", casso_account).await;
    configure(&app, &casso_collection, "casso", &[casso_key]).await;
    let now = app.state.clock.now().timestamp_millis();
    let headers = [(
        "X-Casso-Signature",
        casso_signature(casso_key, now, &casso["body"]),
    )];
    let body = serde_json::to_vec(&casso["body"]).unwrap();
    let (status, ack) = deliver(&app, "casso", &headers, &body).await;
    assert_test_ack(status, &ack, "casso");

    // No money moved, no balance compared.
    assert_eq!(app.transaction_count().await, 0);
    assert_eq!(app.balance("suspense:bank-feed").await, "0");
    assert_eq!(
        app.balance(&format!("bank:970436:{sepay_account}")).await,
        "0"
    );
    assert_eq!(
        app.balance(&format!("bank:970432:{casso_account}")).await,
        "0"
    );
    assert!(unmatched(&app).await.is_empty());
    let (_, discrepancies) = app.get("/v1/reconciliation/discrepancies").await;
    assert_eq!(discrepancies["data"], json!([]));
    app.assert_verified().await;

    let seen = test_deliveries(&app).await;
    let summary: Vec<(&str, &str, &str)> = seen
        .iter()
        .map(|d| {
            (
                d["provider"].as_str().unwrap(),
                d["sample_id"].as_str().unwrap(),
                d["collection_account_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("sepay", "92704", sepay_collection.as_str()),
            ("sepay", "92704", sepay_collection.as_str()),
            ("casso", "0", casso_collection.as_str()),
        ]
    );
}

async fn casso_v1_secure_token_sample_posts(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let sample = sample("casso_v1_legacy");
    let data = &sample["body"]["data"][0];
    let account = data["bank_sub_acc_id"].as_str().unwrap();
    let (_, collection) = vendor(&app, "V004", "970415", account).await;
    configure(
        &app,
        &collection,
        "casso",
        &["secure-token-of-this-commune"],
    )
    .await;
    let body = serde_json::to_vec(&sample["body"]).unwrap();
    let (status, refused) =
        deliver(&app, "casso", &[("Secure-Token", "guess".into())], &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    let token = [("Secure-Token", "secure-token-of-this-commune".to_owned())];
    let (status, ack) = deliver(&app, "casso", &token, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["provider_transaction_id"], "1844887");
    assert_eq!(app.balance("suspense:bank-feed").await, "5000");
    app.assert_verified().await;
}

async fn standard_webhooks_refuse_tampering_stale_timestamps_and_retired_secrets(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, collection) = vendor(&app, "V005", "970436", "0011223344").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let body = transfer("tx-1", "0011223344", "in", 50_000, "tien hang", Utc::now());
    let bytes = serde_json::to_vec(&body).unwrap();
    let now = Utc::now().timestamp();
    let before = app.transaction_count().await;

    let tampered = {
        let mut b = bytes.clone();
        let at = String::from_utf8(bytes.clone())
            .unwrap()
            .find("50000")
            .unwrap();
        b[at] ^= 1;
        b
    };
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "flipped byte",
            standard_headers(STANDARD_SECRET, "m1", now, &bytes),
            tampered,
            "WEBHOOK_SIGNATURE_INVALID",
        ),
        (
            "re-serialized JSON",
            standard_headers(STANDARD_SECRET, "m1", now, &bytes),
            serde_json::to_vec_pretty(&body).unwrap(),
            "WEBHOOK_SIGNATURE_INVALID",
        ),
        (
            "old timestamp",
            standard_headers(STANDARD_SECRET, "m1", now - 600, &bytes),
            bytes.clone(),
            "WEBHOOK_TIMESTAMP_OUT_OF_WINDOW",
        ),
        (
            "future timestamp",
            standard_headers(STANDARD_SECRET, "m1", now + 600, &bytes),
            bytes.clone(),
            "WEBHOOK_TIMESTAMP_OUT_OF_WINDOW",
        ),
        (
            "no signature",
            vec![],
            bytes.clone(),
            "WEBHOOK_SIGNATURE_MISSING",
        ),
    ];
    for (name, headers, sent, code) in cases {
        let (status, refused) = deliver(&app, "standard", &headers, &sent).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {refused}");
        assert_eq!(error_code(&refused), code, "{name}");
    }
    assert_eq!(app.transaction_count().await, before);
    assert!(unmatched(&app).await.is_empty());

    // Rotation: old and new both work while both are configured; the retired one stops.
    let new_secret = "whsec_bmV3LWNvbW11bmUtZmVlZC1rZXktMjAyNg==";
    configure(
        &app,
        &collection,
        "standard",
        &[new_secret, STANDARD_SECRET],
    )
    .await;
    let old = transfer("tx-old", "0011223344", "in", 1_000, "a", Utc::now());
    assert_eq!(
        send_standard(&app, STANDARD_SECRET, &old).await.0,
        StatusCode::OK
    );
    let new = transfer("tx-new", "0011223344", "in", 2_000, "b", Utc::now());
    assert_eq!(
        send_standard(&app, new_secret, &new).await.0,
        StatusCode::OK
    );
    let (_, accounts) = app.get("/v1/collection-accounts").await;
    assert_eq!(accounts["data"][0]["feed"]["secret_count"], 2);
    assert!(
        !accounts.to_string().contains(new_secret),
        "secrets are never shown"
    );
    configure(&app, &collection, "standard", &[new_secret]).await;
    let retired = transfer("tx-retired", "0011223344", "in", 3_000, "c", Utc::now());
    let (status, refused) = send_standard(&app, STANDARD_SECRET, &retired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(app.transaction_count().await, before + 2);
    app.assert_verified().await;
}

async fn feeds_are_configured_by_staff_and_bad_deliveries_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V006", "970436", "5566778899").await;
    let (_, other_collection) = vendor(&app, "V007", "970436", "9988776655").await;
    let (status, accounts) = app.get("/v1/collection-accounts").await;
    assert_eq!(status, StatusCode::OK);
    let listed = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == collection.as_str())
        .expect("listed");
    assert_eq!(listed["payees"][0]["id"], payee["id"]);
    assert_eq!(listed["feed"], Value::Null);

    // Not configured yet: nobody can post to it.
    let body = transfer("x1", "5566778899", "in", 1_000, "", Utc::now());
    let (status, refused) = send_standard(&app, STANDARD_SECRET, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&refused), "WEBHOOK_NOT_CONFIGURED");

    let put = |path: String, body: Value, token: String| {
        let app = &app;
        async move {
            read(
                app.client
                    .put(app.url(&path))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let feed_path = format!("/v1/collection-accounts/{collection}/feed");
    let refusals = [
        (
            json!({ "provider": "momo", "secrets": ["k"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PROVIDER",
        ),
        (
            json!({ "provider": "sepay", "secrets": [] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "WEBHOOK_SECRET_COUNT",
        ),
        (
            json!({ "provider": "sepay", "secrets": ["a", "b", "c"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "WEBHOOK_SECRET_COUNT",
        ),
        (
            json!({ "provider": "sepay", "secrets": ["  "] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "WEBHOOK_SECRET_EMPTY",
        ),
        (
            json!({ "provider": "standard", "secrets": ["whsec_not base64!"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "WEBHOOK_SECRET_NOT_BASE64",
        ),
    ];
    for (request, status, code) in refusals {
        let (got, body) = put(feed_path.clone(), request.clone(), app.admin.clone()).await;
        assert_eq!((got, error_code(&body)), (status, code), "{request}");
    }
    let missing = format!("/v1/collection-accounts/{}/feed", Uuid::now_v7());
    let (status, body) = put(
        missing,
        json!({ "provider": "sepay", "secrets": ["k"] }),
        app.admin.clone(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "COLLECTION_ACCOUNT_NOT_FOUND")
    );
    let vendor_token = app.token_for(Role::Vendor).await;
    let (status, _) = put(
        feed_path.clone(),
        json!({ "provider": "sepay", "secrets": ["k"] }),
        vendor_token,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    configure(
        &app,
        &other_collection,
        "standard",
        &["whsec_b3RoZXItYWNjb3VudC1rZXk="],
    )
    .await;
    // Signed with this account's secret, but naming the other account: refused.
    let body = transfer("x2", "9988776655", "in", 1_000, "", Utc::now());
    let (status, refused) = send_standard(&app, STANDARD_SECRET, &body).await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::UNAUTHORIZED, "WEBHOOK_SIGNATURE_INVALID")
    );
    // An account nobody registered: verified, kept for audit, refused as unusable.
    let body = transfer("x3", "1231231231", "in", 1_000, "", Utc::now());
    let (status, refused) = send_standard(&app, STANDARD_SECRET, &body).await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::UNPROCESSABLE_ENTITY, "WEBHOOK_ACCOUNT_UNKNOWN")
    );
    // Verified but malformed: 422 with the field.
    let mut bad = transfer("x4", "5566778899", "in", 1_000, "", Utc::now());
    bad["data"]["amount"] = json!(12.5);
    let (status, refused) = send_standard(&app, STANDARD_SECRET, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    // A NUL character no database can store: refused, not a 500.
    let nul = transfer("x5", "5566778899", "in", 1_000, "tien\u{0}hang", Utc::now());
    let (status, refused) = send_standard(&app, STANDARD_SECRET, &nul).await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::UNPROCESSABLE_ENTITY, "WEBHOOK_FIELD_INVALID"),
        "{refused}"
    );
    // A reference longer than any bank's does not reach the database's index.
    let mut long = transfer("x6", "5566778899", "in", 1_000, "", Utc::now());
    long["data"]["reference"] = json!("F".repeat(129));
    let (status, refused) = send_standard(&app, STANDARD_SECRET, &long).await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::UNPROCESSABLE_ENTITY, "WEBHOOK_FIELD_INVALID"),
        "{refused}"
    );
    // Ids beginning with "statement:" belong to bank statement lines.
    let reserved = transfer("statement:FT1", "5566778899", "in", 1_000, "", Utc::now());
    let (status, refused) = send_standard(&app, STANDARD_SECRET, &reserved).await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::UNPROCESSABLE_ENTITY, "WEBHOOK_FIELD_INVALID"),
        "{refused}"
    );
    // Another event type is acknowledged and ignored.
    let other = json!({ "type": "account.updated", "data": {} });
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &other).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert!(ack["ignored"].is_string(), "{ack}");
    assert_eq!(ack["transactions"], json!([]));

    let (status, unknown) = deliver(&app, "momo", &[], b"{}").await;
    assert_eq!(
        (status, error_code(&unknown)),
        (StatusCode::NOT_FOUND, "WEBHOOK_PROVIDER_UNKNOWN")
    );
    let huge = vec![b' '; 65 * 1024];
    let (status, _) = deliver(&app, "standard", &[], &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.transaction_count().await, 0);
}

async fn fifty_concurrent_copies_post_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V008", "970436", "4455667788").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let paying = intent(&app, &payee, "120000", None).await;
    let reference = paying["reference"].as_str().unwrap();
    let body = transfer(
        "dup-1",
        "4455667788",
        "in",
        120_000,
        &format!("TT {reference}"),
        Utc::now(),
    );
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = standard_headers(STANDARD_SECRET, "msg_dup", Utc::now().timestamp(), &bytes);
    let before = app.transaction_count().await;
    let answers =
        futures::future::join_all((0..50).map(|_| deliver(&app, "standard", &headers, &bytes)))
            .await;
    let mut fresh = 0;
    for (status, ack) in &answers {
        assert_eq!(*status, StatusCode::OK, "{ack}");
        if ack["transactions"][0]["duplicate"] == false {
            fresh += 1;
        }
        assert_eq!(
            ack["transactions"][0]["id"],
            answers[0].1["transactions"][0]["id"]
        );
    }
    assert_eq!(fresh, 1, "exactly one copy is processed");
    assert_eq!(app.transaction_count().await, before + 1);
    assert_eq!(app.balance("payee:V008").await, "120000");
    let (_, paid) = app
        .get(&format!(
            "/v1/payment-intents/{}",
            paying["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(paid["status"], "paid");
    app.assert_verified().await;
}

async fn references_settle_intents_partially_fully_late_and_cancelled(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V009", "970436", "1122334455").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let account = "1122334455";

    // Partial, then the rest plus too much: paid, excess parked and flagged.
    let fee = intent(&app, &payee, "150000", None).await;
    let reference = fee["reference"].as_str().unwrap();
    let wrapped = format!(
        "ND:CT DEN:231915042064 MBVCB.2707051024.{}-{}.CT tu 0451001536775 NGUYEN VAN B",
        reference[..4].to_lowercase(),
        &reference[4..]
    );
    let first = record(&app, account, "in", 100_000, &wrapped).await;
    assert_eq!(first["matched_as"], "intent");
    assert_eq!(first["payment_intent_id"], fee["id"]);
    let fee_path = format!("/v1/payment-intents/{}", fee["id"].as_str().unwrap());
    let (_, partly) = app.get(&fee_path).await;
    assert_eq!(partly["status"], "partially_paid");
    assert_eq!(partly["paid_amount"], "100000");
    assert_eq!(partly["remaining_amount"], "50000");
    let second = record(
        &app,
        account,
        "in",
        80_000,
        &format!("thanh toan {reference}"),
    )
    .await;
    assert_eq!(second["suspense_amount"], "30000");
    assert_eq!(second["flags"], json!(["overpaid"]));
    let (_, paid) = app.get(&fee_path).await;
    assert_eq!(
        (paid["status"].as_str(), paid["remaining_amount"].as_str()),
        (Some("paid"), Some("0"))
    );
    assert_eq!(app.balance("payee:V009").await, "150000");
    assert_eq!(app.balance("suspense:bank-feed").await, "30000");
    // Paid again: nothing more for the payee, all of it waits for staff.
    let third = record(&app, account, "in", 5_000, reference).await;
    assert_eq!(third["flags"], json!(["intent_already_paid"]));
    assert_eq!(app.balance("payee:V009").await, "150000");

    // A longer code that merely contains the reference is not the reference.
    let other = intent(&app, &payee, "10000", None).await;
    let other_reference = other["reference"].as_str().unwrap();
    let longer = record(&app, account, "in", 10_000, &format!("X{other_reference}")).await;
    assert_eq!(longer["matched_as"], "suspense");
    let (_, untouched) = app
        .get(&format!(
            "/v1/payment-intents/{}",
            other["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(untouched["status"], "pending");

    // Late by the bank's clock: still credited, flagged.
    let short = intent(&app, &payee, "20000", Some(60)).await;
    let late = record_at(
        &app,
        account,
        "in",
        20_000,
        short["reference"].as_str().unwrap(),
        Utc::now() + Duration::seconds(120),
    )
    .await;
    assert_eq!(late["matched_as"], "intent");
    assert_eq!(late["flags"], json!(["late_payment"]));

    // Cancelled: the money arrived, so the payee is credited, and staff see the flag.
    let cancelled = intent(&app, &payee, "30000", None).await;
    let cancel = format!(
        "/v1/payment-intents/{}/cancel",
        cancelled["id"].as_str().unwrap()
    );
    assert_eq!(app.post(&cancel, &json!({})).await.0, StatusCode::OK);
    let paid_anyway = record(
        &app,
        account,
        "in",
        30_000,
        cancelled["reference"].as_str().unwrap(),
    )
    .await;
    assert_eq!(paid_anyway["flags"], json!(["intent_cancelled"]));
    assert_eq!(paid_anyway["suspense_amount"], "0");
    assert_eq!(app.balance("payee:V009").await, "200000");
    assert_eq!(
        app.balance(&format!("bank:970436:{account}")).await,
        "245000"
    );
    app.assert_verified().await;
}

async fn static_codes_unmatched_money_and_outgoing_transfers(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, collection) = vendor(&app, "V010", "970436", "6677889900").await;
    // A second vendor on the same pooled account.
    let (status, _) = app
        .post(
            "/v1/payees",
            &json!({ "kind": "vendor", "code": "V011", "name": "Vendor V011",
                "collection_account": { "bank_bin": "970436", "account_number": "6677889900",
                    "holder_name": "NGUYEN VAN A" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let account = "6677889900";

    let by_code = record(
        &app,
        account,
        "in",
        40_000,
        "NGUYEN THI C chuyen tien V010 mua rau",
    )
    .await;
    assert_eq!(by_code["matched_as"], "payee");
    assert_eq!(app.balance("payee:V010").await, "40000");
    let both = record(&app, account, "in", 1_000, "V010 V011").await;
    assert_eq!(
        (both["matched_as"].as_str(), both["flags"].clone()),
        (Some("suspense"), json!(["ambiguous_payee"]))
    );
    let nothing = record(&app, account, "in", 2_000, "chuyen tien").await;
    assert_eq!(nothing["matched_as"], "suspense");
    let waiting: Vec<Value> = unmatched(&app).await;
    assert_eq!(waiting.len(), 2);

    // Out: the vendor's payout debits the vendor; more than it holds, or no name, hits suspense.
    let payout = record(&app, account, "out", 15_000, "chi tra V010").await;
    assert_eq!(payout["matched_as"], "payee");
    assert_eq!(app.balance("payee:V010").await, "25000");
    let too_much = record(&app, account, "out", 90_000, "chi tra V010").await;
    assert_eq!(too_much["matched_as"], "suspense");
    assert_eq!(too_much["flags"], json!(["payee_balance_short"]));
    assert_eq!(app.balance("payee:V010").await, "25000");
    let unexplained = record(&app, account, "out", 500, "phi dich vu").await;
    assert_eq!(unexplained["flags"], json!(["unexplained_outgoing"]));
    assert_eq!(
        app.balance(&format!("bank:970436:{account}")).await,
        "-62500"
    );
    assert_eq!(app.balance("suspense:bank-feed").await, "-87500");
    app.assert_verified().await;
}

async fn staff_resolve_suspense_once_with_who_when_and_why(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V012", "970436", "7788990011").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let account = "7788990011";
    let to_payee = record(&app, account, "in", 10_000, "tien cho ba Hoa").await;
    let to_intent = record(&app, account, "in", 25_000, "hoc phi").await;
    let to_refund = record(&app, account, "in", 7_000, "nham tai khoan").await;
    assert_eq!(unmatched(&app).await.len(), 3);
    let resolve = |id: &Value| {
        format!(
            "/v1/reconciliation/unmatched/{}/resolve",
            id.as_str().unwrap()
        )
    };

    let bad = [
        json!({ "note": "no target" }),
        json!({ "payee_id": payee["id"], "refund": true, "note": "two targets" }),
        json!({ "payee_id": payee["id"], "note": "  " }),
    ];
    for body in bad {
        let (status, refused) = read(
            app.post_idempotent(
                &resolve(&to_payee["id"]),
                &Uuid::new_v4().to_string(),
                &body,
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, error_code(&refused)),
            (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_RESOLUTION"),
            "{body}"
        );
    }
    let auditor = app.token_for(Role::Auditor).await;
    let request = json!({ "payee_id": payee["id"], "note": "memo names Ba Hoa's stall" });
    let (status, _) = read(
        app.post_idempotent_as(&resolve(&to_payee["id"]), "k1", &request, &auditor)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let response = app
        .post_idempotent(&resolve(&to_payee["id"]), "k1", &request)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, resolved) = read(response).await;
    let resolution = &resolved["resolution"];
    assert_eq!(resolution["action"], "payee");
    assert_eq!(resolution["payee_id"], payee["id"]);
    assert_eq!(resolution["note"], "memo names Ba Hoa's stall");
    assert!(resolution["resolved_by_username"]
        .as_str()
        .unwrap()
        .starts_with("admin-"));
    assert!(resolution["resolved_at"].is_string());
    assert!(resolution["ledger_transaction_id"].is_string());
    assert_eq!(app.balance("payee:V012").await, "10000");
    // The bank record names both postings: neither is undone by a ledger reversal alone.
    app.assert_reversal_refused(resolution["ledger_transaction_id"].as_str().unwrap())
        .await;
    app.assert_reversal_refused(to_payee["ledger_transaction_id"].as_str().unwrap())
        .await;
    // The same request again replays; another request on the same money is refused.
    let replay = app
        .post_idempotent(&resolve(&to_payee["id"]), "k1", &request)
        .await;
    assert_eq!(replay.headers()["Idempotent-Replayed"], "true");
    assert_eq!(read(replay).await.1, resolved);
    let (status, twice) = read(
        app.post_idempotent(
            &resolve(&to_payee["id"]),
            "k2",
            &json!({ "refund": true, "note": "again" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&twice)),
        (StatusCode::CONFLICT, "SUSPENSE_ALREADY_RESOLVED")
    );
    assert_eq!(app.balance("payee:V012").await, "10000");

    let small = intent(&app, &payee, "20000", None).await;
    let too_much = json!({ "payment_intent_id": small["id"], "note": "too much for it" });
    let (status, refused) = read(
        app.post_idempotent(&resolve(&to_intent["id"]), "k3a", &too_much)
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&refused)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "RESOLUTION_EXCEEDS_INTENT"
        )
    );
    let fee = intent(&app, &payee, "25000", None).await;
    let (status, assigned) = read(
        app.post_idempotent(
            &resolve(&to_intent["id"]),
            "k3",
            &json!({ "payment_intent_id": fee["id"], "note": "parent forgot the code" }),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");
    let (_, paid) = app
        .get(&format!(
            "/v1/payment-intents/{}",
            fee["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(app.balance("payee:V012").await, "35000");

    let (status, refunding) = read(
        app.post_idempotent(
            &resolve(&to_refund["id"]),
            "k4",
            &json!({ "refund": true, "note": "sender asked" }),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refunding}");
    assert_eq!(
        refunding["resolution"]["ledger_transaction_id"],
        Value::Null
    );
    assert!(unmatched(&app).await.is_empty());
    assert_eq!(app.balance("suspense:bank-feed").await, "7000");
    // A payout that names the vendor is the vendor's, even at the refund's amount.
    let payout = record(&app, account, "out", 7_000, "chi tra V012").await;
    assert_eq!(payout["matched_as"], "payee");
    assert_eq!(app.balance("suspense:bank-feed").await, "7000");
    // The bank transfer that pays it back clears it.
    let refund = record(&app, account, "out", 7_000, "hoan tien").await;
    assert_eq!(refund["matched_as"], "refund");
    let (_, refunded) = app
        .get(&format!(
            "/v1/bank-transactions/{}",
            to_refund["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        refunded["resolution"]["refunded_by_bank_transaction_id"],
        refund["id"]
    );
    assert_eq!(app.balance("suspense:bank-feed").await, "0");
    assert_eq!(app.balance("payee:V012").await, "28000");
    assert_eq!(
        app.balance(&format!("bank:970436:{account}")).await,
        "28000"
    );

    let (status, missing) = read(
        app.post_idempotent(
            &format!("/v1/reconciliation/unmatched/{}/resolve", Uuid::now_v7()),
            "k5",
            &json!({ "refund": true, "note": "x" }),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&missing)),
        (StatusCode::NOT_FOUND, "BANK_TRANSACTION_NOT_FOUND")
    );
    app.assert_verified().await;
}

/// The "send test webhook" button: for each provider, a delivery built and signed as that
/// provider would, with the configured secret, processed like any other; the payee's
/// balance shows it, and the stored delivery names who sent it.
async fn a_test_delivery_is_signed_as_each_provider_signs_and_lands(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let providers = [
        ("payos", "payos-checksum-key-0123456789abcdef", "0301000001"),
        ("casso", "casso-checksum-key-0123456789abcdef", "0301000002"),
        ("sepay", "sepay-api-key-0123456789abcdef", "0301000003"),
        ("standard", STANDARD_SECRET, "0301000004"),
    ];
    for (index, (provider, secret, account)) in providers.iter().enumerate() {
        let code = format!("T{index:03}");
        let (_, collection) = vendor(&app, &code, "970436", account).await;
        let path = format!("/v1/collection-accounts/{collection}/test-delivery");
        let request = json!({ "amount": "45000", "memo": format!("{code} mua che") });
        let (status, body) = app.post(&path, &request).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(error_code(&body), "FEED_NOT_CONFIGURED");

        configure(&app, &collection, provider, &[secret]).await;
        let (status, sent) = app.post(&path, &request).await;
        assert_eq!(status, StatusCode::OK, "{provider}: {sent}");
        assert_eq!(sent["provider"], *provider);
        assert_eq!(
            sent["answer"]["transactions"][0]["matched_as"], "payee",
            "{sent}"
        );
        assert!(
            !sent.to_string().contains(secret),
            "the secret is never shown: {sent}"
        );
        assert_eq!(app.balance(&format!("payee:{code}")).await, "45000");
    }
    let (status, body) = app
        .post(
            "/v1/collection-accounts/00000000-0000-7000-8000-00000000abcd/test-delivery",
            &json!({ "amount": "1000", "memo": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, collection) = vendor(&app, "T900", "970436", "0301000900").await;
    configure(
        &app,
        &collection,
        "sepay",
        &["sepay-api-key-0123456789abcdef-2"],
    )
    .await;
    let path = format!("/v1/collection-accounts/{collection}/test-delivery");
    for (request, code) in [
        (
            json!({ "amount": "0", "memo": "T900" }),
            "AMOUNT_NOT_POSITIVE",
        ),
        (json!({ "amount": "1000", "memo": "  " }), "INVALID_MEMO"),
    ] {
        let (status, body) = app.post(&path, &request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_code(&body), code);
    }
    let auditor = app.token_for(Role::Auditor).await;
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&auditor)
        .json(&json!({ "amount": "1000", "memo": "T900" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Postings made by the bank feed are counted with the others.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "ledger_transactions_posted_total{source=\"bank_feed\"}",
        "bank_transactions_total{",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from:\n{metrics}"
        );
    }
    app.assert_verified().await;
}
