//! The audit trail: every change a person makes is recorded with who, when, what, before and
//! after and the request id, and the records cannot be changed afterwards.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{assert_refused_by_the_database, error_code, payee_id, read, Backend, TestApp};
use crate::webhooks;
use market_ledger::domain::user::Role;

crate::on_both_backends!(
    user_changes_are_recorded_with_who_made_them,
    audit_records_cannot_be_changed_in_the_database,
    feed_changes_are_recorded_without_their_secrets,
    payee_changes_are_recorded_before_and_after,
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
