use super::*;

const HEADER: &str = "date,direction,amount,description,bank_reference,running_balance\n";

#[test]
fn a_nul_character_is_refused_with_its_line() {
    let csv = format!("{HEADER}2024-03-01,in,1000,a\0b,,\n");
    let error = parse_statement(csv.as_bytes()).unwrap_err();
    assert_eq!(error.code(), "STATEMENT_LINE_INVALID");
    assert_eq!(error.line(), Some(2));
    assert!(error.to_string().contains("NUL"), "{error}");
}

#[test]
fn a_bank_reference_longer_than_an_index_takes_is_refused() {
    let csv = format!("{HEADER}2024-03-01,in,1000,a,{},\n", "F".repeat(129));
    let error = parse_statement(csv.as_bytes()).unwrap_err();
    assert_eq!(error.code(), "STATEMENT_LINE_INVALID");
    assert_eq!(error.line(), Some(2));
}

fn utc(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

fn parse(rows: &str) -> Result<Vec<StatementLine>, StatementError> {
    parse_statement(format!("{HEADER}{rows}").as_bytes())
}

fn parse_err(rows: &str) -> StatementError {
    parse(rows).expect_err("the statement should be refused")
}

#[test]
fn documented_example_parses() {
    let doc = "date,direction,amount,description,bank_reference,running_balance\n\
        01/03/2024 08:30:00,in,\"150,000\",\"NGUYEN VAN A chuyen tien, V042\",FT24061234567890,\"12,650,000\"\n\
        2024-03-01T09:05:00+07:00,out,2.000.000,Rut tien,,10650000\n";
    let lines = parse_statement(doc.as_bytes()).unwrap();
    assert_eq!(
        lines,
        vec![
            StatementLine {
                line: 2,
                occurred_at_micros: utc("2024-03-01T01:30:00Z"),
                has_time: true,
                direction: Direction::In,
                amount: 150_000,
                description: "NGUYEN VAN A chuyen tien, V042".to_owned(),
                bank_reference: Some("FT24061234567890".to_owned()),
                running_balance: Some(12_650_000),
            },
            StatementLine {
                line: 3,
                occurred_at_micros: utc("2024-03-01T02:05:00Z"),
                has_time: true,
                direction: Direction::Out,
                amount: 2_000_000,
                description: "Rut tien".to_owned(),
                bank_reference: None,
                running_balance: Some(10_650_000),
            },
        ]
    );
}

#[test]
fn parses_bom_any_column_order_and_every_date_form() {
    let text = "\u{FEFF}Running_Balance, DATE ,direction,AMOUNT,Description,bank_reference\r\n\
        0,2024-03-01 02:10:00Z,Credit,1500,\"Memo \"\"quoted\"\", with comma\",ref-3\r\n\
        -500,2024-03-02,c,999,,\r\n\
        ,05/03/2024,D,1.000,x,\r\n\
        ,2024-03-05T10:00:00,debit,1000000,y,  \r\n\
        \"-1,234,567\",2024-03-05 10:00:00+0700,IN,5,z,\r\n\
        ,06/03/2024 23:59,out,\"1,000,000,000,000,000\",z,\r\n\
        ,2024-03-06 20:00:00.5,in,7,z,\r\n\
        ,2024-03-06T20:00+07:00,in,8,z,\r\n\
        ,2024-03-06 13:00Z,in,9,z,\r\n\
        ,2024-03-06 20:00:00+07:00,in,10,z,\r\n\
        ,2024-03-06T13:00:00.25z,in,11,z,\r\n";
    let lines = parse_statement(text.as_bytes()).unwrap();
    let got: Vec<String> = lines
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {} {} {:?}",
                l.line,
                to_datetime(l.occurred_at_micros)
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                if l.has_time { "time" } else { "date" },
                l.direction.as_str(),
                l.amount,
                l.running_balance,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "2 2024-03-01T02:10:00Z time in 1500 Some(0)",
            // A date only is the start of the Vietnam day: 17:00 UTC the day before.
            "3 2024-03-01T17:00:00Z date in 999 Some(-500)",
            "4 2024-03-04T17:00:00Z date out 1000 None",
            "5 2024-03-05T03:00:00Z time out 1000000 None",
            "6 2024-03-05T03:00:00Z time in 5 Some(-1234567)",
            "7 2024-03-06T16:59:00Z time out 1000000000000000 None",
            "8 2024-03-06T13:00:00.500Z time in 7 None",
            "9 2024-03-06T13:00:00Z time in 8 None",
            "10 2024-03-06T13:00:00Z time in 9 None",
            "11 2024-03-06T13:00:00Z time in 10 None",
            "12 2024-03-06T13:00:00.250Z time in 11 None",
        ]
    );
    assert_eq!(lines[0].description, "Memo \"quoted\", with comma");
    assert_eq!(lines[0].bank_reference.as_deref(), Some("ref-3"));
    assert_eq!(lines[1].description, "");
    assert_eq!(lines[1].bank_reference, None);
}

#[test]
fn line_numbers_follow_the_text_lines() {
    let lines = parse(
        "\n2024-03-01,in,1000,\"first\nsecond\",,\n2024-03-01,in,2000,x,,\n,,,,,\n2024-03-01,in,3000,x,,\n",
    )
    .unwrap();
    assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), [3, 5, 7]);
    assert_eq!(lines[0].description, "first\nsecond");

    let error = parse_err("\n2024-03-01,in,1000,\"a\nb\",,\n,,,,,\n2024-03-01,in,abc,x,,\n");
    assert_eq!(error.line(), Some(6));

    let mac = "date,direction,amount,description,bank_reference,running_balance\r\r\
        2024-03-01,in,1000,x,,\r2024-03-01,in,abc,x,,\r";
    let error = parse_statement(mac.as_bytes()).unwrap_err();
    assert_eq!(error.line(), Some(4));
    assert_eq!(error.code(), "STATEMENT_LINE_INVALID");
}

#[test]
fn not_utf8_names_the_line() {
    let mut bytes = format!("{HEADER}2024-03-01,in,1000,ok,,\n").into_bytes();
    bytes.extend_from_slice(b"2024-03-01,in,1000,caf\xe9,,\n");
    let error = parse_statement(&bytes).unwrap_err();
    assert_eq!(error, StatementError::NotUtf8 { line: 3 });
    assert_eq!(error.code(), "STATEMENT_NOT_UTF8");
    assert!(error
        .to_string()
        .starts_with("line 3: the file is not UTF-8"));
}

#[test]
fn empty_statements_are_refused() {
    for (bytes, line) in [
        (&b""[..], 1),
        (&b"\xEF\xBB\xBF"[..], 1),
        (&b"\n\n"[..], 1),
        (HEADER.as_bytes(), 2),
        (
            b"date,direction,amount,description,bank_reference,running_balance",
            2,
        ),
    ] {
        let error = parse_statement(bytes).unwrap_err();
        assert_eq!(error, StatementError::Empty { line }, "{bytes:?}");
        assert_eq!(error.code(), "STATEMENT_EMPTY");
    }
    let error = parse(",,,,,\n").unwrap_err();
    assert_eq!(error, StatementError::Empty { line: 2 });
}

#[test]
fn header_problems_are_refused_on_line_1() {
    let row = "2024-03-01,in,1000,x,,\n";
    for (header, needle) in [
        (
            "date,direction,amount,memo,bank_reference,running_balance",
            "column \"memo\" is not one of",
        ),
        (
            "date,direction,amount,amount,description,bank_reference",
            "column \"amount\" appears more than once",
        ),
        (
            "date,direction,amount,description,bank_reference",
            "column \"running_balance\" is missing",
        ),
        (
            "2024-03-01,in,1000,x,,",
            "column \"2024-03-01\" is not one of",
        ),
    ] {
        let error = parse_statement(format!("{header}\n{row}").as_bytes()).unwrap_err();
        assert_eq!(error.code(), "STATEMENT_HEADER_INVALID", "{header}");
        assert_eq!(error.line(), Some(1));
        let message = error.to_string();
        assert!(message.starts_with("line 1: "), "{message}");
        assert!(message.contains(needle), "{message}");
    }
}

#[test]
fn each_invalid_field_is_reported_with_its_line_and_name() {
    let cases = [
        (
            "2024-13-01,in,1000,x,,",
            "date",
            "\"2024-13-01\" is not a date",
        ),
        ("32/01/2024,in,1000,x,,", "date", "is not a date"),
        ("1999-12-31,in,1000,x,,", "date", "is not a date"),
        ("2024-03-01 25:00:00,in,1000,x,,", "date", "is not a date"),
        (",in,1000,x,,", "date", "\"\" is not a date"),
        (
            "2024-03-01,sideways,1000,x,,",
            "direction",
            "\"sideways\" is not \"in\" or \"out\"",
        ),
        (
            "2024-03-01,in,\"12,34\",x,,",
            "amount",
            "\"12,34\" is not a whole number of đồng",
        ),
        (
            "2024-03-01,in,150000.00,x,,",
            "amount",
            "is not a whole number of đồng",
        ),
        (
            "2024-03-01,in,\"1,50,000\",x,,",
            "amount",
            "is not a whole number of đồng",
        ),
        (
            "2024-03-01,in,\"1.500,00\",x,,",
            "amount",
            "is not a whole number of đồng",
        ),
        (
            "2024-03-01,in,0,x,,",
            "amount",
            "\"0\" must be greater than zero",
        ),
        ("2024-03-01,in,-5,x,,", "amount", "\"-5\" is negative"),
        (
            "2024-03-01,in,1000000000000001,x,,",
            "amount",
            "is larger than 1000000000000000 đồng",
        ),
        (
            "2024-03-01,in,99999999999999999999999,x,,",
            "amount",
            "is larger than",
        ),
        ("2024-03-01,in,,x,,", "amount", "is empty"),
        (
            "2024-03-01,in,1000,x,,\"1,2\"",
            "running_balance",
            "\"1,2\" is not a whole number",
        ),
        (
            "2024-03-01,in,1000,x,,-1000000000000001",
            "running_balance",
            "is larger than",
        ),
        (
            "2024-03-01,in,1000,x",
            "the row",
            "has 4 columns but the header has 6",
        ),
        (
            "2024-03-01,in,1000,a,b,c,d",
            "the row",
            "has 7 columns but the header has 6",
        ),
    ];
    for (row, field, needle) in cases {
        let error = parse_err(&format!("2024-03-01,in,1,ok,,\n{row}\n"));
        assert_eq!(error.code(), "STATEMENT_LINE_INVALID", "{row}");
        let StatementError::LineInvalid {
            line, field: got, ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!((*line, *got), (3, field), "{row}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("line 3: {field} ")),
            "{message}"
        );
        assert!(message.contains(needle), "{row}: {message}");
    }
    assert_eq!(
        parse_err("2024-03-01,in,\"12,34\",x,,\n").to_string(),
        "line 2: amount \"12,34\" is not a whole number of đồng"
    );
}

#[test]
fn long_values_are_cut_in_messages() {
    let error = parse_err(&format!("{},in,1000,x,,\n", "9".repeat(500)));
    assert!(error.to_string().len() < 200, "{error}");
}

#[test]
fn amounts_follow_the_grouping_rules() {
    for (text, value) in [
        ("150000", 150_000),
        ("150,000", 150_000),
        ("150.000", 150_000),
        ("1,500,000", 1_500_000),
        ("1.500.000", 1_500_000),
        ("007", 7),
        ("0", 0),
        ("-0", 0),
        ("-1,500", -1_500),
        ("1000000000000000", MAX_STATEMENT_AMOUNT),
        ("1.000.000.000.000.000", MAX_STATEMENT_AMOUNT),
        ("-1000000000000000", -MAX_STATEMENT_AMOUNT),
    ] {
        assert_eq!(parse_dong(text), Ok(value), "{text}");
    }
    for (text, problem) in [
        ("", DongProblem::Missing),
        ("12,34", DongProblem::NotWhole),
        ("150000.00", DongProblem::NotWhole),
        ("150.0000", DongProblem::NotWhole),
        ("1,50,000", DongProblem::NotWhole),
        ("1.500,000", DongProblem::NotWhole),
        ("1500,000", DongProblem::NotWhole),
        (",500", DongProblem::NotWhole),
        ("500,", DongProblem::NotWhole),
        ("0.500", DongProblem::NotWhole),
        ("+5", DongProblem::NotWhole),
        ("--5", DongProblem::NotWhole),
        ("-", DongProblem::NotWhole),
        ("1 000", DongProblem::NotWhole),
        ("1e5", DongProblem::NotWhole),
        ("１２", DongProblem::NotWhole),
        ("1000000000000001", DongProblem::TooLarge),
        ("1,000,000,000,000,001", DongProblem::TooLarge),
        ("99999999999999999999999999", DongProblem::TooLarge),
    ] {
        assert_eq!(parse_dong(text), Err(problem), "{text}");
    }
}

fn rows(count: usize) -> String {
    "2024-03-01 08:00:00,in,1000,x,,\n".repeat(count)
}

#[test]
fn line_limit_is_enforced() {
    let lines = parse(&rows(MAX_STATEMENT_LINES)).unwrap();
    assert_eq!(lines.len(), MAX_STATEMENT_LINES);

    let error = parse_err(&rows(MAX_STATEMENT_LINES + 1));
    assert_eq!(
        error,
        StatementError::TooManyLines {
            line: MAX_STATEMENT_LINES + 2
        }
    );
    assert_eq!(error.code(), "STATEMENT_TOO_LARGE");
}

#[test]
fn byte_limit_is_enforced() {
    // Long enough rows that the byte limit comes before the line limit.
    let row = format!("2024-03-01,in,1000,{},,\n", "a long description ".repeat(5));
    let row = row.as_str();
    let count = MAX_STATEMENT_BYTES / row.len() + 1;
    let text = format!("{HEADER}{}", row.repeat(count));
    assert!(text.len() > MAX_STATEMENT_BYTES);
    let error = parse_statement(text.as_bytes()).unwrap_err();
    assert_eq!(error.code(), "STATEMENT_TOO_LARGE");
    let line = error.line().unwrap();
    assert_eq!(line, (MAX_STATEMENT_BYTES - HEADER.len()) / row.len() + 2);

    let fits = format!(
        "{HEADER}{}",
        row.repeat((MAX_STATEMENT_BYTES - HEADER.len()) / row.len())
    );
    assert!(fits.len() <= MAX_STATEMENT_BYTES);
    assert!(parse_statement(fits.as_bytes()).is_ok());
}

#[test]
fn period_is_checked() {
    let lines = parse(
        "2024-03-01 00:00:00,in,1000,x,,\n\
         2024-03-31 23:59:59,in,1000,x,,\n\
         15/03/2024,in,1000,x,,\n",
    )
    .unwrap();
    let from = utc("2024-03-01T00:00:00+07:00");
    let to = utc("2024-04-01T00:00:00+07:00");
    assert_eq!(check_period(&lines, from, to), Ok(()));

    for (from, to) in [(to, from), (from, from)] {
        let error = check_period(&lines, from, to).unwrap_err();
        assert_eq!(error.code(), "STATEMENT_PERIOD_INVALID");
        assert_eq!(error.line(), None);
        assert_eq!(
            error.to_string(),
            "the statement period must end after it starts"
        );
    }
    assert_eq!(check_period(&lines, from, from + 366 * DAY_MICROS), Ok(()));
    let error = check_period(&lines, from, from + 366 * DAY_MICROS + 1).unwrap_err();
    assert_eq!(error.code(), "STATEMENT_PERIOD_INVALID");
    let error = check_period(&lines, i64::MIN, i64::MAX).unwrap_err();
    assert_eq!(error.code(), "STATEMENT_PERIOD_INVALID");

    // The end is exclusive; the first line outside, in file order, is named.
    let error = check_period(&lines, from, utc("2024-03-31T23:59:59+07:00")).unwrap_err();
    assert_eq!(
        error,
        StatementError::LineOutsidePeriod {
            line: 3,
            occurred_at: "2024-03-31 23:59:59".to_owned()
        }
    );
    assert_eq!(error.code(), "STATEMENT_LINE_OUTSIDE_PERIOD");
    assert!(error
        .to_string()
        .starts_with("line 3: 2024-03-31 23:59:59 (Vietnam time) is outside"));
    let error = check_period(&lines, from + 1, to).unwrap_err();
    assert_eq!(error.line(), Some(2));
}

#[test]
fn a_date_only_line_is_inside_when_its_day_overlaps() {
    let lines = parse("01/03/2024,in,1000,x,,\n").unwrap();
    let noon = utc("2024-03-01T12:00:00+07:00");
    let next_midnight = utc("2024-03-02T00:00:00+07:00");
    assert_eq!(check_period(&lines, noon, next_midnight), Ok(()));
    assert_eq!(check_period(&lines, noon - DAY_MICROS, noon), Ok(()));
    let error = check_period(&lines, next_midnight, next_midnight + DAY_MICROS).unwrap_err();
    assert_eq!(
        error,
        StatementError::LineOutsidePeriod {
            line: 2,
            occurred_at: "2024-03-01".to_owned()
        }
    );
    let error =
        check_period(&lines, noon - DAY_MICROS, utc("2024-03-01T00:00:00+07:00")).unwrap_err();
    assert_eq!(error.line(), Some(2));
}

// --- reconcile ---

fn line(
    line: usize,
    at: &str,
    direction: Direction,
    amount: i64,
    description: &str,
    reference: Option<&str>,
) -> StatementLine {
    StatementLine {
        line,
        occurred_at_micros: utc(at),
        has_time: true,
        direction,
        amount,
        description: description.to_owned(),
        bank_reference: reference.map(str::to_owned),
        running_balance: None,
    }
}

fn date_line(line_no: usize, day: &str, amount: i64, description: &str) -> StatementLine {
    StatementLine {
        has_time: false,
        ..line(
            line_no,
            &format!("{day}T00:00:00+07:00"),
            Direction::In,
            amount,
            description,
            None,
        )
    }
}

fn known(
    id: u128,
    at: &str,
    direction: Direction,
    amount: i64,
    description: &str,
    reference: Option<&str>,
) -> KnownBankTransaction {
    KnownBankTransaction {
        id: Uuid::from_u128(id),
        direction,
        amount,
        occurred_at_micros: utc(at),
        description: description.to_owned(),
        bank_reference: reference.map(str::to_owned),
    }
}

fn matched(report: &StatementReport) -> Vec<(usize, u128, MatchBasis)> {
    report
        .matched
        .iter()
        .map(|m| (m.line, m.bank_transaction_id.as_u128(), m.matched_by))
        .collect()
}

use Direction::{In, Out};

#[test]
fn matches_by_bank_reference_whatever_the_time() {
    let lines = [line(
        2,
        "2024-03-01T08:00:00+07:00",
        In,
        150_000,
        "a",
        Some(" ft123 "),
    )];
    let known = [
        known(1, "2024-03-01T08:00:00+07:00", In, 150_000, "a", None),
        known(
            2,
            "2024-03-01T11:00:00+07:00",
            In,
            150_000,
            "b",
            Some("FT123"),
        ),
    ];
    let report = reconcile(&lines, &known, 0);
    assert_eq!(matched(&report), [(2, 2, MatchBasis::BankReference)]);
    assert_eq!(report.not_in_statement.len(), 1);
    assert_eq!(
        report.not_in_statement[0].bank_transaction_id,
        Uuid::from_u128(1)
    );
}

#[test]
fn a_reference_in_the_other_direction_does_not_match() {
    let lines = [line(
        2,
        "2024-03-01T08:00:00+07:00",
        Out,
        150_000,
        "a",
        Some("FT1"),
    )];
    let known = [known(
        1,
        "2024-03-01T12:00:00+07:00",
        In,
        150_000,
        "a",
        Some("FT1"),
    )];
    let report = reconcile(&lines, &known, 0);
    assert!(report.matched.is_empty());
    assert_eq!(report.counts.missing_webhooks, 1);
    assert_eq!(report.counts.not_in_statement, 1);
}

#[test]
fn amount_mismatch_by_reference() {
    let lines = [line(
        2,
        "2024-03-01T08:00:00+07:00",
        In,
        150_000,
        "a",
        Some("FT9"),
    )];
    let known = [known(
        7,
        "2024-03-01T08:00:05+07:00",
        In,
        15_000,
        "a",
        Some("ft9"),
    )];
    let report = reconcile(&lines, &known, 0);
    assert!(report.matched.is_empty());
    assert_eq!(
        report.amount_mismatches,
        [AmountMismatch {
            line: 2,
            bank_transaction_id: Uuid::from_u128(7),
            matched_by: MatchBasis::BankReference,
            statement_amount: "150000".to_owned(),
            recorded_amount: "15000".to_owned(),
        }]
    );
    assert!(report.missing_webhooks.is_empty() && report.not_in_statement.is_empty());
}

#[test]
fn matches_by_amount_and_time_choosing_the_closest() {
    let lines = [line(2, "2024-03-01T10:00:00+07:00", In, 50_000, "x", None)];
    let known = [
        known(1, "2024-03-01T09:52:00+07:00", In, 50_000, "x", None),
        known(2, "2024-03-01T10:01:00+07:00", In, 50_000, "x", None),
        known(3, "2024-03-01T10:00:00+07:00", In, 60_000, "x", None),
        known(4, "2024-03-01T10:00:00+07:00", Out, 50_000, "x", None),
    ];
    let report = reconcile(&lines, &known, 0);
    assert_eq!(matched(&report), [(2, 2, MatchBasis::AmountAndTime)]);
    let left: Vec<u128> = report
        .not_in_statement
        .iter()
        .map(|n| n.bank_transaction_id.as_u128())
        .collect();
    // By time, then id.
    assert_eq!(left, [1, 3, 4]);
}

#[test]
fn time_tolerance_is_ten_minutes() {
    let lines = [
        line(2, "2024-03-01T10:00:00+07:00", In, 50_000, "x", None),
        line(3, "2024-03-01T12:00:00+07:00", In, 50_000, "x", None),
    ];
    let known = [
        known(1, "2024-03-01T10:10:00+07:00", In, 50_000, "x", None),
        known(2, "2024-03-01T12:10:00.000001+07:00", In, 50_000, "x", None),
    ];
    let report = reconcile(&lines, &known, 0);
    assert_eq!(matched(&report), [(2, 1, MatchBasis::AmountAndTime)]);
    assert_eq!(report.missing_webhooks[0].line, 3);
    assert_eq!(
        report.not_in_statement[0].bank_transaction_id,
        Uuid::from_u128(2)
    );
}

#[test]
fn two_identical_transfers_each_match_once() {
    let lines = [
        line(2, "2024-03-01T10:00:00+07:00", In, 20_000, "CK V042", None),
        line(3, "2024-03-01T10:00:00+07:00", In, 20_000, "CK V042", None),
    ];
    let known = [
        known(1, "2024-03-01T10:00:40+07:00", In, 20_000, "CK V042", None),
        known(2, "2024-03-01T10:00:20+07:00", In, 20_000, "CK V042", None),
    ];
    let report = reconcile(&lines, &known, 0);
    assert_eq!(
        matched(&report),
        [
            (2, 2, MatchBasis::AmountAndTime),
            (3, 1, MatchBasis::AmountAndTime)
        ]
    );
    assert_eq!(report.counts.matched, 2);
    assert!(report.missing_webhooks.is_empty() && report.not_in_statement.is_empty());

    // Only one of them reached us: one match, one missing webhook.
    let report = reconcile(&lines, &known[..1], 0);
    assert_eq!(report.counts.matched, 1);
    assert_eq!(report.counts.missing_webhooks, 1);
}

#[test]
fn date_only_lines_match_on_the_vietnam_day_by_description() {
    let lines = [
        date_line(2, "2024-03-01", 500_000, "HOC PHI TRAN THI B LOP 3A"),
        date_line(3, "2024-03-01", 500_000, "Học phí Nguyễn Văn A lớp 3A"),
        date_line(4, "2024-03-01", 500_000, "HOC PHI LE VAN C"),
    ];
    let known = [
        known(
            1,
            "2024-03-01T07:00:00+07:00",
            In,
            500_000,
            "MBVCB.1.HOC PHI NGUYEN VAN A LOP 3A",
            None,
        ),
        known(
            2,
            "2024-03-01T23:30:00+07:00",
            In,
            500_000,
            "MBVCB.2.HOC PHI TRAN THI B LOP 3A",
            None,
        ),
        // The next Vietnam day, though still 1 March in UTC.
        known(
            3,
            "2024-03-02T00:10:00+07:00",
            In,
            500_000,
            "HOC PHI LE VAN C",
            None,
        ),
    ];
    let report = reconcile(&lines, &known, 0);
    assert_eq!(
        matched(&report),
        [
            (2, 2, MatchBasis::AmountAndTime),
            (3, 1, MatchBasis::AmountAndTime)
        ]
    );
    assert_eq!(report.missing_webhooks.len(), 1);
    assert_eq!(report.missing_webhooks[0].line, 4);
    assert!(!report.missing_webhooks[0].has_time);
    assert_eq!(
        report.not_in_statement[0].bank_transaction_id,
        Uuid::from_u128(3)
    );
}

#[test]
fn amount_mismatch_by_description_and_time() {
    let lines = [
        line(
            2,
            "2024-03-01T10:00:00+07:00",
            In,
            150_000,
            "MBVCB.123.V042 tien che",
            None,
        ),
        line(3, "2024-03-01T11:00:00+07:00", In, 70_000, "CK", None),
    ];
    let known = [
        known(
            5,
            "2024-03-01T10:02:00+07:00",
            In,
            15_000,
            "V042 TIEN CHE",
            None,
        ),
        known(6, "2024-03-01T11:01:00+07:00", In, 7_000, "CK", None),
    ];
    let report = reconcile(&lines, &known, 0);
    assert_eq!(
        report.amount_mismatches,
        [AmountMismatch {
            line: 2,
            bank_transaction_id: Uuid::from_u128(5),
            matched_by: MatchBasis::DescriptionAndTime,
            statement_amount: "150000".to_owned(),
            recorded_amount: "15000".to_owned(),
        }]
    );
    // "CK" is too short to pair transfers of different amounts.
    assert_eq!(report.missing_webhooks[0].line, 3);
    assert_eq!(
        report.not_in_statement[0].bank_transaction_id,
        Uuid::from_u128(6)
    );
}

#[test]
fn missing_webhook_and_not_in_statement_are_reported_in_full() {
    let lines = [line(
        4,
        "2024-03-01T08:30:00+07:00",
        Out,
        2_000_000,
        "Rut tien",
        Some("FT5"),
    )];
    let known = [known(
        9,
        "2024-03-02T09:00:00+07:00",
        In,
        150_000,
        "V042",
        None,
    )];
    let report = reconcile(&lines, &known, 0);
    assert_eq!(
        report.missing_webhooks,
        [MissingWebhook {
            line: 4,
            occurred_at: to_datetime(utc("2024-03-01T01:30:00Z")),
            has_time: true,
            direction: "out".to_owned(),
            amount: "2000000".to_owned(),
            description: "Rut tien".to_owned(),
            bank_reference: Some("FT5".to_owned()),
        }]
    );
    assert_eq!(
        report.not_in_statement,
        [NotInStatement {
            bank_transaction_id: Uuid::from_u128(9),
            occurred_at: to_datetime(utc("2024-03-02T02:00:00Z")),
            direction: "in".to_owned(),
            amount: "150000".to_owned(),
            description: "V042".to_owned(),
        }]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["missing_webhooks"][0]["occurred_at"],
        "2024-03-01T01:30:00Z"
    );
    assert_eq!(json["counts"]["missing_webhooks"], 1);
    assert_eq!(json["statement_closing_balance"], serde_json::Value::Null);
}

#[test]
fn closing_balance_difference_uses_the_latest_line() {
    let with_balance = |mut l: StatementLine, balance: Option<i64>| {
        l.running_balance = balance;
        l
    };
    let oldest_first = [
        with_balance(
            line(2, "2024-03-01T08:00:00+07:00", In, 150_000, "a", None),
            Some(12_650_000),
        ),
        with_balance(
            line(3, "2024-03-02T08:00:00+07:00", Out, 150_000, "b", None),
            Some(12_500_000),
        ),
        with_balance(
            line(4, "2024-03-02T08:00:00+07:00", In, 150_000, "c", None),
            Some(12_650_000),
        ),
    ];
    let report = reconcile(&oldest_first, &[], 12_500_000);
    assert_eq!(
        report.statement_closing_balance.as_deref(),
        Some("12650000")
    );
    assert_eq!(report.ledger_closing_balance, "12500000");
    assert_eq!(report.closing_balance_difference.as_deref(), Some("150000"));

    // Newest first, as many bank exports are: the first of the latest lines closes.
    let newest_first = [
        with_balance(
            line(2, "2024-03-02T08:00:00+07:00", In, 150_000, "c", None),
            Some(12_400_000),
        ),
        with_balance(
            line(3, "2024-03-02T08:00:00+07:00", Out, 150_000, "b", None),
            Some(12_250_000),
        ),
        with_balance(
            line(4, "2024-03-01T08:00:00+07:00", In, 150_000, "a", None),
            Some(12_400_000),
        ),
    ];
    let report = reconcile(&newest_first, &[], 12_500_000);
    assert_eq!(
        report.statement_closing_balance.as_deref(),
        Some("12400000")
    );
    assert_eq!(
        report.closing_balance_difference.as_deref(),
        Some("-100000")
    );

    let report = reconcile(&oldest_first[..1], &[], 12_650_000);
    assert_eq!(report.closing_balance_difference.as_deref(), Some("0"));

    let no_balance = [with_balance(oldest_first[0].clone(), None)];
    let report = reconcile(&no_balance, &[], 5);
    assert_eq!(report.statement_closing_balance, None);
    assert_eq!(report.closing_balance_difference, None);
    assert_eq!(report.ledger_closing_balance, "5");
}

#[test]
fn output_does_not_depend_on_input_order() {
    let lines = vec![
        line(2, "2024-03-01T10:00:00+07:00", In, 20_000, "CK V042", None),
        line(3, "2024-03-01T10:00:00+07:00", In, 20_000, "CK V042", None),
        line(
            4,
            "2024-03-01T11:00:00+07:00",
            In,
            150_000,
            "x",
            Some("FT1"),
        ),
        line(5, "2024-03-01T12:00:00+07:00", Out, 10_000, "y", None),
        line(
            6,
            "2024-03-01T13:00:00+07:00",
            In,
            90_000,
            "MBVCB.9.TIEN HOC PHI",
            None,
        ),
        date_line(7, "2024-03-02", 30_000, "z"),
    ];
    let known = vec![
        known(10, "2024-03-01T10:00:30+07:00", In, 20_000, "CK V042", None),
        known(11, "2024-03-01T10:00:30+07:00", In, 20_000, "CK V042", None),
        known(
            12,
            "2024-03-01T11:30:00+07:00",
            In,
            15_000,
            "x",
            Some("fT1"),
        ),
        known(
            13,
            "2024-03-01T13:05:00+07:00",
            In,
            9_000,
            "TIEN HOC PHI",
            None,
        ),
        known(14, "2024-03-03T09:00:00+07:00", In, 30_000, "z", None),
        known(15, "2024-03-02T09:00:00+07:00", In, 30_000, "z", None),
        known(16, "2024-03-01T09:00:00+07:00", Out, 1, "fee", None),
    ];
    let report = reconcile(&lines, &known, 0);
    let mut lines_reversed = lines.clone();
    lines_reversed.reverse();
    let mut known_reversed = known.clone();
    known_reversed.reverse();
    assert_eq!(reconcile(&lines_reversed, &known_reversed, 0), report);
    assert_eq!(
        matched(&report),
        [
            (2, 10, MatchBasis::AmountAndTime),
            (3, 11, MatchBasis::AmountAndTime),
            (7, 15, MatchBasis::AmountAndTime),
        ]
    );
    let mismatched: Vec<_> = report
        .amount_mismatches
        .iter()
        .map(|m| (m.line, m.bank_transaction_id.as_u128(), m.matched_by))
        .collect();
    assert_eq!(
        mismatched,
        [
            (4, 12, MatchBasis::BankReference),
            (6, 13, MatchBasis::DescriptionAndTime)
        ]
    );
    assert_eq!(
        report
            .missing_webhooks
            .iter()
            .map(|m| m.line)
            .collect::<Vec<_>>(),
        [5]
    );
    let left: Vec<u128> = report
        .not_in_statement
        .iter()
        .map(|n| n.bank_transaction_id.as_u128())
        .collect();
    assert_eq!(left, [16, 14]);
    assert_eq!(
        report.counts,
        StatementCounts {
            statement_lines: 6,
            known_transactions: 7,
            matched: 3,
            amount_mismatches: 2,
            missing_webhooks: 1,
            not_in_statement: 2,
        }
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("2024-03-01 08:30:00".to_owned()),
            Just("01/03/2024".to_owned()),
            Just("31/02/2024 25:61".to_owned()),
            Just("in".to_owned()),
            Just("D".to_owned()),
            Just("150,000".to_owned()),
            Just("1.000.000".to_owned()),
            Just("-5".to_owned()),
            Just("99999999999999999999".to_owned()),
            Just("\"quoted, \"\"field\"\"\"".to_owned()),
            Just("\"unterminated".to_owned()),
            "[ -~àđ\u{0}\n\r\"]{0,12}",
        ]
    }

    proptest! {
        /// Whatever bytes are uploaded, parsing answers (lines or a refusal); it never panics.
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_statement(&bytes);
            let with_header = [HEADER.as_bytes(), &bytes].concat();
            let _ = parse_statement(&with_header);
        }

        /// Rows shaped like a statement, with plausible and broken fields mixed, never panic
        /// either; what parses has amounts in range and line numbers after the header.
        #[test]
        fn parsing_statement_shaped_rows_never_panics(
            rows in proptest::collection::vec(proptest::collection::vec(any_field(), 0..8), 0..12),
        ) {
            let text: String = rows
                .iter()
                .map(|fields| fields.join(",") + "\n")
                .collect();
            if let Ok(lines) = parse(&text) {
                for line in lines {
                    prop_assert!(line.line >= 2);
                    prop_assert!(line.amount > 0 && line.amount <= MAX_STATEMENT_AMOUNT);
                }
            }
        }
    }

    prop_compose! {
        fn any_line()(
            direction in prop_oneof![Just(Direction::In), Just(Direction::Out)],
            amount in prop_oneof![Just(150_000i64), Just(20_000), 1i64..1_000_000],
            minutes in 0i64..120,
            has_time in any::<bool>(),
            description in prop_oneof![Just("V042 ban che"), Just("chuyen tien V042"), Just("")],
            reference in prop_oneof![Just(None), Just(Some("FT1")), Just(Some("FT2"))],
        ) -> StatementLine {
            StatementLine {
                line: 0,
                occurred_at_micros: 1_709_251_200_000_000 + minutes * 60_000_000,
                has_time,
                direction,
                amount,
                description: description.to_owned(),
                bank_reference: reference.map(str::to_owned),
                running_balance: None,
            }
        }
    }

    prop_compose! {
        fn any_known()(line in any_line()) -> KnownBankTransaction {
            KnownBankTransaction {
                id: Uuid::nil(),
                direction: line.direction,
                amount: line.amount,
                occurred_at_micros: line.occurred_at_micros,
                description: line.description,
                bank_reference: line.bank_reference,
            }
        }
    }

    proptest! {
        /// Every line is reported exactly once (matched, an amount mismatch or missing), and
        /// no recorded transaction is paired with two lines.
        #[test]
        fn each_line_and_each_transaction_is_paired_at_most_once(
            mut lines in proptest::collection::vec(any_line(), 0..12),
            mut known in proptest::collection::vec(any_known(), 0..12),
        ) {
            for (i, line) in lines.iter_mut().enumerate() {
                line.line = i + 2;
            }
            for (i, transaction) in known.iter_mut().enumerate() {
                transaction.id = Uuid::from_u128(i as u128 + 1);
            }
            let report = reconcile(&lines, &known, 0);
            let mut reported_lines: Vec<usize> = report
                .matched
                .iter()
                .map(|m| m.line)
                .chain(report.amount_mismatches.iter().map(|m| m.line))
                .chain(report.missing_webhooks.iter().map(|m| m.line))
                .collect();
            reported_lines.sort_unstable();
            let all_lines: Vec<usize> = lines.iter().map(|l| l.line).collect();
            prop_assert_eq!(reported_lines, all_lines);
            let mut paired: Vec<Uuid> = report
                .matched
                .iter()
                .map(|m| m.bank_transaction_id)
                .chain(report.amount_mismatches.iter().map(|m| m.bank_transaction_id))
                .chain(report.not_in_statement.iter().map(|n| n.bank_transaction_id))
                .collect();
            let count = paired.len();
            paired.sort_unstable();
            paired.dedup();
            prop_assert_eq!(paired.len(), count, "a transaction was paired twice");
        }
    }
}
