//! The commune's registry: hamlets, households, residents and consents, through the real server.

use market_ledger::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{error_code, read, Backend, TestApp};

crate::on_both_backends!(
    a_merge_closes_the_hamlet_and_keeps_history,
    households_are_paged_filtered_and_patched,
    residents_are_found_by_name_without_diacritics,
    leaving_needs_a_day_and_coming_back_clears_it,
    consent_history_is_appended_and_the_latest_shows,
    bad_registry_input_is_refused_and_changes_nothing,
    personal_data_is_for_staff_only,
);

const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

/// The status, error code and (for a field error) the field a request is refused with.
type Refusal = (StatusCode, &'static str, Option<&'static str>);

async fn patch(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    app.patch_as(path, body, &app.admin).await
}

async fn created(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, created) = app.post(path, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn hamlet(app: &TestApp, code: &str, valid_from: &str) -> Value {
    let body = json!({ "code": code, "name": format!("Xóm {code}"), "valid_from": valid_from });
    created(app, "/v1/hamlets", body).await
}

async fn household(app: &TestApp, code: &str, hamlet: &str) -> String {
    let body = json!({ "code": code, "hamlet_code": hamlet, "address": format!("Nhà {code}") });
    let household = created(app, "/v1/households", body).await;
    household["id"].as_str().unwrap().to_owned()
}

async fn resident(app: &TestApp, code: &str, household: &str, name: &str) -> Value {
    let body = json!({
        "code": code, "household_id": household, "full_name": name, "birth_year": 1985,
    });
    created(app, "/v1/residents", body).await
}

fn codes(list: &Value, key: &str) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap().to_owned())
        .collect()
}

async fn a_merge_closes_the_hamlet_and_keeps_history(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let old = hamlet(&app, "KC2", "2020-01-01").await;
    assert_eq!(old["valid_to"], Value::Null);
    hamlet(&app, "KC1", "2020-01-01").await;
    hamlet(&app, "KC0", "2019-01-01").await;
    hamlet(&app, "TB", "2027-01-01").await;
    let home = household(&app, "HH-1", "KC2").await;

    let (status, renamed) =
        patch(&app, "/v1/hamlets/KC2", &json!({ "name": " Khe  Cốc 2 " })).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "Khe Cốc 2");

    let merge = |into: &str, on: &str| json!({ "into": into, "on": on });
    let (status, merged) = app
        .post("/v1/hamlets/KC2/merge", &merge("KC1", "2026-07-01"))
        .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["valid_to"], "2026-06-30");
    assert_eq!(merged["merged_into"], "KC1");

    // The day before the merge still has both hamlets; from the merge day only the target.
    let (_, before) = app.get("/v1/hamlets?on=2026-06-30").await;
    assert_eq!(codes(&before, "code"), ["KC0", "KC1", "KC2"]);
    let (_, after) = app.get("/v1/hamlets?on=2026-07-01").await;
    assert_eq!(codes(&after, "code"), ["KC0", "KC1"]);
    let (_, all) = app.get("/v1/hamlets").await;
    assert_eq!(codes(&all, "code"), ["KC0", "KC1", "KC2", "TB"]);
    // The household keeps the hamlet it was in.
    let (_, kept) = app.get(&format!("/v1/households/{home}")).await;
    assert_eq!(kept["hamlet_code"], "KC2");

    for (path, body, status, code) in [
        (
            "/v1/hamlets/KC2/merge",
            merge("KC1", "2026-08-01"),
            StatusCode::CONFLICT,
            "HAMLET_CLOSED",
        ),
        (
            "/v1/hamlets/KC1/merge",
            merge("KC1", "2026-08-01"),
            UNPROCESSABLE,
            "HAMLET_MERGE_INTO_ITSELF",
        ),
        (
            "/v1/hamlets/KC1/merge",
            merge("TB", "2026-08-01"),
            StatusCode::CONFLICT,
            "HAMLET_MERGE_TARGET_NOT_OPEN",
        ),
        (
            "/v1/hamlets/KC1/merge",
            merge("NONE", "2026-08-01"),
            StatusCode::NOT_FOUND,
            "HAMLET_NOT_FOUND",
        ),
        (
            "/v1/hamlets/KC1/merge",
            merge("KC0", "2020-01-01"),
            UNPROCESSABLE,
            "HAMLET_MERGE_TOO_EARLY",
        ),
    ] {
        let (answered, body) = app.post(path, &body).await;
        assert_eq!(
            (answered, error_code(&body)),
            (status, code),
            "{path} {body}"
        );
    }
    let (_, unchanged) = app.get("/v1/hamlets").await;
    assert_eq!(unchanged, all, "a refused merge writes nothing");

    // New households go to the hamlet that exists now.
    let body = json!({ "code": "HH-2", "hamlet_code": "KC2", "address": "Nhà 2" });
    let (status, refused) = app.post("/v1/households", &body).await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::CONFLICT, "HAMLET_CLOSED")
    );
    let (status, moved) = patch(
        &app,
        &format!("/v1/households/{home}"),
        &json!({ "hamlet_code": "KC1" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["hamlet_code"], "KC1");
}

async fn households_are_paged_filtered_and_patched(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    hamlet(&app, "KC", "2020-01-01").await;
    hamlet(&app, "TB", "2020-01-01").await;
    for code in ["HH-01", "HH-02", "HH-03", "hh-04"] {
        household(&app, code, "KC").await;
    }
    let other = household(&app, "HX-01", "TB").await;

    let mut pages = Vec::new();
    let mut path = "/v1/households?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages.push(codes(&page, "code"));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/households?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        pages,
        [
            vec!["HH-01", "HH-02"],
            vec!["HH-03", "hh-04"],
            vec!["HX-01"]
        ]
    );
    let (_, in_tb) = app.get("/v1/households?hamlet=TB").await;
    assert_eq!(codes(&in_tb, "code"), ["HX-01"]);
    // The code prefix is compared exactly, on both backends.
    let (_, prefixed) = app.get("/v1/households?q=HH-0&hamlet=KC").await;
    assert_eq!(codes(&prefixed, "code"), ["HH-01", "HH-02", "HH-03"]);
    let (status, body) = app.get("/v1/households?cursor=bm9wZQ").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_CURSOR")
    );

    let home = household(&app, "HH-09", "KC").await;
    let head = resident(&app, "CD-1", &home, "Nguyễn Văn An").await;
    let path = format!("/v1/households/{home}");
    let (status, changed) = patch(
        &app,
        &path,
        &json!({
            "address": "Nhà số 9, Khe Cốc", "head_resident_id": head["id"],
            "moved_in_on": "01/03/2015", "moved_out_on": null,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["address"], "Nhà số 9, Khe Cốc");
    assert_eq!(changed["head_resident_id"], head["id"]);
    assert_eq!(changed["moved_in_on"], "2015-03-01");
    assert_eq!(changed["code"], "HH-09");

    // The head must live in the household; moving out comes after moving in.
    let stranger = resident(&app, "CD-2", &other, "Trần Thị Bình").await;
    for (body, field) in [
        (
            json!({ "head_resident_id": stranger["id"] }),
            "head_resident_id",
        ),
        (
            json!({ "head_resident_id": Uuid::now_v7() }),
            "head_resident_id",
        ),
        (json!({ "moved_out_on": "2014-12-31" }), "moved_out_on"),
    ] {
        let (status, refused) = patch(&app, &path, &body).await;
        assert_eq!(status, UNPROCESSABLE, "{refused}");
        assert_eq!(error_code(&refused), "REGISTRY_FIELD_INVALID");
        assert_eq!(refused["error"]["details"]["field"], field);
    }
    // A patch is an object: serde would read an array as the fields in order.
    let (status, refused) = patch(&app, &path, &json!(["Nhà số 10", null])).await;
    assert_eq!(
        (status, error_code(&refused)),
        (UNPROCESSABLE, "INVALID_BODY"),
        "{refused}"
    );
    let (_, unchanged) = app.get(&path).await;
    assert_eq!(unchanged, changed);

    let (status, cleared) = patch(&app, &path, &json!({ "head_resident_id": null })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["head_resident_id"], Value::Null);
    let (status, missing) = app.get(&format!("/v1/households/{}", Uuid::now_v7())).await;
    assert_eq!(
        (status, error_code(&missing)),
        (StatusCode::NOT_FOUND, "HOUSEHOLD_NOT_FOUND")
    );
}

async fn residents_are_found_by_name_without_diacritics(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    hamlet(&app, "KC", "2020-01-01").await;
    hamlet(&app, "TB", "2020-01-01").await;
    let home = household(&app, "HH-1", "KC").await;
    let other = household(&app, "HH-2", "TB").await;
    let an = resident(&app, "CD-1", &home, "Nguyễn Văn An").await;
    assert_eq!(an["full_name"], "Nguyễn Văn An");
    assert_eq!(an["status"], "living");
    assert_eq!(an["gender"], "unknown");
    assert_eq!(an["consent"], Value::Null);
    resident(&app, "CD-2", &home, "Nguyễn Thị Bình").await;
    resident(&app, "CD-3", &other, "Trần Văn An").await;
    resident(&app, "CD-4", &other, "Lê Văn 100%").await;

    let search = |q: &str| format!("/v1/residents?q={q}");
    for (query, found) in [
        (search("nguyen%20van%20an"), vec!["CD-1"]),
        (search("V%C4%82N%20AN"), vec!["CD-1", "CD-3"]),
        (search("nguy"), vec!["CD-1", "CD-2"]),
        // % and _ are matched as themselves, not as wildcards.
        (search("%25"), vec!["CD-4"]),
        (search("_"), vec![]),
        ("/v1/residents?hamlet=TB".to_owned(), vec!["CD-3", "CD-4"]),
        (
            format!("/v1/residents?household_id={home}&q=an"),
            vec!["CD-1"],
        ),
    ] {
        let (status, list) = app.get(&query).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(codes(&list, "code"), found, "{query}");
    }

    let (_, first) = app.get("/v1/residents?limit=3").await;
    assert_eq!(codes(&first, "code"), ["CD-1", "CD-2", "CD-3"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("/v1/residents?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(codes(&rest, "code"), ["CD-4"]);
    assert_eq!(rest["next_cursor"], Value::Null);

    let (status, again) = app
        .get(&format!("/v1/residents/{}", an["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, an);
}

async fn leaving_needs_a_day_and_coming_back_clears_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    hamlet(&app, "KC", "2020-01-01").await;
    let home = household(&app, "HH-1", "KC").await;
    let other = household(&app, "HH-2", "KC").await;
    let an = resident(&app, "CD-1", &home, "Nguyễn Văn An").await;
    let path = format!("/v1/residents/{}", an["id"].as_str().unwrap());

    let (status, refused) = patch(&app, &path, &json!({ "status": "moved_away" })).await;
    assert_eq!(status, UNPROCESSABLE, "{refused}");
    assert_eq!(refused["error"]["details"]["field"], "left_on");
    let (_, unchanged) = app.get(&path).await;
    assert_eq!(unchanged, an);

    // The head who moves to another household is its head no longer.
    let home_path = format!("/v1/households/{home}");
    let (status, headed) = patch(&app, &home_path, &json!({ "head_resident_id": an["id"] })).await;
    assert_eq!(status, StatusCode::OK, "{headed}");
    let (status, away) = patch(
        &app,
        &path,
        &json!({ "status": "Chuyển đi", "left_on": "2026-03-01", "phone": "0912 345 678",
                 "household_id": other, "gender": "Nam", "birth_date": "1985-04-30" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{away}");
    assert_eq!(away["status"], "moved_away");
    assert_eq!(away["left_on"], "2026-03-01");
    assert_eq!(away["phone"], "0912345678");
    assert_eq!(away["household_id"], other);
    assert_eq!(away["gender"], "male");
    assert_eq!(away["birth_date"], "1985-04-30");
    let (_, left) = app.get(&home_path).await;
    assert_eq!(left["head_resident_id"], Value::Null);

    let (status, back) = patch(&app, &path, &json!({ "status": "living" })).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["status"], "living");
    assert_eq!(back["left_on"], Value::Null);

    let (status, refused) = patch(&app, &path, &json!({ "left_on": "2026-03-01" })).await;
    assert_eq!(
        (status, error_code(&refused)),
        (UNPROCESSABLE, "REGISTRY_FIELD_INVALID")
    );
    let (status, refused) = patch(&app, &path, &json!({ "birth_date": "1990-01-01" })).await;
    assert_eq!(
        refused["error"]["details"]["field"], "birth_date",
        "{status}"
    );
}

async fn consent_history_is_appended_and_the_latest_shows(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    hamlet(&app, "KC", "2020-01-01").await;
    let home = household(&app, "HH-1", "KC").await;
    let an = resident(&app, "CD-1", &home, "Nguyễn Văn An").await;
    let id = an["id"].as_str().unwrap();
    let path = format!("/v1/residents/{id}/consents");

    let staff = app.token_for(Role::Staff).await;
    let consent = |given: bool, on: &str| json!({ "given": given, "effective_on": on });
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&staff)
        .json(&consent(true, "2026-01-01"))
        .send()
        .await
        .unwrap();
    let (status, first) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(first["recorded_by"].as_str().unwrap().starts_with("staff-"));
    created(&app, &path, consent(false, "2026-06-01")).await;
    // A late entry for an earlier day joins the history without replacing the latest.
    created(&app, &path, consent(true, "01/01/2025")).await;

    let (_, resident) = app.get(&format!("/v1/residents/{id}")).await;
    assert_eq!(
        resident["consent"],
        json!({ "given": false, "effective_on": "2026-06-01" })
    );
    let (status, history) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let days: Vec<(&Value, &Value)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (&c["effective_on"], &c["given"]))
        .collect();
    assert_eq!(
        days,
        [
            (&json!("2025-01-01"), &json!(true)),
            (&json!("2026-01-01"), &json!(true)),
            (&json!("2026-06-01"), &json!(false)),
        ]
    );

    let (status, refused) = app.post(&path, &consent(true, "soon")).await;
    assert_eq!(
        refused["error"]["details"]["field"], "effective_on",
        "{status}"
    );
    let missing = format!("/v1/residents/{}/consents", Uuid::now_v7());
    let (status, refused) = app.post(&missing, &consent(true, "2026-01-01")).await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::NOT_FOUND, "RESIDENT_NOT_FOUND")
    );
    let (_, after) = app.get(&path).await;
    assert_eq!(after, history);
}

async fn bad_registry_input_is_refused_and_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    hamlet(&app, "KC", "2020-01-01").await;
    let home = household(&app, "HH-1", "KC").await;
    let an = resident(&app, "CD-1", &home, "Nguyễn Văn An").await;
    let snapshot = || async {
        (
            app.get("/v1/hamlets").await.1,
            app.get("/v1/households").await.1,
            app.get("/v1/residents").await.1,
        )
    };
    let before = snapshot().await;

    let person = |changes: Value| {
        let mut body = json!({
            "code": "CD-9", "household_id": home, "full_name": "Trần Thị Bình", "birth_year": 1990,
        });
        body.as_object_mut()
            .unwrap()
            .extend(changes.as_object().unwrap().clone());
        body
    };
    let field = |name| (UNPROCESSABLE, "REGISTRY_FIELD_INVALID", Some(name));
    let cases: Vec<(&str, Value, Refusal)> = vec![
        (
            "/v1/hamlets",
            json!({ "code": "xóm 1", "name": "Xóm 1", "valid_from": "2020-01-01" }),
            field("code"),
        ),
        (
            "/v1/hamlets",
            json!({ "code": "X1", "name": " ", "valid_from": "2020-01-01" }),
            field("name"),
        ),
        (
            "/v1/hamlets",
            json!({ "code": "X1", "name": "Xóm 1", "valid_from": "2020-13-01" }),
            field("valid_from"),
        ),
        (
            "/v1/hamlets",
            json!({ "code": "KC", "name": "Other", "valid_from": "2021-01-01" }),
            (StatusCode::CONFLICT, "HAMLET_CODE_TAKEN", None),
        ),
        (
            "/v1/households",
            json!({ "code": "HH-2", "hamlet_code": "NONE", "address": "Nhà" }),
            (StatusCode::NOT_FOUND, "HAMLET_NOT_FOUND", None),
        ),
        (
            "/v1/households",
            json!({ "code": "HH-2", "hamlet_code": "KC", "address": "  " }),
            field("address"),
        ),
        (
            "/v1/households",
            json!({ "code": "HH-1", "hamlet_code": "KC", "address": "Somewhere else" }),
            (StatusCode::CONFLICT, "HOUSEHOLD_CODE_TAKEN", None),
        ),
        (
            "/v1/residents",
            person(json!({ "birth_year": 1800 })),
            field("birth_year"),
        ),
        (
            "/v1/residents",
            person(json!({ "birth_year": 3000 })),
            field("birth_year"),
        ),
        (
            "/v1/residents",
            person(json!({ "gender": "x" })),
            field("gender"),
        ),
        (
            "/v1/residents",
            person(json!({ "status": "deceased" })),
            field("left_on"),
        ),
        (
            "/v1/residents",
            person(json!({ "phone": "12" })),
            field("phone"),
        ),
        (
            "/v1/residents",
            person(json!({ "household_id": Uuid::now_v7() })),
            (StatusCode::NOT_FOUND, "HOUSEHOLD_NOT_FOUND", None),
        ),
        (
            "/v1/residents",
            person(json!({ "code": "CD-1" })),
            (StatusCode::CONFLICT, "RESIDENT_CODE_TAKEN", None),
        ),
    ];
    for (path, body, (status, code, field)) in cases {
        let (answered, refused) = app.post(path, &body).await;
        assert_eq!(
            (answered, error_code(&refused)),
            (status, code),
            "{path} {body}: {refused}"
        );
        assert!(!refused["error"]["message"].as_str().unwrap().is_empty());
        if let Some(field) = field {
            assert_eq!(refused["error"]["details"]["field"], field, "{refused}");
        }
    }
    let (status, refused) = app.get("/v1/hamlets?on=yesterday").await;
    assert_eq!(refused["error"]["details"]["field"], "on", "{status}");
    let resident_path = format!("/v1/residents/{}", an["id"].as_str().unwrap());
    let (status, refused) = patch(
        &app,
        &resident_path,
        &json!({ "household_id": Uuid::now_v7() }),
    )
    .await;
    assert_eq!(
        (status, error_code(&refused)),
        (StatusCode::NOT_FOUND, "HOUSEHOLD_NOT_FOUND")
    );
    assert_eq!(snapshot().await, before, "a refusal writes nothing");
}

async fn personal_data_is_for_staff_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let staff = app.token_for(Role::Staff).await;
    let auditor = app.token_for(Role::Auditor).await;
    let vendor = app.token_for(Role::Vendor).await;
    let response = app
        .client
        .post(app.url("/v1/hamlets"))
        .bearer_auth(&staff)
        .json(&json!({ "code": "KC", "name": "Khe Cốc", "valid_from": "2020-01-01" }))
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await.0, StatusCode::CREATED);
    let home = household(&app, "HH-1", "KC").await;
    let an = resident(&app, "CD-1", &home, "Nguyễn Văn An").await;
    let id = an["id"].as_str().unwrap();

    let (status, hamlets) = app.get_as("/v1/hamlets", &auditor).await;
    assert_eq!(status, StatusCode::OK, "auditors see hamlets: {hamlets}");
    assert_eq!(
        app.get_as("/v1/hamlets/KC", &auditor).await.0,
        StatusCode::OK
    );
    for path in [
        "/v1/households".to_owned(),
        format!("/v1/households/{home}"),
        "/v1/residents".to_owned(),
        format!("/v1/residents/{id}"),
        format!("/v1/residents/{id}/consents"),
    ] {
        assert_eq!(
            app.get_as(&path, &auditor).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            app.get_as(&path, &vendor).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(app.get_as(&path, &staff).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(
        app.get_as("/v1/hamlets", &vendor).await.0,
        StatusCode::FORBIDDEN
    );
    let response = app
        .client
        .post(app.url("/v1/hamlets"))
        .bearer_auth(&auditor)
        .json(&json!({ "code": "TB", "name": "Tân Bình", "valid_from": "2020-01-01" }))
        .send()
        .await
        .unwrap();
    assert_eq!(read(response).await.0, StatusCode::FORBIDDEN);
}
