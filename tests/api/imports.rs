//! The registry and survey imports: CSV files as commune staff save them from Excel, a dry run
//! by default, an all-or-nothing apply, and re-imports that change nothing.

use market_ledger::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

use crate::common::{error_code, read, Backend, TestApp};

crate::on_both_backends!(
    an_excel_file_is_checked_then_applied_once,
    a_changed_row_updates_only_its_resident,
    a_bad_file_lists_every_bad_line_and_writes_nothing,
    a_survey_is_checked_applied_and_reimported_unchanged,
    imports_are_for_registry_keepers_and_bounded,
    a_reimport_never_gives_back_a_withdrawn_consent,
);

const RESIDENTS: &str = "/v1/registry/import";
const SURVEYS: &str = "/v1/surveys/import";

/// A CSV file as Excel's "CSV UTF-8" saves it: a byte-order mark, CRLF line ends.
pub(crate) fn excel_csv(lines: &[&str]) -> Vec<u8> {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(lines.join("\r\n").as_bytes());
    bytes.extend_from_slice(b"\r\n");
    bytes
}

/// POSTs an import file as `token`; `query` is "" (a dry run) or "?dry_run=false".
pub(crate) async fn import_as(
    app: &TestApp,
    path: &str,
    query: &str,
    body: Vec<u8>,
    token: &str,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("{path}{query}")))
        .bearer_auth(token)
        .header("Content-Type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("request sent");
    read(response).await
}

/// Imports as the admin and expects 200.
pub(crate) async fn import(app: &TestApp, path: &str, query: &str, body: Vec<u8>) -> Value {
    let (status, summary) = import_as(app, path, query, body, &app.admin).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    summary
}

const APPLY: &str = "?dry_run=false";

const HEADER: &str = "Mã xóm,Tên xóm,Mã hộ,Địa chỉ,Chủ hộ,Mã nhân khẩu,Họ và tên,Ngày sinh,\
                      Giới tính,Đồng ý thống kê,Ngày đồng ý";

/// The name of the first row, typed with combining marks (NFD), as some keyboards do.
fn nfd(name: &str) -> String {
    let decomposed: String = name.nfd().collect();
    assert_ne!(decomposed, name, "the test name has precomposed letters");
    decomposed
}

fn residents_file(an_phone_row: Option<&str>) -> Vec<u8> {
    let an = format!(
        "KC,Khe Cốc,HH001,Thôn Khe Cốc,x,NK001,{},15/03/1980,Nam,có,01/01/2026",
        nfd("Nguyễn Văn An")
    );
    let binh = an_phone_row
        .unwrap_or("KC,Khe Cốc,HH001,,,NK002,Trần Thị Bình,02/07/1985,Nữ,có,01/01/2026");
    excel_csv(&[
        HEADER,
        &an,
        binh,
        "KC,Khe Cốc,HH002,\"Số 5, Khe Cốc\",có,NK003,Lê Văn Cường,20/11/1990,Nam,,",
    ])
}

async fn residents(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/residents{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn consents(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/residents/{id}/consents")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().clone()
}

fn counts(summary: &Value) -> [u64; 8] {
    [
        "hamlets_created",
        "households_created",
        "households_updated",
        "residents_created",
        "residents_updated",
        "consents_recorded",
        "survey_answers_recorded",
        "unchanged",
    ]
    .map(|key| {
        summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {summary}"))
    })
}

async fn an_excel_file_is_checked_then_applied_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let dry = import(&app, RESIDENTS, "", residents_file(None)).await;
    assert_eq!(dry["applied"], false, "{dry}");
    assert_eq!(dry["rows"], 3, "{dry}");
    assert_eq!(dry["errors"], json!([]), "{dry}");
    assert_eq!(counts(&dry), [1, 2, 0, 3, 0, 2, 0, 0], "{dry}");
    assert!(
        residents(&app, "").await.is_empty(),
        "a dry run writes nothing"
    );
    let (_, hamlets) = app.get("/v1/hamlets").await;
    assert_eq!(hamlets["data"], json!([]), "{hamlets}");

    let applied = import(&app, RESIDENTS, APPLY, residents_file(None)).await;
    assert_eq!(applied["applied"], true, "{applied}");
    assert_eq!(counts(&applied), counts(&dry), "{applied}");

    let found = residents(&app, "?q=nguyen%20van%20an").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let an = &found[0];
    assert_eq!(an["code"], "NK001");
    assert_eq!(an["full_name"], "Nguyễn Văn An", "stored as NFC");
    assert_eq!(an["birth_date"], "1980-03-15");
    assert_eq!(an["birth_year"], 1980);
    assert_eq!(an["gender"], "male");
    assert_eq!(an["consent"]["given"], true);
    assert_eq!(an["consent"]["effective_on"], "2026-01-01");
    let binh = &residents(&app, "?q=tran%20thi%20binh").await[0];
    assert_eq!(binh["gender"], "female");
    assert_eq!(binh["household_id"], an["household_id"]);
    let (_, hamlet) = app.get("/v1/hamlets/KC").await;
    assert_eq!(hamlet["name"], "Khe Cốc", "{hamlet}");
    let (_, household) = app
        .get(&format!(
            "/v1/households/{}",
            an["household_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(household["address"], "Thôn Khe Cốc", "{household}");
    assert_eq!(household["head_resident_id"], an["id"], "{household}");
    let (_, cuong_home) = app.get("/v1/households?hamlet=KC").await;
    assert!(
        cuong_home.to_string().contains("Số 5, Khe Cốc"),
        "a quoted cell keeps its comma: {cuong_home}"
    );

    let before = residents(&app, "").await;
    let (_, households_before) = app.get("/v1/households").await;
    let an_id = an["id"].as_str().unwrap();
    assert_eq!(consents(&app, an_id).await.len(), 1);

    // The same file again, a while later: nothing to do, nothing written.
    app.state.clock.advance(chrono::Duration::minutes(5));
    let again = import(&app, RESIDENTS, APPLY, residents_file(None)).await;
    assert_eq!(again["applied"], true, "{again}");
    assert_eq!(counts(&again), [0, 0, 0, 0, 0, 0, 0, 3], "{again}");
    assert_eq!(
        residents(&app, "").await,
        before,
        "updated_at and all unchanged"
    );
    let (_, households_after) = app.get("/v1/households").await;
    assert_eq!(households_after, households_before);
    assert_eq!(
        consents(&app, an_id).await.len(),
        1,
        "consent not appended twice"
    );
}

async fn a_changed_row_updates_only_its_resident(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    import(&app, RESIDENTS, APPLY, residents_file(None)).await;
    let before = residents(&app, "").await;
    app.state.clock.advance(chrono::Duration::minutes(5));

    // Bình's birth date was typed wrong; the commune fixes it and imports the file again.
    let fixed = "KC,Khe Cốc,HH001,,,NK002,Trần Thị Bình,03/07/1985,Nữ,có,01/01/2026";
    let summary = import(&app, RESIDENTS, APPLY, residents_file(Some(fixed))).await;
    assert_eq!(counts(&summary), [0, 0, 0, 0, 1, 0, 0, 2], "{summary}");

    let after = residents(&app, "").await;
    assert_eq!(after.len(), 3);
    for (old, new) in before.iter().zip(&after) {
        if old["code"] == "NK002" {
            assert_eq!(new["birth_date"], "1985-07-03");
            assert_ne!(new["updated_at"], old["updated_at"], "{new}");
            assert_eq!(new["created_at"], old["created_at"]);
            assert_eq!(new["id"], old["id"]);
        } else {
            assert_eq!(new, old, "only Bình changed");
        }
    }
    let binh = before.iter().find(|r| r["code"] == "NK002").unwrap();
    assert_eq!(consents(&app, binh["id"].as_str().unwrap()).await.len(), 1);
}

async fn a_bad_file_lists_every_bad_line_and_writes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let bad = excel_csv(&[
        "Mã xóm;Tên xóm;Mã hộ;Mã nhân khẩu;Họ và tên;Năm sinh;Giới tính",
        "KC;Khe Cốc;HH001;NK001;Nguyễn Văn An;1980;Nam",
        "KC;Khe Cốc;HH001;NK002;Trần Thị Bình;198O;Nữ",
        "KC;Khe Cốc;HH002;NK003;Lê Văn Cường;1990;Nam",
        "XX;;HH009;NK004;Phạm Thị Dung;1975;Nữ",
        "KC;Khe Cốc;HH002;NK001;Nguyễn Văn An;1981;Nam",
    ]);
    let expected = [(3, "birth_year"), (5, "hamlet_code"), (6, "resident_code")];
    let lines = |errors: &Value| -> Vec<(u64, String)> {
        errors
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert!(!e["problem"].as_str().unwrap().is_empty(), "{e}");
                (
                    e["line"].as_u64().unwrap(),
                    e["field"].as_str().unwrap_or("<none>").to_owned(),
                )
            })
            .collect()
    };
    let expected: Vec<(u64, String)> = expected
        .iter()
        .map(|(line, field)| (*line, (*field).to_owned()))
        .collect();

    let dry = import(&app, RESIDENTS, "", bad.clone()).await;
    assert_eq!(dry["applied"], false, "{dry}");
    assert_eq!(lines(&dry["errors"]), expected, "{dry}");

    let (status, refused) = import_as(&app, RESIDENTS, APPLY, bad, &app.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(error_code(&refused), "IMPORT_INVALID");
    assert_eq!(
        lines(&refused["error"]["details"]["errors"]),
        expected,
        "{refused}"
    );
    assert!(residents(&app, "").await.is_empty(), "nothing written");
    let (_, hamlets) = app.get("/v1/hamlets").await;
    assert_eq!(hamlets["data"], json!([]), "{hamlets}");
    let (_, households) = app.get("/v1/households").await;
    assert_eq!(households["data"], json!([]), "{households}");
}

fn survey_file(rows: &[&str]) -> Vec<u8> {
    let mut lines = vec!["Mã nhân khẩu,Ngày khảo sát,Có thanh toán trực tuyến 12 tháng qua,Kênh"];
    lines.extend_from_slice(rows);
    excel_csv(&lines)
}

async fn a_survey_is_checked_applied_and_reimported_unchanged(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    import(&app, RESIDENTS, APPLY, residents_file(None)).await;

    let unknown = survey_file(&[
        "NK001,10/01/2026,có,Ví MoMo",
        "NK002,10/01/2026,không,",
        "NK999,10/01/2026,có,",
    ]);
    let dry = import(&app, SURVEYS, "", unknown.clone()).await;
    let errors = dry["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{dry}");
    assert_eq!(errors[0]["line"], 4, "{dry}");
    assert_eq!(errors[0]["field"], "resident_code", "{dry}");
    let (status, refused) = import_as(&app, SURVEYS, APPLY, unknown, &app.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(error_code(&refused), "IMPORT_INVALID");
    assert_eq!(refused["error"]["details"]["errors"][0]["line"], 4);

    // A line that does not parse and an unknown resident: both reported at once.
    let both = survey_file(&[
        "NK001,31/02/2026,có,",
        "NK002,10/01/2026,không,",
        "NK998,10/01/2026,có,",
    ]);
    let dry = import(&app, SURVEYS, "", both).await;
    let reported: Vec<(&Value, &Value)> = dry["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (&e["line"], &e["field"]))
        .collect();
    assert_eq!(
        reported,
        [
            (&json!(2), &json!("surveyed_on")),
            (&json!(4), &json!("resident_code"))
        ],
        "{dry}"
    );

    let good = survey_file(&[
        "NK001,10/01/2026,có,Ví MoMo",
        "NK002,10/01/2026,không,",
        "NK003,2026-01-11,x,chuyển khoản ngân hàng",
    ]);
    let dry = import(&app, SURVEYS, "", good.clone()).await;
    assert_eq!(dry["survey_answers_recorded"], 3, "{dry}");
    assert_eq!(dry["applied"], false);
    let applied = import(&app, SURVEYS, APPLY, good.clone()).await;
    assert_eq!(applied["applied"], true, "{applied}");
    assert_eq!(applied["survey_answers_recorded"], 3, "{applied}");
    assert_eq!(applied["errors"], json!([]));
    let again = import(&app, SURVEYS, APPLY, good).await;
    assert_eq!(again["survey_answers_recorded"], 0, "{again}");
    assert_eq!(again["unchanged"], 3, "{again}");

    // A changed answer is recorded again; the others stay.
    let changed = survey_file(&[
        "NK001,10/01/2026,có,Ví MoMo",
        "NK002,10/01/2026,có,ZaloPay",
        "NK003,2026-01-11,x,chuyển khoản ngân hàng",
    ]);
    let summary = import(&app, SURVEYS, APPLY, changed).await;
    assert_eq!(summary["survey_answers_recorded"], 1, "{summary}");
    assert_eq!(summary["unchanged"], 2, "{summary}");
}

async fn imports_are_for_registry_keepers_and_bounded(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for role in [Role::Auditor, Role::Vendor, Role::School] {
        let token = app.token_for(role).await;
        for path in [RESIDENTS, SURVEYS] {
            for query in ["", APPLY] {
                let (status, body) =
                    import_as(&app, path, query, residents_file(None), &token).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role:?} {path}{query}: {body}"
                );
                assert_eq!(error_code(&body), "FORBIDDEN");
            }
        }
    }
    let staff = app.token_for(Role::Staff).await;
    let (status, body) = import_as(&app, RESIDENTS, "", residents_file(None), &staff).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(residents(&app, "").await.is_empty());

    let mut huge = excel_csv(&[HEADER]);
    let row = b"KC,Khe C\xE1\xBB\x91c,HH001,,,NK001,An,1980,Nam,,\r\n";
    while huge.len() <= 16 * 1024 * 1024 {
        huge.extend_from_slice(row);
    }
    for path in [RESIDENTS, SURVEYS] {
        let (status, body) = import_as(&app, path, APPLY, huge.clone(), &app.admin).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE");
        // No file at all is a mistake in the request, refused even on a dry run.
        for (query, empty) in [("", Vec::new()), (APPLY, b" \r\n".to_vec())] {
            let (status, body) = import_as(&app, path, query, empty, &app.admin).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path}{query}: {body}"
            );
            assert_eq!(error_code(&body), "IMPORT_EMPTY");
        }
    }
    assert!(residents(&app, "").await.is_empty());
}

/// A resident withdraws consent after the master file was imported; re-importing the same
/// file (its undated "có") must not give it back, while a later dated decision in a file is
/// recorded once.
async fn a_reimport_never_gives_back_a_withdrawn_consent(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let undated = excel_csv(&[
        HEADER,
        "KC,Khe Cốc,HH001,Thôn Khe Cốc,x,NK001,Nguyễn Văn An,15/03/1980,Nam,có,",
    ]);
    let applied = import(&app, RESIDENTS, APPLY, undated.clone()).await;
    assert_eq!(applied["consents_recorded"], 1, "{applied}");
    let id = residents(&app, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let withdrawn_on = market_ledger::domain::registry::day_in_vietnam(app.state.clock.now());
    let (status, body) = app
        .post(
            &format!("/v1/residents/{id}/consents"),
            &json!({ "given": false, "effective_on": withdrawn_on }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    app.state.clock.advance(chrono::Duration::days(30));
    let again = import(&app, RESIDENTS, APPLY, undated).await;
    assert_eq!(again["consents_recorded"], 0, "{again}");
    let history = consents(&app, &id).await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history.last().unwrap()["given"], false);

    let dated = excel_csv(&[
        HEADER,
        &format!(
            "KC,Khe Cốc,HH001,Thôn Khe Cốc,x,NK001,Nguyễn Văn An,15/03/1980,Nam,có,{}",
            market_ledger::domain::registry::day_in_vietnam(app.state.clock.now())
                .format("%d/%m/%Y")
        ),
    ]);
    let regiven = import(&app, RESIDENTS, APPLY, dated.clone()).await;
    assert_eq!(regiven["consents_recorded"], 1, "{regiven}");
    let twice = import(&app, RESIDENTS, APPLY, dated).await;
    assert_eq!(twice["consents_recorded"], 0, "{twice}");
    assert_eq!(consents(&app, &id).await.len(), 3);
}
