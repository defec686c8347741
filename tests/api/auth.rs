use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, Backend, TestApp, PASSWORD};
use market_ledger::domain::user::Role;
use market_ledger::http::policy::{Access, ROUTES};
use market_ledger::services::auth::Caller;

crate::on_both_backends!(
    login_gives_a_short_lived_bearer_token,
    forged_and_stale_tokens_are_refused,
    tokens_claiming_more_than_the_service_issues_are_refused,
    a_retired_key_still_verifies_during_rotation,
    repeated_failed_logins_are_throttled,
    parallel_guesses_cannot_exceed_the_limit,
    every_route_admits_exactly_its_roles,
);

const KEY_A: [u8; 32] = [1; 32];
const KEY_B: [u8; 32] = [2; 32];

fn key_setting(keys: &[(&str, [u8; 32])]) -> String {
    keys.iter()
        .map(|(kid, key)| format!("{kid}:{}", STANDARD.encode(key)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Claims for the test app's admin (a token for a user who does not exist is refused).
fn claims(app: &TestApp, overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let payload = app.admin.split('.').nth(1).unwrap();
    let admin: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let mut claims = json!({
        "sub": admin["sub"], "name": admin["name"], "role": "admin",
        "iss": app.settings.jwt_issuer, "aud": app.settings.jwt_audience,
        "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4(),
    });
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

fn sign(kid: &str, key: &[u8], claims: &Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
}

async fn tokens_claiming_more_than_the_service_issues_are_refused(backend: Backend) {
    let Some(app) =
        TestApp::spawn_with(backend, |s| s.jwt_keys = key_setting(&[("a", KEY_A)])).await
    else {
        return;
    };
    let now = chrono::Utc::now().timestamp();
    let ttl = app.settings.jwt_ttl_seconds as i64;
    let refused = [
        (
            "a life longer than the configured one",
            json!({"iat": now, "exp": now + ttl + 1}),
        ),
        (
            "issued in the future",
            json!({"iat": now + 120, "exp": now + 300}),
        ),
        ("not valid before a future time", json!({"nbf": now + 120})),
    ];
    for (what, overrides) in refused {
        let token = sign("a", &KEY_A, &claims(&app, overrides));
        let (status, answer) = app.get_as("/v1/accounts", &token).await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            "{what}"
        );
    }
    let within = sign(
        "a",
        &KEY_A,
        &claims(&app, json!({"iat": now, "exp": now + ttl, "nbf": now})),
    );
    // The scheme name is case-insensitive (RFC 7235).
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = app
            .client
            .get(app.url("/v1/accounts"))
            .header("Authorization", format!("{scheme} {within}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

async fn login_gives_a_short_lived_bearer_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.state
        .auth
        .create_user(
            &Caller::system("test"),
            "hoa.staff",
            Role::Staff,
            None,
            PASSWORD.into(),
        )
        .await
        .unwrap();
    let (status, token) = app.login("hoa.staff", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["expires_in"].as_u64().unwrap() <= 900);
    let access = token["access_token"].as_str().unwrap();
    let (status, _) = app.get_as("/v1/accounts", access).await;
    assert_eq!(status, StatusCode::OK);

    let (status, answer) = app.login("hoa.staff", "not the password").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
    );
    let (status, answer) = app.login("nobody.here", PASSWORD).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
    );
}

async fn forged_and_stale_tokens_are_refused(backend: Backend) {
    let Some(app) =
        TestApp::spawn_with(backend, |s| s.jwt_keys = key_setting(&[("a", KEY_A)])).await
    else {
        return;
    };
    let now = chrono::Utc::now().timestamp();
    let valid = sign("a", &KEY_A, &claims(&app, json!({})));
    let (status, _) = app.get_as("/v1/accounts", &valid).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a correctly signed token is accepted"
    );

    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"a"}"#),
        URL_SAFE_NO_PAD.encode(claims(&app, json!({})).to_string())
    );
    let (header, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let tampered = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims(&app, json!({"name": "someone else"})).to_string())
    );
    let forged = [
        ("alg none", none_alg),
        ("tampered payload", tampered),
        ("wrong key", sign("a", &KEY_B, &claims(&app, json!({})))),
        ("unknown kid", sign("zz", &KEY_A, &claims(&app, json!({})))),
        (
            "a user who does not exist",
            sign(
                "a",
                &KEY_A,
                &claims(&app, json!({"sub": uuid::Uuid::now_v7()})),
            ),
        ),
        (
            "wrong issuer",
            sign("a", &KEY_A, &claims(&app, json!({"iss": "evil"}))),
        ),
        (
            "wrong audience",
            sign("a", &KEY_A, &claims(&app, json!({"aud": "other-api"}))),
        ),
        (
            "no audience",
            sign("a", &KEY_A, &claims(&app, json!({"aud": null}))),
        ),
        (
            "no issuer",
            sign("a", &KEY_A, &claims(&app, json!({"iss": null}))),
        ),
        (
            "expired",
            sign("a", &KEY_A, &claims(&app, json!({"exp": now - 120}))),
        ),
        (
            "no expiry",
            sign("a", &KEY_A, &claims(&app, json!({"exp": null}))),
        ),
        (
            "unknown role",
            sign("a", &KEY_A, &claims(&app, json!({"role": "root"}))),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in forged {
        let (status, answer) = app.get_as("/v1/accounts", &token).await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            "{what}"
        );
    }
    let response = app
        .client
        .get(app.url("/v1/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn a_retired_key_still_verifies_during_rotation(backend: Backend) {
    let rotated = key_setting(&[("b", KEY_B), ("a", KEY_A)]);
    let Some(app) = TestApp::spawn_with(backend, |s| s.jwt_keys = rotated).await else {
        return;
    };
    let old = sign("a", &KEY_A, &claims(&app, json!({})));
    let (status, _) = app.get_as("/v1/accounts", &old).await;
    assert_eq!(status, StatusCode::OK, "token from the retired key");
    let header = app.admin.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(
        header["kid"], "b",
        "new tokens are signed with the first key"
    );
    assert_eq!(header["alg"], "HS256");
}

async fn repeated_failed_logins_are_throttled(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.state
        .auth
        .create_user(
            &Caller::system("test"),
            "lan.school",
            Role::Staff,
            None,
            PASSWORD.into(),
        )
        .await
        .unwrap();
    for _ in 0..5 {
        let (status, _) = app.login("lan.school", "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = app
        .client
        .post(app.url("/v1/auth/token"))
        .json(&json!({"username": "lan.school", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 900);
    // Other usernames are not affected.
    let (status, _) = app.login(&"x".repeat(3), PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn parallel_guesses_cannot_exceed_the_limit(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.state
        .auth
        .create_user(
            &Caller::system("test"),
            "mai.vendor",
            Role::Staff,
            None,
            PASSWORD.into(),
        )
        .await
        .unwrap();
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move { app.login("mai.vendor", &format!("guess {i}")).await.0 }
    });
    let statuses = futures::future::join_all(guesses).await;
    let refused = |status| statuses.iter().filter(|s| **s == status).count();
    // The limit (5 per window) holds however many guesses arrive at once.
    assert_eq!(refused(StatusCode::UNAUTHORIZED), 5, "{statuses:?}");
    assert_eq!(refused(StatusCode::TOO_MANY_REQUESTS), 15, "{statuses:?}");
    let (status, _) = app.login("mai.vendor", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

async fn every_route_admits_exactly_its_roles(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, app.token_for(role).await));
    }
    for route in ROUTES {
        let path = route
            .path
            .replace("{account}", "no-such-account")
            .replace("{id}", &uuid::Uuid::new_v4().to_string());
        let request = |token: Option<&str>| {
            let mut builder = app
                .client
                .request(route.method.parse().unwrap(), app.url(&path))
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
            if route.method == "POST" {
                builder = builder.json(&json!({}));
            }
            if let Some(token) = token {
                builder = builder.bearer_auth(token);
            }
            builder.send()
        };
        let anonymous = request(None).await.unwrap().status();
        match route.access {
            Access::Public => assert_ne!(
                anonymous,
                StatusCode::FORBIDDEN,
                "{} {}",
                route.method,
                route.path
            ),
            Access::Roles(allowed) => {
                assert_eq!(
                    anonymous,
                    StatusCode::UNAUTHORIZED,
                    "{} {} without a token",
                    route.method,
                    route.path
                );
                for (role, token) in &tokens {
                    let status = request(Some(token)).await.unwrap().status();
                    if allowed.contains(role) {
                        assert!(
                            status != StatusCode::FORBIDDEN
                                && status != StatusCode::UNAUTHORIZED
                                && !status.is_server_error(),
                            "{} {} as {role:?} got {status}",
                            route.method,
                            route.path
                        );
                    } else {
                        assert_eq!(
                            status,
                            StatusCode::FORBIDDEN,
                            "{} {} as {role:?}",
                            route.method,
                            route.path
                        );
                    }
                }
            }
        }
    }
}
