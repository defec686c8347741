//! Payees: onboarding, listing, changes and who may see them, through the real server.

use std::process::{Command, Stdio};

use market_ledger::domain::user::Role;
use market_ledger::domain::vietqr::{Initiation, VietQr};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{
    codes_of, collection, create_intent, create_intent_as, create_payee, error_code, fetch,
    payee_id, pending_intent, read, token_for_payee, vendor, Backend, TestApp, PASSWORD,
};

crate::on_both_backends!(
    onboarding_creates_the_payee_and_its_ledger_accounts_in_one_go,
    payees_share_a_pooled_collection_account,
    bad_payee_input_is_refused_and_nothing_is_half_written,
    existing_ledger_accounts_are_adopted_only_when_they_fit,
    payees_are_listed_with_filters_and_cursor_pages,
    patch_changes_clears_and_deactivates,
    vendors_and_schools_reach_only_their_own_payee,
    users_create_refuses_a_payee_that_does_not_exist,
);

async fn onboarding_creates_the_payee_and_its_ledger_accounts_in_one_go(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = create_payee(&app, &vendor("v042", "0123456789")).await;
    assert_eq!(payee["code"], "V042");
    assert_eq!(payee["kind"], "vendor");
    assert_eq!(payee["name"], "Bà Hoa, quầy chè");
    assert_eq!(payee["phone"], "0912345678");
    assert_eq!(payee["active"], true);
    assert_eq!(payee["ledger_account_code"], "payee:V042");
    let account = &payee["collection_account"];
    assert_eq!(account["bank_bin"], "970436");
    assert_eq!(account["bank_short_name"], "Vietcombank");
    assert_eq!(account["holder_name"], "NGUYEN THI HONG");

    let (status, liability) = app.get("/v1/accounts/payee:V042").await;
    assert_eq!(status, StatusCode::OK, "{liability}");
    assert_eq!(liability["id"], payee["ledger_account_id"]);
    assert_eq!(liability["kind"], "liability");
    assert_eq!(liability["currency"], "VND");
    assert_eq!(liability["flags"]["debits_must_not_exceed_credits"], true);
    let (status, bank) = app.get("/v1/accounts/bank:970436:0123456789").await;
    assert_eq!(status, StatusCode::OK, "{bank}");
    assert_eq!(bank["id"], account["ledger_account_id"]);
    assert_eq!(bank["kind"], "asset");

    // The static code sends any amount to the collection account with the payee's code.
    let qr = VietQr::parse(payee["static_qr_payload"].as_str().unwrap()).unwrap();
    assert_eq!(qr.initiation(), Initiation::Static);
    assert_eq!((qr.bin(), qr.account()), ("970436", "0123456789"));
    assert_eq!((qr.amount(), qr.purpose()), (None, Some("V042")));

    let (status, again) = app
        .get(&format!("/v1/payees/{}", payee["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, payee);

    // Without a code one is generated from the kind and the unambiguous alphabet.
    let mut school = vendor("unused", "0123456789");
    school["kind"] = json!("school");
    school.as_object_mut().unwrap().remove("code");
    let school = create_payee(&app, &school).await;
    let code = school["code"].as_str().unwrap();
    assert!(code.len() == 7 && code.starts_with('S'), "{code}");

    let (status, banks) = app.get("/v1/banks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(banks["data"].as_array().unwrap().len(), 65);
    assert!(banks["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["bin"] == "970415" && b["short_name"] == "VietinBank"));
    app.assert_verified().await;
}

async fn payees_share_a_pooled_collection_account(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let first = create_payee(&app, &vendor("V1", "1133666688")).await;
    let mut second = vendor("V2", "1133666688");
    // The same bank account typed with other case and spacing is the same holder.
    second["collection_account"]["holder_name"] = json!("  nguyễn thị   HỒNG ");
    let second = create_payee(&app, &second).await;
    assert_eq!(
        first["collection_account"]["id"],
        second["collection_account"]["id"]
    );
    assert_ne!(first["ledger_account_id"], second["ledger_account_id"]);
    let (_, banks) = app.get("/v1/accounts?code_prefix=bank:&kind=asset").await;
    assert_eq!(banks["data"].as_array().unwrap().len(), 1, "{banks}");
    let (_, liabilities) = app.get("/v1/accounts?code_prefix=payee:").await;
    assert_eq!(liabilities["data"].as_array().unwrap().len(), 2);
}

async fn bad_payee_input_is_refused_and_nothing_is_half_written(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    create_payee(&app, &vendor("V042", "0123456789")).await;
    const UNPROCESSABLE: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
    const BIN: &str = "/collection_account/bank_bin";
    const NUMBER: &str = "/collection_account/account_number";
    const HOLDER: &str = "/collection_account/holder_name";
    const CONFLICT: StatusCode = StatusCode::CONFLICT;
    let other_holder = collection("970436", "0123456789", "Trần Văn Nam");
    // (field to change, its new value, expected status and code)
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (BIN, json!("123456"), UNPROCESSABLE, "UNKNOWN_BANK"),
        (BIN, json!("97043"), UNPROCESSABLE, "UNKNOWN_BANK"),
        (
            NUMBER,
            json!("0123-456-789"),
            UNPROCESSABLE,
            "INVALID_ACCOUNT_NUMBER",
        ),
        (
            NUMBER,
            json!("1".repeat(20)),
            UNPROCESSABLE,
            "INVALID_ACCOUNT_NUMBER",
        ),
        (
            NUMBER,
            json!("12345"),
            UNPROCESSABLE,
            "INVALID_ACCOUNT_NUMBER",
        ),
        (NUMBER, json!(123456789), UNPROCESSABLE, "INVALID_BODY"),
        (
            HOLDER,
            json!("Hồng 🙂"),
            UNPROCESSABLE,
            "HOLDER_NAME_INVALID_CHARACTER",
        ),
        (HOLDER, json!("  "), UNPROCESSABLE, "HOLDER_NAME_EMPTY"),
        ("/kind", json!("shop"), UNPROCESSABLE, "INVALID_PAYEE_KIND"),
        ("/code", json!("V-100"), UNPROCESSABLE, "INVALID_PAYEE_CODE"),
        (
            "/code",
            json!("8K2H9QX4"),
            UNPROCESSABLE,
            "INVALID_PAYEE_CODE",
        ),
        ("/name", json!(""), UNPROCESSABLE, "INVALID_PAYEE_FIELD"),
        (
            "/stall",
            json!("x".repeat(101)),
            UNPROCESSABLE,
            "INVALID_PAYEE_FIELD",
        ),
        ("/phone", json!("call me"), UNPROCESSABLE, "INVALID_PHONE"),
        // A code in use, with a new bank account: the bank account must not be left behind.
        ("/code", json!("v042"), CONFLICT, "PAYEE_CODE_TAKEN"),
        // The registered account belongs to NGUYEN THI HONG.
        (
            "/collection_account",
            other_holder,
            CONFLICT,
            "HOLDER_NAME_MISMATCH",
        ),
    ];
    let mut unknown_field = vendor("V100", "9988776655");
    unknown_field["surprise"] = json!(1);
    let (status, answer) = app.post("/v1/payees", &unknown_field).await;
    assert_eq!(
        (status, error_code(&answer)),
        (UNPROCESSABLE, "INVALID_BODY")
    );
    for (field, value, status, code) in cases {
        let mut body = vendor("V100", "9988776655");
        *body.pointer_mut(field).unwrap() = value;
        let (got, answer) = app.post("/v1/payees", &body).await;
        assert_eq!(
            (got, error_code(&answer)),
            (status, code),
            "{body} -> {answer}"
        );
    }
    let (status, _) = app.get("/v1/accounts/bank:970436:9988776655").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no bank account left behind");
    let (status, _) = app.get("/v1/accounts/payee:V100").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no payee account left behind"
    );
    let (_, payees) = app.get("/v1/payees").await;
    assert_eq!(payees["data"].as_array().unwrap().len(), 1);
    app.assert_verified().await;
}

async fn existing_ledger_accounts_are_adopted_only_when_they_fit(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Accounts made by hand before payees existed, as the ledger README shows.
    let bank = app
        .create_account("bank:970415:113366668888", "asset", json!({}))
        .await;
    let liability = app
        .create_account(
            "payee:V7",
            "liability",
            json!({"debits_must_not_exceed_credits": true}),
        )
        .await;
    let payee = create_payee(
        &app,
        &json!({
            "kind": "vendor", "code": "V7", "name": "Chú Bảy",
            "collection_account": collection("970415", "113366668888", "Le Van Bay"),
        }),
    )
    .await;
    assert_eq!(payee["ledger_account_id"], liability["id"]);
    assert_eq!(payee["collection_account"]["ledger_account_id"], bank["id"]);

    // A same-named account of another kind is not the payee's: refused, nothing written.
    app.create_account("payee:V8", "asset", json!({})).await;
    let (status, answer) = app
        .post(
            "/v1/payees",
            &json!({
                "kind": "vendor", "code": "V8", "name": "Cô Tám",
                "collection_account": collection("970418", "5566778899", "Hoang Thi Tam"),
            }),
        )
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "ACCOUNT_CODE_TAKEN"),
        "{answer}"
    );
    let (status, _) = app.get("/v1/accounts/bank:970418:5566778899").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn payees_are_listed_with_filters_and_cursor_pages(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut created = Vec::new();
    for (index, (kind, hamlet)) in [
        ("vendor", "Khe Cốc"),
        ("vendor", "Đồng Danh"),
        ("school", "Khe Cốc"),
        ("cooperative", "Khe Cốc"),
        ("vendor", "Khe Cốc"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = vendor(&format!("P{index}"), "0123456789");
        body["kind"] = json!(kind);
        body["hamlet"] = json!(hamlet);
        created.push(create_payee(&app, &body).await["id"].clone());
    }
    let (status, vendors) = app.get("/v1/payees?kind=vendor").await;
    assert_eq!(status, StatusCode::OK, "{vendors}");
    assert_eq!(codes_of(&vendors), ["P0", "P1", "P4"]);
    let (_, khe_coc) = app
        .get("/v1/payees?hamlet=Khe%20C%E1%BB%91c&kind=vendor")
        .await;
    assert_eq!(codes_of(&khe_coc), ["P0", "P4"]);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/payees?limit=2&cursor={cursor}"),
            None => "/v1/payees?limit=2".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created);

    let (_, none) = app.get("/v1/payees?active=false").await;
    assert_eq!(codes_of(&none), Vec::<String>::new());
    for (query, status, code) in [
        ("cursor=bm9wZQ", StatusCode::BAD_REQUEST, "INVALID_CURSOR"),
        ("limit=0", StatusCode::BAD_REQUEST, "INVALID_LIMIT"),
        ("limit=501", StatusCode::BAD_REQUEST, "INVALID_LIMIT"),
        ("colour=red", StatusCode::BAD_REQUEST, "INVALID_QUERY"),
        (
            "kind=shop",
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PAYEE_KIND",
        ),
    ] {
        let (got, answer) = app.get(&format!("/v1/payees?{query}")).await;
        assert_eq!((got, error_code(&answer)), (status, code), "{query}");
    }
}

async fn patch_changes_clears_and_deactivates(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let id = payee_id(&app, "V042", "0123456789").await;
    let path = format!("/v1/payees/{id}");
    let patch = |body: Value| {
        let (app, path) = (&app, &path);
        async move {
            read(
                app.client
                    .patch(app.url(path))
                    .bearer_auth(&app.admin)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (status, payee) =
        patch(json!({"stall": "Sạp 7", "hamlet": null, "name": " Bà Hoa "})).await;
    assert_eq!(status, StatusCode::OK, "{payee}");
    assert_eq!(payee["stall"], "Sạp 7");
    assert_eq!(payee["hamlet"], Value::Null);
    assert_eq!(payee["name"], "Bà Hoa");
    assert_eq!(payee["category"], "chè", "fields left out are kept");

    // Moving to another bank account changes the static code; the code itself stays.
    let (status, moved) =
        patch(json!({"collection_account": collection("970422", "0352350917", "Nguyen Thi Hong")}))
            .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let qr = VietQr::parse(moved["static_qr_payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        (qr.bin(), qr.account(), qr.purpose()),
        ("970422", "0352350917", Some("V042"))
    );
    let (status, _) = app.get("/v1/accounts/bank:970422:0352350917").await;
    assert_eq!(status, StatusCode::OK);

    for (body, status, code) in [
        (
            json!({"code": "V043"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
        ),
        (
            json!({"phone": "abc"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PHONE",
        ),
        (
            json!({"collection_account": collection("111111", "0352350917", "A")}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_BANK",
        ),
    ] {
        let (got, answer) = patch(body.clone()).await;
        assert_eq!((got, error_code(&answer)), (status, code), "{body}");
    }

    let outstanding = pending_intent(&app, &id, "5000").await;
    let (status, inactive) = patch(json!({"active": false})).await;
    assert_eq!(
        (status, &inactive["active"]),
        (StatusCode::OK, &json!(false))
    );
    let response = fetch(&app, &format!("{path}/qr.png"), &app.admin).await;
    let (status, answer) = read(response).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYEE_INACTIVE")
    );
    let (status, answer) = create_intent(&app, &json!({"payee_id": id, "amount": "1000"})).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYEE_INACTIVE")
    );
    let outstanding_path = format!(
        "/v1/payment-intents/{}",
        outstanding["id"].as_str().unwrap()
    );
    let (_, outstanding) = app.get(&outstanding_path).await;
    assert_eq!(outstanding["status"], "cancelled", "{outstanding}");

    let (status, answer) = read(
        app.client
            .patch(app.url(&format!("/v1/payees/{}", Uuid::now_v7())))
            .bearer_auth(&app.admin)
            .json(&json!({"stall": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "PAYEE_NOT_FOUND")
    );
}

async fn vendors_and_schools_reach_only_their_own_payee(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let own = payee_id(&app, "V1", "0123456789").await;
    let other = payee_id(&app, "V2", "0123456789").await;
    let other_intent = pending_intent(&app, &other, "5000").await;
    for role in [Role::Vendor, Role::School] {
        let token = token_for_payee(&app, role, &own).await;
        let (status, payee) = app.get_as(&format!("/v1/payees/{own}"), &token).await;
        assert_eq!((status, &payee["code"]), (StatusCode::OK, &json!("V1")));
        let (_, listed) = app.get_as("/v1/payees", &token).await;
        let listed: Vec<&Value> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["id"])
            .collect();
        assert_eq!(listed, [&json!(own)]);

        let (status, intent) = create_intent_as(
            &app,
            &token,
            "k1",
            &json!({"payee_id": own, "amount": "20000"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{intent}");
        let (status, _) = app
            .get_as(
                &format!("/v1/payment-intents/{}", intent["id"].as_str().unwrap()),
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::OK);

        // Another payee's records do not exist for this user.
        let other_intent_id = other_intent["id"].as_str().unwrap();
        for path in [
            format!("/v1/payees/{other}"),
            format!("/v1/payees/{other}/qr.png"),
            format!("/v1/payees/{other}/sticker.svg"),
            format!("/v1/payees/{other}/payment-intents"),
            format!("/v1/payment-intents/{other_intent_id}"),
            format!("/v1/payment-intents/{other_intent_id}/qr.svg"),
        ] {
            let (status, answer) = read(fetch(&app, &path, &token).await).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
        }
        let (status, answer) = create_intent_as(
            &app,
            &token,
            "k2",
            &json!({"payee_id": other, "amount": "20000"}),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::NOT_FOUND, "PAYEE_NOT_FOUND")
        );
        let cancel = app
            .post_idempotent_as(
                &format!("/v1/payment-intents/{other_intent_id}/cancel"),
                "k3",
                &json!({}),
                &token,
            )
            .await;
        assert_eq!(cancel.status(), StatusCode::NOT_FOUND);
        let (status, answer) = read(
            app.client
                .patch(app.url(&format!("/v1/payees/{own}")))
                .bearer_auth(&token)
                .json(&json!({"stall": "mine now"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::FORBIDDEN, "FORBIDDEN")
        );
    }
    // The other payee's intent is untouched.
    let (_, still) = app
        .get(&format!(
            "/v1/payment-intents/{}",
            other_intent["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(still["status"], "pending");
}

async fn users_create_refuses_a_payee_that_does_not_exist(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let create = |username: &str, payee: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_market-ledger"))
            .env("DATABASE_URL", &app.settings.database_url)
            .env("MARKET_LEDGER_DATA_DIR", &app.settings.data_dir)
            .env("MARKET_LEDGER_LOG", "warn")
            .args([
                "users",
                "create",
                "--username",
                username,
                "--role",
                "vendor",
                "--payee",
                payee,
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(PASSWORD.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let missing = Uuid::now_v7().to_string();
    let refused = create("ghost.vendor", &missing);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("payee {missing} not found")),
        "{stderr}"
    );
    let (status, _) = app.login("ghost.vendor", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no user was created");

    let created = create("hoa.vendor", &payee);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let (status, token) = app.login("hoa.vendor", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .get_as(
            &format!("/v1/payees/{payee}"),
            token["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
