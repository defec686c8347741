//! Payer accounts captured from bank feeds (only a keyed hash and the last four digits), staff
//! linking them to residents and households, payers named on intents, and cash payments.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use market_ledger::domain::user::Role;

use crate::common::{error_code, read, token_for_payee, Backend, TestApp};
use crate::webhooks::{configure, deliver, payos_signed, sample, vendor};

crate::on_both_backends!(
    a_payos_counter_account_is_kept_only_as_a_hash_once,
    a_sepay_transfer_names_no_payer,
    linking_refuses_unknown_accounts_residents_and_households,
    cash_payments_are_recorded_listed_and_guarded,
    an_intent_naming_an_unknown_payer_is_refused,
    staff_link_a_consenting_resident_with_an_audit,
);

/// What the service must store for `bin:number`: HMAC-SHA256 under the pepper it generated
/// into its data directory.
fn expected_hash(app: &TestApp, bin: &str, number: &str) -> String {
    let pepper = std::fs::read_to_string(app.settings.data_dir.join("payer-pepper"))
        .expect("a pepper generated on first start");
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper.trim().as_bytes()).expect("any key");
    mac.update(format!("{bin}:{number}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn payer_accounts(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/payer-accounts{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().expect("data").clone()
}

/// A payOS transfer of 3000 from 970415/8888888888 with bank reference `reference`, signed.
fn payos_payment(reference: &str, key: &str) -> Vec<u8> {
    let mut payment = sample("payos")["body"].clone();
    payment["data"]["reference"] = json!(reference);
    payment["data"]["description"] = json!(format!("VQR {reference}"));
    payment["data"]["counterAccountBankId"] = json!("970415");
    payment["data"]["counterAccountNumber"] = json!("8888888888");
    payment["data"]["counterAccountName"] = json!("NGUYEN VAN A");
    payos_signed(payment, key)
}

async fn payos_app(backend: Backend) -> Option<(TestApp, String)> {
    let app = TestApp::spawn(backend).await?;
    let sample = sample("payos");
    let key = sample["checksum_key"].as_str().unwrap().to_owned();
    let account = sample["body"]["data"]["accountNumber"].as_str().unwrap();
    let (_, collection) = vendor(&app, "V001", "970422", account).await;
    configure(&app, &collection, "payos", &[&key]).await;
    Some((app, key))
}

async fn a_payos_counter_account_is_kept_only_as_a_hash_once(backend: Backend) {
    let Some((app, key)) = payos_app(backend).await else {
        return;
    };
    let body = payos_payment("FT24061234567890", &key);
    let (status, ack) = deliver(&app, "payos", &[], &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["duplicate"], false, "{ack}");

    let unlinked = payer_accounts(&app, "?linked=false").await;
    assert_eq!(unlinked.len(), 1, "{unlinked:?}");
    let payer = &unlinked[0];
    assert_eq!(payer["last4"], "8888");
    assert_eq!(
        payer["account_hash"],
        expected_hash(&app, "970415", "8888888888")
    );
    // Staff reach the link from the transaction itself: hash and last 4, never the number.
    let id = ack["transactions"][0]["id"].as_str().unwrap();
    let (status, transaction) = app.get(&format!("/v1/bank-transactions/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{transaction}");
    assert_eq!(transaction["payer_account"]["last4"], "8888");
    assert_eq!(
        transaction["payer_account"]["account_hash"],
        payer["account_hash"]
    );
    assert!(!transaction.to_string().contains("8888888888"));
    assert_eq!(payer["transaction_count"], 1);
    assert_eq!(payer["resident_id"], Value::Null);
    assert_eq!(payer["household_id"], Value::Null);
    assert!(payer["first_seen"].is_string(), "{payer}");
    assert!(
        !payer.to_string().contains("8888888888"),
        "the account number is never shown: {payer}"
    );
    assert!(payer_accounts(&app, "?linked=true").await.is_empty());

    // The same delivery again: a duplicate, and still one payer seen once.
    let (status, again) = deliver(&app, "payos", &[], &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["transactions"][0]["duplicate"], true);
    let listed = payer_accounts(&app, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["transaction_count"], 1);

    // Another transfer from the same account: the same payer, seen twice.
    let (status, ack) = deliver(&app, "payos", &[], &payos_payment("FT24061234567891", &key)).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let listed = payer_accounts(&app, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["transaction_count"], 2);

    let hash = listed[0]["account_hash"].as_str().unwrap().to_owned();
    let (status, audit) = app.get(&format!("/v1/payer-accounts/{hash}/audit")).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert_eq!(audit["data"], json!([]));

    // Payer accounts are personal data: not for the auditor or a vendor.
    for role in [Role::Auditor, Role::Vendor] {
        let token = if role == Role::Vendor {
            token_for_payee(&app, role, Uuid::now_v7()).await
        } else {
            app.token_for(role).await
        };
        let (status, body) = app.get_as("/v1/payer-accounts", &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {body}");
    }
    // Staff link payers, so they see the unlinked ones; who paid from a linked account is
    // individual-level data: admins only, and each admin read is in the access log.
    let staff = app.token_for(Role::Staff).await;
    let (status, body) = app.get_as("/v1/payer-accounts?linked=false", &staff).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let unlinked = body["data"].clone();
    let (status, body) = app.get_as("/v1/payer-accounts?linked=true", &staff).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, unfiltered) = app.get_as("/v1/payer-accounts", &staff).await;
    assert_eq!(status, StatusCode::OK, "{unfiltered}");
    assert_eq!(unfiltered["data"], unlinked);
    let (_, log) = app.get("/v1/audit/personal-data-access").await;
    let logged = log["data"].as_array().unwrap().len();
    let (status, _) = app.get("/v1/payer-accounts?linked=true").await;
    assert_eq!(status, StatusCode::OK);
    let (_, log) = app.get("/v1/audit/personal-data-access").await;
    assert_eq!(log["data"].as_array().unwrap().len(), logged + 1, "{log}");
    let (status, body) = app.get("/v1/payer-accounts?linked=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app.get("/v1/payer-accounts?cursor=nonsense").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "INVALID_CURSOR");
}

async fn a_sepay_transfer_names_no_payer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let sample = sample("sepay");
    let account = sample["body"]["accountNumber"].as_str().unwrap();
    let (_, collection) = vendor(&app, "V003", "970436", account).await;
    let key = "sepay-api-key-0123456789";
    configure(&app, &collection, "sepay", &[key]).await;
    let mut transfer = sample["body"].clone();
    transfer["id"] = json!(92705);
    let body = serde_json::to_vec(&transfer).unwrap();
    let auth = [("Authorization", format!("Apikey {key}"))];
    let (status, ack) = deliver(&app, "sepay", &auth, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert!(payer_accounts(&app, "").await.is_empty());
}

async fn linking_refuses_unknown_accounts_residents_and_households(backend: Backend) {
    let Some((app, key)) = payos_app(backend).await else {
        return;
    };
    let (status, ack) = deliver(&app, "payos", &[], &payos_payment("FT24061234567890", &key)).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let hash = expected_hash(&app, "970415", "8888888888");
    let link = |body: Value| {
        let app = &app;
        let hash = hash.clone();
        async move {
            app.post(&format!("/v1/payer-accounts/{hash}/link"), &body)
                .await
        }
    };
    let unknown = Uuid::now_v7();
    let (status, body) = link(json!({"resident_id": unknown, "reason": "sổ hộ khẩu"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "RESIDENT_NOT_FOUND");
    let (status, body) = link(json!({"household_id": unknown, "reason": "sổ hộ khẩu"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "HOUSEHOLD_NOT_FOUND");
    let (status, body) = link(json!({
        "resident_id": unknown, "household_id": unknown, "reason": "both"
    }))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "INVALID_PAYER_LINK");
    let (status, body) = link(json!({"household_id": unknown, "reason": "  "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "INVALID_REASON");

    let (status, body) = app
        .post(
            &format!("/v1/payer-accounts/{hash}/unlink"),
            &json!({"reason": "nhầm"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "PAYER_NOT_LINKED");

    let other = "0".repeat(64);
    for path in [
        format!("/v1/payer-accounts/{other}/link"),
        "/v1/payer-accounts/not-a-hash/link".to_owned(),
    ] {
        let (status, body) = app
            .post(&path, &json!({"household_id": unknown, "reason": "x"}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(error_code(&body), "PAYER_ACCOUNT_NOT_FOUND");
    }
    let (status, body) = app.get(&format!("/v1/payer-accounts/{other}/audit")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = app
        .post(
            &format!("/v1/residents/{unknown}/bank-accounts"),
            &json!({"bank_bin": "970415", "account_number": "1234567890", "reason": "tự khai"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "RESIDENT_NOT_FOUND");
    let (status, body) = app
        .post(
            &format!("/v1/residents/{unknown}/bank-accounts"),
            &json!({"bank_bin": "VCB", "account_number": "1234567890", "reason": "tự khai"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "INVALID_BANK_ACCOUNT");
    assert!(!body.to_string().contains("1234567890"), "{body}");

    // Still unlinked, and nothing audited.
    assert_eq!(payer_accounts(&app, "?linked=false").await.len(), 1);
    let (_, audit) = app.get(&format!("/v1/payer-accounts/{hash}/audit")).await;
    assert_eq!(audit["data"], json!([]));
}

async fn cash_payments_are_recorded_listed_and_guarded(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, _) = vendor(&app, "V010", "970436", "0123456789").await;
    let payee_id = payee["id"].as_str().unwrap().to_owned();
    let (other, _) = vendor(&app, "V011", "970436", "0123456788").await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/payees/{payee_id}/cash-payments");
    let own = token_for_payee(&app, Role::Vendor, &payee_id).await;
    let before = app.transaction_count().await;

    let post_as = |body: Value, token: String, path: String| {
        let app = &app;
        async move {
            read(
                app.post_idempotent_as(&path, &Uuid::new_v4().to_string(), &body, &token)
                    .await,
            )
            .await
        }
    };

    let (status, first) = post_as(
        json!({"amount": "50000", "occurred_at": "2026-01-05T02:00:00Z", "note": "bán chè"}),
        own.clone(),
        path.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["amount"], "50000");
    assert_eq!(first["payment_count"], 1);
    assert_eq!(first["payee_id"], payee_id.as_str());
    assert_eq!(first["note"], "bán chè");
    assert_eq!(first["payer"], Value::Null);

    let day_body = json!({"amount": 1_250_000, "payment_count": 37});
    let response = app.post_idempotent(&path, "cash-day-1", &day_body).await;
    assert_eq!(response.headers().get("idempotent-replayed"), None);
    let (status, day) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{day}");
    assert_eq!(day["payment_count"], 37);
    // A retry with the same key replays the first answer and records nothing more.
    let response = app.post_idempotent(&path, "cash-day-1", &day_body).await;
    assert_eq!(
        response
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let (status, replayed) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{replayed}");
    assert_eq!(replayed["id"], day["id"]);
    let (status, reused) = read(
        app.post_idempotent(&path, "cash-day-1", &json!({"amount": "1"}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(error_code(&reused), "IDEMPOTENCY_KEY_REUSED");
    let (status, missing) = app.post(&path, &json!({"amount": "1000"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{missing}");
    assert_eq!(error_code(&missing), "IDEMPOTENCY_KEY_REQUIRED");
    assert_eq!(
        app.transaction_count().await,
        before,
        "cash is never posted to the ledger"
    );

    let (status, page) = app.get_as(&path, &own).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, vec![&day["id"], &first["id"]], "newest first");
    let (status, page) = app.get(&format!("{path}?limit=1")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"][0]["id"], day["id"]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, rest) = app.get(&format!("{path}?limit=1&cursor={cursor}")).await;
    assert_eq!(rest["data"][0]["id"], first["id"], "{rest}");

    // Another payee's cash is not found for this vendor; the auditor records none.
    let other_path = format!("/v1/payees/{other_id}/cash-payments");
    let (status, body) = post_as(json!({"amount": "1000"}), own.clone(), other_path.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "PAYEE_NOT_FOUND");
    let (status, body) = app.get_as(&other_path, &own).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let auditor = app.token_for(Role::Auditor).await;
    let (status, body) = post_as(json!({"amount": "1000"}), auditor.clone(), path.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post_as(
        json!({"amount": "1000"}),
        app.admin.clone(),
        format!("/v1/payees/{}/cash-payments", Uuid::now_v7()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let unknown = Uuid::now_v7();
    for (body, code) in [
        (json!({"amount": "abc"}), "AMOUNT_INVALID"),
        (json!({"amount": "0"}), "AMOUNT_NOT_POSITIVE"),
        (json!({"amount": "10.5"}), "AMOUNT_TOO_PRECISE"),
        (
            json!({"amount": "1000", "payment_count": 0}),
            "INVALID_PAYMENT_COUNT",
        ),
        (
            json!({"amount": "1000", "occurred_at": "2999-01-01T00:00:00Z"}),
            "OCCURRED_AT_IN_FUTURE",
        ),
        (
            json!({"amount": "1000", "note": "x".repeat(501)}),
            "NOTE_TOO_LONG",
        ),
        (
            json!({"amount": "1000", "payer": {"resident_id": unknown}}),
            "PAYER_NOT_FOUND",
        ),
        (
            json!({"amount": "1000", "payer": {"household_id": unknown}}),
            "PAYER_NOT_FOUND",
        ),
        (
            json!({"amount": "1000", "payer": {"resident_id": unknown, "household_id": unknown}}),
            "INVALID_PAYER",
        ),
        (json!({"amount": "1000", "payer": {}}), "INVALID_PAYER"),
    ] {
        let (status, answer) = post_as(body.clone(), own.clone(), path.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(error_code(&answer), code, "{body}: {answer}");
    }
    let (status, body) = post_as(json!({"amount": "1000", "tip": 1}), own, path.clone()).await;
    assert!(status.is_client_error(), "{body}");
    let (_, page) = app.get(&path).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
}

async fn an_intent_naming_an_unknown_payer_is_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, _) = vendor(&app, "S001", "970436", "0123456789").await;
    let unknown = Uuid::now_v7();
    for (payer, code) in [
        (json!({"resident_id": unknown}), "PAYER_NOT_FOUND"),
        (json!({"household_id": unknown}), "PAYER_NOT_FOUND"),
        (
            json!({"resident_id": unknown, "household_id": unknown}),
            "INVALID_PAYER",
        ),
    ] {
        let response = app
            .post_idempotent(
                "/v1/payment-intents",
                &Uuid::new_v4().to_string(),
                &json!({"payee_id": payee["id"], "amount": "150000", "payer": payer}),
            )
            .await;
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{payer}: {body}");
        assert_eq!(error_code(&body), code, "{body}");
    }
    let response = app
        .post_idempotent(
            "/v1/payment-intents",
            &Uuid::new_v4().to_string(),
            &json!({"payee_id": payee["id"], "amount": "150000"}),
        )
        .await;
    let (status, intent) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{intent}");
    assert_eq!(intent["payer"], Value::Null, "{intent}");

    // A payee's owner must be a known resident, on creation and on PATCH; null clears it.
    let mut body = crate::common::vendor("V077", "0123456777");
    body["owner_resident_id"] = json!(unknown);
    let (status, refused) = app.post("/v1/payees", &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(error_code(&refused), "OWNER_RESIDENT_NOT_FOUND");
    assert_eq!(payee["owner_resident_id"], Value::Null, "{payee}");
    let patch = |body: Value| {
        let app = &app;
        let path = format!("/v1/payees/{}", payee["id"].as_str().unwrap());
        async move {
            read(
                app.client
                    .patch(app.url(&path))
                    .bearer_auth(&app.admin)
                    .json(&body)
                    .send()
                    .await
                    .expect("request sent"),
            )
            .await
        }
    };
    let (status, refused) = patch(json!({"owner_resident_id": unknown})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(error_code(&refused), "OWNER_RESIDENT_NOT_FOUND");
    let (status, cleared) = patch(json!({"owner_resident_id": null})).await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["owner_resident_id"], Value::Null);
}

/// The whole link flow against the registry routes, which are built on another branch.
async fn staff_link_a_consenting_resident_with_an_audit(backend: Backend) {
    let Some((app, key)) = payos_app(backend).await else {
        return;
    };
    let (status, ack) = deliver(&app, "payos", &[], &payos_payment("FT24061234567890", &key)).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let hash = expected_hash(&app, "970415", "8888888888");

    let (status, hamlet) = app
        .post(
            "/v1/hamlets",
            &json!({"code": "KC", "name": "Khe Cốc", "valid_from": "2020-01-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hamlet}");
    let (status, household) = app
        .post(
            "/v1/households",
            &json!({"code": "HH001", "hamlet_code": "KC", "address": "Xóm Khe Cốc"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{household}");
    let household_id = household["id"].as_str().unwrap().to_owned();
    let (status, resident) = app
        .post(
            "/v1/residents",
            &json!({
                "code": "R001", "household_id": household_id,
                "full_name": "Nguyễn Văn A", "birth_year": 1980
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resident}");
    let resident_id = resident["id"].as_str().unwrap().to_owned();

    let link_path = format!("/v1/payer-accounts/{hash}/link");
    let (status, body) = app
        .post(
            &link_path,
            &json!({"resident_id": resident_id, "reason": "tự khai"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "CONSENT_NOT_GIVEN");

    let (status, consent) = app
        .post(
            &format!("/v1/residents/{resident_id}/consents"),
            &json!({"given": true, "effective_on": "2020-01-01"}),
        )
        .await;
    assert!(status.is_success(), "{consent}");
    let (status, linked) = app
        .post(
            &link_path,
            &json!({"resident_id": resident_id, "reason": "tự khai"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    assert_eq!(linked["resident_id"], resident_id.as_str());
    let (status, body) = app
        .post(
            &link_path,
            &json!({"household_id": household_id, "reason": "again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "PAYER_ALREADY_LINKED");
    assert_eq!(payer_accounts(&app, "?linked=true").await.len(), 1);

    let (status, unlinked) = app
        .post(
            &format!("/v1/payer-accounts/{hash}/unlink"),
            &json!({"reason": "nhầm người"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{unlinked}");
    assert_eq!(unlinked["resident_id"], Value::Null);
    let (_, audit) = app.get(&format!("/v1/payer-accounts/{hash}/audit")).await;
    let actions: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["action"])
        .collect();
    assert_eq!(actions, vec!["link", "unlink"]);
    assert_eq!(audit["data"][1]["resident_id"], resident_id.as_str());
    assert_eq!(audit["data"][1]["reason"], "nhầm người");

    // A resident's own account, registered: linked at once, only last4 shown.
    let (status, own) = app
        .post(
            &format!("/v1/residents/{resident_id}/bank-accounts"),
            &json!({"bank_bin": "970436", "account_number": "0451001536775", "reason": "tự khai"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["last4"], "6775");
    assert_eq!(own["resident_id"], resident_id.as_str());
    assert!(!own.to_string().contains("0451001536775"));

    // An intent and a cash payment naming the household.
    let (payee, _) = vendor(&app, "S001", "970436", "0123456789").await;
    let response = app
        .post_idempotent(
            "/v1/payment-intents",
            &Uuid::new_v4().to_string(),
            &json!({"payee_id": payee["id"], "amount": "150000",
                    "payer": {"household_id": household_id}}),
        )
        .await;
    let (status, intent) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{intent}");
    assert_eq!(intent["payer"]["household_id"], household_id.as_str());
    let (status, cash) = read(
        app.post_idempotent(
            &format!("/v1/payees/{}/cash-payments", payee["id"].as_str().unwrap()),
            "cash-1",
            &json!({"amount": "20000", "payer": {"resident_id": resident_id}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{cash}");
    assert_eq!(cash["payer"]["resident_id"], resident_id.as_str());
}
