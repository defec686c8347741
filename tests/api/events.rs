//! Live payment events (`GET /v1/payees/{id}/events`): who may listen, what arrives and how
//! fast, and on PostgreSQL across instances on one database.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use market_ledger::domain::number_words::received_announcement;
use market_ledger::domain::user::Role;
use market_ledger::services::events::PaymentReceived;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{error_code, read, token_for_payee, Backend, TestApp};

crate::on_both_backends!(
    a_vendor_hears_its_own_payments_within_a_second_and_no_one_elses,
    only_the_payees_own_users_and_staff_may_listen,
    events_reach_listeners_on_every_instance_exactly_once,
    shutting_down_ends_open_streams,
    a_webhook_processed_on_one_instance_reaches_the_phone_on_another,
);

/// The promise to the vendor at the stall.
const WITHIN: Duration = Duration::from_secs(1);
/// Long enough for a duplicate or a stray event to have shown up.
const QUIET: Duration = Duration::from_millis(300);

fn vendor(code: &str) -> Value {
    json!({
        "kind": "vendor", "code": code, "name": "Bà Hoa, quầy chè", "hamlet": "Khe Cốc",
        "collection_account": {
            "bank_bin": "970436", "account_number": "0123456789", "holder_name": "Nguyễn Thị Hồng"
        },
    })
}

async fn create_payee(app: &TestApp, code: &str) -> Uuid {
    let (status, payee) = app.post("/v1/payees", &vendor(code)).await;
    assert_eq!(status, StatusCode::CREATED, "{payee}");
    payee["id"].as_str().unwrap().parse().unwrap()
}

fn payment(payee_id: Uuid, amount: &str) -> PaymentReceived {
    PaymentReceived {
        payee_id,
        bank_transaction_id: Uuid::now_v7(),
        payment_intent_id: Some(Uuid::now_v7()),
        reference: Some("8K2H9QX4".into()),
        amount: amount.into(),
        status: Some("paid".into()),
        occurred_at: "2024-05-01T08:00:00Z".into(),
    }
}

fn events_path(payee: Uuid) -> String {
    format!("/v1/payees/{payee}/events")
}

/// One SSE frame with an event name or data (comments and keep-alives are skipped).
#[derive(Debug, Default)]
pub(crate) struct Frame {
    pub(crate) event: Option<String>,
    id: Option<String>,
    data: String,
}

impl Frame {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

#[derive(Debug)]
enum Next {
    Frame(Frame),
    /// The server ended the stream.
    Ended,
    /// Nothing within the time given.
    Quiet,
}

/// A minimal SSE reader over reqwest's byte stream.
pub(crate) struct EventStream {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Send>>,
    buffer: String,
}

impl EventStream {
    /// Opens the stream; the server subscribes before it answers, so once this returns every
    /// event published from then on is delivered.
    pub(crate) async fn open(app: &TestApp, payee: Uuid, token: &str) -> EventStream {
        let response = app
            .client
            .get(app.url(&events_path(payee)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
        EventStream {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    async fn next(&mut self, within: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame::default();
                let mut data: Vec<&str> = Vec::new();
                for line in raw.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => frame.event = Some(value.to_owned()),
                        "id" => frame.id = Some(value.to_owned()),
                        "data" => data.push(value),
                        _ => {} // comments (empty field), retry
                    }
                }
                frame.data = data.join("\n");
                if frame.event.is_some() || !frame.data.is_empty() {
                    return Next::Frame(frame);
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return Next::Quiet,
                Ok(None) => return Next::Ended,
                Ok(Some(chunk)) => match chunk {
                    Ok(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                    Err(_) => return Next::Ended,
                },
            }
        }
    }

    /// The next frame, which must arrive within `within`.
    pub(crate) async fn expect(&mut self, within: Duration) -> Frame {
        match self.next(within).await {
            Next::Frame(frame) => frame,
            other => panic!("expected an event within {within:?}, got {other:?}"),
        }
    }

    /// The next frame must be the `payment_received` of `sent`, within a second.
    async fn expect_payment(&mut self, sent: &PaymentReceived, published: Instant) {
        let frame = self.expect(WITHIN).await;
        assert!(published.elapsed() < WITHIN, "{:?}", published.elapsed());
        assert_eq!(
            frame.event.as_deref(),
            Some("payment_received"),
            "{frame:?}"
        );
        assert_eq!(
            frame.id.as_deref(),
            Some(sent.bank_transaction_id.to_string().as_str())
        );
        // The event as published, and the sentence the stall's phone says.
        let mut expected = serde_json::to_value(sent).unwrap();
        expected["announcement"] = json!(received_announcement(sent.amount.parse().unwrap()));
        assert_eq!(frame.json(), expected);
    }

    async fn expect_quiet(&mut self) {
        match self.next(QUIET).await {
            Next::Quiet => {}
            other => panic!("expected nothing more, got {other:?}"),
        }
    }
}

async fn a_vendor_hears_its_own_payments_within_a_second_and_no_one_elses(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let own = create_payee(&app, "V1").await;
    let other = create_payee(&app, "V2").await;
    let vendor = token_for_payee(&app, Role::Vendor, own).await;
    let mut phone = EventStream::open(&app, own, &vendor).await;
    let staff = app.token_for(Role::Staff).await;
    let mut office = EventStream::open(&app, other, &staff).await;

    // The other payee's payment goes first: the vendor's first event must still be its own.
    let theirs = payment(other, "20000");
    let mine = payment(own, "150000");
    let published = Instant::now();
    app.state.events.publish(theirs.clone()).await;
    app.state.events.publish(mine.clone()).await;
    phone.expect_payment(&mine, published).await;
    phone.expect_quiet().await;
    // Staff may listen to any payee, and hear that payee only.
    office.expect_payment(&theirs, published).await;
    office.expect_quiet().await;

    // The stream stays open for the next customer.
    let next = payment(own, "30000");
    let published = Instant::now();
    app.state.events.publish(next.clone()).await;
    phone.expect_payment(&next, published).await;
}

async fn only_the_payees_own_users_and_staff_may_listen(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let own = create_payee(&app, "V1").await;
    let other = create_payee(&app, "V2").await;
    let get = |path: String, token: Option<String>| {
        let mut request = app.client.get(app.url(&path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { read(request.send().await.unwrap()).await }
    };

    let (status, answer) = get(events_path(own), None).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );
    let (status, answer) = get(events_path(own), Some("not-a-token".into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");

    // A vendor of another payee: that payee does not exist for it, as on every payee route.
    let outsider = token_for_payee(&app, Role::Vendor, other).await;
    let (status, answer) = get(events_path(own), Some(outsider.clone())).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "PAYEE_NOT_FOUND"),
        "{answer}"
    );
    let outsider_school = token_for_payee(&app, Role::School, other).await;
    let (status, answer) = get(events_path(own), Some(outsider_school)).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "PAYEE_NOT_FOUND")
    );
    // The auditor reads the ledger, not the stalls' live feed.
    let auditor = app.token_for(Role::Auditor).await;
    let (status, answer) = get(events_path(own), Some(auditor)).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    let (status, answer) = get(events_path(Uuid::now_v7()), Some(app.admin.clone())).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "PAYEE_NOT_FOUND")
    );
    let (status, answer) = get(
        "/v1/payees/not-a-uuid/events".into(),
        Some(app.admin.clone()),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "INVALID_PATH")
    );

    // The payee's own vendor and school users, staff and admins may.
    let own_school = token_for_payee(&app, Role::School, own).await;
    let own_vendor = token_for_payee(&app, Role::Vendor, own).await;
    let staff = app.token_for(Role::Staff).await;
    for token in [own_vendor, own_school, staff, app.admin.clone()] {
        let mut stream = EventStream::open(&app, own, &token).await;
        let sent = payment(own, "5000");
        let published = Instant::now();
        app.state.events.publish(sent.clone()).await;
        stream.expect_payment(&sent, published).await;
    }
    // The outsider's own stream does not hear this payee either.
    let mut theirs = EventStream::open(&app, other, &outsider).await;
    app.state.events.publish(payment(own, "5000")).await;
    theirs.expect_quiet().await;
}

async fn events_reach_listeners_on_every_instance_exactly_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = create_payee(&app, "V1").await;
    let vendor = token_for_payee(&app, Role::Vendor, payee).await;
    // On PostgreSQL a second instance on the same database; SQLite is embedded and runs one
    // instance, so there the same instance plays both parts.
    let sibling = match backend {
        Backend::Postgres => Some(app.spawn_sibling().await),
        Backend::Sqlite => None,
    };
    let b = sibling.as_ref().unwrap_or(&app);
    let mut on_b = EventStream::open(b, payee, &vendor).await;
    let mut on_a = EventStream::open(&app, payee, &vendor).await;

    // Processed on instance A: the phone connected to B hears it, and so does A's own.
    let sent = payment(payee, "150000");
    let published = Instant::now();
    app.state.events.publish(sent.clone()).await;
    on_b.expect_payment(&sent, published).await;
    on_a.expect_payment(&sent, published).await;
    // And the other way round.
    let sent = payment(payee, "20000");
    let published = Instant::now();
    b.state.events.publish(sent.clone()).await;
    on_a.expect_payment(&sent, published).await;
    on_b.expect_payment(&sent, published).await;
    // Exactly once each: no local copy besides the one through the database.
    on_a.expect_quiet().await;
    on_b.expect_quiet().await;

    if backend == Backend::Postgres {
        // The LISTEN connections die (a database restart, a proxy timeout): every stream is
        // told it may have missed events, and delivery resumes once the listener is back.
        use sqlx::Connection;
        let mut db = sqlx::PgConnection::connect(&app.settings.database_url)
            .await
            .unwrap();
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND query LIKE 'LISTEN%'",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(killed.len(), 2, "one listener per instance");
        for stream in [&mut on_a, &mut on_b] {
            let frame = stream.expect(Duration::from_secs(10)).await;
            assert_eq!(frame.event.as_deref(), Some("lagged"), "{frame:?}");
            assert_eq!(frame.json()["reason"], "connection_lost");
        }
        let sent = payment(payee, "7000");
        let published = Instant::now();
        app.state.events.publish(sent.clone()).await;
        on_b.expect_payment(&sent, published).await;
        on_a.expect_payment(&sent, published).await;
    }
    drop((on_a, on_b));
    if let Some(sibling) = sibling {
        sibling.shut_down().await.unwrap();
    }
}

async fn shutting_down_ends_open_streams(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = create_payee(&app, "V1").await;
    let vendor = token_for_payee(&app, Role::Vendor, payee).await;
    let mut phone = EventStream::open(&app, payee, &vendor).await;
    // A graceful shutdown waits for requests in flight; an open stream must not hold it forever.
    tokio::time::timeout(Duration::from_secs(5), app.shut_down())
        .await
        .expect("shutdown finishes with a stream open")
        .unwrap();
    match phone.next(Duration::from_secs(5)).await {
        Next::Ended => {}
        other => panic!("the stream should end, got {other:?}"),
    }
}

async fn a_webhook_processed_on_one_instance_reaches_the_phone_on_another(backend: Backend) {
    use crate::webhooks::{configure, intent, send_standard, transfer, vendor, STANDARD_SECRET};
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V30", "970436", "3344556677").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let payee_id: Uuid = payee["id"].as_str().unwrap().parse().unwrap();
    let phone = token_for_payee(&app, Role::Vendor, payee_id).await;
    let sibling = match backend {
        Backend::Postgres => Some(app.spawn_sibling().await),
        Backend::Sqlite => None,
    };
    let b = sibling.as_ref().unwrap_or(&app);
    let mut on_b = EventStream::open(b, payee_id, &phone).await;
    let fee = intent(&app, &payee, "150000", None).await;
    let reference = fee["reference"].as_str().unwrap();

    let body = transfer(
        "e2e-1",
        "3344556677",
        "in",
        150_000,
        &format!("ND:CT DEN:0815 MBVCB.77.{reference}.CT tu NGUYEN VAN B"),
        chrono::Utc::now(),
    );
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &body).await;
    let processed = Instant::now();
    assert_eq!(status, StatusCode::OK, "{ack}");
    let frame = on_b.expect(WITHIN).await;
    assert!(processed.elapsed() < WITHIN, "{:?}", processed.elapsed());
    assert_eq!(
        frame.event.as_deref(),
        Some("payment_received"),
        "{frame:?}"
    );
    let event = frame.json();
    assert_eq!(event["bank_transaction_id"], ack["transactions"][0]["id"]);
    assert_eq!(event["payment_intent_id"], fee["id"]);
    assert_eq!(event["reference"], reference);
    assert_eq!(event["amount"], "150000");
    assert_eq!(event["status"], "paid");
    // A duplicate delivery moves no money, so it announces nothing.
    assert_eq!(
        send_standard(&app, STANDARD_SECRET, &body).await.0,
        StatusCode::OK
    );
    on_b.expect_quiet().await;

    // Money nobody could match is announced when staff assign it to the payee.
    let stray = transfer(
        "e2e-2",
        "3344556677",
        "in",
        9_000,
        "chuyen tien",
        chrono::Utc::now(),
    );
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &stray).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["matched_as"], "suspense");
    on_b.expect_quiet().await;
    let resolve = format!(
        "/v1/reconciliation/unmatched/{}/resolve",
        ack["transactions"][0]["id"].as_str().unwrap()
    );
    let request = json!({ "payee_id": payee_id, "note": "her customer forgot the code" });
    let (status, resolved) =
        read(app.post_idempotent(&resolve, "e2e-resolve", &request).await).await;
    let processed = Instant::now();
    assert_eq!(status, StatusCode::OK, "{resolved}");
    let frame = on_b.expect(WITHIN).await;
    assert!(processed.elapsed() < WITHIN, "{:?}", processed.elapsed());
    let event = frame.json();
    assert_eq!(event["bank_transaction_id"], ack["transactions"][0]["id"]);
    assert_eq!(event["amount"], "9000");
    assert_eq!(event.get("payment_intent_id"), None, "{event}");
    drop(on_b);
    if let Some(sibling) = sibling {
        sibling.shut_down().await.unwrap();
    }
}
