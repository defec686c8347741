use std::collections::BTreeSet;

use proptest::prelude::*;
use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

/// One payload from tests/fixtures/vietqr.json (a copy of shared/vectors/vietqr.json) or
/// tests/fixtures/vietqr_lenient.json (which adds the warnings or the error code).
#[derive(Deserialize)]
struct Vector {
    id: String,
    expect: String,
    payload: String,
    bin: Option<String>,
    account: Option<String>,
    amount: Option<String>,
    purpose: Option<String>,
    service: Option<String>,
    poi_method: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    error_code: Option<String>,
}

impl Vector {
    /// Panics unless `qr` holds the fields this vector lists.
    fn assert_fields(&self, qr: &VietQr) {
        let id = &self.id;
        assert_eq!(Some(qr.bin()), self.bin.as_deref(), "{id}");
        assert_eq!(Some(qr.account()), self.account.as_deref(), "{id}");
        assert_eq!(qr.amount().map(|a| a.to_string()), self.amount, "{id}");
        assert_eq!(qr.purpose(), self.purpose.as_deref(), "{id}");
        assert_eq!(
            qr.service().map(Service::code),
            self.service.as_deref(),
            "{id}"
        );
        assert_eq!(
            Some(qr.initiation().code()),
            self.poi_method.as_deref(),
            "{id}"
        );
    }
}

fn vectors() -> Vec<Vector> {
    let file: VectorFile =
        serde_json::from_str(include_str!("../../../tests/fixtures/vietqr.json")).unwrap();
    file.vectors
}

fn lenient_vectors() -> Vec<Vector> {
    let file: VectorFile =
        serde_json::from_str(include_str!("../../../tests/fixtures/vietqr_lenient.json")).unwrap();
    file.vectors
}

fn vector(id: &str) -> Vector {
    vectors().into_iter().find(|v| v.id == id).unwrap()
}

fn tlv(tag: &str, value: &str) -> String {
    format!("{tag}{:02}{value}", value.chars().count())
}

fn with_crc(body: &str) -> String {
    let covered = format!("{body}{CRC_FIELD_HEADER}");
    let crc = CRC16.checksum(covered.as_bytes());
    format!("{covered}{crc:04X}")
}

fn merchant_account(guid: &str, beneficiary: &str, service: Option<&str>) -> String {
    let mut value = tlv("00", guid) + &tlv("01", beneficiary);
    if let Some(service) = service {
        value += &tlv("02", service);
    }
    value
}

fn beneficiary(bin: &str, account: &str) -> String {
    tlv("00", bin) + &tlv("01", account)
}

/// The fields of vector "xuannghia-acb-dyn-1000", for building broken variants of it.
fn valid_fields() -> Vec<(&'static str, String)> {
    vec![
        ("00", "01".into()),
        ("01", "12".into()),
        (
            "38",
            merchant_account(
                NAPAS_GUID,
                &beneficiary("970416", "257678859"),
                Some("QRIBFTTA"),
            ),
        ),
        ("53", "704".into()),
        ("54", "1000".into()),
        ("58", "VN".into()),
        ("62", tlv("08", "Chuyen tien")),
    ]
}

fn build(fields: &[(&str, String)]) -> String {
    with_crc(
        &fields
            .iter()
            .map(|(tag, value)| tlv(tag, value))
            .collect::<String>(),
    )
}

fn replacing(tag: &str, value: &str) -> String {
    let mut fields = valid_fields();
    let field = fields.iter_mut().find(|(t, _)| *t == tag).unwrap();
    field.1 = value.to_owned();
    build(&fields)
}

fn without(tag: &str) -> String {
    let fields: Vec<_> = valid_fields()
        .into_iter()
        .filter(|(t, _)| *t != tag)
        .collect();
    build(&fields)
}

fn parse_error(payload: &str) -> VietQrError {
    VietQr::parse(payload).expect_err("payload must be rejected")
}

#[test]
fn test_builder_reproduces_a_real_vector() {
    assert_eq!(
        build(&valid_fields()),
        vector("xuannghia-acb-dyn-1000").payload
    );
}

#[test]
fn every_vector_decodes_to_its_listed_fields_or_is_rejected() {
    let mut checked = 0;
    for v in vectors() {
        match v.expect.as_str() {
            "valid" | "valid-case-insensitive" => {
                let ReadQr { qr, warnings } =
                    VietQr::read(&v.payload).unwrap_or_else(|e| panic!("{}: rejected: {e}", v.id));
                v.assert_fields(&qr);
                assert_eq!(warnings, [], "{}: real NAPAS codes read cleanly", v.id);
            }
            "invalid" => {
                assert!(VietQr::parse(&v.payload).is_err(), "{}: accepted", v.id);
            }
            other => panic!("{}: unknown expectation {other:?}", v.id),
        }
        checked += 1;
    }
    assert_eq!(checked, 13, "every vector in the fixture is checked");
}

/// Every valid vector re-encodes to exactly its payload, except that a lowercase CRC comes
/// back uppercase ("mbbank-app-lowercase-crc"): DESIGN.md says CRCs are written as
/// uppercase hex and only parsed in either case, so that one cannot round-trip byte for byte.
/// Extra fields (52, 59, 60, 80, 62.03, 62.05) survive because they are kept and all
/// vectors list their fields in ascending tag order, which is the order encode writes.
#[test]
fn every_valid_vector_re_encodes_to_its_payload() {
    for v in vectors()
        .into_iter()
        .filter(|v| v.expect.starts_with("valid"))
    {
        let encoded = VietQr::parse(&v.payload).unwrap().encode();
        let (body, crc) = v.payload.split_at(v.payload.len() - 4);
        assert_eq!(
            encoded,
            format!("{body}{}", crc.to_ascii_uppercase()),
            "{}",
            v.id
        );
        if crc == crc.to_ascii_uppercase() {
            assert_eq!(encoded, v.payload, "{}", v.id);
        }
    }
}

#[test]
fn lowercase_crc_is_accepted_and_written_uppercase() {
    let payload = vector("mbbank-app-lowercase-crc").payload;
    assert!(payload.ends_with("79db"));
    let qr = VietQr::parse(&payload).unwrap();
    assert!(qr.encode().ends_with("630479DB"));

    let uppercase = vector("xuannghia-acb-dyn-1000").payload;
    let lowercase = uppercase.replace("6304BBB8", "6304bbb8");
    assert_eq!(
        VietQr::parse(&lowercase).unwrap(),
        VietQr::parse(&uppercase).unwrap()
    );
}

#[test]
fn crc_with_leading_zero_is_padded_to_four_digits() {
    let payload = vector("techcombank-crc-leading-zero").payload;
    assert!(VietQr::parse(&payload)
        .unwrap()
        .encode()
        .ends_with("63040283"));
}

#[test]
fn extra_fields_are_kept() {
    let momo = VietQr::parse(&vector("momo-via-bvbank").payload).unwrap();
    assert_eq!(
        momo.other_additional_data(),
        [TlvField {
            tag: 5,
            value: "MOMOW2W34875080".into()
        }]
    );
    assert_eq!(
        momo.other_fields(),
        [TlvField {
            tag: 80,
            value: "046".into()
        }]
    );
    assert_eq!(momo.purpose(), None);

    let push = VietQr::parse(&vector("napas-push-merchant").payload).unwrap();
    assert_eq!(push.service(), None);
    let tags: Vec<u8> = push.other_fields().iter().map(|f| f.tag).collect();
    assert_eq!(tags, [52, 59, 60]);
    assert_eq!(push.other_fields()[1].value, "PHUONG CAC");
    assert_eq!(push.other_additional_data()[0].tag, 3);
}

#[test]
fn lengths_count_characters_not_bytes() {
    // A merchant-information language template (64) in Vietnamese: "Chợ Đông" is 8
    // characters but 11 bytes. The CRC still covers the UTF-8 bytes.
    let mut fields = valid_fields();
    fields.push(("64", tlv("00", "vi") + &tlv("01", "Chợ Đông")));
    let payload = build(&fields);
    assert!(payload.contains("64180002vi0108Chợ Đông"));
    let qr = VietQr::parse(&payload).unwrap();
    assert_eq!(qr.other_fields()[0].value, "0002vi0108Chợ Đông");
    assert_eq!(qr.encode(), payload);
}

#[test]
fn every_flipped_character_before_the_crc_is_a_crc_mismatch() {
    let payload = vector("liopay-vcb-dyn").payload;
    for position in 0..payload.len() - CRC_FIELD_LEN {
        let mut bytes = payload.clone().into_bytes();
        bytes[position] = if bytes[position] == b'7' { b'8' } else { b'7' };
        let damaged = String::from_utf8(bytes).unwrap();
        let error = parse_error(&damaged);
        assert_eq!(error.code(), "QR_CRC_MISMATCH", "position {position}");
    }
    let error = parse_error(&vector("neg-bad-crc").payload);
    assert_eq!(
        error,
        VietQrError::CrcMismatch {
            found: "BBB5".into(),
            computed: "BBB8".into()
        }
    );
}

#[test]
fn crc_must_close_the_payload() {
    let valid = vector("xuannghia-acb-static").payload;
    for broken in [
        "",
        "6304",
        &valid[..valid.len() - 1],
        &valid[..valid.len() - 8],
        &format!("{valid} "),
        &valid.replace("6304AE9F", "6305AE9F"),
    ] {
        assert_eq!(parse_error(broken), VietQrError::CrcMissing, "{broken:?}");
    }
    for crc in ["AE9G", "+E9F", " AE9"] {
        let broken = valid.replace("AE9F", crc);
        assert_eq!(
            parse_error(&broken),
            VietQrError::CrcMalformed { found: crc.into() }
        );
    }
    // Multi-byte characters at the end: cut through by the 8-byte tail, before "6304", or
    // in place of the hex digits.
    assert_eq!(parse_error("000201€1234567").code(), "QR_CRC_MISSING");
    assert_eq!(parse_error("000201Đ6304AB").code(), "QR_CRC_MISSING");
    assert_eq!(parse_error("0002016304ĐĐ").code(), "QR_CRC_MALFORMED");
    assert_eq!(parse_error("00020163041Đ2").code(), "QR_CRC_MALFORMED");
}

#[test]
fn payloads_over_512_characters_are_refused_before_parsing() {
    let error = parse_error(&"0".repeat(513));
    assert_eq!(error, VietQrError::PayloadTooLong { length: 513 });
    assert_eq!(error.code(), "QR_PAYLOAD_TOO_LONG");
}

#[test]
fn lying_lengths_are_malformed_tlv() {
    // 62 claims 16 characters but only 15 stand before the CRC field.
    let body = tlv("00", "01") + &tlv("01", "12") + &tlv("53", "704") + "62160811Chuyen tien";
    assert_eq!(
        parse_error(&with_crc(&body)),
        VietQrError::TlvMalformed {
            offset: 19,
            fault: TlvFault::ValueRunsPastEnd {
                tag: "62".into(),
                declared: 16,
                remaining: 15
            }
        }
    );
    // A length that claims less than is there leaves a tail that is not a field.
    let body = tlv("00", "01") + "0101" + "12";
    assert_eq!(
        parse_error(&with_crc(&body)),
        VietQrError::TlvMalformed {
            offset: 11,
            fault: TlvFault::HeaderTruncated { remaining: 1 }
        }
    );
}

#[test]
fn malformed_top_level_tlv_names_the_fault() {
    let cases = [
        (
            "000201010A12",
            TlvFault::LengthNotNumeric {
                tag: "01".into(),
                length: "0A".into(),
            },
        ),
        ("000201X10212", TlvFault::TagNotNumeric { tag: "X1".into() }),
        ("0002010100", TlvFault::ZeroLength { tag: "01".into() }),
        (
            "000201010212010211",
            TlvFault::DuplicateTag { tag: "01".into() },
        ),
        (
            "00020163041234",
            TlvFault::DuplicateTag { tag: "63".into() },
        ),
        (
            "010212000201",
            TlvFault::PayloadFormatNotFirst {
                first_tag: "01".into(),
            },
        ),
        ("000201 1", TlvFault::HeaderTruncated { remaining: 2 }),
        ("000201-102", TlvFault::TagNotNumeric { tag: "-1".into() }),
        (
            "000201010+12",
            TlvFault::LengthNotNumeric {
                tag: "01".into(),
                length: "0+".into(),
            },
        ),
    ];
    for (body, fault) in cases {
        let error = parse_error(&with_crc(body));
        assert!(
            matches!(&error, VietQrError::TlvMalformed { fault: f, .. } if *f == fault),
            "{body:?}: {error:?}"
        );
        assert_eq!(error.code(), "QR_TLV_MALFORMED");
    }
}

#[test]
fn malformed_nested_tlv_names_the_template() {
    // 38.01 claims 24 characters; 23 follow (the service code is left out so that the
    // lie runs past the end of template 38 instead of into 38.02).
    let lying_beneficiary = format!("0010{NAPAS_GUID}0124") + "00069704160109257678859";
    let error = parse_error(&replacing("38", &lying_beneficiary));
    assert_eq!(
        error,
        VietQrError::NestedTlvMalformed {
            template: "38",
            // 000201 010212 3847 0010A000000727 | 01..: 12 + 4 + 14 characters in.
            offset: 30,
            fault: TlvFault::ValueRunsPastEnd {
                tag: "01".into(),
                declared: 24,
                remaining: 23
            }
        }
    );
    assert_eq!(error.code(), "QR_NESTED_TLV_MALFORMED");

    let lying_bin = merchant_account(NAPAS_GUID, "00079704160109257678859", Some("QRIBFTTA"));
    assert!(matches!(
        parse_error(&replacing("38", &lying_bin)),
        VietQrError::NestedTlvMalformed {
            template: "38.01",
            ..
        }
    ));
    assert!(matches!(
        parse_error(&replacing("62", "0812Chuyen tien")),
        VietQrError::NestedTlvMalformed {
            template: "62",
            fault: TlvFault::ValueRunsPastEnd { .. },
            ..
        }
    ));
    assert!(matches!(
        parse_error(&replacing("62", "08ABChuyen tien")),
        VietQrError::NestedTlvMalformed {
            template: "62",
            fault: TlvFault::LengthNotNumeric { .. },
            ..
        }
    ));
}

#[test]
fn missing_fields_are_named() {
    for tag in ["01", "38", "53", "58"] {
        assert_eq!(
            parse_error(&without(tag)),
            VietQrError::MissingField { field: tag },
        );
    }
    assert_eq!(
        parse_error(&with_crc(&tlv("01", "12"))),
        VietQrError::MissingField { field: "00" }
    );
    let account_only = beneficiary("970416", "257678859");
    for (merchant, field) in [
        (tlv("01", &account_only), "38.00"),
        (tlv("00", NAPAS_GUID), "38.01"),
        (
            merchant_account(NAPAS_GUID, &tlv("01", "257678859"), None),
            "38.01.00",
        ),
        (
            merchant_account(NAPAS_GUID, &tlv("00", "970416"), None),
            "38.01.01",
        ),
    ] {
        let error = parse_error(&replacing("38", &merchant));
        assert_eq!(error, VietQrError::MissingField { field });
        assert_eq!(error.code(), "QR_MISSING_FIELD");
        assert!(error.to_string().contains(field));
    }
}

#[test]
fn unknown_sub_fields_of_the_merchant_account_are_refused() {
    let mut merchant = valid_fields()[2].1.clone();
    merchant += &tlv("03", "X");
    let error = parse_error(&replacing("38", &merchant));
    assert_eq!(
        error,
        VietQrError::UnexpectedField {
            field: "38.03".into()
        }
    );
    assert_eq!(error.code(), "QR_UNEXPECTED_FIELD");

    let beneficiary_with_extra = beneficiary("970416", "257678859") + &tlv("02", "X");
    let merchant = merchant_account(NAPAS_GUID, &beneficiary_with_extra, None);
    assert_eq!(
        parse_error(&replacing("38", &merchant)),
        VietQrError::UnexpectedField {
            field: "38.01.02".into()
        }
    );
}

#[test]
fn each_napas_rule_has_its_own_code() {
    let beneficiary_of = |bin: &str, account: &str| {
        merchant_account(NAPAS_GUID, &beneficiary(bin, account), Some("QRIBFTTA"))
    };
    let cases: Vec<(String, &str)> = vec![
        (replacing("00", "02"), "QR_UNSUPPORTED_VERSION"),
        (replacing("01", "13"), "QR_INVALID_INITIATION"),
        (replacing("01", "1"), "QR_INVALID_INITIATION"),
        (
            replacing(
                "38",
                &merchant_account("A000000728", &beneficiary("970416", "1234567"), None),
            ),
            "QR_WRONG_GUID",
        ),
        (
            replacing(
                "38",
                &merchant_account("a000000727", &beneficiary("970416", "1234567"), None),
            ),
            "QR_WRONG_GUID",
        ),
        (
            replacing("38", &beneficiary_of("97041", "257678859")),
            "QR_INVALID_BIN",
        ),
        (
            replacing("38", &beneficiary_of("97041A", "257678859")),
            "QR_INVALID_BIN",
        ),
        (
            replacing("38", &beneficiary_of("970416", &"1".repeat(20))),
            "QR_INVALID_ACCOUNT",
        ),
        (
            replacing("38", &beneficiary_of("970416", "2576-78859")),
            "QR_INVALID_ACCOUNT",
        ),
        (
            replacing(
                "38",
                &merchant_account(
                    NAPAS_GUID,
                    &beneficiary("970416", "257678859"),
                    Some("QRPUSH"),
                ),
            ),
            "QR_UNKNOWN_SERVICE",
        ),
        (replacing("54", "1000.5"), "QR_INVALID_AMOUNT"),
        (replacing("54", "-1000"), "QR_INVALID_AMOUNT"),
        (replacing("54", "0"), "QR_INVALID_AMOUNT"),
        (replacing("54", "01000"), "QR_INVALID_AMOUNT"),
        (replacing("54", "10000000000000"), "QR_INVALID_AMOUNT"),
        (replacing("53", "840"), "QR_INVALID_CURRENCY"),
        (replacing("58", "vn"), "QR_INVALID_COUNTRY"),
        (
            replacing("62", &tlv("08", "Thanh\ttoan")),
            "QR_INVALID_PURPOSE",
        ),
        (
            replacing("62", &tlv("08", "Thanh toan\u{202E}1#")),
            "QR_INVALID_PURPOSE",
        ),
        (replacing("54", "1000.50"), "QR_INVALID_AMOUNT"),
        (replacing("54", "1000.0a"), "QR_INVALID_AMOUNT"),
        (replacing("54", ".00"), "QR_INVALID_AMOUNT"),
        (replacing("54", "0.00"), "QR_INVALID_AMOUNT"),
        (replacing("54", "01000.00"), "QR_INVALID_AMOUNT"),
        (replacing("54", "10000000000.00"), "QR_INVALID_AMOUNT"),
    ];
    for (payload, code) in cases {
        let error = parse_error(&payload);
        assert_eq!(error.code(), code, "{payload}: {error}");
    }
}

#[test]
fn amount_limits_when_parsing() {
    let largest = VietQr::parse(&replacing("54", "9999999999999")).unwrap();
    assert_eq!(largest.amount(), Some(9_999_999_999_999));
    assert_eq!(
        VietQr::parse(&replacing("54", "1")).unwrap().amount(),
        Some(1)
    );
    assert_eq!(
        parse_error(&replacing("54", "0")),
        VietQrError::InvalidAmount {
            found: "0".into(),
            rule: "must be greater than zero"
        }
    );
}

#[test]
fn purpose_limits_when_parsing() {
    let longest = "a".repeat(PURPOSE_MAX_LEN);
    let read = VietQr::read(&replacing("62", &tlv("08", &longest))).unwrap();
    assert_eq!(read.qr.purpose(), Some(longest.as_str()));
    assert_eq!(read.warnings, []);
    // Longer than NAPAS's 25, up to what a TLV value holds: read, with a warning.
    let long = "a".repeat(95);
    let read = VietQr::read(&replacing("62", &tlv("08", &long))).unwrap();
    assert_eq!(read.qr.purpose(), Some(long.as_str()));
    assert_eq!(read.warnings, [QrWarning::PurposeLong { length: 95 }]);
    assert_eq!(read.qr.encode(), replacing("62", &tlv("08", &long)));
}

#[test]
fn new_builds_our_static_and_dynamic_codes() {
    let sticker = VietQr::new(
        Initiation::Static,
        "970416",
        "257678859",
        Service::Account,
        None,
        None,
    )
    .unwrap();
    assert_eq!(sticker.encode(), vector("xuannghia-acb-static").payload);

    let intent = VietQr::new(
        Initiation::Dynamic,
        "970416",
        "257678859",
        Service::Account,
        Some(1000),
        Some("Chuyển tiền"),
    )
    .unwrap();
    assert_eq!(intent.encode(), vector("xuannghia-acb-dyn-1000").payload);

    let card = VietQr::new(
        Initiation::Static,
        "970403",
        "9704031101234567",
        Service::Card,
        None,
        None,
    )
    .unwrap();
    assert_eq!(card.encode(), vector("napas-style-static-card").payload);
}

#[test]
fn new_folds_and_cuts_the_purpose() {
    let qr = VietQr::new(
        Initiation::Dynamic,
        "970415",
        "113366668888",
        Service::Account,
        Some(79_000),
        Some("Ủng hộ quỹ vắc-xin, cho trẻ em toàn xã!"),
    )
    .unwrap();
    assert_eq!(qr.purpose(), Some("Ung ho quy vac xin cho tr"));
    assert_eq!(VietQr::parse(&qr.encode()).unwrap(), qr);
}

#[test]
fn new_enforces_our_stricter_rules() {
    let new = |bin: &str, account: &str, service, amount, purpose| {
        VietQr::new(Initiation::Dynamic, bin, account, service, amount, purpose)
            .expect_err("must be refused")
    };
    use Service::{Account, Card};
    assert_eq!(
        new("97041", "257678859", Account, None, None).code(),
        "QR_INVALID_BIN"
    );
    assert_eq!(
        new("9704160", "257678859", Account, None, None).code(),
        "QR_INVALID_BIN"
    );
    for (account, service, rule) in [
        ("VQRQABRLS0448", Account, "must be digits only"),
        ("12345", Account, "an account number has 6 to 19 digits"),
        (
            "12345678901234567890",
            Account,
            "an account number has 6 to 19 digits",
        ),
        ("970403110123456", Card, "a card number has 16 to 19 digits"),
        (
            "97040311012345678901",
            Card,
            "a card number has 16 to 19 digits",
        ),
    ] {
        assert_eq!(
            new("970416", account, service, None, None),
            VietQrError::InvalidAccount {
                found: account.into(),
                rule
            }
        );
    }
    assert_eq!(
        new("970416", "123456", Account, Some(0), None).code(),
        "QR_INVALID_AMOUNT"
    );
    assert_eq!(
        new("970416", "123456", Account, Some(10_000_000_000_000), None).code(),
        "QR_INVALID_AMOUNT"
    );
    assert_eq!(
        new("970416", "123456", Account, None, Some("!!! ...")),
        VietQrError::InvalidPurpose {
            found: "!!! ...".into(),
            rule: "has no letters or digits to keep"
        }
    );
    assert!(VietQr::new(
        Initiation::Static,
        "970416",
        "123456",
        Account,
        Some(9_999_999_999_999),
        None
    )
    .is_ok());
}

/// Each code must be produced by at least one case above; this lists one per code so a
/// new variant without a test fails here.
#[test]
fn every_error_code_is_reachable() {
    let produced: BTreeSet<&str> = [
        parse_error(&"0".repeat(600)),
        parse_error("000201"),
        parse_error("0002016304XYZW"),
        parse_error(&vector("neg-bad-crc").payload),
        parse_error(&with_crc("00020101")),
        parse_error(&replacing("62", "0899")),
        parse_error(&without("53")),
        parse_error(&replacing("38", &(valid_fields()[2].1.clone() + "0301X"))),
        parse_error(&replacing("00", "02")),
        parse_error(&replacing("01", "10")),
        parse_error(&replacing(
            "38",
            &merchant_account("A000000000", "0006970416", None),
        )),
        parse_error(&replacing(
            "38",
            &merchant_account(NAPAS_GUID, &beneficiary("9704", "1"), None),
        )),
        parse_error(&replacing(
            "38",
            &merchant_account(NAPAS_GUID, &beneficiary("970416", "a_b"), None),
        )),
        parse_error(&replacing(
            "38",
            &merchant_account(NAPAS_GUID, &beneficiary("970416", "1"), Some("X")),
        )),
        parse_error(&replacing("54", "1e3")),
        parse_error(&replacing("53", "978")),
        parse_error(&replacing("58", "US")),
        parse_error(&replacing("62", &tlv("08", "a\nb"))),
        parse_error(&vnpay_merchant_code()),
    ]
    .iter()
    .map(VietQrError::code)
    .collect();
    let all: BTreeSet<&str> = [
        "QR_PAYLOAD_TOO_LONG",
        "QR_CRC_MISSING",
        "QR_CRC_MALFORMED",
        "QR_CRC_MISMATCH",
        "QR_TLV_MALFORMED",
        "QR_NESTED_TLV_MALFORMED",
        "QR_MISSING_FIELD",
        "QR_UNEXPECTED_FIELD",
        "QR_UNSUPPORTED_VERSION",
        "QR_INVALID_INITIATION",
        "QR_WRONG_GUID",
        "QR_INVALID_BIN",
        "QR_INVALID_ACCOUNT",
        "QR_UNKNOWN_SERVICE",
        "QR_INVALID_AMOUNT",
        "QR_INVALID_CURRENCY",
        "QR_INVALID_COUNTRY",
        "QR_INVALID_PURPOSE",
        "QR_NOT_A_BANK_TRANSFER",
    ]
    .into_iter()
    .collect();
    assert_eq!(produced, all);
}

/// A VNPAY-QR merchant code: template 26 with VNPAY's GUID, no NAPAS tag 38.
fn vnpay_merchant_code() -> String {
    build(&[
        ("00", "01".into()),
        ("01", "12".into()),
        ("26", tlv("00", VNPAY_GUID) + &tlv("01", "0108CHOKHECOC")),
        ("52", "5812".into()),
        ("53", "704".into()),
        ("54", "10000.00".into()),
        ("58", "VN".into()),
        ("59", "CHO KHE COC".into()),
        ("62", tlv("01", "HD0042") + &tlv("08", "Mua che")),
    ])
}

/// `tlv` with the length counted in UTF-8 bytes, as some generators write it.
fn tlv_bytes(tag: &str, value: &str) -> String {
    format!("{tag}{:02}{value}", value.len())
}

#[test]
fn every_lenient_vector_reads_with_its_warnings_or_its_error() {
    let mut checked = 0;
    for v in lenient_vectors() {
        match v.expect.as_str() {
            "valid" => {
                let ReadQr { qr, warnings } =
                    VietQr::read(&v.payload).unwrap_or_else(|e| panic!("{}: rejected: {e}", v.id));
                v.assert_fields(&qr);
                let codes: Vec<&str> = warnings.iter().map(QrWarning::code).collect();
                assert_eq!(codes, v.warnings, "{}", v.id);
                assert!(!warnings.is_empty(), "{}: a lenient vector warns", v.id);
                // What was read re-encodes to a clean code that reads back the same.
                let clean = VietQr::read(&qr.encode()).unwrap();
                assert_eq!(clean.qr, qr, "{}", v.id);
                assert!(clean.warnings.iter().all(|w| !matches!(
                    w,
                    QrWarning::AmountZeroFraction { .. } | QrWarning::LengthsCountedInBytes { .. }
                )));
            }
            "error" => {
                let error = parse_error(&v.payload);
                assert_eq!(Some(error.code()), v.error_code.as_deref(), "{}", v.id);
            }
            other => panic!("{}: unknown expectation {other:?}", v.id),
        }
        checked += 1;
    }
    assert_eq!(checked, 10, "every lenient vector is checked");
}

#[test]
fn a_purpose_with_punctuation_or_vietnamese_letters_is_read_with_a_warning() {
    for (purpose, unusual) in [
        ("Thanh toan don #123.", "#."),
        ("CK-8K2H9QX4", "-"),
        ("Chuyển tiền", "ểề"),
        ("Tiền chợ, sạp #7", "ềợ,ạ#"),
    ] {
        let payload = replacing("62", &tlv("08", purpose));
        let ReadQr { qr, warnings } = VietQr::read(&payload).unwrap();
        assert_eq!(qr.purpose(), Some(purpose));
        assert_eq!(
            warnings,
            [QrWarning::PurposeUnusualCharacters {
                characters: unusual.into()
            }]
        );
        assert_eq!(warnings[0].code(), "QR_PURPOSE_UNUSUAL_CHARACTERS");
        assert!(warnings[0].to_string().contains(&format!("{unusual:?}")));
        // Kept as written, so the code re-encodes to itself.
        assert_eq!(qr.encode(), payload);
    }
    // Both unusual and long: one warning each, in the order they were found.
    let purpose = "Thanh toán hóa đơn tiền điện tháng 11";
    let warnings = VietQr::read(&replacing("62", &tlv("08", purpose)))
        .unwrap()
        .warnings;
    let codes: Vec<&str> = warnings.iter().map(QrWarning::code).collect();
    assert_eq!(codes, ["QR_PURPOSE_UNUSUAL_CHARACTERS", "QR_PURPOSE_LONG"]);
}

#[test]
fn control_characters_in_the_purpose_stay_refused() {
    for purpose in [
        "Chuyen\ntien",
        "a\tb",
        "x\u{7}",
        "abc\u{202E}cba",
        "a\u{2066}b",
        "\u{85}",
    ] {
        assert_eq!(
            parse_error(&replacing("62", &tlv("08", purpose))),
            VietQrError::InvalidPurpose {
                found: purpose.into(),
                rule: "control characters are not allowed"
            },
            "{purpose:?}"
        );
    }
}

#[test]
fn an_amount_with_a_zero_fraction_is_read_as_whole_dong() {
    for text in ["10000.00", "10000.0", "10000.", "1.000"] {
        let ReadQr { qr, warnings } = VietQr::read(&replacing("54", text)).unwrap();
        assert_eq!(
            qr.amount(),
            Some(text.split('.').next().unwrap().parse().unwrap())
        );
        assert_eq!(
            warnings,
            [QrWarning::AmountZeroFraction { found: text.into() }]
        );
        assert_eq!(warnings[0].code(), "QR_AMOUNT_ZERO_FRACTION");
        // Written back without the fraction: our codes never carry one.
        assert!(qr
            .encode()
            .contains(&tlv("54", text.split('.').next().unwrap())));
    }
    assert_eq!(
        VietQr::read(&replacing("54", "999999999.000"))
            .unwrap()
            .qr
            .amount(),
        Some(999_999_999)
    );
    // A fraction that is not zero would make the money ambiguous.
    assert_eq!(
        parse_error(&replacing("54", "10000.50")),
        VietQrError::InvalidAmount {
            found: "10000.50".into(),
            rule: "VND has no minor unit: a non-zero fraction would make the amount ambiguous"
        }
    );
    assert_eq!(
        parse_error(&replacing("54", "1.2.0")).code(),
        "QR_INVALID_AMOUNT"
    );
}

#[test]
fn lengths_counted_in_bytes_are_read_with_a_warning() {
    // 62 and 62.08 both count the 15 bytes of "Chuyển tiền" (11 characters).
    let mut fields = valid_fields();
    fields.pop();
    let body: String = fields.iter().map(|(tag, value)| tlv(tag, value)).collect();
    let payload = with_crc(&(body.clone() + &tlv_bytes("62", &tlv_bytes("08", "Chuyển tiền"))));
    assert!(payload.contains("62190815Chuyển tiền"));
    let ReadQr { qr, warnings } = VietQr::read(&payload).unwrap();
    assert_eq!(qr.purpose(), Some("Chuyển tiền"));
    assert_eq!(qr.amount(), Some(1000));
    assert_eq!(
        warnings,
        [
            QrWarning::LengthsCountedInBytes {
                place: "the payload"
            },
            QrWarning::LengthsCountedInBytes { place: "62" },
            QrWarning::PurposeUnusualCharacters {
                characters: "ểề".into()
            },
        ]
    );
    assert_eq!(warnings[0].code(), "QR_LENGTHS_COUNTED_IN_BYTES");
    assert!(warnings[1].to_string().contains("template 62"));
    // Written back in characters, as EMVCo says; that reads without the byte warning.
    let rewritten = qr.encode();
    assert!(rewritten.contains("62150811Chuyển tiền"));
    assert_eq!(VietQr::read(&rewritten).unwrap().warnings.len(), 1);

    // Only the inner list counts bytes (62 itself counts the 15 characters it holds).
    let inner = tlv_bytes("08", "Chuyển tiền");
    let payload = with_crc(&(body.clone() + &tlv("62", &inner)));
    let warnings = VietQr::read(&payload).unwrap().warnings;
    assert_eq!(
        warnings[0],
        QrWarning::LengthsCountedInBytes { place: "62" }
    );

    // A length that is wrong either way is still malformed, and reported as read by characters.
    let payload = with_crc(&(body + "62200815Chuyển tiền"));
    assert!(matches!(
        parse_error(&payload),
        VietQrError::TlvMalformed {
            fault: TlvFault::ValueRunsPastEnd { declared: 20, .. },
            ..
        }
    ));
}

#[test]
fn a_code_of_another_scheme_is_answered_with_what_could_be_read() {
    let error = parse_error(&vnpay_merchant_code());
    assert_eq!(error.code(), "QR_NOT_A_BANK_TRANSFER");
    let VietQrError::NotABankTransfer(other) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        **other,
        OtherScheme {
            merchant_accounts: vec![MerchantAccountTemplate {
                tag: 26,
                guid: Some(VNPAY_GUID.into())
            }],
            amount: Some("10000".into()),
            currency: Some("704".into()),
            purpose: Some("Mua che".into()),
            merchant_name: Some("CHO KHE COC".into()),
            merchant_city: None,
        }
    );
    assert_eq!(other.merchant_accounts[0].scheme(), Some("VNPAY-QR"));
    let message = error.to_string();
    assert!(message.contains("26 (VNPAY-QR, A000000775)"), "{message}");
    assert!(message.contains("no NAPAS merchant account (tag 38)"));

    // Templates that cannot be read, and an amount that is not VietQR's, come back as written.
    let odd = build(&[
        ("00", "01".into()),
        ("01", "11".into()),
        ("02", "4111111111111111".into()),
        ("29", "0012ZZ".into()),
        ("54", "12.5".into()),
    ]);
    let VietQrError::NotABankTransfer(other) = parse_error(&odd) else {
        panic!("must be another scheme");
    };
    assert_eq!(
        other.merchant_accounts,
        [
            MerchantAccountTemplate { tag: 2, guid: None },
            MerchantAccountTemplate {
                tag: 29,
                guid: None
            },
        ]
    );
    assert_eq!(other.amount.as_deref(), Some("12.5"));
    assert_eq!(other.merchant_accounts[1].scheme(), None);

    // A NAPAS code that also carries another scheme's template is a bank transfer: 26 is kept.
    let mut fields = valid_fields();
    fields.insert(
        2,
        ("26", tlv("00", VNPAY_GUID) + &tlv("01", "0108CHOKHECOC")),
    );
    let qr = VietQr::parse(&build(&fields)).unwrap();
    assert_eq!(qr.bin(), "970416");
    assert_eq!(qr.other_fields()[0].tag, 26);
    // No tag 38 and no other template either: the field is missing.
    assert_eq!(
        parse_error(&without("38")),
        VietQrError::MissingField { field: "38" }
    );
}

fn our_code() -> impl Strategy<
    Value = (
        Initiation,
        String,
        String,
        Service,
        Option<u64>,
        Option<String>,
    ),
> {
    let service_and_account = prop_oneof![
        "[0-9]{6,19}".prop_map(|account| (Service::Account, account)),
        "[0-9]{16,19}".prop_map(|account| (Service::Card, account)),
    ];
    (
        prop_oneof![Just(Initiation::Static), Just(Initiation::Dynamic)],
        "[0-9]{6}",
        service_and_account,
        proptest::option::of(1..=9_999_999_999_999u64),
        proptest::option::of("[a-zA-Z0-9 àáạảãăằắâầấđèéêềếìíòóôồốơờớùúưừứỳýĐƯ#.,!-]{0,40}"),
    )
        .prop_map(|(initiation, bin, (service, account), amount, purpose)| {
            (initiation, bin, account, service, amount, purpose)
        })
}

proptest! {
    #[test]
    fn encode_then_parse_gives_back_the_same_code(
        (initiation, bin, account, service, amount, purpose) in our_code()
    ) {
        let built = VietQr::new(initiation, &bin, &account, service, amount, purpose.as_deref());
        let expected_purpose = purpose.as_deref().map(purpose_text);
        if expected_purpose.as_deref() == Some("") {
            prop_assert_eq!(built.map_err(|e| e.code()), Err("QR_INVALID_PURPOSE"));
            return Ok(());
        }
        let qr = built.unwrap();
        let payload = qr.encode();
        prop_assert!(payload.chars().count() <= MAX_PAYLOAD_LEN);
        let ReadQr { qr: parsed, warnings } = VietQr::read(&payload).unwrap();
        prop_assert_eq!(warnings, []);
        prop_assert_eq!(parsed.initiation(), initiation);
        prop_assert_eq!(parsed.bin(), bin.as_str());
        prop_assert_eq!(parsed.account(), account.as_str());
        prop_assert_eq!(parsed.service(), Some(service));
        prop_assert_eq!(parsed.amount(), amount);
        prop_assert_eq!(parsed.purpose(), expected_purpose.as_deref());
        prop_assert_eq!(parsed.encode(), payload);
        prop_assert_eq!(parsed, qr);
    }

    /// Garbage with a correct CRC gets past the first check and exercises the TLV reader,
    /// including multi-byte characters: it must answer with an error, never panic.
    #[test]
    fn parse_never_panics_on_garbage_with_a_valid_crc(body in "\\PC{0,120}") {
        let _ = VietQr::parse(&with_crc(&body));
        let _ = VietQr::parse(&body);
    }

    /// One character of a real payload replaced, with the CRC both left stale and fixed up,
    /// so the damage reaches the TLV reader and the field rules too.
    #[test]
    fn parse_never_panics_on_damaged_real_payloads(
        index in 0..13usize,
        position in 0..200usize,
        replacement in "\\PC",
    ) {
        let payload = &vectors()[index].payload;
        let mut characters: Vec<char> = payload.chars().collect();
        let position = position % characters.len();
        characters.splice(position..=position, replacement.chars());
        let damaged: String = characters.iter().collect();
        let _ = VietQr::parse(&damaged);
        let body_len = characters.len().saturating_sub(CRC_FIELD_LEN);
        let body: String = characters[..body_len].iter().collect();
        let _ = VietQr::parse(&with_crc(&body));
    }

    /// Any purpose EMVCo's fields can carry (no control characters) is read back as written,
    /// whether the lengths count characters or UTF-8 bytes.
    #[test]
    fn any_printable_purpose_reads_back_as_written(purpose in "[^\\p{Cc}\u{202A}-\u{202E}\u{2066}-\u{2069}]{1,20}") {
        let mut fields = valid_fields();
        fields.pop();
        let body: String = fields.iter().map(|(tag, value)| tlv(tag, value)).collect();
        let by_characters = VietQr::read(&with_crc(&(body.clone() + &tlv("62", &tlv("08", &purpose)))));
        let by_characters = by_characters.unwrap();
        prop_assert_eq!(by_characters.qr.purpose(), Some(purpose.as_str()));
        if purpose.len() <= 95 {
            let by_bytes =
                VietQr::read(&with_crc(&(body + &tlv_bytes("62", &tlv_bytes("08", &purpose)))));
            prop_assert_eq!(by_bytes.unwrap().qr, by_characters.qr);
        }
    }

    /// Amount text of any shape: an answer, never a panic; a zero fraction reads as the whole
    /// part, and anything read is a whole number of đồng greater than zero.
    #[test]
    fn any_amount_text_gets_an_answer(text in "[0-9.,+e -]{1,14}") {
        if let Ok(read) = VietQr::read(&replacing("54", &text)) {
            let amount = read.qr.amount().unwrap();
            prop_assert!(amount > 0);
            let whole = text.split('.').next().unwrap();
            prop_assert_eq!(amount.to_string(), whole);
        }
    }

    /// The same damage to the lenient fixture's payloads (Vietnamese text, byte-counted
    /// lengths, fractions, another scheme's template): every fallback answers, none panics.
    #[test]
    fn read_never_panics_on_damaged_lenient_payloads(
        index in 0..10usize,
        position in 0..200usize,
        replacement in "\\PC{0,3}",
    ) {
        let payload = &lenient_vectors()[index].payload;
        let mut characters: Vec<char> = payload.chars().collect();
        let position = position % characters.len();
        characters.splice(position..=position, replacement.chars());
        let damaged: String = characters.iter().collect();
        let _ = VietQr::read(&damaged);
        let body_len = characters.len().saturating_sub(CRC_FIELD_LEN);
        let body: String = characters[..body_len].iter().collect();
        if let Ok(read) = VietQr::read(&with_crc(&body)) {
            // Whatever is read re-encodes to a code that reads back the same.
            prop_assert_eq!(VietQr::read(&read.qr.encode()).map(|r| r.qr), Ok(read.qr));
        }
    }
}
