//! The audit trail: every change a person makes is recorded with who, when, what, before and
//! after and the request id, and the records cannot be changed afterwards.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_refused_by_the_database, error_code, payee_id, read, Backend, TestApp};
use crate::{schools, webhooks};
use market_ledger::domain::user::Role;

crate::on_both_backends!(
    user_changes_are_recorded_with_who_made_them,
    audit_records_cannot_be_changed_in_the_database,
    feed_changes_are_recorded_without_their_secrets,
    payee_changes_are_recorded_before_and_after,
    reversals_are_recorded_with_their_request,
    suspense_resolutions_are_recorded_with_their_request,
    registry_payer_intent_and_school_changes_are_recorded,
);

async fn trail(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/audit?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn user_changes_are_recorded_with_who_made_them(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .client
        .post(app.url("/v1/users"))
        .bearer_auth(&app.admin)
        .header("x-request-id", "req-create-lan-1")
        .json(&json!({ "username": "lan.staff", "role": "staff" }))
        .send()
        .await
        .unwrap();
    let (status, created) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let temporary = created["temporary_password"].as_str().unwrap();
    let (_, login) = app.login("lan.staff", temporary).await;
    let token = login["access_token"].as_str().unwrap();
    let (status, _) = app
        .post_as(
            "/v1/auth/password",
            &json!({ "current_password": temporary, "new_password": "chè Tân Cương xanh" }),
            token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.patch_as(
        "/v1/users/lan.staff",
        &json!({ "role": "auditor" }),
        &app.admin,
    )
    .await;
    app.post("/v1/users/lan.staff/reset-password", &json!(null))
        .await;

    let records = trail(&app, "target_kind=user&target_id=lan.staff").await;
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.change_password",
            "user.update",
            "user.reset_password"
        ]
    );
    let (_, admin) = app.get("/v1/users").await;
    let admin_name = admin["data"][0]["username"].as_str().unwrap();
    let actors: Vec<&str> = records
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, [admin_name, "lan.staff", admin_name, admin_name]);
    assert_eq!(records[0]["request_id"], "req-create-lan-1");
    assert_eq!(records[0]["before"], Value::Null);
    assert_eq!(records[0]["after"]["role"], "staff");
    assert_eq!(records[2]["before"]["role"], "staff");
    assert_eq!(records[2]["after"]["role"], "auditor");
    assert_eq!(records[3]["after"]["must_change_password"], true);
    let text = Value::Array(records.clone()).to_string();
    assert!(
        !text.contains("argon2") && !text.contains(temporary),
        "{text}"
    );

    // Filters and pages.
    let updates = trail(&app, "action=user.update").await;
    assert_eq!(updates.len(), 1);
    let mine = trail(&app, "actor=lan.staff").await;
    assert_eq!(mine.len(), 1);
    let (_, first) = app.get("/v1/audit?target_id=lan.staff&limit=3").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = trail(
        &app,
        &format!("target_id=lan.staff&limit=3&cursor={cursor}"),
    )
    .await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["action"], "user.reset_password");
    let (status, refusal) = app.get("/v1/audit?action=user.delete").await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::BAD_REQUEST, "UNKNOWN_AUDIT_ACTION")
    );

    // Admins and the auditor read it; staff do not.
    let auditor = app.token_for(Role::Auditor).await;
    assert_eq!(app.get_as("/v1/audit", &auditor).await.0, StatusCode::OK);
    let staff = app.token_for(Role::Staff).await;
    assert_eq!(
        app.get_as("/v1/audit", &staff).await.0,
        StatusCode::FORBIDDEN
    );
}

async fn audit_records_cannot_be_changed_in_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Spawning made the admin: one record already.
    assert!(!trail(&app, "").await.is_empty());
    assert_refused_by_the_database(
        &app,
        backend,
        &[
            "UPDATE audit_log SET actor_name = 'someone else'",
            "DELETE FROM audit_log",
        ],
    )
    .await;
    assert!(!trail(&app, "").await.is_empty());
}

async fn feed_changes_are_recorded_without_their_secrets(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, collection) = webhooks::vendor(&app, "V042", "970436", "0011009988776").await;
    webhooks::configure(&app, &collection, "sepay", &["first-secret-key"]).await;
    webhooks::configure(&app, &collection, "standard", &[webhooks::STANDARD_SECRET]).await;
    let records = trail(&app, &format!("action=feed.set&target_id={collection}")).await;
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["target_kind"], "collection_account");
    assert_eq!(records[0]["before"], Value::Null);
    assert_eq!(
        records[0]["after"],
        json!({ "provider": "sepay", "secrets": 1 })
    );
    assert_eq!(records[1]["before"], json!({ "provider": "sepay" }));
    assert_eq!(records[1]["after"]["provider"], "standard");
    let text = Value::Array(records).to_string();
    assert!(
        !text.contains("first-secret-key") && !text.contains(webhooks::STANDARD_SECRET),
        "{text}"
    );
}

async fn payee_changes_are_recorded_before_and_after(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0011001234567").await;
    let (status, _) = app
        .patch_as(
            &format!("/v1/payees/{payee}"),
            &json!({ "name": "Bà Hoa, quầy chè Tân Cương", "active": false }),
            &app.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let records = trail(&app, &format!("target_kind=payee&target_id={payee}")).await;
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["payee.create", "payee.update"]);
    assert_eq!(records[0]["before"], Value::Null);
    assert_eq!(records[0]["after"]["code"], "V042");
    assert_eq!(
        records[0]["after"]["collection_account"]["account_last4"],
        "4567"
    );
    assert_eq!(records[1]["before"]["name"], "Bà Hoa, quầy chè");
    assert_eq!(records[1]["before"]["active"], true);
    assert_eq!(records[1]["after"]["name"], "Bà Hoa, quầy chè Tân Cương");
    assert_eq!(records[1]["after"]["active"], false);
    let text = Value::Array(records).to_string();
    assert!(
        !text.contains("0011001234567"),
        "no full account number: {text}"
    );
    // A refused change leaves no record.
    let missing = uuid::Uuid::now_v7();
    let (status, _) = app
        .patch_as(
            &format!("/v1/payees/{missing}"),
            &json!({ "name": "x" }),
            &app.admin,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(trail(&app, &format!("target_id={missing}"))
        .await
        .is_empty());
}

/// POSTs a money-moving request as the admin with an Idempotency-Key and the x-request-id.
async fn post_with_request_id(
    app: &TestApp,
    path: &str,
    request_id: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(&app.admin)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .header("x-request-id", request_id)
        .json(body)
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn admin_name(app: &TestApp) -> String {
    let (_, users) = app.get("/v1/users").await;
    users["data"][0]["username"].as_str().unwrap().to_owned()
}

async fn reversals_are_recorded_with_their_request(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.create_account("bank", "asset", json!({})).await;
    app.create_account("vendor", "liability", json!({})).await;
    let (status, original) = app.transfer("bank", "vendor", "12000").await;
    assert_eq!(status, StatusCode::CREATED, "{original}");
    let id = original["id"].as_str().unwrap();
    let reverse = format!("/v1/transactions/{id}/reverse");
    let (status, reversal) =
        post_with_request_id(&app, &reverse, "req-reverse-1", &json!(null)).await;
    assert_eq!(status, StatusCode::CREATED, "{reversal}");
    // A refused second reversal leaves no record.
    let (status, _) = post_with_request_id(&app, &reverse, "req-reverse-2", &json!(null)).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let records = trail(&app, &format!("target_kind=transaction&target_id={id}")).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "transaction.reverse");
    assert_eq!(records[0]["actor"], admin_name(&app).await.as_str());
    assert_eq!(records[0]["request_id"], "req-reverse-1");
    assert_eq!(records[0]["before"]["description"], "transfer");
    assert_eq!(records[0]["after"]["reversed_by"], reversal["id"]);
}

async fn suspense_resolutions_are_recorded_with_their_request(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = webhooks::vendor(&app, "V012", "970436", "7788990011").await;
    webhooks::configure(&app, &collection, "standard", &[webhooks::STANDARD_SECRET]).await;
    let stray = webhooks::record(&app, "7788990011", "in", 10_000, "tien cho ba Hoa").await;
    let bank_transaction = stray["id"].as_str().unwrap();
    let resolve = format!("/v1/reconciliation/unmatched/{bank_transaction}/resolve");
    let request = json!({ "payee_id": payee["id"], "note": "khách quên ghi mã" });
    let (status, resolved) = post_with_request_id(&app, &resolve, "req-resolve-1", &request).await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    // Resolving it again is refused and leaves no record.
    let (status, _) = post_with_request_id(&app, &resolve, "req-resolve-2", &request).await;
    assert!(status.is_client_error(), "{status}");

    let records = trail(
        &app,
        &format!("target_kind=bank_transaction&target_id={bank_transaction}"),
    )
    .await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "suspense.resolve");
    assert_eq!(records[0]["actor"], admin_name(&app).await.as_str());
    assert_eq!(records[0]["request_id"], "req-resolve-1");
    assert_eq!(records[0]["before"]["suspense_amount"], "10000");
    assert_eq!(records[0]["after"]["action"], "payee");
    assert_eq!(records[0]["after"]["payee_id"], payee["id"]);
    assert_eq!(records[0]["after"]["note"], "khách quên ghi mã");
    assert!(records[0]["after"]["ledger_transaction_id"].is_string());
    let text = Value::Array(records).to_string();
    assert!(
        !text.contains("7788990011"),
        "no full account number: {text}"
    );
}

/// The one record of `action`, checked for its actor and request id.
async fn only_record(app: &TestApp, action: &str, target_id: &str, request_id: &str) -> Value {
    let records = trail(app, &format!("action={action}&target_id={target_id}")).await;
    assert_eq!(records.len(), 1, "{action}: {records:?}");
    assert_eq!(records[0]["actor"], admin_name(app).await.as_str());
    assert_eq!(records[0]["request_id"], request_id, "{action}");
    records[0].clone()
}

async fn registry_payer_intent_and_school_changes_are_recorded(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let post = |path: String, request_id: &'static str, body: Value| {
        let app = &app;
        async move { post_with_request_id(app, &path, request_id, &body).await }
    };
    let (status, _) = post(
        "/v1/hamlets".into(),
        "req-hamlet",
        json!({"code": "KC", "name": "Khe Cốc", "valid_from": "2020-01-01"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, household) = post(
        "/v1/households".into(),
        "req-household",
        json!({"code": "HH001", "hamlet_code": "KC", "address": "Xóm Khe Cốc"}),
    )
    .await;
    let (_, resident) = post(
        "/v1/residents".into(),
        "req-resident",
        json!({"code": "R001", "household_id": household["id"],
               "full_name": "Nguyễn Văn A", "birth_year": 1980}),
    )
    .await;
    let resident_id = resident["id"].as_str().unwrap().to_owned();

    let consents = format!("/v1/residents/{resident_id}/consents");
    let consent = json!({"given": true, "effective_on": "2020-01-01"});
    let (status, _) = post(consents, "req-consent", consent).await;
    assert!(status.is_success());
    let record = only_record(&app, "consent.record", &resident_id, "req-consent").await;
    assert_eq!(record["target_kind"], "resident");
    assert_eq!(
        record["after"],
        json!({"given": true, "effective_on": "2020-01-01"})
    );

    // A registration, then an unlink and a link of the same account: one record each.
    let register = format!("/v1/residents/{resident_id}/bank-accounts");
    let account = json!({"bank_bin": "970436", "account_number": "0451001536775",
                         "reason": "tự khai"});
    let (status, own) = post(register, "req-register", account).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let hash = own["account_hash"].as_str().unwrap().to_owned();
    let record = only_record(&app, "payer_account.register", &hash, "req-register").await;
    assert_eq!(record["target_kind"], "payer_account");
    assert_eq!(record["after"]["resident_id"], resident_id.as_str());
    assert_eq!(record["after"]["bank_bin"], "970436");
    assert_eq!(record["after"]["account_last4"], "6775");
    let unlink = format!("/v1/payer-accounts/{hash}/unlink");
    let (status, _) = post(unlink, "req-unlink", json!({"reason": "nhầm người"})).await;
    assert_eq!(status, StatusCode::OK);
    let record = only_record(&app, "payer_account.unlink", &hash, "req-unlink").await;
    assert_eq!(record["before"]["resident_id"], resident_id.as_str());
    assert_eq!(record["after"]["reason"], "nhầm người");
    let link = format!("/v1/payer-accounts/{hash}/link");
    let body = json!({"household_id": household["id"], "reason": "cả hộ dùng"});
    let (status, _) = post(link, "req-link", body).await;
    assert_eq!(status, StatusCode::OK);
    let record = only_record(&app, "payer_account.link", &hash, "req-link").await;
    assert_eq!(record["after"]["household_id"], household["id"]);
    // The account's own history is read from the same records.
    let (_, history) = app.get(&format!("/v1/payer-accounts/{hash}/audit")).await;
    let history = history["data"].as_array().unwrap();
    let actions: Vec<&str> = history
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["link", "unlink", "link"]);
    assert_eq!(history[0]["resident_id"], resident_id.as_str());
    assert_eq!(history[1]["resident_id"], resident_id.as_str());
    assert_eq!(history[2]["household_id"], household["id"]);
    assert_eq!(history[2]["reason"], "cả hộ dùng");
    // An auditor reads that the account was linked, not to whom: whose account it is says
    // which resident paid, individual-level data for admins only.
    let auditor = app.token_for(Role::Auditor).await;
    let response = app
        .client
        .get(app.url(&format!("/v1/audit?target_id={hash}")))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    let (status, seen) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let seen = seen["data"].as_array().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for record in seen {
        assert_eq!(record["before"], Value::Null, "{record}");
        assert_eq!(record["after"], Value::Null, "{record}");
    }

    // Cancelling an intent is recorded once; cancelling it again changes nothing.
    let payee = payee_id(&app, "V013", "1122334455").await;
    let intent = crate::common::pending_intent(&app, &payee, "45000").await;
    let intent_id = intent["id"].as_str().unwrap().to_owned();
    let cancel = format!("/v1/payment-intents/{intent_id}/cancel");
    for request_id in ["req-cancel-1", "req-cancel-2"] {
        let (status, body) = post(cancel.clone(), request_id, json!(null)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let record = only_record(&app, "payment_intent.cancel", &intent_id, "req-cancel-1").await;
    assert_eq!(record["before"]["status"], "pending");
    assert_eq!(record["after"]["status"], "cancelled");
    assert_eq!(record["after"]["amount"], "45000");

    // A school's cash receipt cancelled, and a parent link created and revoked.
    let school = schools::school(&app, "TH01", "5566778899").await;
    let pupil = schools::pupils(&app, &school, 1).await.remove(0);
    let (status, receipt) = read(
        app.post_idempotent(
            &format!("/v1/schools/{}/cash-receipts", school.id),
            &Uuid::new_v4().to_string(),
            &json!({"pupil_id": pupil, "amount": 30000, "payer_name": "Trần Thị Mẹ"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    let receipt_id = receipt["id"].as_str().unwrap().to_owned();
    let cancel = format!(
        "/v1/schools/{}/cash-receipts/{receipt_id}/cancel",
        school.id
    );
    let (status, body) = post(cancel, "req-receipt", json!({"reason": "Ghi nhầm"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let record = only_record(&app, "school_receipt.cancel", &receipt_id, "req-receipt").await;
    assert_eq!(record["before"]["cancelled"], false);
    assert_eq!(record["after"]["cancelled"], true);
    assert_eq!(record["after"]["reason"], "Ghi nhầm");
    assert_eq!(record["after"]["amount"], "30000");
    assert!(record["after"]["ledger_transaction_id"].is_string());
    let parents = format!("/v1/schools/{}/parent-links", school.id);
    let (status, created) = post(parents, "req-parent", json!({"pupil_id": pupil})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let link_id = created["id"].as_str().unwrap().to_owned();
    let record = only_record(&app, "parent_link.create", &link_id, "req-parent").await;
    assert_eq!(record["after"]["pupil_id"], pupil.as_str());
    let revoke = format!("/v1/schools/{}/parent-links/{link_id}/revoke", school.id);
    let (status, _) = post(revoke, "req-revoke", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    only_record(&app, "parent_link.revoke", &link_id, "req-revoke").await;
    let text = Value::Array(trail(&app, "limit=500").await).to_string();
    assert!(!text.contains("0451001536775"), "no account number: {text}");
    assert!(
        !text.contains(created["token"].as_str().unwrap()),
        "no parent token"
    );
}
