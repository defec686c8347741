//! Two service instances on one PostgreSQL database, as behind a load balancer: every promise
//! one instance makes holds across both (login throttling, idempotency, live events, intent
//! expiry), and a database that only answers reads (a replica, a demoted primary) is a 503
//! the client may retry, never a 500. PostgreSQL only: SQLite is embedded and serves one
//! instance.

use std::collections::HashSet;
use std::time::Duration;

use market_ledger::domain::user::Role;
use market_ledger::services::auth::Caller;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{
    error_code, pending_intent, read, token_for_payee, Backend, TestApp, PASSWORD,
};
use crate::events::EventStream;
use crate::webhooks::{configure, send_standard, transfer, vendor, STANDARD_SECRET};

/// Declares PostgreSQL-only tests, reported as ignored when TEST_DATABASE_URL was not set at
/// build time (see build.rs).
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[cfg_attr(not(test_database_url), ignore = "TEST_DATABASE_URL is not set")]
            async fn $name() {
                let app = TestApp::spawn(Backend::Postgres).await.expect("PostgreSQL app");
                let sibling = app.spawn_sibling().await;
                implementations::$name(&app, &sibling).await;
                sibling.shut_down().await.unwrap();
            }
        )*
    };
}

on_postgres!(
    login_failures_count_on_every_instance,
    an_idempotency_key_replays_on_the_other_instance_and_posts_once,
    a_payment_processed_on_one_instance_is_announced_on_both,
    copies_of_a_transfer_raced_through_both_instances_post_once,
    expiry_sweeps_on_both_instances_expire_each_intent_once,
    a_read_only_database_answers_503_retryable_and_writes_nothing,
);

mod implementations {
    use super::*;

    pub async fn login_failures_count_on_every_instance(a: &TestApp, b: &TestApp) {
        a.state
            .auth
            .create_user(
                &Caller::system("test"),
                "hung.staff",
                Role::Staff,
                None,
                PASSWORD.into(),
            )
            .await
            .unwrap();
        // Five failures, alternating instances: the limit is five per user, wherever they land.
        for attempt in 0..5 {
            let instance = if attempt % 2 == 0 { a } else { b };
            let (status, _) = instance.login("hung.staff", "guess").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        for instance in [a, b] {
            let (status, refusal) = instance.login("hung.staff", PASSWORD).await;
            assert_eq!(
                (status, error_code(&refusal)),
                (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_LOGIN_ATTEMPTS")
            );
        }
    }

    fn transfer_body(amount: &str) -> Value {
        json!({
            "description": "Bán chè 1kg",
            "postings": [{ "debit": "bank", "credit": "vendor", "amount": amount }],
        })
    }

    pub async fn an_idempotency_key_replays_on_the_other_instance_and_posts_once(
        a: &TestApp,
        b: &TestApp,
    ) {
        a.create_account("bank", "asset", json!({})).await;
        a.create_account("vendor", "liability", json!({})).await;

        // A retry that the load balancer sends to the other instance.
        let body = transfer_body("150000");
        let first = read(
            a.post_idempotent("/v1/transactions", "sent-twice", &body)
                .await,
        )
        .await;
        assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
        let retry = b
            .post_idempotent("/v1/transactions", "sent-twice", &body)
            .await;
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(read(retry).await, first);
        assert_eq!(a.transaction_count().await, 1);

        // The same key sent to both at once, several times: one posting, one answer.
        let body = transfer_body("20000");
        let sends = (0..8).map(|copy| {
            let instance = if copy % 2 == 0 { a } else { b };
            let body = body.clone();
            async move {
                read(
                    instance
                        .post_idempotent("/v1/transactions", "raced", &body)
                        .await,
                )
                .await
            }
        });
        let answers = futures::future::join_all(sends).await;
        let posted: Vec<&Value> = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .map(|(_, answer)| answer)
            .collect();
        for (status, answer) in &answers {
            assert!(
                *status == StatusCode::CREATED
                    || (*status == StatusCode::CONFLICT
                        && error_code(answer) == "IDEMPOTENCY_KEY_IN_PROGRESS"),
                "{status} {answer}"
            );
        }
        assert!(!posted.is_empty(), "{answers:?}");
        assert!(
            posted.iter().all(|answer| answer == &posted[0]),
            "{answers:?}"
        );
        // Whoever was told "in progress" gets the same answer on a retry, anywhere.
        for instance in [a, b] {
            let retry = read(
                instance
                    .post_idempotent("/v1/transactions", "raced", &body)
                    .await,
            )
            .await;
            assert_eq!((&retry.0, &retry.1), (&StatusCode::CREATED, posted[0]));
        }
        assert_eq!(a.transaction_count().await, 2);
        assert_eq!(a.balance("vendor").await, "170000");
        a.assert_verified().await;
    }

    pub async fn a_payment_processed_on_one_instance_is_announced_on_both(
        a: &TestApp,
        b: &TestApp,
    ) {
        let (payee, collection) = vendor(a, "V40", "970436", "5566778899").await;
        configure(a, &collection, "standard", &[STANDARD_SECRET]).await;
        let payee_id: Uuid = payee["id"].as_str().unwrap().parse().unwrap();
        let phone = token_for_payee(a, Role::Vendor, payee_id).await;
        let mut on_a = EventStream::open(a, payee_id, &phone).await;
        let mut on_b = EventStream::open(b, payee_id, &phone).await;

        for (processed_by, id) in [(a, "two-1"), (b, "two-2")] {
            let body = transfer(
                id,
                "5566778899",
                "in",
                40_000,
                "V40 mua che",
                chrono::Utc::now(),
            );
            let (status, ack) = send_standard(processed_by, STANDARD_SECRET, &body).await;
            assert_eq!(status, StatusCode::OK, "{ack}");
            let bank_transaction = &ack["transactions"][0]["id"];
            for stream in [&mut on_a, &mut on_b] {
                let frame = stream.expect(Duration::from_secs(2)).await;
                assert_eq!(
                    frame.event.as_deref(),
                    Some("payment_received"),
                    "{frame:?}"
                );
                assert_eq!(&frame.json()["bank_transaction_id"], bank_transaction);
            }
        }
    }

    /// A bank retries a delivery while the first is still being recorded, and the load
    /// balancer sends the copies to both instances: each instance's group looks for the
    /// provider id before posting, finds neither copy committed, and posts; the group that
    /// writes its record second finds the id taken, and is written again one transfer at a
    /// time, which answers it as a duplicate.
    pub async fn copies_of_a_transfer_raced_through_both_instances_post_once(
        a: &TestApp,
        b: &TestApp,
    ) {
        let (_, collection) = vendor(a, "V42", "970436", "7788990011").await;
        configure(a, &collection, "standard", &[STANDARD_SECRET]).await;
        let before = a.transaction_count().await;
        let mut expected = 0;
        for round in 1..=5 {
            let amount = 10_000 * round;
            expected += amount;
            let body = transfer(
                &format!("raced-{round}"),
                "7788990011",
                "in",
                amount,
                "V42 mua rau",
                chrono::Utc::now(),
            );
            let sends = (0..8).map(|copy| {
                let instance = if copy % 2 == 0 { a } else { b };
                let body = body.clone();
                async move { send_standard(instance, STANDARD_SECRET, &body).await }
            });
            let answers = futures::future::join_all(sends).await;
            let mut fresh = 0;
            for (status, ack) in &answers {
                assert_eq!(*status, StatusCode::OK, "{ack}");
                let recorded = &ack["transactions"][0];
                assert_eq!(recorded["id"], answers[0].1["transactions"][0]["id"]);
                assert_eq!(recorded["matched_as"], "payee", "{ack}");
                if recorded["duplicate"] == false {
                    fresh += 1;
                }
            }
            assert_eq!(fresh, 1, "round {round}: {answers:?}");
        }
        assert_eq!(a.transaction_count().await, before + 5);
        assert_eq!(a.balance("payee:V42").await, expected.to_string());
        a.assert_verified().await;
    }

    pub async fn expiry_sweeps_on_both_instances_expire_each_intent_once(a: &TestApp, b: &TestApp) {
        let payee = vendor(a, "V41", "970436", "6677889900").await.0;
        let payee = payee["id"].as_str().unwrap();
        let mut intents = HashSet::new();
        for _ in 0..12 {
            let intent = pending_intent(a, payee, "10000").await;
            intents.insert(intent["id"].as_str().unwrap().parse::<Uuid>().unwrap());
        }
        // Each instance has its own clock; both move past every intent's expiry.
        for instance in [a, b] {
            instance.state.clock.advance(chrono::Duration::minutes(16));
        }
        // Eight sweeps on each instance at once (the background sweep may join in).
        let sweeps = (0..16).map(|sweep| {
            let payments = if sweep % 2 == 0 {
                a.state.payments.clone()
            } else {
                b.state.payments.clone()
            };
            async move { payments.expire_intents().await.unwrap() }
        });
        let mut expired_by_us = Vec::new();
        for swept in futures::future::join_all(sweeps).await {
            expired_by_us.extend(swept);
        }
        let distinct: HashSet<Uuid> = expired_by_us.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            expired_by_us.len(),
            "an intent was expired twice"
        );
        assert!(distinct.is_subset(&intents));
        for id in &intents {
            let (status, intent) = b.get(&format!("/v1/payment-intents/{id}")).await;
            assert_eq!(
                (status, &intent["status"]),
                (StatusCode::OK, &json!("expired"))
            );
        }
        // Nothing is left for any later sweep.
        assert!(a.state.payments.expire_intents().await.unwrap().is_empty());
        assert!(b.state.payments.expire_intents().await.unwrap().is_empty());
    }

    /// Runs `statement` on the app's database, then ends the service's pooled connections so
    /// the next requests open new ones, which see the change.
    async fn alter_database(app: &TestApp, statement: &str) {
        use sqlx::Connection;
        let url = &app.settings.database_url;
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        // This connection may itself have opened read-only.
        sqlx::query("SET default_transaction_read_only = off")
            .execute(&mut db)
            .await
            .unwrap();
        let name: (String,) = sqlx::query_as("SELECT current_database()")
            .fetch_one(&mut db)
            .await
            .unwrap();
        sqlx::query(&statement.replace("{database}", &name.0))
            .execute(&mut db)
            .await
            .unwrap();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(&mut db)
        .await
        .unwrap();
    }

    pub async fn a_read_only_database_answers_503_retryable_and_writes_nothing(
        a: &TestApp,
        b: &TestApp,
    ) {
        a.create_account("bank", "asset", json!({})).await;
        a.create_account("vendor", "liability", json!({})).await;
        let body = transfer_body("50000");
        // As a replica, or a primary being demoted, would answer.
        alter_database(
            a,
            "ALTER DATABASE {database} SET default_transaction_read_only = on",
        )
        .await;
        for instance in [a, b] {
            // A read first: it may meet a connection the termination ended, and its pool
            // replaces it, so the write below meets the read-only setting itself.
            assert_eq!(instance.get("/v1/accounts").await.0, StatusCode::OK);
            let refused = instance
                .post_idempotent("/v1/transactions", "during-failover", &body)
                .await;
            assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(refused.headers()["retry-after"], "1");
            let (_, answer) = read(refused).await;
            assert_eq!(error_code(&answer), "SERVICE_UNAVAILABLE", "{answer}");
            assert_eq!(answer["error"]["details"]["retryable"], true, "{answer}");
        }
        // Reads still work on a read-only database.
        assert_eq!(b.balance("vendor").await, "0");
        assert_eq!(a.transaction_count().await, 0);

        // Writable again (the new primary): the same request with the same key posts, once.
        alter_database(
            a,
            "ALTER DATABASE {database} RESET default_transaction_read_only",
        )
        .await;
        let (status, posted) = read(
            b.post_idempotent("/v1/transactions", "during-failover", &body)
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{posted}");
        let replay = a
            .post_idempotent("/v1/transactions", "during-failover", &body)
            .await;
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        assert_eq!(a.transaction_count().await, 1);
        assert_eq!(a.balance("vendor").await, "50000");
        a.assert_verified().await;
    }
}
