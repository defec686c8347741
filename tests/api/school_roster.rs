//! The school's pupil list: by code, a page at a time, by class (its whole history) and by code
//! prefix; a school user reads only its own school's.

use reqwest::StatusCode;
use serde_json::json;

use market_ledger::domain::user::Role;

use crate::common::{codes_of, fetch, token_for_payee, Backend, TestApp};
use crate::schools::{get_ok, ok, pupils, school as new_school};

crate::on_both_backends!(the_pupil_list_pages_by_code_and_filters_by_class_and_prefix);

async fn the_pupil_list_pages_by_code_and_filters_by_class_and_prefix(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = new_school(&app, "THTT", "1122334455").await;
    let other = new_school(&app, "THKHAC", "5544332211").await;
    pupils(&app, &school, 5).await;
    pupils(&app, &other, 1).await;
    let list = |query: &str| format!("/v1/schools/{}/pupils{query}", school.id);

    // Two pages of two and a last one of one, in code order, nothing twice.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".to_owned(),
        };
        let page = get_ok(&app, &list(&query)).await;
        pages += 1;
        for pupil in page["data"].as_array().unwrap() {
            seen.push(pupil["code"].as_str().unwrap().to_owned());
            assert_eq!(pupil["school_id"], json!(school.id));
            assert_eq!(pupil["classes"][0]["class_name"], "3A");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["HS01", "HS02", "HS03", "HS04", "HS05"]);
    assert_eq!(pages, 3);

    // HS05 moves to 3B: it stays on 3A's list (its history) and is the only one on 3B's.
    let class_b = ok(
        &app,
        &format!("/v1/schools/{}/classes", school.id),
        &json!({"year_id": school.year, "grade": 3, "name": "3B"}),
        StatusCode::CREATED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hs05 = get_ok(&app, &list("?q=HS05")).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &app,
        &format!("/v1/schools/{}/pupils/{hs05}/move", school.id),
        &json!({"class_id": class_b, "on": "2026-10-01"}),
        StatusCode::OK,
    )
    .await;
    let in_b = codes_of(&get_ok(&app, &list(&format!("?class_id={class_b}"))).await);
    assert_eq!(in_b, ["HS05"]);
    let in_a = codes_of(&get_ok(&app, &list(&format!("?class_id={}", school.class))).await);
    assert_eq!(in_a.len(), 5);
    assert_eq!(codes_of(&get_ok(&app, &list("?q=HS0")).await).len(), 5);
    assert!(codes_of(&get_ok(&app, &list("?q=HS9")).await).is_empty());

    // Another school's class is not this school's; a cursor the API never issued is refused.
    let (status, body) = app.get(&list(&format!("?class_id={}", other.class))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "SCHOOL_RECORD_NOT_FOUND");
    let (status, body) = app.get(&list("?cursor=%21%21")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_CURSOR");

    // The other school's user cannot list this school's pupils.
    let token = token_for_payee(&app, Role::School, &other.id).await;
    let response = fetch(&app, &list(""), &token).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let token = token_for_payee(&app, Role::School, &school.id).await;
    let response = fetch(&app, &list("?limit=1"), &token).await;
    assert_eq!(response.status(), StatusCode::OK);
}
