//! The adoption statistics over a small commune built through the API: a registry import,
//! residents' bank accounts, a vendor on a payOS feed and signed payments from those accounts.

use chrono::{DateTime, Utc};
use market_ledger::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{error_code, read, Backend, TestApp};
use crate::imports::{excel_csv, import};
use crate::webhooks::{configure, payos_signed, vendor};

crate::on_both_backends!(
    bad_queries_are_refused_naming_the_parameter,
    raw_figures_are_for_admins_and_every_read_is_logged,
    a_small_commune_counts_as_computed_by_hand,
);

const ADOPTION: &str = "/v1/statistics/adoption";
const ACCESS_LOG: &str = "/v1/audit/personal-data-access";

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().into()
}

async fn access_log(app: &TestApp) -> Vec<Value> {
    let (status, page) = app.get(&format!("{ACCESS_LOG}?limit=500")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn bad_queries_are_refused_naming_the_parameter(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let base = "indicator=observed_residents&from=2026-01&to=2026-03";
    for (query, parameter) in [
        ("indicator=bogus".to_owned(), "indicator"),
        (format!("{base}&by=street"), "by"),
        (format!("{base}&period=week"), "period"),
        (format!("{base}&flow=sent"), "flow"),
        (format!("{base}&suppression=none"), "suppression"),
        ("indicator=survey&from=2026-13".to_owned(), "from"),
        ("indicator=survey&from=2026-01&to=March".to_owned(), "to"),
    ] {
        let (status, body) = app.get(&format!("{ADOPTION}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(
            error_code(&body),
            "STATISTICS_QUERY_INVALID",
            "{query}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(parameter), "{query}: {message}");
    }
    let (status, body) = app
        .get(&format!(
            "{ADOPTION}?indicator=survey&from=2026-03&to=2026-01"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "STATISTICS_PERIOD_INVALID");
    let (status, body) = app
        .get(&format!(
            "{ADOPTION}?indicator=survey&from=2000-01&to=2026-01"
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "more than 120 months: {body}"
    );
    assert_eq!(error_code(&body), "STATISTICS_PERIOD_INVALID");
    for (indicator, by) in [("vendors", "gender"), ("observed_households", "age_band")] {
        let (status, body) = app
            .get(&format!("{ADOPTION}?indicator={indicator}&by={by}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            error_code(&body),
            "STATISTICS_BREAKDOWN_UNSUPPORTED",
            "{body}"
        );
    }
    assert!(
        access_log(&app).await.is_empty(),
        "refused queries read nothing"
    );
}

async fn raw_figures_are_for_admins_and_every_read_is_logged(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let staff = app.token_for(Role::Staff).await;
    let auditor = app.token_for(Role::Auditor).await;
    let query = format!("{ADOPTION}?indicator=observed_residents&by=hamlet");
    for token in [&staff, &auditor] {
        let (status, report) = app.get_as(&query, token).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["suppression"], "applied");
        let (status, body) = app.get_as(&format!("{query}&suppression=off"), token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(error_code(&body), "FORBIDDEN");
    }
    assert!(
        access_log(&app).await.is_empty(),
        "refused reads are not logged"
    );
    for role in [Role::Vendor, Role::School] {
        let token = app.token_for(role).await;
        let (status, body) = app.get_as(&query, &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {body}");
        let (status, _) = app.get_as(ACCESS_LOG, &token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
    }

    let (status, raw) = app.get(&format!("{query}&suppression=off")).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_eq!(raw["suppression"], "off");
    let log = access_log(&app).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0]["actor"].as_str().unwrap().starts_with("admin-"));
    assert_eq!(log[0]["subject"], "observed_residents");
    assert_eq!(log[0]["what"], "adoption statistics without suppression");

    let (status, page) = app.get_as(ACCESS_LOG, &auditor).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"], Value::Array(log));
    let (status, body) = app.get_as(ACCESS_LOG, &staff).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

// --- A small commune ---

fn payos_sample() -> Value {
    let samples: Value =
        serde_json::from_str(include_str!("../fixtures/webhooks.json")).expect("fixture is JSON");
    samples["payos"][0].clone()
}

/// A signed payOS transfer into the vendor's account from `bin`/`number`, booked at `when`
/// (Vietnam time, `YYYY-MM-DD HH:MM:SS`).
async fn pay(app: &TestApp, key: &str, reference: &str, number: &str, when: &str) {
    let mut payment = payos_sample()["body"].clone();
    payment["data"]["reference"] = json!(reference);
    payment["data"]["description"] = json!(format!("CK {reference}"));
    payment["data"]["amount"] = json!(25000);
    payment["data"]["transactionDateTime"] = json!(when);
    payment["data"]["counterAccountBankId"] = json!("970415");
    payment["data"]["counterAccountNumber"] = json!(number);
    payment["data"]["counterAccountName"] = json!("NGUYEN VAN A");
    let response = app
        .client
        .post(app.url("/v1/webhooks/payos"))
        .header("Content-Type", "application/json")
        .body(payos_signed(payment, key))
        .send()
        .await
        .expect("request sent");
    let (status, ack) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
}

/// 13 residents: Khe Cốc has 7 adults and a child of 11, Tà Bán 5 adults; all consent.
fn commune_file() -> Vec<u8> {
    let mut lines = vec![
        "hamlet_code,hamlet_name,household_code,resident_code,full_name,birth_year,gender,consent,consent_on"
            .to_owned(),
    ];
    for (code, name, household, born, gender) in [
        ("K1", "Nguyễn Văn An", "KC-1", 1980, "Nam"),
        ("K2", "Trần Thị Bình", "KC-1", 1982, "Nữ"),
        ("K3", "Lê Văn Cường", "KC-2", 1975, "Nam"),
        ("K4", "Phạm Thị Dung", "KC-2", 1990, "Nữ"),
        ("K5", "Hoàng Văn Em", "KC-3", 2000, "Nam"),
        ("K6", "Đỗ Thị Giang", "KC-3", 1960, "Nữ"),
        ("K7", "Vũ Văn Hùng", "KC-4", 1955, "Nam"),
        ("K8", "Vũ Thị Hoa", "KC-4", 2015, "Nữ"),
        ("T1", "Bùi Văn Khánh", "TB-1", 1985, "Nam"),
        ("T2", "Đặng Thị Lan", "TB-1", 1987, "Nữ"),
        ("T3", "Ngô Văn Minh", "TB-2", 1970, "Nam"),
        ("T4", "Dương Thị Nga", "TB-2", 1972, "Nữ"),
        ("T5", "Lý Văn Phúc", "TB-3", 1999, "Nam"),
    ] {
        let hamlet = if code.starts_with('K') {
            "KC,Khe Cốc"
        } else {
            "TB,Tà Bán"
        };
        lines.push(format!(
            "{hamlet},{household},{code},{name},{born},{gender},có,2026-01-01"
        ));
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    excel_csv(&lines)
}

fn account_of(code: &str) -> String {
    format!(
        "1900{:0>6}",
        code.bytes().map(|b| b.to_string()).collect::<String>()
    )
}

fn row<'a>(table: &'a Value, key: &str) -> &'a Value {
    table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["key"] == key)
        .unwrap_or_else(|| panic!("no row {key}: {table}"))
}

fn figures(report: &Value, period: usize) -> Vec<(String, String, Value, u64)> {
    report["periods"][period]["tables"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["key"].as_str().unwrap().to_owned(),
                row["label"].as_str().unwrap().to_owned(),
                row["numerator"].clone(),
                row["denominator"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn expected(kc: u64, tb: u64) -> Vec<(String, String, Value, u64)> {
    vec![
        ("KC".into(), "Khe Cốc".into(), json!(kc), 7),
        ("TB".into(), "Tà Bán".into(), json!(tb), 5),
        ("total".into(), "Toàn xã".into(), json!(kc + tb), 12),
    ]
}

/// The small commune (`commune_file`) with its payments of March 2026 (and one in February),
/// as `a_small_commune_counts_as_computed_by_hand` counts them: the clock is left at
/// 2026-03-20.
pub(crate) async fn small_commune_paying_in_march(app: &TestApp) {
    let sample = payos_sample();
    let key = sample["checksum_key"].as_str().unwrap().to_owned();
    let collection_account = sample["body"]["data"]["accountNumber"].as_str().unwrap();

    app.state.clock.set(at("2026-03-20T03:00:00Z"));
    let (_, collection) = vendor(app, "V001", "970422", collection_account).await;
    configure(app, &collection, "payos", &[&key]).await;
    let summary = import(app, "/v1/registry/import", "?dry_run=false", commune_file()).await;
    assert_eq!(summary["residents_created"], 13, "{summary}");
    assert_eq!(summary["consents_recorded"], 13, "{summary}");

    let (status, page) = app.get("/v1/residents?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let id_of = |code: &str| -> String {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == code)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for code in ["K1", "K2", "K3", "K4", "K5", "T1", "T2"] {
        let (status, linked) = app
            .post(
                &format!("/v1/residents/{}/bank-accounts", id_of(code)),
                &json!({"bank_bin": "970415", "account_number": account_of(code), "reason": "tự khai"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{code}: {linked}");
    }
    // March: K1 twice, K2, K3, K4 in Khe Cốc, T1 in Tà Bán; one from an account nobody
    // linked. February: K5. T2 linked an account but never paid.
    for (reference, code, when) in [
        ("FT26031000001", "K1", "2026-03-02 08:00:00"),
        ("FT26031000002", "K1", "2026-03-05 08:00:00"),
        ("FT26031000003", "K2", "2026-03-06 12:30:00"),
        ("FT26031000004", "K3", "2026-03-10 07:15:00"),
        ("FT26031000005", "K4", "2026-03-19 23:30:00"),
        ("FT26031000006", "T1", "2026-03-01 00:10:00"),
        ("FT26031000007", "X9", "2026-03-11 09:00:00"),
        ("FT26021000001", "K5", "2026-02-14 10:00:00"),
    ] {
        pay(app, &key, reference, &account_of(code), when).await;
    }
}

async fn a_small_commune_counts_as_computed_by_hand(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Tokens first: they are stamped by the clock the test moves.
    let staff = app.token_for(Role::Staff).await;
    let auditor = app.token_for(Role::Auditor).await;
    small_commune_paying_in_march(&app).await;
    // Read in May, as the commune officer would.
    app.state.clock.set(at("2026-05-10T03:00:00Z"));

    let query = |rest: &str| format!("{ADOPTION}?indicator=observed_residents&by=hamlet&{rest}");
    let (status, raw) = app.get(&query("from=2026-03&suppression=off")).await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    assert_eq!(raw["periods"].as_array().unwrap().len(), 1, "{raw}");
    assert_eq!(raw["periods"][0]["period"], "2026-03");
    assert_eq!(raw["periods"][0]["first_day"], "2026-03-01");
    assert_eq!(raw["periods"][0]["last_day"], "2026-03-31");
    assert_eq!(figures(&raw, 0), expected(4, 1), "{raw}");
    let total = row(&raw["periods"][0]["tables"][0], "total");
    assert_eq!(total["share_percent"], 41.7);
    assert_eq!(total["display"], "41,7%");

    let (status, received) = app
        .get(&query("from=2026-03&suppression=off&flow=received"))
        .await;
    assert_eq!(status, StatusCode::OK, "{received}");
    assert_eq!(
        figures(&received, 0),
        expected(0, 0),
        "no resident runs the payee"
    );

    // Suppressed (k = 5): both hamlets have fewer than 5 on one side; the total does not.
    for token in [&app.admin, &staff, &auditor] {
        let (status, published) = app.get_as(&query("from=2026-03"), token).await;
        assert_eq!(status, StatusCode::OK, "{published}");
        assert_eq!(published["suppression"], "applied");
        assert_eq!(published["min_count"], 5);
        let table = &published["periods"][0]["tables"][0];
        let keys: Vec<&str> = table["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["KC", "TB", "total"], "the commune total last");
        for (key, denominator) in [("KC", 7), ("TB", 5)] {
            let cell = row(table, key);
            assert_eq!(cell["numerator"], Value::Null, "{cell}");
            assert_eq!(cell["share_percent"], Value::Null, "{cell}");
            assert_eq!(cell["display"], "<5", "{cell}");
            assert_eq!(cell["suppressed"], "primary", "{cell}");
            assert_eq!(cell["denominator"], denominator, "{cell}");
        }
        let total = row(table, "total");
        assert_eq!(total["numerator"], 5, "{total}");
        assert_eq!(total["display"], "41,7%", "{total}");
        assert_eq!(total["suppressed"], Value::Null, "{total}");
    }

    // The same rows as CSV, for Excel.
    let response = app
        .client
        .get(app.url(&query("from=2026-03")))
        .bearer_auth(&staff)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"adoption-observed_residents-2026-03.csv\""
    );
    let text = response.text().await.unwrap();
    assert!(text.starts_with('\u{FEFF}'), "a BOM first");
    let lines: Vec<&str> = text.trim_start_matches('\u{FEFF}').lines().collect();
    assert_eq!(lines.len(), 4, "a header and one line per row: {text}");
    assert!(
        lines[0].starts_with("indicator,period,first_day,last_day,table,key,label,numerator"),
        "{text}"
    );
    assert!(
        lines[1]
            .starts_with("observed_residents,2026-03,2026-03-01,2026-03-31,share,KC,Khe Cốc,,7,"),
        "{text}"
    );
    assert!(lines[1].ends_with(",primary,<5"), "{text}");
    assert!(lines[2].contains(",TB,Tà Bán,,5,"), "{text}");
    assert!(lines[3].contains(",total,Toàn xã,5,12,41.7,"), "{text}");
    assert!(lines[3].ends_with("\"41,7%\""), "{text}");

    // A quarter and a rolling year hold February's payment too.
    for (rest, label, first, last) in [
        (
            "period=quarter&from=2026-01&to=2026-03",
            "2026-Q1",
            "2026-01-01",
            "2026-03-31",
        ),
        (
            "period=year&from=2026-03&to=2026-03",
            "2026",
            "2026-01-01",
            "2026-12-31",
        ),
        (
            "period=rolling12&from=2026-03&to=2026-03",
            "2025-04..2026-03",
            "2025-04-01",
            "2026-03-31",
        ),
    ] {
        let (status, report) = app.get(&query(&format!("{rest}&suppression=off"))).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let periods = report["periods"].as_array().unwrap();
        assert_eq!(periods.len(), 1, "{report}");
        assert_eq!(periods[0]["period"], label);
        assert_eq!(periods[0]["first_day"], first);
        assert_eq!(periods[0]["last_day"], last);
        assert_eq!(figures(&report, 0), expected(5, 1), "{label}: {report}");
    }
    let (status, months) = app
        .get(&query(
            "period=month&from=2026-02&to=2026-03&suppression=off",
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{months}");
    assert_eq!(months["periods"][0]["period"], "2026-02");
    assert_eq!(months["periods"][1]["period"], "2026-03");
    let february = row(&months["periods"][0]["tables"][0], "total");
    assert_eq!(
        (&february["numerator"], &february["denominator"]),
        (&json!(1), &json!(12)),
        "{months}"
    );

    // By gender, with the Vietnamese labels; the child is no adult.
    let (status, by_gender) = app
        .get(&format!(
            "{ADOPTION}?indicator=observed_residents&by=gender&from=2026-03&suppression=off"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{by_gender}");
    let table = &by_gender["periods"][0]["tables"][0];
    for (key, label, numerator, denominator) in [
        ("female", "Nữ", 2, 5),
        ("male", "Nam", 3, 7),
        ("other", "Khác", 0, 0),
        ("unknown", "Không rõ", 0, 0),
        ("total", "Toàn xã", 5, 12),
    ] {
        let cell = row(table, key);
        assert_eq!(
            (&cell["label"], &cell["numerator"], &cell["denominator"]),
            (&json!(label), &json!(numerator), &json!(denominator)),
            "{table}"
        );
    }

    // K4 withdraws consent from 15 March: the payment of the 19th no longer counts for her,
    // the February one of K5 still does.
    let withdrawn = String::from_utf8(commune_file()).unwrap().replace(
        "K4,Phạm Thị Dung,1990,Nữ,có,2026-01-01",
        "K4,Phạm Thị Dung,1990,Nữ,không,15/03/2026",
    );
    assert!(withdrawn.contains("không,15/03/2026"));
    let summary = import(
        &app,
        "/v1/registry/import",
        "?dry_run=false",
        withdrawn.into_bytes(),
    )
    .await;
    assert_eq!(summary["consents_recorded"], 1, "{summary}");
    assert_eq!(summary["unchanged"], 13, "{summary}");
    let (_, march) = app.get(&query("from=2026-03&suppression=off")).await;
    assert_eq!(figures(&march, 0), expected(3, 1), "{march}");
    let (_, quarter) = app
        .get(&query("period=quarter&from=2026-03&suppression=off"))
        .await;
    assert_eq!(quarter["periods"][0]["period"], "2026-Q1");
    assert_eq!(figures(&quarter, 0), expected(4, 1), "{quarter}");

    // Every raw read above is in the access log; the suppressed ones are not.
    let log = access_log(&app).await;
    assert_eq!(log.len(), 9, "{log:?}");
}
