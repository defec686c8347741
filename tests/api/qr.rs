//! VietQR codes: parsing a vendor's code, and the static and dynamic images the service renders,
//! read back with a real decoder.

use crc::{Crc, CRC_16_IBM_3740};
use market_ledger::domain::user::Role;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{
    create_payee, decode_png, error_code, fetch, payee_id, pending_intent, png_payload, read,
    token_for_payee, vendor, Backend, TestApp,
};

crate::on_both_backends!(
    qr_parse_reads_real_codes_and_names_each_broken_rule,
    qr_parse_reads_what_banks_and_wallets_print_with_warnings,
    static_qr_png_svg_and_sticker_decode_to_the_payee_code,
    qr_images_are_bounded_and_cacheable,
);

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// Replaces `from` with `to` in a payload and recomputes the CRC.
fn with_fixed_crc(payload: &str, from: &str, to: &str) -> String {
    let body = &payload[..payload.len() - 4];
    assert!(body.contains(from), "{from} in {payload}");
    let body = body.replacen(from, to, 1);
    format!("{body}{:04X}", CRC16.checksum(body.as_bytes()))
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
            parsed["warnings"],
            json!([]),
            "a clean code has no warnings"
        );
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
        // Tag 54 becomes "79.50": a zero fraction is read (below), any other fraction makes
        // the money ambiguous.
        ("540579000", "540579.50", "QR_INVALID_AMOUNT"),
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
    let zero_fraction = with_fixed_crc(vietinbank, "540579000", "540579.00");
    let (status, parsed) = app
        .post("/v1/qr/parse", &json!({ "payload": zero_fraction }))
        .await;
    // Tag 54 now reads "79.00" (still 5 characters): 79 đồng.
    assert_eq!((status, &parsed["amount"]), (StatusCode::OK, &json!("79")));
    assert_eq!(parsed["warnings"][0]["code"], "QR_AMOUNT_ZERO_FRACTION");
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

/// Every payload of tests/fixtures/vietqr_lenient.json: read with its warnings, or answered with
/// its code (and, for another scheme's code, what could be read of it).
async fn qr_parse_reads_what_banks_and_wallets_print_with_warnings(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/vietqr_lenient.json")).unwrap();
    let vectors = fixture["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 10);
    for vector in vectors {
        let (status, parsed) = app
            .post("/v1/qr/parse", &json!({ "payload": vector["payload"] }))
            .await;
        if vector["expect"] == "error" {
            assert_eq!(
                (status, error_code(&parsed)),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    vector["error_code"].as_str().unwrap()
                ),
                "{vector}: {parsed}"
            );
            assert!(!parsed["error"]["message"].as_str().unwrap().is_empty());
            if let Some(details) = vector.get("details") {
                assert_eq!(&parsed["error"]["details"], details, "{vector}");
            }
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{vector}: {parsed}");
        for field in ["bin", "account", "amount", "purpose", "service"] {
            assert_eq!(parsed[field], vector[field], "{field} of {vector}");
        }
        for field in ["additional_data", "other_fields"] {
            if let Some(expected) = vector.get(field) {
                assert_eq!(&parsed[field], expected, "{field} of {vector}");
            }
        }
        let codes: Vec<&Value> = parsed["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|warning| {
                assert!(!warning["message"].as_str().unwrap().is_empty());
                &warning["code"]
            })
            .collect();
        let expected: Vec<&Value> = vector["warnings"].as_array().unwrap().iter().collect();
        assert_eq!(codes, expected, "{vector}");
    }
}
