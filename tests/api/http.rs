//! HTTP itself: HEAD, the methods a route takes, request ids.

use reqwest::{Method, StatusCode};

use crate::common::{Backend, TestApp};

crate::on_both_backends!(
    head_is_get_without_a_body_and_405_names_the_methods,
    request_ids_are_kept_or_made,
);

async fn head_is_get_without_a_body_and_405_names_the_methods(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let head = app.client.head(app.url("/healthz")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.text().await.unwrap(), "");
    // HEAD follows GET's access rule: a ledger route still needs a token.
    let anonymous = app
        .client
        .head(app.url("/v1/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let signed_in = app
        .client
        .head(app.url("/v1/accounts"))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);

    for (method, path, allowed) in [
        (Method::DELETE, "/v1/accounts", "POST,GET,HEAD"),
        (Method::PUT, "/healthz", "GET,HEAD"),
        (Method::GET, "/v1/transactions/batch", "POST"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allowed, "{method} {path}");
    }
}

async fn request_ids_are_kept_or_made(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "till-7-morning")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "till-7-morning");
    let made = app.client.get(app.url("/v1/nowhere")).send().await.unwrap();
    assert_eq!(made.status(), StatusCode::NOT_FOUND);
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}
