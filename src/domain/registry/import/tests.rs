use super::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// (line, field) of each error, to compare with what a test expects.
fn places(errors: &[LineError]) -> Vec<(usize, Option<&'static str>)> {
    errors.iter().map(|e| (e.line, e.field)).collect()
}

const ENGLISH_HEADER: &str = "hamlet_code,household_code,resident_code,full_name,birth_year";

#[test]
fn a_file_as_excel_saves_it_is_read() {
    // "Họ và tên" with its accents decomposed (NFD), as some Mac keyboards type it.
    let header = "Mã xóm,Tên xóm,Mã hộ,Địa chỉ,Chủ hộ,Mã nhân khẩu,Ho\u{0323} va\u{0300} tên,\
                  Ngày sinh,Giới tính,Số điện thoại,Tình trạng,Ngày chuyển đi/mất,Đồng ý thống kê,\
                  Ghi chú";
    let rows = [
        "KC,Xóm Kênh Cạn,HH-001,\"Thôn 1, Kênh Cạn\",x,CD-001,Nguye\u{0302}\u{0303}n Va\u{0306}n An,\
         05/03/1980,Nam,0912 345 678,,,có,trưởng xóm",
        "KC,Xóm Kênh Cạn,HH-001,,,CD-002,Trần Thị Bình,1985-07-01,Nữ,,Chuyển đi,01/10/2026,không,",
    ];
    let text = format!("\u{FEFF}{header}\r\n{}\r\n{}\r\n", rows[0], rows[1]);

    let import = parse_residents(text.as_bytes(), today());

    assert_eq!(import.errors, vec![]);
    let [head, moved] = &import.rows[..] else {
        panic!("two rows expected, got {:?}", import.rows);
    };
    assert_eq!(head.line, 2);
    assert_eq!(head.hamlet_code.as_str(), "KC");
    assert_eq!(head.hamlet_name.as_ref().unwrap().as_str(), "Xóm Kênh Cạn");
    assert_eq!(head.household_code.as_str(), "HH-001");
    assert_eq!(head.address.as_deref(), Some("Thôn 1, Kênh Cạn"));
    assert!(head.is_head);
    assert_eq!(head.resident_code.as_str(), "CD-001");
    assert_eq!(head.full_name.as_str(), "Nguyễn Văn An");
    assert_eq!(head.birth_year, 1980);
    assert_eq!(head.birth_date, Some(date(1980, 3, 5)));
    assert_eq!(head.gender, Gender::Male);
    assert_eq!(head.phone.as_deref(), Some("0912345678"));
    assert_eq!(head.status, ResidentStatus::Living);
    assert_eq!(head.left_on, None);
    assert_eq!(
        head.consent,
        Some(Consent {
            given: true,
            effective_on: today(),
            dated: false,
        })
    );

    assert_eq!(moved.line, 3);
    assert!(!moved.is_head);
    assert_eq!(moved.address, None);
    assert_eq!(moved.birth_year, 1985);
    assert_eq!(moved.gender, Gender::Female);
    assert_eq!(moved.status, ResidentStatus::MovedAway);
    assert_eq!(moved.left_on, Some(date(2026, 10, 1)));
    assert_eq!(moved.consent.map(|c| c.given), Some(false));
}

#[test]
fn english_headers_in_any_case_and_order_with_optional_columns_absent() {
    let text = "Full_Name,RESIDENT_CODE,Birth_Year,household_code,Hamlet_Code,consent,consent_on\n\
                Lê Văn Cường,CD-9,1990,HH-9,DT,yes,2026-11-01\n";
    let import = parse_residents(text.as_bytes(), today());
    assert_eq!(import.errors, vec![]);
    let row = &import.rows[0];
    assert_eq!(row.full_name.as_str(), "Lê Văn Cường");
    assert_eq!(row.birth_year, 1990);
    assert_eq!(row.birth_date, None);
    assert_eq!(row.gender, Gender::Unknown);
    assert_eq!(row.hamlet_name, None);
    assert!(!row.is_head);
    assert_eq!(
        row.consent,
        Some(Consent {
            given: true,
            effective_on: date(2026, 11, 1),
            dated: true,
        })
    );
}

#[test]
fn semicolons_delimit_when_the_header_has_no_commas() {
    let text = "Mã xóm;Mã hộ;Mã nhân khẩu;Họ và tên;Năm sinh;Địa chỉ\n\
                KC;HH-1;CD-1;Phạm Thị Dung;1970;Số 5, ngõ 2\n";
    let import = parse_residents(text.as_bytes(), today());
    assert_eq!(import.errors, vec![]);
    assert_eq!(import.rows[0].full_name.as_str(), "Phạm Thị Dung");
    assert_eq!(import.rows[0].address.as_deref(), Some("Số 5, ngõ 2"));
}

#[test]
fn each_bad_cell_is_reported_on_its_files_line() {
    let header = "hamlet_code,household_code,resident_code,full_name,birth_year,birth_date,gender,\
                  phone,status,left_on,head,consent,consent_on,address";
    let lines = [
        // Line 2 and 3: one row whose quoted address spans two lines; it is fine.
        "KC,HH-1,CD-1,An,1980,,,,,,,,,\"Thôn 1\nKênh Cạn\"",
        // Line 4 onwards: one problem each, unless said otherwise.
        "xóm 1,HH-2,CD-2,Bình,1980,,,,,,,,,",
        "KC,HH-3,CD-3,   ,1980,,,,,,,,,",
        "KC,HH-4,CD-4,Chi,2027,,,,,,,,,",
        "KC,HH-5,CD-5,Dũng,1981,1980-01-01,,,,,,,,",
        "KC,HH-6,CD-6,Em,,,,,,,,,,",
        "KC,HH-7,CD-7,Giang,1980,,x,,,,,,,",
        "KC,HH-8,CD-8,Hà,1980,,,12345,,,,,,",
        "KC,HH-9,CD-9,Khoa,1980,,,,đã mất,,,,,",
        "KC,HH-10,CD-10,Lan,1980,,,,,2026-01-01,,,,",
        "KC,HH-11,CD-11,Minh,1980,,,,,,maybe,,,",
        "KC,HH-12,CD-12,Nga,1980,,,,,,,,2026-01-01,",
        "KC,HH-13,CD-13,Oanh,1980,,,,,,,có,01/12/2026,",
        "KC,HH-14,CD-14,Phúc,1980,,,,,,,,,,extra",
        // Two problems on one line: both reported.
        ",HH-15,CD-15,Quý,19x0,,,,,,,,,",
        "KC,HH-16,CD-16,Sơn,,31/02/1980,,,,,,,,",
    ];
    let text = format!("{header}\n{}\n", lines.join("\n"));

    let import = parse_residents(text.as_bytes(), today());

    assert_eq!(
        places(&import.errors),
        vec![
            (4, Some("hamlet_code")),
            (5, Some("full_name")),
            (6, Some("birth_year")),
            (7, Some("birth_year")),
            (8, Some("birth_year")),
            (9, Some("gender")),
            (10, Some("phone")),
            (11, Some("left_on")),
            (12, Some("left_on")),
            (13, Some("head")),
            (14, Some("consent_on")),
            (15, Some("consent_on")),
            (16, None),
            (17, Some("hamlet_code")),
            (17, Some("birth_year")),
            (18, Some("birth_date")),
        ],
        "{:#?}",
        import.errors
    );
    assert_eq!(import.rows.len(), 1);
    assert_eq!(import.rows[0].address.as_deref(), Some("Thôn 1 Kênh Cạn"));
    let message = import.errors[6].to_string();
    assert!(message.starts_with("line 10: phone \"12345\""), "{message}");
}

#[test]
fn rows_that_contradict_earlier_rows_are_refused() {
    let header = "hamlet_code,hamlet_name,household_code,address,head,resident_code,full_name,\
                  birth_year";
    let lines = [
        "KC,Kênh Cạn,HH-1,Thôn 1,x,CD-1,An,1980",
        "KC,Kênh Cạn,HH-1,,,CD-2,Bình,1982",
        // Line 4: the same resident again.
        "KC,Kênh Cạn,HH-1,,,CD-1,An,1980",
        // Line 5: the household in another hamlet.
        "DT,Đồng Tâm,HH-1,,,CD-3,Chi,1990",
        // Line 6: a second head.
        "KC,,HH-1,,1,CD-4,Dũng,1991",
        // Line 7: the hamlet under another name.
        "KC,Kênh Mới,HH-2,,x,CD-5,Em,1992",
        // Line 8: the household at another address.
        "KC,,HH-1,Thôn 2,,CD-6,Giang,1993",
        "KC,,HH-2,,,CD-7,Hà,1994",
    ];
    let text = format!("{header}\n{}\n", lines.join("\n"));

    let import = parse_residents(text.as_bytes(), today());

    assert_eq!(
        places(&import.errors),
        vec![
            (4, Some("resident_code")),
            (5, Some("hamlet_code")),
            (6, Some("head")),
            (7, Some("hamlet_name")),
            (8, Some("address")),
        ],
        "{:#?}",
        import.errors
    );
    assert!(import.errors[0].problem.contains("line 2"));
    let kept: Vec<usize> = import.rows.iter().map(|row| row.line).collect();
    assert_eq!(kept, vec![2, 3, 9]);
}

#[test]
fn a_file_without_its_columns_is_one_error_on_line_1() {
    let import = parse_residents(b"", today());
    assert_eq!(places(&import.errors), vec![(1, None)]);
    assert!(import.errors[0].problem.contains("hamlet_code (Mã xóm)"));

    let import = parse_residents(
        "\u{FEFF}Họ và tên,Mã xóm,Ghi chú\r\nAn,KC,\r\n".as_bytes(),
        today(),
    );
    assert_eq!(places(&import.errors), vec![(1, None)]);
    let problem = &import.errors[0].problem;
    for missing in [
        "household_code (Mã hộ)",
        "resident_code (Mã nhân khẩu)",
        "birth_year (Năm sinh) or birth_date (Ngày sinh)",
    ] {
        assert!(problem.contains(missing), "{problem}");
    }
    assert!(!problem.contains("full_name"), "{problem}");
    assert!(import.rows.is_empty());

    let import = parse_residents(format!("{ENGLISH_HEADER}\r\n\r\n").as_bytes(), today());
    assert_eq!(places(&import.errors), vec![(2, None)]);

    let import = parse_residents(b"hamlet_code,household_code\n\xFF\n", today());
    assert_eq!(places(&import.errors), vec![(2, None)]);
    assert!(import.errors[0].problem.contains("CSV UTF-8"));
}

#[test]
fn a_column_named_twice_is_refused() {
    let text = format!("{ENGLISH_HEADER},Năm sinh\nKC,HH-1,CD-1,An,1980,1980\n");
    let import = parse_residents(text.as_bytes(), today());
    assert_eq!(places(&import.errors), vec![(1, Some("birth_year"))]);
}

#[test]
fn survey_answers_are_read() {
    let text = "\u{FEFF}Mã nhân khẩu,Ngày khảo sát,Có thanh toán trực tuyến 12 tháng qua?,Kênh\r\n\
                CD-1,15/11/2026,Có,Ví MoMo\r\n\
                CD-2,2026-11-15,không,\r\n\
                CD-1,2026-11-16,x,\r\n";
    let import = parse_survey(text.as_bytes(), today());
    assert_eq!(import.errors, vec![]);
    assert_eq!(
        import.rows,
        vec![
            SurveyRow {
                line: 2,
                resident_code: Code::parse("c", "CD-1").unwrap(),
                surveyed_on: date(2026, 11, 15),
                used_online_payment: true,
                channel: Some("Ví MoMo".to_owned()),
            },
            SurveyRow {
                line: 3,
                resident_code: Code::parse("c", "CD-2").unwrap(),
                surveyed_on: date(2026, 11, 15),
                used_online_payment: false,
                channel: None,
            },
            SurveyRow {
                line: 4,
                resident_code: Code::parse("c", "CD-1").unwrap(),
                surveyed_on: date(2026, 11, 16),
                used_online_payment: true,
                channel: None,
            },
        ]
    );
}

#[test]
fn bad_survey_answers_are_reported() {
    let long_channel = "k".repeat(51);
    let text = format!(
        "resident_code;surveyed_on;used_online_payment;channel\n\
         CD-1;2026-11-15;yes;\n\
         CD-1;15/11/2026;no;\n\
         CD-2;2026-11-30;yes;\n\
         CD-3;2026-11-15;;\n\
         CD-4;2026-11-15;maybe;\n\
         CD-5;2026-11-15;1;{long_channel}\n\
         CD-6;;0;\n"
    );
    let import = parse_survey(text.as_bytes(), today());
    assert_eq!(
        places(&import.errors),
        vec![
            (3, Some("resident_code")),
            (4, Some("surveyed_on")),
            (5, Some("used_online_payment")),
            (6, Some("used_online_payment")),
            (7, Some("channel")),
            (8, Some("surveyed_on")),
        ],
        "{:#?}",
        import.errors
    );
    assert_eq!(import.rows.len(), 1);

    let import = parse_survey(b"resident_code,channel\nCD-1,\n", today());
    assert_eq!(places(&import.errors), vec![(1, None)]);
    assert!(import.errors[0]
        .problem
        .contains("used_online_payment (Có thanh toán trực tuyến 12 tháng qua)"));
}

/// A residents file of `households` households of 1 to 6 residents, the same for a seed.
fn residents_csv(households: usize, seed: u64) -> String {
    const FAMILY: [&str; 6] = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Đặng"];
    const GIVEN: [&str; 6] = [
        "Văn An",
        "Thị Bình",
        "Đức Cường",
        "Thị Dung",
        "Minh",
        "Hồng",
    ];
    let mut state = seed;
    let mut next = |below: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % below
    };
    let mut text = String::from(
        "\u{FEFF}Mã xóm,Mã hộ,Địa chỉ,Chủ hộ,Mã nhân khẩu,Họ và tên,Năm sinh,Giới tính,\
         Tình trạng,Ngày chuyển đi/mất\r\n",
    );
    let mut resident = 0;
    for household in 0..households {
        let hamlet = household % 12;
        for member in 0..=next(6) {
            resident += 1;
            let (status, left_on) = if next(20) == 0 {
                ("Chuyển đi", "01/06/2025")
            } else {
                ("", "")
            };
            text.push_str(&format!(
                "X{hamlet},HH-{household},\"Xóm {hamlet}, số {household}\",{},CD-{resident},\
                 {} {},{},{},{status},{left_on}\r\n",
                if member == 0 { "x" } else { "" },
                FAMILY[next(6) as usize],
                GIVEN[next(6) as usize],
                1930 + next(95),
                ["Nam", "Nữ", ""][next(3) as usize],
            ));
        }
    }
    text
}

#[test]
fn ten_thousand_residents_parse() {
    let text = residents_csv(3_500, 7);
    let import = parse_residents(text.as_bytes(), today());
    assert_eq!(import.errors, vec![]);
    assert!(import.rows.len() >= 10_000, "{}", import.rows.len());
}
