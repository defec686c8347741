//! Payment intents: dynamic codes, idempotent creation, expiry and cancellation.

use market_ledger::domain::reference::PaymentReference;
use market_ledger::domain::user::Role;
use market_ledger::domain::vietqr::{Initiation, VietQr};
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{
    create_intent_as, create_payee, error_code, fetch, payee_id, pending_intent, png_payload, read,
    token_for_payee, vendor, Backend, TestApp,
};

crate::on_both_backends!(
    a_payment_intent_has_a_dynamic_code_a_real_decoder_reads,
    payment_intents_are_idempotent,
    bad_payment_intent_input_is_refused_without_effect,
    expiry_is_never_stale_and_the_sweep_writes_it,
    cancelled_intents_stay_cancelled_and_lose_their_code,
);

async fn a_payment_intent_has_a_dynamic_code_a_real_decoder_reads(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = create_payee(&app, &vendor("V042", "0123456789")).await;
    let token = token_for_payee(&app, Role::Vendor, payee["id"].as_str().unwrap()).await;
    let (status, intent) = create_intent_as(
        &app,
        &token,
        "sale-1",
        &json!({"payee_id": payee["id"], "amount": 150000, "description": "Chè Thái 1kg", "expires_in_seconds": 600}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{intent}");
    assert_eq!(intent["status"], "pending");
    assert_eq!(intent["amount"], "150000");
    assert_eq!(intent["currency"], "VND");
    assert_eq!(intent["description"], "Chè Thái 1kg");
    let reference = intent["reference"].as_str().unwrap();
    assert_eq!(
        PaymentReference::parse(reference).unwrap().as_str(),
        reference
    );
    let created: chrono::DateTime<chrono::Utc> =
        intent["created_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        intent["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_seconds(), 600);

    let payload = intent["qr_payload"].as_str().unwrap();
    let qr = VietQr::parse(payload).unwrap();
    assert_eq!(qr.initiation(), Initiation::Dynamic);
    assert_eq!((qr.bin(), qr.account()), ("970436", "0123456789"));
    assert_eq!(
        (qr.amount(), qr.purpose()),
        (Some(150_000), Some(reference))
    );
    // The bank memo of the payment will carry the reference, and the matcher finds it.
    assert_eq!(
        PaymentReference::find_in_memo(&format!("MBVCB.123.{reference}.CT tu 0123 NGUYEN VAN A")),
        [PaymentReference::parse(reference).unwrap()]
    );

    let decoded = png_payload(&app, intent["qr_png_url"].as_str().unwrap(), &token).await;
    assert_eq!(decoded, payload);
    let response = fetch(&app, intent["qr_svg_url"].as_str().unwrap(), &token).await;
    assert_eq!(response.headers()[CONTENT_TYPE], "image/svg+xml");

    let (status, read_back) = app
        .get_as(
            &format!("/v1/payment-intents/{}", intent["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read_back, intent);
    let (status, listed) = app
        .get_as(
            &format!(
                "/v1/payees/{}/payment-intents",
                payee["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["data"], json!([intent]));
}

async fn payment_intents_are_idempotent(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let body = json!({"payee_id": payee, "amount": "25000"});
    let first = app
        .post_idempotent("/v1/payment-intents", "same-key", &body)
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (_, first) = read(first).await;
    let again = app
        .post_idempotent("/v1/payment-intents", "same-key", &body)
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(read(again).await.1, first);

    let other_body = json!({"payee_id": payee, "amount": "26000"});
    let (status, answer) = read(
        app.post_idempotent("/v1/payment-intents", "same-key", &other_body)
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
    );
    let (status, answer) = app.post("/v1/payment-intents", &body).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED")
    );

    // Concurrent duplicates of one key create one intent between them.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, token, body) = (
                app.client.clone(),
                app.url("/v1/payment-intents"),
                app.admin.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", "race")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                read(response).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for racer in racers {
        let (status, answer) = racer.await.unwrap();
        match status {
            StatusCode::CREATED => ids.push(answer["id"].clone()),
            StatusCode::CONFLICT => assert_eq!(error_code(&answer), "IDEMPOTENCY_KEY_IN_PROGRESS"),
            other => panic!("{other}: {answer}"),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, listed) = app
        .get(&format!("/v1/payees/{payee}/payment-intents"))
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
}

async fn bad_payment_intent_input_is_refused_without_effect(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    // (field, its value, the code); the other fields of the request are valid.
    let cases = [
        ("amount", json!("0"), "AMOUNT_NOT_POSITIVE"),
        ("amount", json!(0), "AMOUNT_NOT_POSITIVE"),
        ("amount", json!("-5000"), "AMOUNT_NOT_POSITIVE"),
        ("amount", json!("10000000000000"), "AMOUNT_TOO_LARGE"),
        (
            "amount",
            json!("99999999999999999999999"),
            "AMOUNT_TOO_LARGE",
        ),
        ("amount", json!("1500.5"), "AMOUNT_TOO_PRECISE"),
        ("amount", json!(1500.5), "INVALID_BODY"),
        ("amount", json!("15k"), "AMOUNT_INVALID"),
        ("expires_in_seconds", json!(59), "INVALID_EXPIRY"),
        ("expires_in_seconds", json!(7_776_001), "INVALID_EXPIRY"),
        ("description", json!(" "), "INVALID_DESCRIPTION"),
        ("description", json!("x".repeat(201)), "INVALID_DESCRIPTION"),
        ("payee_id", json!("not-a-uuid"), "INVALID_BODY"),
    ];
    for (field, value, code) in cases {
        let mut body = json!({"payee_id": payee, "amount": "1000"});
        body[field] = value;
        let (status, answer) = create_intent_as(&app, &app.admin, "retry-me", &body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{body}: {answer}"
        );
    }
    let unknown = json!({"payee_id": Uuid::now_v7(), "amount": "1000"});
    let (status, answer) = create_intent_as(&app, &app.admin, "retry-me", &unknown).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "PAYEE_NOT_FOUND")
    );
    let (_, listed) = app
        .get(&format!("/v1/payees/{payee}/payment-intents"))
        .await;
    assert_eq!(listed["data"], json!([]), "nothing was created");
    // A refused request does not use up its key: fixed, it goes through.
    let (status, largest) = create_intent_as(
        &app,
        &app.admin,
        "retry-me",
        &json!({"payee_id": payee, "amount": "9999999999999"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{largest}");
    assert_eq!(
        VietQr::parse(largest["qr_payload"].as_str().unwrap())
            .unwrap()
            .amount(),
        Some(9_999_999_999_999)
    );
}

async fn expiry_is_never_stale_and_the_sweep_writes_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let old = pending_intent(&app, &payee, "1000").await;
    // Time passes (through the service's clock) beyond the old intent's 15 minutes.
    app.state.clock.advance(chrono::Duration::minutes(16));
    let fresh = pending_intent(&app, &payee, "2000").await;
    let old_id = old["id"].as_str().unwrap();

    // Read before any sweep ran: already expired.
    let (_, read_back) = app.get(&format!("/v1/payment-intents/{old_id}")).await;
    assert_eq!(read_back["status"], "expired");
    let ids = |page: &Value| -> Vec<Value> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect()
    };
    let list = format!("/v1/payees/{payee}/payment-intents");
    let (_, expired) = app.get(&format!("{list}?status=expired")).await;
    assert_eq!(ids(&expired), [old["id"].clone()]);
    assert_eq!(expired["data"][0]["status"], "expired");
    let (_, pending) = app.get(&format!("{list}?status=pending")).await;
    assert_eq!(ids(&pending), [fresh["id"].clone()]);
    let (status, answer) = read(
        fetch(
            &app,
            &format!("/v1/payment-intents/{old_id}/qr.png"),
            &app.admin,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYMENT_INTENT_NOT_PAYABLE")
    );
    assert_eq!(answer["error"]["details"]["status"], "expired");
    let (status, answer) = app
        .post(&format!("/v1/payment-intents/{old_id}/cancel"), &json!({}))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYMENT_INTENT_NOT_CANCELLABLE")
    );

    // The sweep writes what readers already saw, once: this one, or the server's own sweep
    // (every 5 s on the same clock) if it ran since the clock moved, never both.
    let swept = app.state.payments.expire_intents().await.unwrap();
    assert!(
        swept.is_empty() || swept == [old_id.parse::<Uuid>().unwrap()],
        "{swept:?}"
    );
    assert!(app
        .state
        .payments
        .expire_intents()
        .await
        .unwrap()
        .is_empty());
    let (_, after) = app.get(&format!("{list}?status=expired")).await;
    assert_eq!(ids(&after), [old["id"].clone()]);
    let (_, fresh_now) = app
        .get(&format!(
            "/v1/payment-intents/{}",
            fresh["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fresh_now["status"], "pending");
    let (status, answer) = app.get(&format!("{list}?status=overdue")).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY")
    );
}

async fn cancelled_intents_stay_cancelled_and_lose_their_code(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let intent = pending_intent(&app, &payee, "1000").await;
    let id = intent["id"].as_str().unwrap();
    let cancel = format!("/v1/payment-intents/{id}/cancel");
    let (status, cancelled) = app.post(&cancel, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    let (status, again) = app.post(&cancel, &json!({})).await;
    assert_eq!(
        (status, &again),
        (StatusCode::OK, &cancelled),
        "a retried cancel answers the same"
    );
    let (status, answer) = read(
        fetch(
            &app,
            &format!("/v1/payment-intents/{id}/qr.svg"),
            &app.admin,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYMENT_INTENT_NOT_PAYABLE")
    );
    let (_, listed) = app
        .get(&format!(
            "/v1/payees/{payee}/payment-intents?status=cancelled"
        ))
        .await;
    assert_eq!(listed["data"], json!([cancelled]));
    let (status, answer) = app
        .post(
            &format!("/v1/payment-intents/{}/cancel", Uuid::now_v7()),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "PAYMENT_INTENT_NOT_FOUND")
    );
}
