//! Corrections of posted school runs (reversal of one pupil and of the whole run, adjustments
//! up and down), refunds of credit, each replayed with its Idempotency-Key; the pupil's QR kept
//! asking for what is owed (after a household payment too); household parent links; and a run
//! a VietQR cannot carry. Figures are computed here by hand and checked against the status,
//! the statements, the balances and the ledger's own verification.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use market_ledger::domain::user::Role;

use crate::common::{error_code, read, token_for_payee, Backend, TestApp};
use crate::schools::{
    cash, get_ok, household, items, ok, pay_online, post_run, pupil, run, school, School,
    MEALS_PER_DAY, PARENTS_FUND, SCHOOL_DAYS,
};

crate::on_both_backends!(
    reversals_adjustments_and_refunds_agree_with_the_ledger,
    a_household_payment_closes_or_renews_the_pupils_own_qr,
    household_links_show_the_schools_own_pupils_until_revoked,
    a_run_no_vietqr_can_carry_is_refused_and_nothing_is_posted,
);

const MEALS: i64 = MEALS_PER_DAY * SCHOOL_DAYS;
/// Every pupil's run: meals (20 school days) then the parents' fund.
const OWED: i64 = MEALS + PARENTS_FUND;

/// Posts with a key and answers (status, body, replayed).
async fn keyed(app: &TestApp, path: &str, key: &str, body: &Value) -> (StatusCode, Value, bool) {
    let response = app.post_idempotent(path, key, body).await;
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let (status, body) = read(response).await;
    (status, body, replayed)
}

/// Posts with a fresh key, expects `expected`, then sends it again with the same key and
/// checks that the answer is replayed unchanged and nothing more was posted.
async fn once(app: &TestApp, path: &str, body: &Value, expected: StatusCode) -> Value {
    let key = Uuid::new_v4().to_string();
    let (status, first, replayed) = keyed(app, path, &key, body).await;
    assert_eq!(status, expected, "{path}: {first}");
    assert!(!replayed);
    let transactions = app.transaction_count().await;
    let (status, again, replayed) = keyed(app, path, &key, body).await;
    assert_eq!((status, &again, replayed), (expected, &first, true));
    assert_eq!(
        app.transaction_count().await,
        transactions,
        "a replay posts nothing"
    );
    first
}

/// The run's QR in force for the pupil (posting a posted run again answers them).
pub(crate) async fn intent_of(
    app: &TestApp,
    school: &School,
    run: &str,
    pupil: &str,
) -> Option<String> {
    let posted = post_run(app, school, run).await;
    posted["intents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pupil_id"] == pupil)
        .map(|i| i["intent_id"].as_str().unwrap().to_owned())
}

async fn intent(app: &TestApp, id: &str) -> Value {
    get_ok(app, &format!("/v1/payment-intents/{id}")).await
}

fn amount_of(intent: &Value) -> i64 {
    intent["amount"].as_str().unwrap().parse().unwrap()
}

async fn reversals_adjustments_and_refunds_agree_with_the_ledger(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THDC", "1900765432").await;
    let mut pupils = Vec::new();
    for n in 1..=4 {
        pupils.push(pupil(&app, &school, n, None).await);
    }
    let [meals, _, parents, _] = items(&app, &school).await;
    let run = run(&app, &school, "Tháng 9/2026", &[&meals, &parents]).await;
    let path = |rest: &str| format!("/v1/schools/{}/{rest}", school.id);
    let reverse = path(&format!("runs/{run}/reverse"));

    // Not posted yet: nothing to correct.
    let (status, refused, _) = keyed(&app, &reverse, "early", &json!({"reason": "Nhầm đợt"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(error_code(&refused), "RUN_NOT_POSTED");

    post_run(&app, &school, &run).await;
    let mut qr = Vec::new();
    for p in &pupils {
        qr.push(intent_of(&app, &school, &run, p).await.unwrap());
    }
    // Pupil 1 pays in full, pupil 2 300.000 đ online (all on meals, posted first), pupil 3
    // 450.000 đ in cash (meals, then 50.000 đ of the parents' fund), pupil 4 nothing.
    pay_online(&app, &school, &qr[0], OWED).await;
    pay_online(&app, &school, &qr[1], 300_000).await;
    let school_token = token_for_payee(&app, Role::School, &school.id).await;
    cash(&app, &school.id, &pupils[2], 450_000, &school_token).await;

    // Pupil 2 was charged by mistake: reversed, the 300.000 đ paid become credit.
    let reversal = once(
        &app,
        &reverse,
        &json!({"pupil_id": pupils[1], "reason": "Ghi nhầm học sinh"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(reversal["pupils_reversed"], 1, "{reversal}");
    assert_eq!(reversal["charges_reversed"], 2);
    assert_eq!(reversal["amount_reversed"], OWED);
    assert_eq!(reversal["credited"], 300_000);
    assert_eq!(reversal["already_reversed"], false);
    assert_eq!(intent(&app, &qr[1]).await["status"], "cancelled");
    // Again with another key: nothing left to reverse, nothing posted.
    let transactions = app.transaction_count().await;
    let again = once(
        &app,
        &reverse,
        &json!({"pupil_id": pupils[1], "reason": "Ghi nhầm học sinh"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["already_reversed"], true, "{again}");
    assert_eq!(again["charges_reversed"], 0);
    assert_eq!(app.transaction_count().await, transactions);
    let statement = |pupil: &str| path(&format!("pupils/{pupil}/statement"));
    let second = get_ok(&app, &statement(&pupils[1])).await;
    assert_eq!(second["credit"], 300_000, "{second}");
    assert_eq!(second["balance"], -300_000);
    assert_eq!(second["charged_total"], 0);
    assert!(second["charges"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["reversed"] == true && c["amount"] == 0 && c["paid"] == 0));
    assert_eq!(second["corrections"][0]["kind"], "pupil_reversal");
    assert_eq!(second["corrections"][0]["reason"], "Ghi nhầm học sinh");
    let status = get_ok(&app, &path(&format!("runs/{run}/status"))).await;
    assert_eq!(status["data"][1]["status"], "reversed", "{status}");
    assert_eq!(
        (&status["paid"], &status["partly_paid"], &status["unpaid"]),
        (&json!(1), &json!(1), &json!(1))
    );
    assert_eq!(status["reversed"], 1);
    assert_eq!(status["charged_total"], 3 * OWED);
    assert_eq!(status["paid_total"], OWED + 450_000);

    // Pupil 1 was charged two school days too many, after paying: 40.000 đ become credit.
    let adjust = path("adjustments");
    let down = once(
        &app,
        &adjust,
        &json!({"run_id": run, "pupil_id": pupils[0], "fee_item_id": meals,
            "amount": -2 * MEALS_PER_DAY, "reason": "Nghỉ ốm 2 ngày"}),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(down["charge_amount"], MEALS - 40_000, "{down}");
    assert_eq!(down["run_owing"], 0);
    assert_eq!(down["intent_id"], Value::Null);
    let first = get_ok(&app, &statement(&pupils[0])).await;
    assert_eq!(first["credit"], 40_000, "{first}");
    assert_eq!(first["balance"], -40_000);
    assert_eq!(first["corrections"][0]["amount"], -40_000);
    assert_eq!(first["corrections"][0]["kind"], "adjustment");
    // Pupil 4 ate one day more: the QR asks the new remainder, the old one is closed.
    let up = once(
        &app,
        &adjust,
        &json!({"run_id": run, "pupil_id": pupils[3], "fee_item_id": meals,
            "amount": MEALS_PER_DAY, "reason": "Thêm 1 ngày bán trú"}),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(up["run_owing"], OWED + MEALS_PER_DAY, "{up}");
    let new_qr = up["intent_id"].as_str().unwrap();
    assert_ne!(new_qr, qr[3]);
    assert_eq!(intent(&app, &qr[3]).await["status"], "cancelled");
    assert_eq!(amount_of(&intent(&app, new_qr).await), OWED + MEALS_PER_DAY);
    assert_eq!(
        intent_of(&app, &school, &run, &pupils[3]).await.as_deref(),
        Some(new_qr)
    );
    for (body, code) in [
        (
            json!({"run_id": run, "pupil_id": pupils[1], "fee_item_id": meals,
            "amount": 1_000, "reason": "x"}),
            "CHARGE_REVERSED",
        ),
        (
            json!({"run_id": run, "pupil_id": pupils[3], "fee_item_id": meals,
            "amount": -MEALS - MEALS_PER_DAY, "reason": "x"}),
            "ADJUSTMENT_OUT_OF_RANGE",
        ),
        (
            json!({"run_id": run, "pupil_id": pupils[3], "fee_item_id": meals,
            "amount": 0, "reason": "x"}),
            "ADJUSTMENT_OUT_OF_RANGE",
        ),
        (
            json!({"run_id": run, "pupil_id": pupils[3], "fee_item_id": meals,
            "amount": i64::MIN, "reason": "x"}),
            "ADJUSTMENT_OUT_OF_RANGE",
        ),
    ] {
        let (_, refused, _) = keyed(&app, &adjust, &Uuid::new_v4().to_string(), &body).await;
        assert_eq!(error_code(&refused), code, "{refused}");
    }

    // Pupil 2's credit is paid back: 200.000 đ in cash, the rest by bank transfer.
    let refund = path("refunds");
    let cash_back = once(
        &app,
        &refund,
        &json!({"pupil_id": pupils[1], "amount": 200_000, "method": "cash",
            "reason": "Trả lại phụ huynh tại văn phòng"}),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(cash_back["credit_left"], 100_000, "{cash_back}");
    let (status, refused, _) = keyed(
        &app,
        &refund,
        &Uuid::new_v4().to_string(),
        &json!({"pupil_id": pupils[1], "amount": 100_001, "method": "bank_transfer",
            "reason": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(error_code(&refused), "REFUND_EXCEEDS_CREDIT");
    assert_eq!(refused["error"]["details"]["credit"], 100_000);
    once(
        &app,
        &refund,
        &json!({"pupil_id": pupils[1], "amount": 100_000, "method": "bank_transfer",
            "reason": "Chuyển khoản FT26334123456"}),
        StatusCode::CREATED,
    )
    .await;
    let second = get_ok(&app, &statement(&pupils[1])).await;
    assert_eq!(
        (&second["credit"], &second["balance"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(second["corrections"].as_array().unwrap().len(), 3);

    // The whole run: pupils 1, 3 and 4 are reversed now (pupil 2 already was).
    let whole = once(
        &app,
        &reverse,
        &json!({"reason": "Đợt thu lập sai"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(whole["pupils_reversed"], 3, "{whole}");
    let first_paid = OWED - 40_000;
    assert_eq!(
        whole["amount_reversed"],
        first_paid + OWED + OWED + MEALS_PER_DAY
    );
    assert_eq!(whole["credited"], first_paid + 450_000);
    assert!(whole["run"]["reversed_at"].is_string());
    let again = once(
        &app,
        &reverse,
        &json!({"reason": "Lần nữa"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["already_reversed"], true, "{again}");
    let status = get_ok(&app, &path(&format!("runs/{run}/status"))).await;
    assert_eq!(status["run_state"], "reversed", "{status}");
    assert_eq!(status["reversed"], 4);
    assert_eq!(
        (&status["charged_total"], &status["owing_total"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(intent(&app, new_qr).await["status"], "cancelled");

    // What each pupil paid is now their credit; the funds hold nothing, uncollected is 0, the
    // desk holds pupil 3's cash less the cash refund.
    for (pupil, credit) in [(0, OWED), (1, 0), (2, 450_000), (3, 0)] {
        let seen = get_ok(&app, &statement(&pupils[pupil])).await;
        assert_eq!(seen["credit"], credit, "pupil {pupil}: {seen}");
        assert_eq!(seen["balance"], -credit);
    }
    let balances = get_ok(&app, &path("balances")).await;
    assert!(balances["funds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["balance"] == 0));
    assert_eq!(balances["uncollected"], 0, "{balances}");
    assert_eq!(balances["cash_on_hand"], 450_000 - 200_000);

    // Who did what, and why, is in the audit trail.
    let (_, trail) = app.get("/v1/audit?action=school_run.reverse").await;
    assert_eq!(trail["data"].as_array().unwrap().len(), 2, "{trail}");
    let (_, trail) = app.get("/v1/audit?action=school_charge.adjust").await;
    assert_eq!(trail["data"].as_array().unwrap().len(), 2, "{trail}");
    let (_, trail) = app.get("/v1/audit?action=school_credit.refund").await;
    assert_eq!(trail["data"].as_array().unwrap().len(), 2, "{trail}");
    app.assert_verified().await;
}

async fn a_household_payment_closes_or_renews_the_pupils_own_qr(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THHH", "1900333444").await;
    let family = household(&app, "HHH01").await;
    let older = pupil(&app, &school, 1, Some(&family)).await;
    let younger = pupil(&app, &school, 2, Some(&family)).await;
    let [meals, _, parents, _] = items(&app, &school).await;
    let run = run(&app, &school, "Tháng 9/2026", &[&meals, &parents]).await;
    post_run(&app, &school, &run).await;
    let older_qr = intent_of(&app, &school, &run, &older).await.unwrap();
    let younger_qr = intent_of(&app, &school, &run, &younger).await.unwrap();
    let request = crate::schools::household_payment_request(&app, &family).await;
    // The first transfer pays the older pupil and 100.000 đ of the younger's.
    let household_qr = request["intent_id"].as_str().unwrap();
    pay_online(&app, &school, household_qr, OWED + 100_000).await;
    assert_eq!(intent(&app, &older_qr).await["status"], "cancelled");
    assert_eq!(
        intent_of(&app, &school, &run, &older).await.as_deref(),
        Some(older_qr.as_str()),
        "a closed QR stays the run's"
    );
    assert_eq!(intent(&app, &younger_qr).await["status"], "cancelled");
    let renewed = intent_of(&app, &school, &run, &younger).await.unwrap();
    assert_ne!(renewed, younger_qr);
    let renewed_intent = intent(&app, &renewed).await;
    assert_eq!(amount_of(&renewed_intent), OWED - 100_000);
    assert_eq!(renewed_intent["status"], "pending");
    // The rest on the pupil's own new QR settles the pupil.
    pay_online(&app, &school, &renewed, OWED - 100_000).await;
    let status = get_ok(
        &app,
        &format!("/v1/schools/{}/runs/{run}/status", school.id),
    )
    .await;
    assert_eq!(status["paid"], 2, "{status}");
    // Money still sent to a closed QR is the pupil's credit, not lost.
    pay_online(&app, &school, &older_qr, 10_000).await;
    let statement = get_ok(
        &app,
        &format!("/v1/schools/{}/pupils/{older}/statement", school.id),
    )
    .await;
    assert_eq!(statement["credit"], 10_000, "{statement}");
    app.assert_verified().await;
}

async fn household_links_show_the_schools_own_pupils_until_revoked(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let family = household(&app, "HHL01").await;
    let mine = school(&app, "THLA", "1900555666").await;
    let other = school(&app, "THLB", "1900555777").await;
    pupil(&app, &mine, 1, Some(&family)).await;
    pupil(&app, &mine, 2, Some(&family)).await;
    pupil(&app, &mine, 3, None).await;
    pupil(&app, &other, 1, Some(&family)).await;
    for school in [&mine, &other] {
        let [meals, ..] = items(&app, school).await;
        let run = run(&app, school, "Tháng 9/2026", &[&meals]).await;
        post_run(&app, school, &run).await;
    }
    let links = format!("/v1/schools/{}/household-links", mine.id);
    let link = ok(
        &app,
        &links,
        &json!({"household_id": family}),
        StatusCode::CREATED,
    )
    .await;
    let page = format!("/v1/household-links/{}", link["token"].as_str().unwrap());
    let view = get_ok(&app, &page).await;
    assert_eq!(view["school_name"], "Trường Tiểu học THLA", "{view}");
    assert_eq!(
        view["pupils"].as_array().unwrap().len(),
        2,
        "only this school's"
    );
    assert_eq!(view["owing_total"], 2 * MEALS);
    // A household none of the school's pupils names is not the school's to show.
    let stranger = household(&app, "HHL02").await;
    let (status, refused) = app.post(&links, &json!({"household_id": stranger})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    assert_eq!(error_code(&refused), "HOUSEHOLD_NOT_FOUND");
    // Another school's user cannot make or revoke this school's links.
    let other_token = token_for_payee(&app, Role::School, &other.id).await;
    let revoke = format!(
        "/v1/schools/{}/household-links/{}/revoke",
        mine.id,
        link["id"].as_str().unwrap()
    );
    let (status, _) = app.post_as(&revoke, &json!({}), &other_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post(&revoke, &json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = app.get(&page).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert_eq!(error_code(&gone), "PARENT_LINK_NOT_FOUND");
}

async fn a_run_no_vietqr_can_carry_is_refused_and_nothing_is_posted(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THQR", "1900888999").await;
    pupil(&app, &school, 1, None).await;
    // 1.000.000.000.000 đ a day for 20 days: 14 digits, one more than a VietQR holds.
    let item = ok(
        &app,
        &format!("/v1/schools/{}/fee-items", school.id),
        &json!({"year_id": school.year, "name": "Khoản nhập nhầm", "fund": "school",
            "mandatory": true, "unit": "school_day",
            "grade_amounts": [{"grade": 3, "amount": 1_000_000_000_000_i64}]}),
        StatusCode::CREATED,
    )
    .await;
    let item = item["id"].as_str().unwrap().to_owned();
    let run = run(&app, &school, "Tháng 9/2026", &[&item]).await;
    let transactions = app.transaction_count().await;
    let (status, refused) = app
        .post(
            &format!("/v1/schools/{}/runs/{run}/post", school.id),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(error_code(&refused), "AMOUNT_BEYOND_QR_LIMIT");
    assert_eq!(
        refused["error"]["details"]["max_amount"],
        9_999_999_999_999_i64
    );
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("HS01"));
    assert_eq!(app.transaction_count().await, transactions);
    let preview = get_ok(
        &app,
        &format!("/v1/schools/{}/runs/{run}/preview", school.id),
    )
    .await;
    assert_eq!(preview["run"]["posted_at"], Value::Null, "{preview}");
    // The school API speaks English like the rest of the API.
    let (status, refused) = app
        .post(
            &format!("/v1/schools/{}/classes", school.id),
            &json!({"year_id": school.year, "grade": 13, "name": "13A"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["error"]["message"], "grade must be from 1 to 12",
        "{refused}"
    );
}
