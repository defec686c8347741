//! A school's files: a run exported as CSV and as an Excel workbook (read back with calamine),
//! for the whole run and one class; a cash receipt as PDF (its text read back with lopdf).

use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use calamine::{Data, Reader, Xlsx};
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use market_ledger::domain::user::Role;

use crate::common::{fetch, token_for_payee, Backend, TestApp};
use crate::schools::{cash, items, ok, pay_online, post_run, pupils, run, school, School};

crate::on_both_backends!(
    a_run_exports_as_csv_and_xlsx_with_vietnamese_names_amounts_and_totals,
    a_cash_receipt_prints_as_a_pdf_in_vietnamese_and_shows_its_cancellation,
    reminders_reach_a_signed_gateway_at_most_once_a_day_per_charge,
);

const MEALS: i64 = 20_000 * 20;
const INSURANCE: i64 = 884_520;

/// Class 3B with one pupil, HS09 "Lê Thị Ánh Tuyết".
async fn second_class(app: &TestApp, school: &School) -> String {
    let class = ok(
        app,
        &format!("/v1/schools/{}/classes", school.id),
        &json!({"year_id": school.year, "grade": 3, "name": "3B"}),
        StatusCode::CREATED,
    )
    .await;
    let class = class["id"].as_str().unwrap().to_owned();
    ok(
        app,
        &format!("/v1/schools/{}/pupils", school.id),
        &json!({"code": "HS09", "full_name": "Lê Thị Ánh Tuyết", "class_id": class,
            "joined_on": "2026-09-05", "guardian_name": "Lê Văn Tâm",
            "guardian_phone": "0987654321"}),
        StatusCode::CREATED,
    )
    .await;
    class
}

async fn download(app: &TestApp, path: &str, token: &str) -> (String, String, Vec<u8>) {
    let response = fetch(app, path, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let header = |name: reqwest::header::HeaderName| {
        response.headers()[&name]
            .to_str()
            .unwrap_or_else(|_| panic!("{name} is ASCII"))
            .to_owned()
    };
    let (content_type, disposition) = (header(CONTENT_TYPE), header(CONTENT_DISPOSITION));
    (
        content_type,
        disposition,
        response.bytes().await.unwrap().to_vec(),
    )
}

fn intent_of(posted: &Value, pupil: &str) -> String {
    posted["intents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pupil_id"] == pupil)
        .unwrap()["intent_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn text(cell: &Data) -> String {
    match cell {
        Data::String(text) => text.clone(),
        Data::Empty => String::new(),
        other => panic!("{other:?} is not text"),
    }
}

fn number(cell: &Data) -> i64 {
    match cell {
        Data::Float(number) => *number as i64,
        other => panic!("{other:?} is not a number"),
    }
}

async fn a_run_exports_as_csv_and_xlsx_with_vietnamese_names_amounts_and_totals(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THXL", "1900555111").await;
    let pupils = pupils(&app, &school, 3).await;
    let class_b = second_class(&app, &school).await;
    let [meals, insurance, _, _] = items(&app, &school).await;
    ok(
        &app,
        &format!("/v1/schools/{}/exemptions", school.id),
        &json!({"pupil_id": pupils[0], "fee_item_id": meals, "percent": 50, "category": "Hộ cận nghèo"}),
        StatusCode::CREATED,
    )
    .await;
    let run = run(&app, &school, "Tháng 9/2026", &[&meals, &insurance]).await;
    let posted = post_run(&app, &school, &run).await;
    // HS01 pays 100 000 online; HS02 pays everything in cash; HS03 and HS09 nothing.
    pay_online(&app, &school, &intent_of(&posted, &pupils[0]), 100_000).await;
    let school_token = token_for_payee(&app, Role::School, &school.id).await;
    cash(
        &app,
        &school.id,
        &pupils[1],
        MEALS + INSURANCE,
        &school_token,
    )
    .await;

    let auditor = app.token_for(Role::Auditor).await;
    let base = format!("/v1/schools/{}/runs/{run}", school.id);
    let (content_type, disposition, csv) =
        download(&app, &format!("{base}/export.csv"), &auditor).await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert_eq!(
        disposition,
        "attachment; filename=\"Dot thu Thang 9-2026.csv\"; \
         filename*=UTF-8''%C4%90%E1%BB%A3t%20thu%20Th%C3%A1ng%209-2026.csv"
    );
    let csv = String::from_utf8(csv).expect("UTF-8");
    let lines: Vec<&str> = csv
        .strip_prefix('\u{feff}')
        .expect("a byte order mark")
        .split_terminator("\r\n")
        .collect();
    let whole = MEALS + INSURANCE;
    let first_owed = MEALS / 2 + INSURANCE - 100_000;
    assert_eq!(
        lines,
        vec![
            "Lớp,Mã học sinh,Họ và tên,Tiền ăn bán trú,Bảo hiểm y tế (thu hộ),Miễn giảm,Điều chỉnh,Phải nộp,Đã nộp trực tuyến,Đã nộp tiền mặt,Còn nợ,Trạng thái".to_owned(),
            format!("3A,HS01,Nguyễn Văn Học Sinh 1,{MEALS},{INSURANCE},{},0,{},100000,0,{first_owed},Nộp một phần", MEALS / 2, whole - MEALS / 2),
            format!("3A,HS02,Nguyễn Văn Học Sinh 2,{MEALS},{INSURANCE},0,0,{whole},0,{whole},0,Đã nộp đủ"),
            format!("3A,HS03,Nguyễn Văn Học Sinh 3,{MEALS},{INSURANCE},0,0,{whole},0,0,{whole},Chưa nộp"),
            format!("3B,HS09,Lê Thị Ánh Tuyết,{MEALS},{INSURANCE},0,0,{whole},0,0,{whole},Chưa nộp"),
            format!(
                "Tổng cộng,,,{},{},{},0,{},100000,{whole},{},",
                4 * MEALS,
                4 * INSURANCE,
                MEALS / 2,
                4 * whole - MEALS / 2,
                first_owed + 2 * whole
            ),
        ]
    );
    assert!(
        !csv.replace("\r\n", "").contains('\n'),
        "every line ends in CRLF"
    );

    let (content_type, disposition, xlsx) = download(
        &app,
        &format!("{base}/export.xlsx?class_id={}", school.class),
        &school_token,
    )
    .await;
    assert_eq!(
        content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(
        disposition.ends_with("%20-%20L%E1%BB%9Bp%203A.xlsx"),
        "{disposition}"
    );
    let mut workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(xlsx)).unwrap();
    let sheet = workbook.worksheet_range("Đợt thu").unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 5, "header, 3A's three pupils, total");
    assert_eq!(text(&rows[0][4]), "Bảo hiểm y tế (thu hộ)");
    assert_eq!(text(&rows[1][2]), "Nguyễn Văn Học Sinh 1");
    assert_eq!(number(&rows[1][5]), MEALS / 2);
    assert_eq!(number(&rows[1][8]), 100_000);
    assert_eq!(number(&rows[2][9]), whole);
    assert_eq!(text(&rows[3][11]), "Chưa nộp");
    assert_eq!(text(&rows[4][0]), "Tổng cộng");
    assert_eq!(number(&rows[4][3]), 3 * MEALS);
    assert_eq!(number(&rows[4][10]), first_owed + whole);

    let (_, _, class_csv) = download(
        &app,
        &format!("{base}/export.csv?class_id={class_b}"),
        &school_token,
    )
    .await;
    let class_csv = String::from_utf8(class_csv).unwrap();
    assert!(class_csv.contains("\r\n3B,HS09,Lê Thị Ánh Tuyết,"));
    assert_eq!(class_csv.matches("\r\n").count(), 3, "{class_csv}");

    // With the default notifier the reminders go to the log, and count as sent: HS01 and HS03
    // share a guardian's phone (one message), HS09 has their own; HS02 has paid.
    let (status, summary) = app
        .post_as(&format!("{base}/reminders/send"), &json!({}), &school_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["notifier"], "log");
    assert_eq!(summary["sent"], 2, "{summary}");

    // Another school's user is told the school does not exist; a vendor may not ask.
    let elsewhere = crate::schools::school(&app, "THKH", "1900555333").await;
    let other = token_for_payee(&app, Role::School, &elsewhere.id).await;
    let response = fetch(&app, &format!("{base}/export.csv"), &other).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let vendor = app.token_for(Role::Vendor).await;
    let response = fetch(&app, &format!("{base}/export.xlsx"), &vendor).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// The page's text, one shown string a line, read as a PDF reader copies it: each string's
/// two-byte glyph ids turned into characters through the font's ToUnicode map. (lopdf's own
/// `extract_text` does not take printpdf's map and reads each glyph id as a one-byte code.)
fn pdf_text(bytes: &[u8]) -> String {
    use lopdf::{content::Content, Document, Object};
    let document = Document::load_mem(bytes).expect("the PDF parses");
    let pages = document.get_pages();
    assert_eq!(pages.len(), 1, "one page");
    let page = pages[&1];
    let fonts = document.get_page_fonts(page).unwrap();
    assert_eq!(fonts.len(), 1, "one font");
    let font = fonts.values().next().unwrap();
    let to_unicode = font
        .get_deref(b"ToUnicode", &document)
        .and_then(Object::as_stream)
        .expect("the font maps its glyphs to Unicode")
        .get_plain_content()
        .unwrap();
    let mut glyphs = std::collections::HashMap::new();
    for line in String::from_utf8_lossy(&to_unicode).lines() {
        if let Some((glyph, unicode)) = line
            .strip_prefix('<')
            .and_then(|rest| rest.split_once("> <"))
            .and_then(|(glyph, rest)| Some((glyph, rest.strip_suffix('>')?)))
        {
            let glyph = u16::from_str_radix(glyph, 16).unwrap();
            let unicode = u32::from_str_radix(unicode, 16).unwrap();
            glyphs.insert(glyph, char::from_u32(unicode).unwrap());
        }
    }
    let content = Content::decode(&document.get_page_content(page)).unwrap();
    let mut text = String::new();
    for operation in content.operations {
        if operation.operator != "Tj" {
            continue;
        }
        let Some(Object::String(shown, _)) = operation.operands.first() else {
            continue;
        };
        for pair in shown.chunks(2) {
            let glyph = u16::from_be_bytes([pair[0], pair[1]]);
            text.push(
                *glyphs
                    .get(&glyph)
                    .unwrap_or_else(|| panic!("glyph {glyph} unmapped")),
            );
        }
        text.push('\n');
    }
    text
}

async fn a_cash_receipt_prints_as_a_pdf_in_vietnamese_and_shows_its_cancellation(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let school = school(&app, "THPD", "1900555222").await;
    let pupils = pupils(&app, &school, 1).await;
    let token = token_for_payee(&app, Role::School, &school.id).await;
    let receipt = cash(&app, &school.id, &pupils[0], 1_250_000, &token).await;
    let path = format!(
        "/v1/schools/{}/cash-receipts/{}/receipt.pdf",
        school.id,
        receipt["id"].as_str().unwrap()
    );
    let (content_type, disposition, pdf) = download(&app, &path, &token).await;
    assert_eq!(content_type, "application/pdf");
    assert!(disposition.starts_with("inline;"), "{disposition}");
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    for expected in [
        "BIÊN LAI THU TIỀN",
        "Số: 1",
        "Nguyễn Văn Học Sinh 1 (mã HS01)",
        "1.250.000 đồng",
        "Trần Thị Mẹ",
        "Tiền mặt",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text:?}");
    }
    assert!(!text.contains("ĐÃ HỦY"));

    ok(
        &app,
        &format!(
            "/v1/schools/{}/cash-receipts/{}/cancel",
            school.id,
            receipt["id"].as_str().unwrap()
        ),
        &json!({"reason": "Thu nhầm học sinh"}),
        StatusCode::OK,
    )
    .await;
    let (_, _, pdf) = download(&app, &path, &token).await;
    let text = pdf_text(&pdf);
    assert!(text.contains("ĐÃ HỦY"), "{text:?}");
    assert!(text.contains("lý do: Thu nhầm học sinh"), "{text:?}");
    assert!(text.contains("1.250.000 đồng"), "{text:?}");

    let vendor = app.token_for(Role::Vendor).await;
    assert_eq!(
        fetch(&app, &path, &vendor).await.status(),
        StatusCode::FORBIDDEN
    );
}

const GATEWAY_SECRET: &str = "the school's gateway secret";

/// A stand-in for the school's SMS or Zalo gateway: it checks each POST's signature (answering
/// 401 to a bad one), refuses the next `refuse` messages with 503, and keeps the rest.
#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<Value>>>,
    refuse: Arc<AtomicUsize>,
}

impl Gateway {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/reminders", listener.local_addr().unwrap());
        let gateway = self.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let gateway = gateway.clone();
                tokio::spawn(async move {
                    let (head, body) = read_request(&mut socket).await;
                    let status = gateway.answer(&head, &body);
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    socket.write_all(response.as_bytes()).await.unwrap();
                });
            }
        });
        url
    }

    fn answer(&self, head: &str, body: &[u8]) -> &'static str {
        use hmac::Mac;
        let signature = head
            .lines()
            .find_map(|line| line.strip_prefix("x-reminder-signature: "))
            .unwrap_or_default();
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(GATEWAY_SECRET.as_bytes()).unwrap();
        mac.update(body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        if signature != expected || !head.starts_with("POST /reminders ") {
            return "401 Unauthorized";
        }
        if self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return "503 Service Unavailable";
        }
        self.received
            .lock()
            .unwrap()
            .push(serde_json::from_slice(body).unwrap());
        "200 OK"
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// The request's head (lowercase header names) and body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = socket.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the request ended early");
        bytes.extend_from_slice(&buffer[..read]);
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
        let head = head
            .lines()
            .map(|line| match line.split_once(':') {
                Some((name, value)) => format!("{}: {}", name.to_lowercase(), value.trim()),
                None => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .map_or(0, |n| n.parse().unwrap());
        while bytes.len() < end + 4 + length {
            let read = socket.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the body ended early");
            bytes.extend_from_slice(&buffer[..read]);
        }
        return (head, bytes[end + 4..end + 4 + length].to_vec());
    }
}

async fn reminders_reach_a_signed_gateway_at_most_once_a_day_per_charge(backend: Backend) {
    let gateway = Gateway::default();
    let url = gateway.start().await;
    let Some(app) = TestApp::spawn_with(backend, |settings| {
        settings.reminder_notifier = "http".into();
        settings.reminder_url = url;
        settings.reminder_secret = GATEWAY_SECRET.into();
    })
    .await
    else {
        return;
    };
    let school = school(&app, "THNN", "1900555444").await;
    // An alone; Bình and Cường share their mother's phone; Dũng pays everything in cash.
    let mut pupils = Vec::new();
    for (code, name, phone) in [
        ("HS01", "Nguyễn Văn An", "0911000001"),
        ("HS02", "Trần Thị Bình", "0911000002"),
        ("HS03", "Trần Văn Cường", "0911000002"),
        ("HS04", "Phạm Văn Dũng", "0911000004"),
    ] {
        let pupil = ok(
            &app,
            &format!("/v1/schools/{}/pupils", school.id),
            &json!({"code": code, "full_name": name, "class_id": school.class,
                "joined_on": "2026-09-05", "guardian_name": "Phụ huynh", "guardian_phone": phone}),
            StatusCode::CREATED,
        )
        .await;
        pupils.push(pupil["id"].as_str().unwrap().to_owned());
    }
    let [meals, insurance, _, _] = items(&app, &school).await;
    let run = run(&app, &school, "Tháng 9/2026", &[&meals, &insurance]).await;
    let posted = post_run(&app, &school, &run).await;
    let token = token_for_payee(&app, Role::School, &school.id).await;
    cash(&app, &school.id, &pupils[3], MEALS + INSURANCE, &token).await;

    let base = format!("/v1/schools/{}/runs/{run}/reminders", school.id);
    let (status, preview) = app.get_as(&base, &token).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["notifier"], "http");
    let messages = preview["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{preview}");
    let an = &messages[0];
    assert_eq!(an["guardian_phone"], "0911000001");
    assert_eq!(an["sent_today"], false);
    let reference = {
        let intent = intent_of(&posted, &pupils[0]);
        let (_, intent) = app.get(&format!("/v1/payment-intents/{intent}")).await;
        intent["reference"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        an["text"],
        format!(
            "Kính gửi phụ huynh em Nguyễn Văn An (lớp 3A), khoản thu Tháng 9/2026 (Tiền ăn bán \
             trú, Bảo hiểm y tế (thu hộ)) còn 1.284.520 đồng, quét mã QR kèm theo hoặc chuyển \
             khoản vào tài khoản MBBank 1900555444 với nội dung {reference}. Trân trọng, \
             Trường Tiểu học THNN."
        )
    );
    assert_eq!(an["pupils"][0]["payment_reference"], reference.as_str());
    assert!(an["pupils"][0]["qr_payload"]
        .as_str()
        .unwrap()
        .starts_with("000201"));
    let siblings = messages[1]["text"].as_str().unwrap();
    assert!(
        siblings.starts_with("Kính gửi phụ huynh em Trần Thị Bình (lớp 3A)")
            && siblings.contains("; em Trần Văn Cường (lớp 3A)"),
        "{siblings}"
    );
    assert_eq!(gateway.count(), 0, "a preview sends nothing");

    let send = || {
        let (path, token, app) = (format!("{base}/send"), token.clone(), &app);
        async move {
            let (status, summary) = app.post_as(&path, &json!({}), &token).await;
            assert_eq!(status, StatusCode::OK, "{summary}");
            summary
        }
    };
    // The gateway refuses the first message: it is reported and may go again today.
    gateway.refuse.store(1, Ordering::SeqCst);
    let first = send().await;
    assert_eq!(first["sent"], 1, "{first}");
    assert_eq!(first["failed"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["failed"][0]["guardian_phone"], "0911000001");
    assert_eq!(gateway.count(), 1);
    let retry = send().await;
    assert_eq!(retry["sent"], 1, "{retry}");
    assert_eq!(
        retry["charges_already_reminded"], 4,
        "Bình's and Cường's two charges each"
    );
    assert_eq!(gateway.count(), 2);
    let again = send().await;
    assert_eq!(
        (
            again["sent"].clone(),
            again["charges_already_reminded"].clone()
        ),
        (json!(0), json!(6))
    );
    assert_eq!(gateway.count(), 2, "nothing twice the same day");
    let (_, preview) = app.get_as(&base, &token).await;
    assert!(preview["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["sent_today"] == true));
    {
        let received = gateway.received.lock().unwrap();
        assert_eq!(received[1]["guardian_phone"], "0911000001");
        assert_eq!(received[1]["text"], an["text"]);
        assert_eq!(received[1]["message_id"], an["message_id"]);
        assert_eq!(received[0]["pupils"].as_array().unwrap().len(), 2);
    }

    // Who may: the school's keepers; not the auditor, who reads only.
    let auditor = app.token_for(Role::Auditor).await;
    let (status, _) = app
        .post_as(&format!("{base}/send"), &json!({}), &auditor)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The next day both go again, once, however many sends run at the same time.
    app.state.clock.advance(chrono::Duration::days(1));
    let (one, two, three) = tokio::join!(send(), send(), send());
    let sent: i64 = [one, two, three]
        .iter()
        .map(|s| s["sent"].as_i64().unwrap())
        .sum();
    assert_eq!(sent, 2);
    assert_eq!(gateway.count(), 4);
}
