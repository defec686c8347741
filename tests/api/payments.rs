//! Payees, VietQR codes and payment intents, through the real server.

use std::process::{Command, Stdio};

use crc::{Crc, CRC_16_IBM_3740};
use market_ledger::domain::reference::PaymentReference;
use market_ledger::domain::user::Role;
use market_ledger::domain::vietqr::{Initiation, VietQr};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{error_code, read, Backend, TestApp, PASSWORD};

crate::on_both_backends!(
    onboarding_creates_the_payee_and_its_ledger_accounts_in_one_go,
    payees_share_a_pooled_collection_account,
    bad_payee_input_is_refused_and_nothing_is_half_written,
    existing_ledger_accounts_are_adopted_only_when_they_fit,
    payees_are_listed_with_filters_and_cursor_pages,
    patch_changes_clears_and_deactivates,
    vendors_and_schools_reach_only_their_own_payee,
    qr_parse_reads_real_codes_and_names_each_broken_rule,
    static_qr_png_svg_and_sticker_decode_to_the_payee_code,
    a_payment_intent_has_a_dynamic_code_a_real_decoder_reads,
    payment_intents_are_idempotent,
    bad_payment_intent_input_is_refused_without_effect,
    expiry_is_never_stale_and_the_sweep_writes_it,
    cancelled_intents_stay_cancelled_and_lose_their_code,
    qr_images_are_bounded_and_cacheable,
    users_create_refuses_a_payee_that_does_not_exist,
);

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

fn collection(bin: &str, account: &str, holder: &str) -> Value {
    json!({ "bank_bin": bin, "account_number": account, "holder_name": holder })
}

fn vendor(code: &str, account: &str) -> Value {
    json!({
        "kind": "vendor", "code": code, "name": "Bà Hoa, quầy chè", "hamlet": "Khe Cốc",
        "stall": "Sạp 12", "phone": "0912 345 678", "category": "chè",
        "collection_account": collection("970436", account, "Nguyễn Thị Hồng"),
    })
}

async fn create_payee(app: &TestApp, body: &Value) -> Value {
    let (status, payee) = app.post("/v1/payees", body).await;
    assert_eq!(status, StatusCode::CREATED, "{payee}");
    payee
}

async fn payee_id(app: &TestApp, code: &str, account: &str) -> String {
    create_payee(app, &vendor(code, account)).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A token for a new user of `role` bound to `payee`.
async fn token_for_payee(app: &TestApp, role: Role, payee: &str) -> String {
    let username = format!(
        "{}-{}",
        role.as_str(),
        &Uuid::new_v4().simple().to_string()[..8]
    );
    app.state
        .auth
        .create_user(
            &username,
            role,
            Some(payee.parse().unwrap()),
            PASSWORD.into(),
        )
        .await
        .unwrap();
    app.login(&username, PASSWORD).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn create_intent_as(
    app: &TestApp,
    token: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Value) {
    read(
        app.post_idempotent_as("/v1/payment-intents", key, body, token)
            .await,
    )
    .await
}

async fn create_intent(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    create_intent_as(app, &app.admin, &Uuid::new_v4().to_string(), body).await
}

async fn pending_intent(app: &TestApp, payee: &str, amount: &str) -> Value {
    let (status, intent) =
        create_intent(app, &json!({ "payee_id": payee, "amount": amount })).await;
    assert_eq!(status, StatusCode::CREATED, "{intent}");
    intent
}

async fn fetch(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Decodes a PNG with a real QR decoder (rqrr), as a phone camera would read the screen.
fn decode_png(bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let channels = frame.color_type.samples();
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(
        frame.width as usize,
        frame.height as usize,
        |x, y| buffer[y * frame.line_size + x * channels],
    );
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the picture");
    grids[0].decode().unwrap().1
}

async fn png_payload(app: &TestApp, path: &str, token: &str) -> String {
    let response = fetch(app, path, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(response.headers()[CONTENT_TYPE], "image/png");
    decode_png(&response.bytes().await.unwrap())
}

/// Replaces `from` with `to` in a payload and recomputes the CRC.
fn with_fixed_crc(payload: &str, from: &str, to: &str) -> String {
    let body = &payload[..payload.len() - 4];
    assert!(body.contains(from), "{from} in {payload}");
    let body = body.replacen(from, to, 1);
    format!("{body}{:04X}", CRC16.checksum(body.as_bytes()))
}

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
    let codes = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, vendors) = app.get("/v1/payees?kind=vendor").await;
    assert_eq!(status, StatusCode::OK, "{vendors}");
    assert_eq!(codes(&vendors), ["P0", "P1", "P4"]);
    let (_, khe_coc) = app
        .get("/v1/payees?hamlet=Khe%20C%E1%BB%91c&kind=vendor")
        .await;
    assert_eq!(codes(&khe_coc), ["P0", "P4"]);

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
    assert_eq!(codes(&none), Vec::<String>::new());
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

async fn qr_parse_reads_real_codes_and_names_each_broken_rule(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let fixture: Value = serde_json::from_str(include_str!("../fixtures/vietqr.json")).unwrap();
    for vector in fixture["vectors"].as_array().unwrap() {
        let payload = &vector["payload"];
        let (status, parsed) = app
            .post("/v1/qr/parse", &json!({ "payload": payload }))
            .await;
        if vector["expect"] == "invalid" {
            assert_eq!(
                (status, error_code(&parsed)),
                (StatusCode::UNPROCESSABLE_ENTITY, "QR_CRC_MISMATCH"),
                "{vector}"
            );
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{vector}: {parsed}");
        assert_eq!(parsed["bin"], vector["bin"], "{vector}");
        assert_eq!(parsed["account"], vector["account"], "{vector}");
        assert_eq!(
            parsed["amount"],
            vector.get("amount").cloned().unwrap_or(Value::Null)
        );
        assert_eq!(
            parsed["purpose"],
            vector.get("purpose").cloned().unwrap_or(Value::Null)
        );
        assert_eq!(
            parsed["service"],
            vector.get("service").cloned().unwrap_or(Value::Null)
        );
        let initiation = if vector["poi_method"] == "11" {
            "static"
        } else {
            "dynamic"
        };
        assert_eq!(parsed["initiation"], initiation, "{vector}");
        assert_eq!(
            parsed["bank"]["bin"], vector["bin"],
            "every vector's bank is listed"
        );
    }

    let vietinbank = "00020101021238560010A0000007270126000697041501121133666688880208QRIBFTTA53037045405790005802VN62220818Ung Ho Quy Vac Xin63043ACF";
    let (_, parsed) = app
        .post("/v1/qr/parse", &json!({ "payload": vietinbank }))
        .await;
    assert_eq!(parsed["bank"]["short_name"], "VietinBank");
    assert_eq!(parsed["service_kind"], "account");
    let lowercase_crc = "00020101021138540010A00000072701240006970422011003523509170208QRIBFTTA53037045802VN630479db";
    let (status, parsed) = app
        .post("/v1/qr/parse", &json!({ "payload": lowercase_crc }))
        .await;
    assert_eq!(
        (status, &parsed["account"]),
        (StatusCode::OK, &json!("0352350917"))
    );

    // (text replaced, its replacement, the code) with the CRC recomputed, so the damage
    // reaches the rule behind the checksum.
    let damaged = [
        ("A000000727", "A000000728", "QR_WRONG_GUID"),
        // Tag 38.01 says 99 characters but its template holds 26.
        ("0126", "0199", "QR_NESTED_TLV_MALFORMED"),
        // Tag 53 says 9 characters: the top-level list no longer lines up.
        ("5303704", "5309704", "QR_TLV_MALFORMED"),
        ("5303704", "5303840", "QR_INVALID_CURRENCY"),
        ("540579000", "540579.00", "QR_INVALID_AMOUNT"),
        ("010212", "010213", "QR_INVALID_INITIATION"),
    ];
    let mut cases: Vec<(String, &str)> = damaged
        .into_iter()
        .map(|(from, to, code)| (with_fixed_crc(vietinbank, from, to), code))
        .collect();
    cases.extend([
        (vietinbank.replace("3ACF", "3ACE"), "QR_CRC_MISMATCH"),
        (
            vietinbank.replace("63043ACF", "6304ZZZZ"),
            "QR_CRC_MALFORMED",
        ),
        (vietinbank.replace("63043ACF", ""), "QR_CRC_MISSING"),
        ("x".repeat(600), "QR_PAYLOAD_TOO_LONG"),
    ]);
    for (payload, code) in cases {
        let (status, answer) = app
            .post("/v1/qr/parse", &json!({ "payload": payload }))
            .await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{payload}: {answer}"
        );
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, answer) = app.post("/v1/qr/parse", &json!({ "payload": 42 })).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY")
    );
}

async fn static_qr_png_svg_and_sticker_decode_to_the_payee_code(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = create_payee(&app, &vendor("V042", "0123456789")).await;
    let expected = payee["static_qr_payload"].as_str().unwrap();
    let decoded = png_payload(&app, payee["qr_png_url"].as_str().unwrap(), &app.admin).await;
    assert_eq!(decoded, expected);
    // A vendor reads its own code too.
    let token = token_for_payee(&app, Role::Vendor, payee["id"].as_str().unwrap()).await;
    assert_eq!(
        png_payload(&app, payee["qr_png_url"].as_str().unwrap(), &token).await,
        expected
    );

    let response = fetch(&app, payee["qr_svg_url"].as_str().unwrap(), &app.admin).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "image/svg+xml");
    let svg = response.text().await.unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("width=\"512\""),
        "{svg}"
    );

    let response = fetch(&app, payee["sticker_url"].as_str().unwrap(), &app.admin).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "image/svg+xml");
    let sticker = response.text().await.unwrap();
    for text in [
        "Quét mã để thanh toán",
        "Bà Hoa, quầy chè",
        "Sạp 12",
        "Vietcombank",
        "0123456789",
        "NGUYEN THI HONG",
        "V042",
    ] {
        assert!(sticker.contains(text), "sticker lacks {text}");
    }
}

async fn a_payment_intent_has_a_dynamic_code_a_real_decoder_reads(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = create_payee(&app, &vendor("V042", "0123456789")).await;
    let token = token_for_payee(&app, Role::Vendor, payee["id"].as_str().unwrap()).await;
    let (status, intent) = create_intent_as(
        &app,
        &token,
        "sale-1",
        &json!({"payee_id": payee["id"], "amount": 150000, "description": "Chè Thái 1kg", "expires_in_seconds": 600}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{intent}");
    assert_eq!(intent["status"], "pending");
    assert_eq!(intent["amount"], "150000");
    assert_eq!(intent["currency"], "VND");
    assert_eq!(intent["description"], "Chè Thái 1kg");
    let reference = intent["reference"].as_str().unwrap();
    assert_eq!(
        PaymentReference::parse(reference).unwrap().as_str(),
        reference
    );
    let created: chrono::DateTime<chrono::Utc> =
        intent["created_at"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        intent["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((expires - created).num_seconds(), 600);

    let payload = intent["qr_payload"].as_str().unwrap();
    let qr = VietQr::parse(payload).unwrap();
    assert_eq!(qr.initiation(), Initiation::Dynamic);
    assert_eq!((qr.bin(), qr.account()), ("970436", "0123456789"));
    assert_eq!(
        (qr.amount(), qr.purpose()),
        (Some(150_000), Some(reference))
    );
    // The bank memo of the payment will carry the reference, and the matcher finds it.
    assert_eq!(
        PaymentReference::find_in_memo(&format!("MBVCB.123.{reference}.CT tu 0123 NGUYEN VAN A")),
        [PaymentReference::parse(reference).unwrap()]
    );

    let decoded = png_payload(&app, intent["qr_png_url"].as_str().unwrap(), &token).await;
    assert_eq!(decoded, payload);
    let response = fetch(&app, intent["qr_svg_url"].as_str().unwrap(), &token).await;
    assert_eq!(response.headers()[CONTENT_TYPE], "image/svg+xml");

    let (status, read_back) = app
        .get_as(
            &format!("/v1/payment-intents/{}", intent["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read_back, intent);
    let (status, listed) = app
        .get_as(
            &format!(
                "/v1/payees/{}/payment-intents",
                payee["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["data"], json!([intent]));
}

async fn payment_intents_are_idempotent(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let body = json!({"payee_id": payee, "amount": "25000"});
    let first = app
        .post_idempotent("/v1/payment-intents", "same-key", &body)
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (_, first) = read(first).await;
    let again = app
        .post_idempotent("/v1/payment-intents", "same-key", &body)
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(read(again).await.1, first);

    let other_body = json!({"payee_id": payee, "amount": "26000"});
    let (status, answer) = read(
        app.post_idempotent("/v1/payment-intents", "same-key", &other_body)
            .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
    );
    let (status, answer) = app.post("/v1/payment-intents", &body).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED")
    );

    // Concurrent duplicates of one key create one intent between them.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, token, body) = (
                app.client.clone(),
                app.url("/v1/payment-intents"),
                app.admin.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", "race")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                read(response).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for racer in racers {
        let (status, answer) = racer.await.unwrap();
        match status {
            StatusCode::CREATED => ids.push(answer["id"].clone()),
            StatusCode::CONFLICT => assert_eq!(error_code(&answer), "IDEMPOTENCY_KEY_IN_PROGRESS"),
            other => panic!("{other}: {answer}"),
        }
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, listed) = app
        .get(&format!("/v1/payees/{payee}/payment-intents"))
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
}

async fn bad_payment_intent_input_is_refused_without_effect(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    // (field, its value, the code); the other fields of the request are valid.
    let cases = [
        ("amount", json!("0"), "AMOUNT_NOT_POSITIVE"),
        ("amount", json!(0), "AMOUNT_NOT_POSITIVE"),
        ("amount", json!("-5000"), "AMOUNT_NOT_POSITIVE"),
        ("amount", json!("10000000000000"), "AMOUNT_TOO_LARGE"),
        (
            "amount",
            json!("99999999999999999999999"),
            "AMOUNT_TOO_LARGE",
        ),
        ("amount", json!("1500.5"), "AMOUNT_TOO_PRECISE"),
        ("amount", json!(1500.5), "INVALID_BODY"),
        ("amount", json!("15k"), "AMOUNT_INVALID"),
        ("expires_in_seconds", json!(59), "INVALID_EXPIRY"),
        ("expires_in_seconds", json!(7_776_001), "INVALID_EXPIRY"),
        ("description", json!(" "), "INVALID_DESCRIPTION"),
        ("description", json!("x".repeat(201)), "INVALID_DESCRIPTION"),
        ("payee_id", json!("not-a-uuid"), "INVALID_BODY"),
    ];
    for (field, value, code) in cases {
        let mut body = json!({"payee_id": payee, "amount": "1000"});
        body[field] = value;
        let (status, answer) = create_intent_as(&app, &app.admin, "retry-me", &body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{body}: {answer}"
        );
    }
    let unknown = json!({"payee_id": Uuid::now_v7(), "amount": "1000"});
    let (status, answer) = create_intent_as(&app, &app.admin, "retry-me", &unknown).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "PAYEE_NOT_FOUND")
    );
    let (_, listed) = app
        .get(&format!("/v1/payees/{payee}/payment-intents"))
        .await;
    assert_eq!(listed["data"], json!([]), "nothing was created");
    // A refused request does not use up its key: fixed, it goes through.
    let (status, largest) = create_intent_as(
        &app,
        &app.admin,
        "retry-me",
        &json!({"payee_id": payee, "amount": "9999999999999"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{largest}");
    assert_eq!(
        VietQr::parse(largest["qr_payload"].as_str().unwrap())
            .unwrap()
            .amount(),
        Some(9_999_999_999_999)
    );
}

async fn expiry_is_never_stale_and_the_sweep_writes_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let old = pending_intent(&app, &payee, "1000").await;
    // Time passes (through the service's clock) beyond the old intent's 15 minutes.
    app.state.clock.advance(chrono::Duration::minutes(16));
    let fresh = pending_intent(&app, &payee, "2000").await;
    let old_id = old["id"].as_str().unwrap();

    // Read before any sweep ran: already expired.
    let (_, read_back) = app.get(&format!("/v1/payment-intents/{old_id}")).await;
    assert_eq!(read_back["status"], "expired");
    let ids = |page: &Value| -> Vec<Value> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect()
    };
    let list = format!("/v1/payees/{payee}/payment-intents");
    let (_, expired) = app.get(&format!("{list}?status=expired")).await;
    assert_eq!(ids(&expired), [old["id"].clone()]);
    assert_eq!(expired["data"][0]["status"], "expired");
    let (_, pending) = app.get(&format!("{list}?status=pending")).await;
    assert_eq!(ids(&pending), [fresh["id"].clone()]);
    let (status, answer) = read(
        fetch(
            &app,
            &format!("/v1/payment-intents/{old_id}/qr.png"),
            &app.admin,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYMENT_INTENT_NOT_PAYABLE")
    );
    assert_eq!(answer["error"]["details"]["status"], "expired");
    let (status, answer) = app
        .post(&format!("/v1/payment-intents/{old_id}/cancel"), &json!({}))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYMENT_INTENT_NOT_CANCELLABLE")
    );

    // The sweep writes what readers already saw, once.
    assert_eq!(app.state.payments.expire_intents().await.unwrap(), 1);
    assert_eq!(app.state.payments.expire_intents().await.unwrap(), 0);
    let (_, after) = app.get(&format!("{list}?status=expired")).await;
    assert_eq!(ids(&after), [old["id"].clone()]);
    let (_, fresh_now) = app
        .get(&format!(
            "/v1/payment-intents/{}",
            fresh["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fresh_now["status"], "pending");
    let (status, answer) = app.get(&format!("{list}?status=overdue")).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "INVALID_QUERY")
    );
}

async fn cancelled_intents_stay_cancelled_and_lose_their_code(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let intent = pending_intent(&app, &payee, "1000").await;
    let id = intent["id"].as_str().unwrap();
    let cancel = format!("/v1/payment-intents/{id}/cancel");
    let (status, cancelled) = app.post(&cancel, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    let (status, again) = app.post(&cancel, &json!({})).await;
    assert_eq!(
        (status, &again),
        (StatusCode::OK, &cancelled),
        "a retried cancel answers the same"
    );
    let (status, answer) = read(
        fetch(
            &app,
            &format!("/v1/payment-intents/{id}/qr.svg"),
            &app.admin,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "PAYMENT_INTENT_NOT_PAYABLE")
    );
    let (_, listed) = app
        .get(&format!(
            "/v1/payees/{payee}/payment-intents?status=cancelled"
        ))
        .await;
    assert_eq!(listed["data"], json!([cancelled]));
    let (status, answer) = app
        .post(
            &format!("/v1/payment-intents/{}/cancel", Uuid::now_v7()),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "PAYMENT_INTENT_NOT_FOUND")
    );
}

async fn qr_images_are_bounded_and_cacheable(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = payee_id(&app, "V042", "0123456789").await;
    let intent = pending_intent(&app, &payee, "1000").await;
    let png = intent["qr_png_url"].as_str().unwrap();
    for (query, status, code) in [
        (
            "size=127",
            StatusCode::UNPROCESSABLE_ENTITY,
            "IMAGE_SIZE_OUT_OF_RANGE",
        ),
        (
            "size=2049",
            StatusCode::UNPROCESSABLE_ENTITY,
            "IMAGE_SIZE_OUT_OF_RANGE",
        ),
        (
            "size=1000000000",
            StatusCode::UNPROCESSABLE_ENTITY,
            "IMAGE_SIZE_OUT_OF_RANGE",
        ),
        ("size=big", StatusCode::BAD_REQUEST, "INVALID_QUERY"),
    ] {
        for path in [png.to_owned(), format!("/v1/payees/{payee}/qr.svg")] {
            let (got, answer) =
                read(fetch(&app, &format!("{path}?{query}"), &app.admin).await).await;
            assert_eq!((got, error_code(&answer)), (status, code), "{path}?{query}");
        }
    }
    for size in [128, 2048] {
        let response = fetch(&app, &format!("{png}?size={size}"), &app.admin).await;
        let bytes = response.bytes().await.unwrap();
        let decoder = png::Decoder::new(&bytes[..]).read_info().unwrap();
        assert_eq!((decoder.info().width, decoder.info().height), (size, size));
        assert_eq!(decode_png(&bytes), intent["qr_payload"].as_str().unwrap());
    }

    let response = fetch(&app, png, &app.admin).await;
    assert_eq!(response.headers()[CACHE_CONTROL], "private, no-cache");
    let etag = response.headers()[ETAG].clone();
    let revalidated = app
        .client
        .get(app.url(png))
        .bearer_auth(&app.admin)
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers()[ETAG], etag);
    assert!(revalidated.bytes().await.unwrap().is_empty());
    let other_size = app
        .client
        .get(app.url(&format!("{png}?size=256")))
        .bearer_auth(&app.admin)
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_size.status(),
        StatusCode::OK,
        "another picture, another tag"
    );
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
