//! School fee collection end to end: a class's run posted to the ledger, paid by webhook, in
//! part, in cash with receipts, and the class status, statements, fund balances and the
//! ledger's own check agreeing with figures computed here by hand.

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use market_ledger::domain::user::Role;

use crate::common::{error_code, read, token_for_payee, Backend, TestApp};
use crate::webhooks::{configure, send_standard, transfer, STANDARD_SECRET};

crate::on_both_backends!(
    a_class_run_paid_online_in_part_and_in_cash_agrees_with_the_ledger,
    receipt_numbers_have_no_gaps_under_concurrent_cash,
    payments_and_corrections_for_the_same_pupils_at_once_all_succeed,
    a_school_user_sees_only_its_school_and_parents_read_by_revocable_token,
    credit_pays_the_next_run_and_preview_posts_nothing,
    a_roster_imports_all_or_nothing_after_a_dry_run,
    money_staff_take_from_suspense_to_a_pupils_intent_pays_the_pupil,
    a_household_qr_needs_one_bank_account_and_commune_staff,
);

pub(crate) const MEALS_PER_DAY: i64 = 20_000;
pub(crate) const SCHOOL_DAYS: i64 = 20;
const INSURANCE: i64 = 884_520;
pub(crate) const PARENTS_FUND: i64 = 150_000;
const CLUB: i64 = 100_000;

#[derive(Clone)]
pub(crate) struct School {
    pub(crate) id: String,
    account_number: String,
    pub(crate) year: String,
    pub(crate) class: String,
}

pub(crate) async fn ok(app: &TestApp, path: &str, body: &Value, expected: StatusCode) -> Value {
    let (status, answer) = app.post(path, body).await;
    assert_eq!(status, expected, "{path}: {answer}");
    answer
}

/// A school collecting into its own account (with a standard feed), a year and class 3A.
pub(crate) async fn school(app: &TestApp, code: &str, account_number: &str) -> School {
    let payee = ok(
        app,
        "/v1/payees",
        &json!({
            "kind": "school", "code": code, "name": format!("Trường Tiểu học {code}"),
            "collection_account": {
                "bank_bin": "970422", "account_number": account_number,
                "holder_name": "TRUONG TIEU HOC TUC TRANH"
            }
        }),
        StatusCode::CREATED,
    )
    .await;
    let id = payee["id"].as_str().unwrap().to_owned();
    let collection = payee["collection_account"]["id"].as_str().unwrap();
    configure(app, collection, "standard", &[STANDARD_SECRET]).await;
    let year = ok(
        app,
        &format!("/v1/schools/{id}/years"),
        &json!({"name": "2026-2027", "starts_on": "2026-09-05", "ends_on": "2027-05-31"}),
        StatusCode::CREATED,
    )
    .await;
    let year = year["id"].as_str().unwrap().to_owned();
    let class = ok(
        app,
        &format!("/v1/schools/{id}/classes"),
        &json!({"year_id": year, "grade": 3, "name": "3A"}),
        StatusCode::CREATED,
    )
    .await;
    School {
        id,
        account_number: account_number.to_owned(),
        year,
        class: class["id"].as_str().unwrap().to_owned(),
    }
}

pub(crate) async fn pupils(app: &TestApp, school: &School, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 1..=count {
        ids.push(pupil(app, school, n, None).await);
    }
    ids
}

/// Pupil `HS<n>` in class 3A, of the registry household `household` when given.
pub(crate) async fn pupil(
    app: &TestApp,
    school: &School,
    n: usize,
    household: Option<&str>,
) -> String {
    let mut body = json!({
        "code": format!("HS{n:02}"), "full_name": format!("Nguyễn Văn Học Sinh {n}"),
        "class_id": school.class, "joined_on": "2026-09-05",
        "guardian_name": "Nguyễn Thị Phụ Huynh", "guardian_phone": "0912345678"
    });
    if let Some(household) = household {
        body["household_id"] = json!(household);
    }
    let pupil = ok(
        app,
        &format!("/v1/schools/{}/pupils", school.id),
        &body,
        StatusCode::CREATED,
    )
    .await;
    pupil["id"].as_str().unwrap().to_owned()
}

/// A registry household (and its hamlet) with this code.
pub(crate) async fn household(app: &TestApp, code: &str) -> String {
    let (status, _) = app
        .post(
            "/v1/hamlets",
            &json!({"code": "TT", "name": "Xóm Tức Tranh", "valid_from": "2020-01-01"}),
        )
        .await;
    assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT);
    let household = ok(
        app,
        "/v1/households",
        &json!({"code": code, "hamlet_code": "TT", "address": format!("Nhà {code}")}),
        StatusCode::CREATED,
    )
    .await;
    household["id"].as_str().unwrap().to_owned()
}

/// (meals, insurance, parents fund, club) item ids.
pub(crate) async fn items(app: &TestApp, school: &School) -> [String; 4] {
    let item = |name: &str, fund: &str, mandatory: bool, unit: &str, amount: i64| {
        json!({
            "year_id": school.year, "name": name, "fund": fund, "mandatory": mandatory,
            "unit": unit, "grade_amounts": [{"grade": 3, "amount": amount}]
        })
    };
    let path = format!("/v1/schools/{}/fee-items", school.id);
    let mut ids = Vec::new();
    for body in [
        item(
            "Tiền ăn bán trú",
            "school",
            true,
            "school_day",
            MEALS_PER_DAY,
        ),
        item(
            "Bảo hiểm y tế (thu hộ)",
            "pass_through",
            true,
            "year",
            INSURANCE,
        ),
        item(
            "Quỹ ban đại diện cha mẹ học sinh",
            "parents_association",
            true,
            "term",
            PARENTS_FUND,
        ),
        item("Câu lạc bộ tiếng Anh", "school", false, "month", CLUB),
    ] {
        ids.push(
            ok(app, &path, &body, StatusCode::CREATED).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.try_into().unwrap()
}

pub(crate) async fn run(app: &TestApp, school: &School, name: &str, items: &[&String]) -> String {
    let run = ok(
        app,
        &format!("/v1/schools/{}/runs", school.id),
        &json!({
            "year_id": school.year, "name": name, "fee_item_ids": items,
            "due_on": "2026-09-30", "school_days": SCHOOL_DAYS
        }),
        StatusCode::CREATED,
    )
    .await;
    run["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn post_run(app: &TestApp, school: &School, run: &str) -> Value {
    ok(
        app,
        &format!("/v1/schools/{}/runs/{run}/post", school.id),
        &json!({}),
        StatusCode::OK,
    )
    .await
}

/// Pays `amount` into the school's account with the intent's reference in a bank memo.
pub(crate) async fn pay_online(app: &TestApp, school: &School, intent: &str, amount: i64) -> Value {
    let (status, intent) = app.get(&format!("/v1/payment-intents/{intent}")).await;
    assert_eq!(status, StatusCode::OK, "{intent}");
    let memo = format!(
        "MBVCB.123.{}.CT tu 0123 NGUYEN THI PHU HUYNH",
        intent["reference"].as_str().unwrap()
    );
    let body = transfer(
        &Uuid::new_v4().to_string(),
        &school.account_number,
        "in",
        amount,
        &memo,
        Utc::now(),
    );
    let (status, ack) = send_standard(app, STANDARD_SECRET, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    body
}

pub(crate) async fn cash(
    app: &TestApp,
    school_id: &str,
    pupil: &str,
    amount: i64,
    token: &str,
) -> Value {
    let (status, receipt) = read(
        app.post_idempotent_as(
            &format!("/v1/schools/{school_id}/cash-receipts"),
            &Uuid::new_v4().to_string(),
            &json!({"pupil_id": pupil, "amount": amount, "payer_name": "Trần Thị Mẹ"}),
            token,
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    receipt
}

/// A new parent link for the pupil: its id and its token.
pub(crate) async fn parent_link(app: &TestApp, school: &School, pupil: &str) -> Value {
    ok(
        app,
        &format!("/v1/schools/{}/parent-links", school.id),
        &json!({"pupil_id": pupil}),
        StatusCode::CREATED,
    )
    .await
}

/// The run's status for the school's class 3A.
pub(crate) async fn class_status(app: &TestApp, school: &School, run: &str) -> Value {
    get_ok(
        app,
        &format!(
            "/v1/schools/{}/runs/{run}/status?class_id={}",
            school.id, school.class
        ),
    )
    .await
}

/// The pupil's status (paid, partly_paid, unpaid) in a class status.
pub(crate) fn pupil_state(status: &Value, pupil: &str) -> Value {
    status["data"]
        .as_array()
        .expect("pupils")
        .iter()
        .find(|p| p["pupil_id"] == pupil)
        .expect("every pupil")["status"]
        .clone()
}

/// The balance of one fund in the school's balances.
pub(crate) fn fund_balance(balances: &Value, fund: &str) -> i64 {
    balances["funds"]
        .as_array()
        .expect("funds")
        .iter()
        .find(|f| f["fund"] == fund)
        .expect("every fund")["balance"]
        .as_i64()
        .expect("a balance")
}

pub(crate) async fn get_ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn a_class_run_paid_online_in_part_and_in_cash_agrees_with_the_ledger(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THTT", "1900123456").await;
    // Pupils 36 and 37 are siblings of a pupil of a second school collecting into the same
    // bank account; their household pays all three through one QR.
    let family = household(&app, "HTT01").await;
    let siblings = 36..38;
    let mut pupils = Vec::new();
    for n in 0..40 {
        let household = siblings.contains(&n).then_some(family.as_str());
        pupils.push(pupil(&app, &school, n + 1, household).await);
    }
    let [meals, insurance, parents, club] = items(&app, &school).await;
    let enrol = ok(
        &app,
        &format!("/v1/schools/{}/fee-items/{club}/enrolments", school.id),
        &json!({"pupil_ids": pupils[..10]}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(enrol["enrolled"], 10);
    let exemption = |pupil: &String, item: &String, reduction: Value, category: &str| {
        let mut body = json!({"pupil_id": pupil, "fee_item_id": item, "category": category});
        body.as_object_mut()
            .unwrap()
            .extend(reduction.as_object().unwrap().clone());
        body
    };
    let path = format!("/v1/schools/{}/exemptions", school.id);
    for body in [
        exemption(&pupils[0], &meals, json!({"percent": 50}), "Hộ cận nghèo"),
        exemption(&pupils[1], &insurance, json!({"percent": 100}), "Hộ nghèo"),
        exemption(
            &pupils[2],
            &parents,
            json!({"amount": 50_000}),
            "Con thương binh",
        ),
    ] {
        ok(&app, &path, &body, StatusCode::CREATED).await;
    }

    // Hand-computed: every pupil owes meals (20 days), insurance and the parents' fund; the
    // first ten the club too; three have reductions.
    let meals_full = MEALS_PER_DAY * SCHOOL_DAYS;
    let owed = |n: usize| -> (i64, i64, i64, i64) {
        let meals = if n == 0 { meals_full / 2 } else { meals_full };
        let insurance = if n == 1 { 0 } else { INSURANCE };
        let parents = if n == 2 {
            PARENTS_FUND - 50_000
        } else {
            PARENTS_FUND
        };
        let club = if n < 10 { CLUB } else { 0 };
        (meals, insurance, parents, club)
    };
    let total = |n: usize| {
        let (a, b, c, d) = owed(n);
        a + b + c + d
    };
    let run = run(
        &app,
        &school,
        "Tháng 9/2026",
        &[&meals, &insurance, &parents, &club],
    )
    .await;

    let preview = get_ok(
        &app,
        &format!("/v1/schools/{}/runs/{run}/preview", school.id),
    )
    .await;
    let all_owed: i64 = (0..40).map(total).sum();
    assert_eq!(preview["total"], all_owed);
    assert_eq!(preview["pupils"], 40);
    // Fully exempt insurance is no charge: 40 × 3 + 10 club − 1.
    assert_eq!(preview["charges"].as_array().unwrap().len(), 129);
    let before = app.transaction_count().await;
    assert_eq!(
        app.transaction_count().await,
        before,
        "a preview posts nothing"
    );

    let posted = post_run(&app, &school, &run).await;
    assert_eq!(posted["total"], all_owed);
    assert_eq!(posted["charges"], 129);
    let intents: Vec<(String, String)> = posted["intents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["pupil_id"].as_str().unwrap().to_owned(),
                i["intent_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(intents.len(), 40);
    let intent_of = |pupil: &String| {
        intents
            .iter()
            .find(|(p, _)| p == pupil)
            .map(|(_, i)| i.clone())
            .unwrap()
    };
    let after_post = app.transaction_count().await;
    assert_eq!(after_post - before, 40, "one receivable posting per pupil");
    // Posting again changes nothing and answers the same.
    assert_eq!(post_run(&app, &school, &run).await, posted);
    assert_eq!(app.transaction_count().await, after_post);

    // 25 pay in full online (the 25th pays 10.000 đ too much), 5 pay 500.000 đ, 3 pay cash.
    let mut first_payment = None;
    for (n, pupil) in pupils.iter().enumerate().take(25) {
        let extra = if n == 24 { 10_000 } else { 0 };
        let body = pay_online(&app, &school, &intent_of(pupil), total(n) + extra).await;
        first_payment.get_or_insert(body);
    }
    for pupil in &pupils[25..30] {
        pay_online(&app, &school, &intent_of(pupil), 500_000).await;
    }
    let school_token = token_for_payee(&app, Role::School, &school.id).await;
    let mut receipts = Vec::new();
    for (n, pupil) in pupils.iter().enumerate().take(33).skip(30) {
        receipts.push(cash(&app, &school.id, pupil, total(n), &school_token).await);
    }
    let numbers: Vec<i64> = receipts
        .iter()
        .map(|r| r["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3]);

    // The second school: the siblings' brother, owing the mandatory items of its own run,
    // posted after the first school's.
    let second = crate::schools::school(&app, "THCS", &school.account_number).await;
    let brother = pupil(&app, &second, 1, Some(&family)).await;
    let [meals2, insurance2, parents2, _] = items(&app, &second).await;
    let run2 = crate::schools::run(
        &app,
        &second,
        "Tháng 9/2026",
        &[&meals2, &insurance2, &parents2],
    )
    .await;
    post_run(&app, &second, &run2).await;
    let brother_owes = meals_full + INSURANCE + PARENTS_FUND;
    let request = household_payment_request(&app, &family).await;
    let family_owes = total(36) + total(37) + brother_owes;
    assert_eq!(request["amount"], family_owes, "{request}");
    assert_eq!(
        request["payee_id"],
        school.id.as_str(),
        "the first charge's school"
    );
    assert_eq!(request["lines"].as_array().unwrap().len(), 3, "{request}");
    let link = parent_link(&app, &school, &pupils[36]).await;
    let parents_page = format!("/v1/parent-links/{}", link["token"].as_str().unwrap());
    let page = get_ok(&app, &parents_page).await;
    assert_eq!(page["household_payment"]["amount"], family_owes, "{page}");
    assert_eq!(
        page["household_payment"]["qr_payload"],
        request["qr_payload"]
    );
    // The household pays in two transfers: the first pays pupil 36 in full and 400.000 đ of
    // pupil 37's meals (same due day, all mandatory, posted together: in posting order); the
    // second the rest of pupil 37, then the brother (his run was posted later), and 5.000 đ
    // more, the credit of pupil 36 (the household's first pupil at the school the QR names).
    let intent = request["intent_id"].as_str().unwrap();
    let household_payment = pay_online(&app, &school, intent, total(36) + meals_full).await;
    let page = get_ok(&app, &parents_page).await;
    assert_eq!(
        page["household_payment"]["remaining"],
        family_owes - total(36) - meals_full
    );
    let brother_statement = format!("/v1/schools/{}/pupils/{brother}/statement", second.id);
    assert_eq!(
        get_ok(&app, &brother_statement).await["balance"],
        brother_owes
    );
    pay_online(
        &app,
        &school,
        intent,
        family_owes - total(36) - meals_full + 5_000,
    )
    .await;
    assert_eq!(
        get_ok(&app, &parents_page).await["household_payment"],
        Value::Null
    );
    // Each school sees its own lines only: the brother's school his payment, the first school
    // its pupils'; a school user of the first school cannot read the brother.
    let brother_seen = get_ok(&app, &brother_statement).await;
    assert_eq!(brother_seen["balance"], 0);
    assert_eq!(brother_seen["payments"].as_array().unwrap().len(), 1);
    assert_eq!(brother_seen["payments"][0]["amount"], brother_owes);
    let (status, refused) = app.get_as(&brother_statement, &school_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    let second_balances = get_ok(&app, &format!("/v1/schools/{}/balances", second.id)).await;
    assert_eq!(second_balances["uncollected"], 0);
    assert_eq!(second_balances["funds"][0]["balance"], meals_full);
    let (status, refused) = app
        .post(
            &format!("/v1/households/{family}/payment-request"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(error_code(&refused), "HOUSEHOLD_NOTHING_OWING");

    // Replaying delivered webhooks changes nothing.
    let count = app.transaction_count().await;
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &household_payment).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["duplicate"], true, "{ack}");
    assert_eq!(app.transaction_count().await, count);
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &first_payment.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["transactions"][0]["duplicate"], true, "{ack}");
    assert_eq!(app.transaction_count().await, count);

    // Class status: 30 paid (two through the household QR), 5 partly, 5 unpaid.
    let status = class_status(&app, &school, &run).await;
    assert_eq!(status["pupils"], 40);
    assert_eq!(status["paid"], 30);
    assert_eq!(status["partly_paid"], 5);
    assert_eq!(status["unpaid"], 5);
    let full_payers = || (0..25).chain(30..33).chain(siblings.clone());
    let paid_total: i64 = full_payers().map(total).sum::<i64>() + 5 * 500_000;
    assert_eq!(status["charged_total"], all_owed);
    assert_eq!(status["paid_total"], paid_total);
    assert_eq!(status["owing_total"], all_owed - paid_total);
    let expected_percent = format!("{:.1}", (paid_total as f64) * 100.0 / (all_owed as f64));
    assert_eq!(status["paid_percent"], expected_percent.as_str());
    let state_of = |n: usize| pupil_state(&status, &pupils[n]);
    assert_eq!(state_of(0), "paid");
    assert_eq!(state_of(27), "partly_paid");
    assert_eq!(state_of(39), "unpaid");

    // Fund balances by the split rule: a partial 500.000 đ pays meals (400.000) first, then
    // 100.000 of insurance (both mandatory, meals posted first); the club (optional) last.
    let school_fund: i64 =
        full_payers().map(|n| owed(n).0 + owed(n).3).sum::<i64>() + 5 * meals_full;
    let pass_through: i64 = full_payers().map(|n| owed(n).1).sum::<i64>() + 5 * 100_000;
    let parents_fund: i64 = full_payers().map(|n| owed(n).2).sum();
    let cash_on_hand: i64 = (30..33).map(total).sum();
    let balances = get_ok(&app, &format!("/v1/schools/{}/balances", school.id)).await;
    let fund = |name: &str| fund_balance(&balances, name);
    assert_eq!(fund("school"), school_fund);
    assert_eq!(fund("pass_through"), pass_through);
    assert_eq!(fund("parents_association"), parents_fund);
    assert_eq!(balances["cash_on_hand"], cash_on_hand);
    assert_eq!(balances["uncollected"], all_owed - paid_total);
    assert_eq!(
        school_fund + pass_through + parents_fund,
        paid_total,
        "every đồng paid against a charge is in exactly one fund"
    );
    // The bank (both schools') holds what came in online: the funds' online part, the
    // brother's and the two overpayments.
    let bank = app
        .balance(&format!("bank:970422:{}", school.account_number))
        .await;
    assert_eq!(
        bank.parse::<i64>().unwrap(),
        paid_total - cash_on_hand + brother_owes + 10_000 + 5_000
    );

    // Statements.
    let statement = |n: usize| {
        let path = format!("/v1/schools/{}/pupils/{}/statement", school.id, pupils[n]);
        let app = &app;
        async move { get_ok(app, &path).await }
    };
    let first = statement(0).await;
    assert_eq!(first["charged_total"], total(0));
    assert_eq!(first["balance"], 0);
    assert_eq!(first["exemptions"][0]["category"], "Hộ cận nghèo");
    assert_eq!(first["exemptions"][0]["percent"], 50);
    assert_eq!(first["charges"].as_array().unwrap().len(), 4);
    assert_eq!(first["payments"][0]["method"], "online");
    let overpaid = statement(24).await;
    assert_eq!(overpaid["balance"], -10_000);
    assert_eq!(overpaid["credit"], 10_000);
    let partly = statement(27).await;
    assert_eq!(partly["balance"], total(27) - 500_000);
    assert_eq!(partly["paid_total"], 500_000);
    let by_cash = statement(31).await;
    assert_eq!(by_cash["payments"][0]["method"], "cash");
    assert_eq!(by_cash["balance"], 0);
    let unpaid = statement(39).await;
    assert_eq!(unpaid["balance"], total(39));
    let family_credit = statement(36).await;
    assert_eq!(family_credit["balance"], -5_000);
    assert_eq!(family_credit["credit"], 5_000);
    let family_second = statement(37).await;
    assert_eq!(family_second["balance"], 0);
    assert_eq!(family_second["paid_total"], total(37));
    assert_eq!(
        family_second["payments"].as_array().unwrap().len(),
        2,
        "{family_second}"
    );
    app.assert_verified().await;

    // Cancelling the third receipt keeps its number, shows it cancelled, and takes the cash
    // and what it paid back.
    let receipt = &receipts[2];
    let path = format!(
        "/v1/schools/{}/cash-receipts/{}/cancel",
        school.id,
        receipt["id"].as_str().unwrap()
    );
    let cancelled = ok(
        &app,
        &path,
        &json!({"reason": "Ghi nhầm học sinh"}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["cancelled"], true);
    assert_eq!(cancelled["number"], 3);
    let count = app.transaction_count().await;
    assert_eq!(
        ok(
            &app,
            &path,
            &json!({"reason": "Ghi nhầm học sinh"}),
            StatusCode::OK
        )
        .await["number"],
        3
    );
    assert_eq!(
        app.transaction_count().await,
        count,
        "a second cancel changes nothing"
    );
    let page = app
        .client
        .get(app.url(&format!(
            "/v1/schools/{}/cash-receipts/{}/receipt.html",
            school.id,
            receipt["id"].as_str().unwrap()
        )))
        .bearer_auth(&school_token)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("BIÊN LAI THU TIỀN"), "{html}");
    assert!(html.contains("Số: 3"), "{html}");
    assert!(html.contains("ĐÃ HỦY"), "{html}");
    assert!(
        html.contains(&format!("{} đồng", group(total(32)))),
        "{html}"
    );
    let after_cancel = get_ok(&app, &format!("/v1/schools/{}/balances", school.id)).await;
    assert_eq!(after_cancel["cash_on_hand"], cash_on_hand - total(32));
    assert_eq!(
        after_cancel["uncollected"],
        all_owed - paid_total + total(32)
    );
    assert_eq!(statement(32).await["balance"], total(32));
    let status = get_ok(
        &app,
        &format!("/v1/schools/{}/runs/{run}/status", school.id),
    )
    .await;
    assert_eq!(status["paid"], 29);
    assert_eq!(status["unpaid"], 6);
    app.assert_verified().await;
}

/// 1250000 as 1.250.000.
fn group(amount: i64) -> String {
    let digits = amount.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

async fn receipt_numbers_have_no_gaps_under_concurrent_cash(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THKC", "1900654321").await;
    let pupils = pupils(&app, &school, 4).await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..20i64 {
        let app = app.clone();
        let (school_id, pupil) = (school.id.clone(), pupils[n as usize % 4].clone());
        tasks.push(tokio::spawn(async move {
            let receipt = cash(&app, &school_id, &pupil, 10_000 + n, &app.admin).await;
            receipt["number"].as_i64().unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=20).collect::<Vec<i64>>());
    let balances = get_ok(&app, &format!("/v1/schools/{}/balances", school.id)).await;
    assert_eq!(
        balances["cash_on_hand"],
        (0..20).map(|n| 10_000 + n).sum::<i64>()
    );
    // Nothing was owed: it is all the pupils' credit.
    assert_eq!(balances["uncollected"], 0);
    app.assert_verified().await;
    // A retried request with the same key gives the same receipt, not a 21st.
    let key = Uuid::new_v4().to_string();
    let body = json!({"pupil_id": pupils[0], "amount": 5_000, "payer_name": "Lê Văn Bố"});
    let path = format!("/v1/schools/{}/cash-receipts", school.id);
    let (_, first) = read(app.post_idempotent(&path, &key, &body).await).await;
    let (status, again) = read(app.post_idempotent(&path, &key, &body).await).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(first, again);
    assert_eq!(first["number"], 21);
}

/// A new QR for everything the household owes at the schools sharing its bank account.
pub(crate) async fn household_payment_request(app: &TestApp, household: &str) -> Value {
    ok(
        app,
        &format!("/v1/households/{household}/payment-request"),
        &json!({}),
        StatusCode::CREATED,
    )
    .await
}

/// A signed webhook of one incoming transfer into the school's account, answered 200.
async fn send_transfer(app: &TestApp, account_number: &str, memo: &str, amount: i64) {
    let id = Uuid::new_v4().to_string();
    let body = transfer(&id, account_number, "in", amount, memo, Utc::now());
    let (status, ack) = send_standard(app, STANDARD_SECRET, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
}

/// The reference a bank memo carries for the intent with this id.
async fn reference_of(app: &TestApp, intent_id: &Value) -> String {
    let path = format!("/v1/payment-intents/{}", intent_id.as_str().unwrap());
    get_ok(app, &path).await["reference"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Parents paying pupils' own QRs and a household QR by bank while the desk takes cash for
/// the same pupils and the accountant adjusts their charges: the webhook path, the household
/// split, the cash desk and the correction lock the same pupils' QR codes, accounts and the
/// school's turn (the desk, the split and the correction replace the QR codes the bank's memos
/// name), and every request must still succeed, with the money where the ledger says it is.
/// Without the QR codes locked before the turn, most runs of this end in deadlocks on
/// PostgreSQL, answered 503.
async fn payments_and_corrections_for_the_same_pupils_at_once_all_succeed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    const PUPILS: usize = 6;
    const ROUNDS: usize = 5;
    const AMOUNT: i64 = 50_000;
    const ADJUSTMENT: i64 = 1_000;
    const FOR_THE_HOUSEHOLD: i64 = 10_000;
    let school = school(&app, "THDT", "1900765432").await;
    // Pupils 1 and 2 are siblings, paid for through their household's QR too.
    let family = household(&app, "HDT01").await;
    let mut pupils = Vec::new();
    for n in 1..=PUPILS {
        let household = (n <= 2).then_some(family.as_str());
        pupils.push(pupil(&app, &school, n, household).await);
    }
    let [meals, _, parents, _] = items(&app, &school).await;
    let run = run(&app, &school, "Tháng 9/2026", &[&meals, &parents]).await;
    post_run(&app, &school, &run).await;
    let request = household_payment_request(&app, &family).await;
    let household_reference = reference_of(&app, &request["intent_id"]).await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for round in 0..ROUNDS {
        for pupil in &pupils {
            let (desk, school_id, on) = (app.clone(), school.id.clone(), pupil.clone());
            tasks.push(tokio::spawn(async move {
                cash(&desk, &school_id, &on, AMOUNT, &desk.admin).await;
            }));
            let office = app.clone();
            let path = format!("/v1/schools/{}/adjustments", school.id);
            let body = json!({"run_id": run, "pupil_id": pupil, "fee_item_id": meals,
                "amount": ADJUSTMENT, "reason": "Thêm bữa ăn"});
            tasks.push(tokio::spawn(async move {
                let key = Uuid::new_v4().to_string();
                let (status, answer) = read(office.post_idempotent(&path, &key, &body).await).await;
                assert_eq!(status, StatusCode::CREATED, "{answer}");
            }));
            let (parent, school, run, on) =
                (app.clone(), school.clone(), run.clone(), pupil.clone());
            tasks.push(tokio::spawn(async move {
                // The QR the parent's page shows now: the desk and the adjustments replace it.
                let intent = crate::school_corrections::intent_of(&parent, &school, &run, &on)
                    .await
                    .expect("the pupil still owes, so the run has a QR for the pupil");
                let reference = reference_of(&parent, &json!(intent)).await;
                let memo = format!("MBVCB.{round}.{reference}.CT tu 0123 NGUYEN THI PHU HUYNH");
                send_transfer(&parent, &school.account_number, &memo, AMOUNT).await;
            }));
        }
        let (bank, account) = (app.clone(), school.account_number.clone());
        let memo = format!("MBVCB.{round}.{household_reference}.CT tu 0456 HO GIA DINH");
        tasks.push(tokio::spawn(async move {
            send_transfer(&bank, &account, &memo, FOR_THE_HOUSEHOLD).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let balances = get_ok(&app, &format!("/v1/schools/{}/balances", school.id)).await;
    assert_eq!(balances["cash_on_hand"], AMOUNT * (PUPILS * ROUNDS) as i64);
    // Every pupil still owes something, so nothing became credit: each pupil's balance is
    // what was charged less what was paid, the household's money split between the siblings.
    let owed = MEALS_PER_DAY * SCHOOL_DAYS + PARENTS_FUND + ADJUSTMENT * ROUNDS as i64;
    let paid = 2 * AMOUNT * ROUNDS as i64;
    let mut siblings_owe = 0;
    for (n, pupil) in pupils.iter().enumerate() {
        let statement = get_ok(
            &app,
            &format!("/v1/schools/{}/pupils/{pupil}/statement", school.id),
        )
        .await;
        assert_eq!(statement["credit"], 0, "{statement}");
        let balance = statement["balance"].as_i64().unwrap();
        if n < 2 {
            siblings_owe += balance;
        } else {
            assert_eq!(balance, owed - paid, "{statement}");
        }
    }
    assert_eq!(
        siblings_owe,
        2 * (owed - paid) - FOR_THE_HOUSEHOLD * ROUNDS as i64
    );
    app.assert_verified().await;
}

async fn a_school_user_sees_only_its_school_and_parents_read_by_revocable_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mine = school(&app, "THA", "1900000001").await;
    let other = school(&app, "THB", "1900000002").await;
    let pupils = pupils(&app, &mine, 1).await;
    let token = token_for_payee(&app, Role::School, &mine.id).await;
    let (status, _) = app
        .get_as(&format!("/v1/schools/{}/classes", mine.id), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .get_as(&format!("/v1/schools/{}/classes", other.id), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "SCHOOL_NOT_FOUND");
    // Another school's pupil through one's own school id is not found either.
    let theirs = crate::schools::pupils(&app, &other, 1).await;
    let (status, _) = app
        .get_as(
            &format!("/v1/schools/{}/pupils/{}", mine.id, theirs[0]),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let vendor_token = app.token_for(Role::Vendor).await;
    let (status, _) = app
        .get_as(&format!("/v1/schools/{}/classes", mine.id), &vendor_token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let auditor = app.token_for(Role::Auditor).await;
    let (status, _) = app
        .get_as(&format!("/v1/schools/{}/balances", mine.id), &auditor)
        .await;
    assert_eq!(status, StatusCode::OK);

    // A bad request is a 422 with a Vietnamese sentence.
    let (status, body) = app
        .post(
            &format!("/v1/schools/{}/exemptions", mine.id),
            &json!({"pupil_id": pupils[0], "fee_item_id": Uuid::new_v4(), "percent": 150, "category": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("percent"));

    let [meals, ..] = items(&app, &mine).await;
    let run = run(&app, &mine, "Tháng 9/2026", &[&meals]).await;
    post_run(&app, &mine, &run).await;
    let link = parent_link(&app, &mine, &pupils[0]).await;
    let token_text = link["token"].as_str().unwrap();
    assert_eq!(token_text.len(), 64, "256 random bits");
    let response = app
        .client
        .get(app.url(&format!("/v1/parent-links/{token_text}")))
        .send()
        .await
        .unwrap();
    let (status, view) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["owing_total"], MEALS_PER_DAY * SCHOOL_DAYS);
    assert_eq!(view["open_charges"][0]["fee_item_name"], "Tiền ăn bán trú");
    let (status, _) = app
        .post(
            &format!(
                "/v1/schools/{}/parent-links/{}/revoke",
                mine.id,
                link["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let response = app
        .client
        .get(app.url(&format!("/v1/parent-links/{token_text}")))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "PARENT_LINK_NOT_FOUND");
}

async fn credit_pays_the_next_run_and_preview_posts_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THC", "1900000003").await;
    let pupils = pupils(&app, &school, 1).await;
    let [meals, _, parents, _] = items(&app, &school).await;
    // Cash before anything is owed is credit.
    let school_token = token_for_payee(&app, Role::School, &school.id).await;
    cash(&app, &school.id, &pupils[0], 500_000, &school_token).await;
    let count = app.transaction_count().await;
    let first = run(&app, &school, "Tháng 9/2026", &[&meals, &parents]).await;
    get_ok(
        &app,
        &format!("/v1/schools/{}/runs/{first}/preview", school.id),
    )
    .await;
    assert_eq!(app.transaction_count().await, count);
    let posted = post_run(&app, &school, &first).await;
    // 550.000 owed, 500.000 credit: meals (400.000) then 100.000 of the parents' fund; the QR
    // asks for the 50.000 left.
    assert_eq!(posted["total"], MEALS_PER_DAY * SCHOOL_DAYS + PARENTS_FUND);
    let intent = posted["intents"][0]["intent_id"].as_str().unwrap();
    let (_, intent) = app.get(&format!("/v1/payment-intents/{intent}")).await;
    assert_eq!(intent["amount"], "50000");
    let statement = get_ok(
        &app,
        &format!("/v1/schools/{}/pupils/{}/statement", school.id, pupils[0]),
    )
    .await;
    assert_eq!(statement["balance"], 50_000);
    assert_eq!(statement["credit"], 0);
    let balances = get_ok(&app, &format!("/v1/schools/{}/balances", school.id)).await;
    assert_eq!(balances["uncollected"], 50_000);
    app.assert_verified().await;
    // The cash entry and the run's posting are the school's records: the ledger alone does not
    // reverse them.
    let (_, posted) = app.get("/v1/transactions?limit=10").await;
    let posted = posted["data"].as_array().unwrap();
    assert_eq!(
        posted.len(),
        3,
        "cash, the run's charges, the credit used: {posted:?}"
    );
    for transaction in posted {
        app.assert_reversal_refused(transaction["id"].as_str().unwrap())
            .await;
    }
    // Moving the pupil keeps the class history.
    let class_b = ok(
        &app,
        &format!("/v1/schools/{}/classes", school.id),
        &json!({"year_id": school.year, "grade": 3, "name": "3B"}),
        StatusCode::CREATED,
    )
    .await;
    let moved = ok(
        &app,
        &format!("/v1/schools/{}/pupils/{}/move", school.id, pupils[0]),
        &json!({"class_id": class_b["id"], "on": "2026-10-15"}),
        StatusCode::OK,
    )
    .await;
    let classes = moved["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(classes[0]["class_name"], "3A");
    assert_eq!(classes[0]["until_on"], "2026-10-15");
    assert_eq!(classes[1]["class_name"], "3B");
}

async fn import(app: &TestApp, school: &School, file: &str, dry_run: bool) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!(
            "/v1/schools/{}/roster/import?year_id={}&dry_run={dry_run}",
            school.id, school.year
        )))
        .bearer_auth(&app.admin)
        .header("Content-Type", "text/csv")
        .body(file.as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn a_roster_imports_all_or_nothing_after_a_dry_run(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THD", "1900000004").await;
    ok(
        &app,
        &format!("/v1/schools/{}/classes", school.id),
        &json!({"year_id": school.year, "grade": 4, "name": "4A"}),
        StatusCode::CREATED,
    )
    .await;
    let bad = "\u{feff}Lớp;Mã học sinh;Họ và tên;Họ tên phụ huynh\n\
               3A;HS01;Nguyễn Văn An;Nguyễn Thị Bình\n\
               5C;HS02;Lê Thị Chi;Lê Văn Dũng\n\
               3A;HS 03;Trần Văn Em;Trần Thị Gấm\n";
    let (status, report) = import(&app, &school, bad, true).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let lines: Vec<(i64, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(lines, vec![(3, "class"), (4, "pupil_code")]);
    assert_eq!(report["applied"], false);
    let (status, refused) = import(&app, &school, bad, false).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(error_code(&refused), "IMPORT_INVALID");
    assert_eq!(
        refused["error"]["details"]["errors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let good = "class,pupil_code,full_name,guardian_name,guardian_phone,joined_on\n\
                3A,HS01,Nguyễn Văn An,Nguyễn Thị Bình,0912345678,2026-09-05\n\
                4A,HS02,Lê Thị Chi,Lê Văn Dũng,,05/09/2026\n";
    let (status, dry) = import(&app, &school, good, true).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        (dry["pupils_created"].as_i64(), dry["applied"].as_bool()),
        (Some(2), Some(false))
    );
    // The dry run wrote nothing: the same counts again, and applying creates both.
    assert_eq!(
        import(&app, &school, good, true).await.1["pupils_created"],
        2
    );
    let (status, applied) = import(&app, &school, good, false).await;
    assert_eq!(status, StatusCode::OK, "{applied}");
    assert_eq!(
        (
            applied["pupils_created"].as_i64(),
            applied["applied"].as_bool()
        ),
        (Some(2), Some(true))
    );
    // HS01 moves to 4A from 1 October (its 3A membership is closed, not rewritten); HS02 is
    // unchanged; HS03, new and without a date, is in 3A from the year's first day.
    let moved = "class,pupil_code,full_name,guardian_name,joined_on\n\
                 4A,HS01,Nguyễn Văn An,Nguyễn Thị Bình,2026-10-01\n\
                 4A,HS02,Lê Thị Chi,Lê Văn Dũng,\n\
                 3A,HS03,Trần Văn Em,Trần Thị Gấm,\n";
    let (_, again) = import(&app, &school, moved, false).await;
    assert_eq!(
        (
            again["pupils_moved"].as_i64(),
            again["unchanged"].as_i64(),
            again["pupils_created"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let listed = get_ok(&app, &format!("/v1/schools/{}/pupils", school.id)).await;
    let classes = |code: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == code)
            .map(|p| p["classes"].clone())
            .unwrap()
    };
    assert_eq!(classes("HS03")[0]["from_on"], "2026-09-05");
    assert_eq!(classes("HS01")[0]["until_on"], "2026-10-01");
    assert_eq!(classes("HS01")[1]["class_name"], "4A");
}

async fn money_staff_take_from_suspense_to_a_pupils_intent_pays_the_pupil(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THE", "1900000005").await;
    let pupils = pupils(&app, &school, 1).await;
    let [meals, ..] = items(&app, &school).await;
    let run = run(&app, &school, "Tháng 9/2026", &[&meals]).await;
    let posted = post_run(&app, &school, &run).await;
    let owed = MEALS_PER_DAY * SCHOOL_DAYS;
    // The parent forgot the reference: the money waits in suspense.
    let body = transfer(
        &Uuid::new_v4().to_string(),
        &school.account_number,
        "in",
        owed,
        "tien an con Nguyen Van Hoc Sinh",
        Utc::now(),
    );
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let bank_transaction = ack["transactions"][0]["id"].as_str().unwrap().to_owned();
    let (status, resolved) = read(
        app.post_idempotent(
            &format!("/v1/reconciliation/unmatched/{bank_transaction}/resolve"),
            &Uuid::new_v4().to_string(),
            &json!({"payment_intent_id": posted["intents"][0]["intent_id"], "note": "Phụ huynh gọi điện xác nhận"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    let statement = get_ok(
        &app,
        &format!("/v1/schools/{}/pupils/{}/statement", school.id, pupils[0]),
    )
    .await;
    assert_eq!(statement["balance"], 0);
    assert_eq!(statement["charges"][0]["paid"], owed);
    let balances = get_ok(&app, &format!("/v1/schools/{}/balances", school.id)).await;
    assert_eq!(balances["uncollected"], 0);
    app.assert_verified().await;
}

async fn a_household_qr_needs_one_bank_account_and_commune_staff(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let family = household(&app, "HTT02").await;
    let path = format!("/v1/households/{family}/payment-request");
    let (status, refused) = app.post(&path, &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(error_code(&refused), "HOUSEHOLD_NOTHING_OWING");
    let mut schools = Vec::new();
    for (code, account) in [("THA", "1900111111"), ("THB", "1900222222")] {
        let school = school(&app, code, account).await;
        pupil(&app, &school, 1, Some(&family)).await;
        let [meals, ..] = items(&app, &school).await;
        let run = run(&app, &school, "Tháng 9/2026", &[&meals]).await;
        post_run(&app, &school, &run).await;
        schools.push(school);
    }
    let (status, refused) = app.post(&path, &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(error_code(&refused), "HOUSEHOLD_SCHOOLS_COLLECT_APART");
    let school_token = token_for_payee(&app, Role::School, &schools[0].id).await;
    let (status, _) = app.post_as(&path, &json!({}), &school_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unknown = Uuid::new_v4();
    let (status, refused) = app
        .post(
            &format!("/v1/households/{unknown}/payment-request"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    assert_eq!(error_code(&refused), "HOUSEHOLD_NOT_FOUND");
}
