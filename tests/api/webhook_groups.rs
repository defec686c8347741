//! Webhook deliveries recorded in groups (one database transaction for many): a burst of
//! concurrent deliveries, with copies of one transfer in flight together, intents paid in
//! parts, an intent paid twice, money for a payee's code, payouts and money for suspense,
//! ends in exactly the ledger, intent states and answers one-by-one processing gives; so does
//! a burst of payments to school pupils' QRs and a household QR. And a feed secret changed on one instance takes effect on another within the cache's lifetime.

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use market_ledger::services::bank_feed::FEED_CACHE_LIFETIME;

use crate::common::{Backend, TestApp};
use crate::schools::{
    class_status, fund_balance, get_ok, household, items, ok, post_run, pupil, pupil_state, run,
    school, MEALS_PER_DAY, SCHOOL_DAYS,
};
use crate::webhooks::{
    configure, deliver, intent, record, send_standard, standard_headers, transfer, vendor,
    STANDARD_SECRET,
};

crate::on_both_backends!(
    a_burst_of_deliveries_posts_each_exactly_as_alone,
    a_burst_of_plain_deliveries_keeps_copies_and_running_balances_apart,
    a_burst_of_pupil_payments_settles_each_exactly_as_alone,
    a_changed_secret_reaches_another_instance_within_the_cache_lifetime,
);

const ACCOUNT: &str = "5566778899";

/// The headers and exact bytes of one signed delivery.
type Signed = (Vec<(&'static str, String)>, Vec<u8>);

/// One signed delivery of `body`, with its own message id.
fn signed(body: &Value) -> Signed {
    let bytes = serde_json::to_vec(body).expect("serializable");
    let id = format!("msg_{}", Uuid::new_v4().simple());
    (
        standard_headers(STANDARD_SECRET, &id, Utc::now().timestamp(), &bytes),
        bytes,
    )
}

fn incoming(amount: i64, memo: &str) -> Value {
    let id = Uuid::new_v4().to_string();
    transfer(&id, ACCOUNT, "in", amount, memo, Utc::now())
}

async fn status_of(app: &TestApp, intent: &Value) -> String {
    let (_, now) = app
        .get(&format!(
            "/v1/payment-intents/{}",
            intent["id"].as_str().expect("intent id")
        ))
        .await;
    now["status"].as_str().expect("status").to_owned()
}

async fn a_burst_of_deliveries_posts_each_exactly_as_alone(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V020", "970436", ACCOUNT).await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    // Enough on the payee's account that the payout in the burst never falls short.
    record(&app, ACCOUNT, "in", 10_000, "V020 tien hang").await;
    let in_parts = intent(&app, &payee, "100000", None).await;
    let copied = intent(&app, &payee, "50000", None).await;
    let twice = intent(&app, &payee, "30000", None).await;
    let reference = |intent: &Value| intent["reference"].as_str().expect("ref").to_owned();

    let mut bodies = vec![
        (
            "part",
            incoming(60_000, &format!("TT {}", reference(&in_parts))),
        ),
        (
            "part",
            incoming(40_000, &format!("TT {}", reference(&in_parts))),
        ),
        ("twice", incoming(30_000, &reference(&twice))),
        ("twice", incoming(30_000, &reference(&twice))),
        (
            "payout",
            transfer(
                &Uuid::new_v4().to_string(),
                ACCOUNT,
                "out",
                10_000,
                "chi tra V020",
                Utc::now(),
            ),
        ),
    ];
    bodies.extend((0..20).map(|i| ("code", incoming(2_000, &format!("V020 mua rau {i}")))));
    bodies.extend((0..20).map(|i| ("suspense", incoming(1_000, &format!("chuyen tien {i}")))));
    let mut deliveries: Vec<(&str, Signed)> = bodies
        .iter()
        .map(|(kind, body)| (*kind, signed(body)))
        .collect();
    // Five copies of one delivery, in flight together with the rest.
    let copy = signed(&incoming(50_000, &reference(&copied)));
    deliveries.extend((0..5).map(|_| ("copy", copy.clone())));

    let before = app.transaction_count().await;
    let answers = futures::future::join_all(
        deliveries
            .iter()
            .map(|(_, (headers, bytes))| deliver(&app, "standard", headers, bytes)),
    )
    .await;

    let mut fresh_copies = Vec::new();
    let mut twice_flags = Vec::new();
    for ((kind, _), (status, ack)) in deliveries.iter().zip(&answers) {
        assert_eq!(*status, StatusCode::OK, "{kind}: {ack}");
        let item = &ack["transactions"][0];
        let (status, stored) = app
            .get(&format!(
                "/v1/bank-transactions/{}",
                item["id"].as_str().expect("id")
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{stored}");
        assert_eq!(item["matched_as"], stored["matched_as"], "{kind}: {ack}");
        match *kind {
            "part" => assert_eq!(item["matched_as"], "intent", "{ack}"),
            "twice" => twice_flags.push(stored["flags"].clone()),
            "payout" | "code" => assert_eq!(item["matched_as"], "payee", "{ack}"),
            "suspense" => assert_eq!(item["matched_as"], "suspense", "{ack}"),
            "copy" => {
                assert_eq!(
                    item["id"],
                    answers.last().expect("copies").1["transactions"][0]["id"]
                );
                assert_eq!(item["matched_as"], "intent", "{ack}");
                if item["duplicate"] == false {
                    fresh_copies.push(item["id"].clone());
                }
            }
            other => unreachable!("{other}"),
        }
        if *kind != "copy" {
            assert_eq!(item["duplicate"], false, "{kind}: {ack}");
        }
    }
    assert_eq!(fresh_copies.len(), 1, "exactly one copy is recorded");
    twice_flags.sort_by_key(|flags| flags.to_string());
    assert_eq!(
        twice_flags,
        vec![
            serde_json::json!(["intent_already_paid"]),
            serde_json::json!([])
        ],
        "the first payment pays the intent, the second waits in suspense"
    );

    // 2 parts, 2 payments of one intent, a payout, 20 by code, 20 to suspense, 1 copy.
    assert_eq!(app.transaction_count().await, before + 46);
    assert_eq!(
        app.balance("payee:V020").await,
        (10_000 + 100_000 + 30_000 - 10_000 + 40_000 + 50_000).to_string()
    );
    assert_eq!(
        app.balance("suspense:bank-feed").await,
        (30_000 + 20_000).to_string()
    );
    assert_eq!(
        app.balance(&format!("bank:970436:{ACCOUNT}")).await,
        (10_000 + 100_000 + 60_000 - 10_000 + 40_000 + 20_000 + 50_000).to_string()
    );
    for paid in [&in_parts, &copied, &twice] {
        assert_eq!(status_of(&app, paid).await, "paid");
    }

    // A later replay of the copied delivery changes nothing.
    let (status, ack) = deliver(&app, "standard", &copy.0, &copy.1).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["duplicate"], true, "{ack}");
    assert_eq!(ack["transactions"][0]["id"], fresh_copies[0]);
    assert_eq!(app.transaction_count().await, before + 46);
    app.assert_verified().await;
}

/// Plain incoming transfers (a payee's code, or nothing, in the memo) are recorded in runs
/// with one set of statements for the whole run: copies of one transfer in the same run are
/// still recorded once, and each transfer's running balance is compared with the ledger as it
/// stood right after that transfer, not after the run.
async fn a_burst_of_plain_deliveries_keeps_copies_and_running_balances_apart(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, collection) = vendor(&app, "V022", "970436", ACCOUNT).await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let before = app.transaction_count().await;

    // The bank reports a balance of 1 after each: every one is a discrepancy.
    let with_balance = |amount: i64, memo: &str| {
        let mut body = incoming(amount, memo);
        body["data"]["running_balance"] = serde_json::json!(1);
        body
    };
    let mut deliveries: Vec<(&str, Signed)> = (1..=12)
        .map(|i| {
            (
                "code",
                signed(&with_balance(1_000 * i, &format!("V022 rau {i}"))),
            )
        })
        .collect();
    deliveries.extend((0..8).map(|i| ("suspense", signed(&incoming(500, &format!("ck {i}"))))));
    let copy = signed(&incoming(7_000, "V022 tien hang"));
    deliveries.extend((0..6).map(|_| ("copy", copy.clone())));
    let answers = futures::future::join_all(
        deliveries
            .iter()
            .map(|(_, (headers, bytes))| deliver(&app, "standard", headers, bytes)),
    )
    .await;

    let mut copy_ids = Vec::new();
    let mut fresh_copies = 0;
    let mut balance_checked = Vec::new();
    for ((kind, _), (status, ack)) in deliveries.iter().zip(&answers) {
        assert_eq!(*status, StatusCode::OK, "{kind}: {ack}");
        let item = &ack["transactions"][0];
        match *kind {
            "code" => {
                assert_eq!(item["matched_as"], "payee", "{ack}");
                balance_checked.push(item["id"].clone());
            }
            "suspense" => assert_eq!(item["matched_as"], "suspense", "{ack}"),
            "copy" => {
                assert_eq!(item["matched_as"], "payee", "{ack}");
                copy_ids.push(item["id"].clone());
                if item["duplicate"] == false {
                    fresh_copies += 1;
                }
            }
            other => unreachable!("{other}"),
        }
        if *kind != "copy" {
            assert_eq!(item["duplicate"], false, "{kind}: {ack}");
        }
    }
    assert_eq!(fresh_copies, 1, "exactly one copy is recorded");
    assert!(copy_ids.windows(2).all(|w| w[0] == w[1]), "{copy_ids:?}");
    assert_eq!(app.transaction_count().await, before + 12 + 8 + 1);
    let bank_total: i64 = (1..=12).map(|i| 1_000 * i).sum::<i64>() + 8 * 500 + 7_000;
    assert_eq!(
        app.balance(&format!("bank:970436:{ACCOUNT}")).await,
        bank_total.to_string()
    );

    // One discrepancy per transfer with a balance, each showing the ledger right after it:
    // all different, the ledger only growing, and each at least that transfer's amount.
    let (status, page) = app.get("/v1/reconciliation/discrepancies?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let found = page["data"].as_array().expect("discrepancies");
    assert_eq!(found.len(), balance_checked.len(), "{page}");
    let mut ledger: Vec<i64> = found
        .iter()
        .map(|d| {
            assert!(balance_checked.contains(&d["bank_transaction_id"]), "{d}");
            assert_eq!(d["bank_balance"], "1", "{d}");
            d["ledger_balance"]
                .as_str()
                .expect("ledger balance")
                .parse()
                .expect("an amount")
        })
        .collect();
    ledger.sort_unstable();
    ledger.dedup();
    assert_eq!(ledger.len(), balance_checked.len(), "{ledger:?}");
    assert!(
        ledger.iter().all(|l| *l >= 1_000 && *l <= bank_total),
        "{ledger:?}"
    );
    app.assert_verified().await;
}

/// Payments to pupils' QRs in flight together are recorded in runs (each pupil's charges
/// read and settled with the others'): a pupil paid twice, in part, too much, copies of one
/// transfer and a household QR in between all end as each would alone.
async fn a_burst_of_pupil_payments_settles_each_exactly_as_alone(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let account = "1900333333";
    let school = school(&app, "THG", account).await;
    let family = household(&app, "HG01").await;
    let mut pupils = Vec::new();
    for n in 1..=8 {
        pupils.push(pupil(&app, &school, n, (n >= 7).then_some(family.as_str())).await);
    }
    let [meals, insurance, parents, _club] = items(&app, &school).await;
    let run = run(
        &app,
        &school,
        "Tháng 9/2026",
        &[&meals, &insurance, &parents],
    )
    .await;
    let posted = post_run(&app, &school, &run).await;
    let owes: i64 = posted["total"].as_i64().expect("total") / 8;
    let intent_of = |pupil: &String| {
        posted["intents"]
            .as_array()
            .expect("intents")
            .iter()
            .find(|i| i["pupil_id"] == pupil.as_str())
            .expect("an intent per pupil")["intent_id"]
            .as_str()
            .expect("intent id")
            .to_owned()
    };
    let mut references = Vec::new();
    for pupil in &pupils {
        let (_, intent) = app
            .get(&format!("/v1/payment-intents/{}", intent_of(pupil)))
            .await;
        references.push(intent["reference"].as_str().expect("reference").to_owned());
    }
    let request = ok(
        &app,
        &format!("/v1/households/{family}/payment-request"),
        &serde_json::json!({}),
        StatusCode::CREATED,
    )
    .await;
    let (_, household_intent) = app
        .get(&format!(
            "/v1/payment-intents/{}",
            request["intent_id"].as_str().expect("intent id")
        ))
        .await;
    let pay = |amount: i64, reference: &str| {
        signed(&transfer(
            &Uuid::new_v4().to_string(),
            account,
            "in",
            amount,
            &format!("MBVCB.1.{reference}.CT tu 0123 PHU HUYNH"),
            Utc::now(),
        ))
    };
    let partial = 500_000;
    let extra = 20_000;
    let mut deliveries = vec![
        pay(owes, &references[0]),
        pay(owes, &references[1]),
        pay(owes, &references[1]),
        pay(partial, &references[2]),
        pay(owes + extra, &references[3]),
        pay(
            2 * owes,
            household_intent["reference"].as_str().expect("reference"),
        ),
        pay(owes, &references[5]),
    ];
    let copy = pay(owes, &references[4]);
    deliveries.extend((0..3).map(|_| copy.clone()));
    let before = app.transaction_count().await;
    let answers = futures::future::join_all(
        deliveries
            .iter()
            .map(|(headers, bytes)| deliver(&app, "standard", headers, bytes)),
    )
    .await;
    let mut fresh = 0;
    for (status, ack) in &answers {
        assert_eq!(*status, StatusCode::OK, "{ack}");
        assert_eq!(ack["transactions"][0]["matched_as"], "intent", "{ack}");
        if ack["transactions"][0]["duplicate"] == false {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 8, "every transfer once, the copies once");
    // Each transfer's bank posting, and the school's settlements: the household's (always
    // written alone), and one for the pupils of each run of transfers written together; so
    // at most one per transfer, and at least two for the pupils' QRs (a run never names the
    // pupil paid twice twice). The range cannot show that a run shared its settlement; the
    // statements and fund balances below show that each pupil got exactly their money.
    let posted = app.transaction_count().await - before;
    assert!((8 + 3..=2 * 8).contains(&posted), "{posted} transactions");

    let status = class_status(&app, &school, &run).await;
    let states: Vec<_> = pupils.iter().map(|p| pupil_state(&status, p)).collect();
    assert_eq!(
        states,
        [
            "paid",
            "paid",
            "partly_paid",
            "paid",
            "paid",
            "paid",
            "paid",
            "paid"
        ],
        "{status}"
    );
    assert_eq!(status["paid_total"], 7 * owes + partial, "{status}");
    // Paid twice: the second payment is the pupil's credit; paid too much: the excess.
    for (n, balance) in [(1, -owes), (2, owes - partial), (3, -extra), (0, 0)] {
        let statement = get_ok(
            &app,
            &format!("/v1/schools/{}/pupils/{}/statement", school.id, pupils[n]),
        )
        .await;
        assert_eq!(statement["balance"], balance, "pupil {n}: {statement}");
    }
    // The split rule on a partial payment: meals first.
    let balances = get_ok(&app, &format!("/v1/schools/{}/balances", school.id)).await;
    let fund = |name: &str| fund_balance(&balances, name);
    let meals_full = MEALS_PER_DAY * SCHOOL_DAYS;
    assert!(partial > meals_full);
    assert_eq!(fund("school"), 8 * meals_full);
    assert_eq!(
        fund("school") + fund("pass_through") + fund("parents_association"),
        7 * owes + partial
    );
    assert_eq!(balances["uncollected"], owes - partial, "{balances}");
    assert_eq!(
        app.balance(&format!("bank:970422:{account}")).await,
        (8 * owes + partial + extra).to_string()
    );
    app.assert_verified().await;
}

async fn a_changed_secret_reaches_another_instance_within_the_cache_lifetime(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, collection) = vendor(&app, "V021", "970436", ACCOUNT).await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let other = app.spawn_sibling().await;
    // The other instance reads (and keeps) the first secret.
    let (status, ack) = send_standard(&other, STANDARD_SECRET, &incoming(1_000, "V021")).await;
    assert_eq!(status, StatusCode::OK, "{ack}");

    let rotated = "whsec_bmV3LWNvbW11bmUtZmVlZC1rZXktMDEyMzQ1Njc4OWFiY2RlZg==";
    configure(&app, &collection, "standard", &[rotated]).await;
    let changed_at = std::time::Instant::now();
    // This instance uses the new secret at once.
    let (status, ack) = send_standard(&app, rotated, &incoming(1_000, "V021")).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    // The other within the cache's lifetime (and a margin for a slow machine).
    let bound = FEED_CACHE_LIFETIME + std::time::Duration::from_secs(1);
    loop {
        let (status, ack) = send_standard(&other, rotated, &incoming(1_000, "V021")).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{ack}");
        assert!(
            changed_at.elapsed() < bound,
            "the other instance still refuses the new secret after {bound:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // And the retired secret is refused there from then on.
    let (status, ack) = send_standard(&other, STANDARD_SECRET, &incoming(1_000, "V021")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{ack}");
    other.shut_down().await.expect("sibling stops");
    app.assert_verified().await;
}
