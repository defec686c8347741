//! The audit trail: every change a person makes is recorded with who, when, what, before and
//! after and the request id, and the records cannot be changed afterwards.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{assert_refused_by_the_database, error_code, payee_id, read, Backend, TestApp};
use crate::webhooks;
use market_ledger::domain::user::Role;

crate::on_both_backends!(
    user_changes_are_recorded_with_who_made_them,
    audit_records_cannot_be_changed_in_the_database,
    feed_changes_are_recorded_without_their_secrets,
    payee_changes_are_recorded_before_and_after,
    reversals_are_recorded_with_their_request,
    suspense_resolutions_are_recorded_with_their_request,
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
