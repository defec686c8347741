//! User administration: admins create, change, disable and reset users; users change their
//! own password; every request checks the caller as they stand now.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, payee_id, Backend, TestApp};
use market_ledger::services::auth::STANDING_TTL;

crate::on_both_backends!(
    a_new_user_must_choose_a_password_first,
    passwords_must_be_long_and_uncommon,
    disabled_users_are_refused_at_once,
    a_disabled_user_is_refused_by_every_instance_within_seconds,
    role_changes_apply_to_tokens_already_issued,
    a_reset_password_ends_sessions_and_forces_a_change,
    the_last_admin_cannot_be_removed,
    bad_user_requests_are_refused_clearly,
);

const NEW_PASSWORD: &str = "chè Tân Cương xanh";

/// Creates a user through the API; returns the temporary password.
async fn create(app: &TestApp, body: Value) -> String {
    let (status, created) = app.post("/v1/users", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["user"]["must_change_password"], true);
    created["temporary_password"].as_str().unwrap().to_owned()
}

async fn token(app: &TestApp, username: &str, password: &str) -> String {
    let (status, body) = app.login(username, password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> (StatusCode, Value) {
    app.post_as(
        "/v1/auth/password",
        &json!({ "current_password": current, "new_password": new }),
        token,
    )
    .await
}

/// A staff user who has chosen their own password; their token.
async fn staff(app: &TestApp, username: &str) -> String {
    let temporary = create(app, json!({ "username": username, "role": "staff" })).await;
    let first = token(app, username, &temporary).await;
    let (status, body) = change_password(app, &first, &temporary, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn patch_user(app: &TestApp, username: &str, body: Value) -> (StatusCode, Value) {
    app.patch_as(&format!("/v1/users/{username}"), &body, &app.admin)
        .await
}

async fn a_new_user_must_choose_a_password_first(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "HOA01", "0011001234567").await;
    let temporary = create(
        &app,
        json!({ "username": "hoa.vendor", "role": "vendor", "payee_id": payee }),
    )
    .await;
    let (_, user) = app.get("/v1/users/hoa.vendor").await;
    assert_eq!(user["last_login_at"], Value::Null, "{user}");

    let first = token(&app, "hoa.vendor", &temporary).await;
    let (status, refusal) = app.get_as(&format!("/v1/payees/{payee}"), &first).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::FORBIDDEN, "PASSWORD_CHANGE_REQUIRED")
    );
    let (status, refusal) = change_password(&app, &first, "not the password", NEW_PASSWORD).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::FORBIDDEN, "WRONG_CURRENT_PASSWORD")
    );
    let (status, changed) = change_password(&app, &first, &temporary, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let fresh = changed["access_token"].as_str().unwrap();
    let (status, _) = app.get_as(&format!("/v1/payees/{payee}"), fresh).await;
    assert_eq!(status, StatusCode::OK);
    // The token from before the change is no longer valid, nor is the temporary password.
    let (status, refusal) = app.get_as("/v1/banks", &first).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED")
    );
    assert_eq!(
        app.login("hoa.vendor", &temporary).await.0,
        StatusCode::UNAUTHORIZED
    );
    token(&app, "hoa.vendor", NEW_PASSWORD).await;

    let (status, list) = app.get("/v1/users").await;
    assert_eq!(status, StatusCode::OK);
    let listed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "hoa.vendor")
        .expect("listed")
        .clone();
    assert_eq!(listed["role"], "vendor");
    assert_eq!(listed["payee_id"], payee.as_str());
    assert_eq!(listed["must_change_password"], false);
    assert!(listed["last_login_at"].is_string(), "{listed}");
}

async fn passwords_must_be_long_and_uncommon(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let temporary = create(&app, json!({ "username": "lan.staff", "role": "staff" })).await;
    let first = token(&app, "lan.staff", &temporary).await;
    for (new, code) in [
        ("ngắn quá", "WEAK_PASSWORD"),
        ("matkhau123456", "COMMON_PASSWORD"),
        ("123456789abc", "COMMON_PASSWORD"),
        ("qwerty123456", "COMMON_PASSWORD"),
    ] {
        let (status, refusal) = change_password(&app, &first, &temporary, new).await;
        assert_eq!(
            (status, error_code(&refusal)),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{new}"
        );
    }
    // Nothing changed: the temporary password still works, still only for changing it.
    token(&app, "lan.staff", &temporary).await;
}

async fn disabled_users_are_refused_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let staff = staff(&app, "mai.staff").await;
    assert_eq!(app.get_as("/v1/accounts", &staff).await.0, StatusCode::OK);
    let (status, user) = patch_user(&app, "mai.staff", json!({ "disabled": true })).await;
    assert_eq!((status, &user["disabled"]), (StatusCode::OK, &json!(true)));
    let (status, refusal) = app.get_as("/v1/accounts", &staff).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::UNAUTHORIZED, "USER_DISABLED")
    );
    let (status, refusal) = app.login("mai.staff", NEW_PASSWORD).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::UNAUTHORIZED, "USER_DISABLED")
    );
    patch_user(&app, "mai.staff", json!({ "disabled": false })).await;
    assert_eq!(app.get_as("/v1/accounts", &staff).await.0, StatusCode::OK);
}

async fn a_disabled_user_is_refused_by_every_instance_within_seconds(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let sibling = app.spawn_sibling().await;
    let staff = staff(&app, "tuan.staff").await;
    // The sibling has read the user's standing and may trust it for a few seconds.
    assert_eq!(
        sibling.get_as("/v1/accounts", &staff).await.0,
        StatusCode::OK
    );
    patch_user(&app, "tuan.staff", json!({ "disabled": true })).await;
    let disabled_at = Instant::now();
    loop {
        let (status, _) = sibling.get_as("/v1/accounts", &staff).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            disabled_at.elapsed() <= STANDING_TTL + Duration::from_secs(1),
            "the other instance still admits a disabled user after {:?}",
            disabled_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sibling.shut_down().await.unwrap();
}

async fn role_changes_apply_to_tokens_already_issued(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let staff = staff(&app, "binh.staff").await;
    let account = json!({ "code": "1100", "name": "Tiền mặt", "kind": "asset", "currency": "VND" });
    assert_eq!(
        app.post_as("/v1/accounts", &account, &staff).await.0,
        StatusCode::CREATED
    );
    let (status, user) = patch_user(&app, "binh.staff", json!({ "role": "auditor" })).await;
    assert_eq!((status, &user["role"]), (StatusCode::OK, &json!("auditor")));
    let account =
        json!({ "code": "1200", "name": "Ngân hàng", "kind": "asset", "currency": "VND" });
    let (status, refusal) = app.post_as("/v1/accounts", &account, &staff).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    assert_eq!(app.get_as("/v1/accounts", &staff).await.0, StatusCode::OK);

    // A vendor is bound to a payee; moving back to staff unbinds it.
    let payee = payee_id(&app, "BINH01", "0011001234568").await;
    let (status, user) = patch_user(
        &app,
        "binh.staff",
        json!({ "role": "vendor", "payee_id": payee }),
    )
    .await;
    assert_eq!((status, &user["payee_id"]), (StatusCode::OK, &json!(payee)));
    let (status, user) = patch_user(
        &app,
        "binh.staff",
        json!({ "role": "staff", "payee_id": null }),
    )
    .await;
    assert_eq!((status, &user["payee_id"]), (StatusCode::OK, &Value::Null));
}

async fn a_reset_password_ends_sessions_and_forces_a_change(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let staff = staff(&app, "thu.staff").await;
    let (status, reset) = app
        .post("/v1/users/thu.staff/reset-password", &json!(null))
        .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["user"]["must_change_password"], true);
    let temporary = reset["temporary_password"].as_str().unwrap();
    let (status, refusal) = app.get_as("/v1/accounts", &staff).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED")
    );
    assert_eq!(
        app.login("thu.staff", NEW_PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    let first = token(&app, "thu.staff", temporary).await;
    let (status, refusal) = app.get_as("/v1/accounts", &first).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::FORBIDDEN, "PASSWORD_CHANGE_REQUIRED")
    );
    let (status, _) = change_password(&app, &first, temporary, "một mật khẩu mới dài").await;
    assert_eq!(status, StatusCode::OK);
}

async fn the_last_admin_cannot_be_removed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, users) = app.get("/v1/users").await;
    let admin = users["data"][0]["username"].as_str().unwrap().to_owned();
    for change in [json!({ "disabled": true }), json!({ "role": "staff" })] {
        let (status, refusal) = patch_user(&app, &admin, change).await;
        assert_eq!(
            (status, error_code(&refusal)),
            (StatusCode::CONFLICT, "LAST_ADMIN")
        );
    }
    create(&app, json!({ "username": "second.admin", "role": "admin" })).await;
    let (status, _) = patch_user(&app, &admin, json!({ "role": "staff" })).await;
    assert_eq!(status, StatusCode::OK);
}

async fn bad_user_requests_are_refused_clearly(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let missing_payee = uuid::Uuid::now_v7();
    let refused = [
        (
            json!({ "username": "x", "role": "staff" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_USERNAME",
        ),
        (
            json!({ "username": "ok.user", "role": "boss" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_ROLE",
        ),
        (
            json!({ "username": "ok.user", "role": "vendor" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "PAYEE_REQUIRED",
        ),
        (
            json!({ "username": "ok.user", "role": "vendor", "payee_id": missing_payee }),
            StatusCode::NOT_FOUND,
            "PAYEE_NOT_FOUND",
        ),
    ];
    for (body, status, code) in refused {
        let (got, refusal) = app.post("/v1/users", &body).await;
        assert_eq!((got, error_code(&refusal)), (status, code), "{body}");
    }
    create(&app, json!({ "username": "ok.user", "role": "staff" })).await;
    let (status, refusal) = app
        .post(
            "/v1/users",
            &json!({ "username": "ok.user", "role": "staff" }),
        )
        .await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::CONFLICT, "USERNAME_TAKEN")
    );
    let (status, refusal) = patch_user(&app, "ok.user", json!({ "payee_id": missing_payee })).await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::NOT_FOUND, "PAYEE_NOT_FOUND")
    );
    let (status, refusal) = app.get("/v1/users/nobody.here").await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::NOT_FOUND, "USER_NOT_FOUND")
    );
    let (status, refusal) = app
        .post("/v1/users/nobody.here/reset-password", &json!(null))
        .await;
    assert_eq!(
        (status, error_code(&refusal)),
        (StatusCode::NOT_FOUND, "USER_NOT_FOUND")
    );
}
