//! The stall page in a real browser: headless Chromium driven over WebDriver (Debian's chromium
//! and chromium-driver) against the real server. Without chromedriver on the PATH at build time
//! these tests are reported as ignored, never passed (see build.rs); CI installs it.
//!
//! Screenshots of each page at 360×800 and 1280×800 go to `$SCREENSHOT_DIR` (default
//! `screenshots/` in the repository).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use market_ledger::domain::user::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{new_user, Backend, TestApp, PASSWORD};
use crate::process::free_port;
use crate::webhooks::{configure, send_standard, transfer, vendor, STANDARD_SECRET};

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(
        not(chromedriver),
        ignore = "chromedriver is not installed: apt-get install chromium chromium-driver"
    )]
    async fn a_vendor_sees_and_hears_a_payment_on_the_stall_page() {
        super::a_vendor_sees_and_hears_a_payment_on_the_stall_page(crate::common::Backend::Sqlite)
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(
        not(chromedriver),
        ignore = "chromedriver is not installed: apt-get install chromium chromium-driver"
    )]
    async fn staff_and_a_school_office_work_their_pages() {
        super::staff_and_a_school_office_work_their_pages(crate::common::Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(
        not(chromedriver),
        ignore = "chromedriver is not installed: apt-get install chromium chromium-driver"
    )]
    async fn the_market_board_speaks_and_onboarding_reads_a_qr_picture() {
        super::the_market_board_speaks_and_onboarding_reads_a_qr_picture(
            crate::common::Backend::Sqlite,
        )
        .await
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(
        not(all(test_database_url, chromedriver)),
        ignore = "needs TEST_DATABASE_URL and chromedriver (apt-get install chromium chromium-driver)"
    )]
    async fn a_vendor_sees_and_hears_a_payment_on_the_stall_page() {
        super::a_vendor_sees_and_hears_a_payment_on_the_stall_page(crate::common::Backend::Postgres)
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(
        not(all(test_database_url, chromedriver)),
        ignore = "needs TEST_DATABASE_URL and chromedriver (apt-get install chromium chromium-driver)"
    )]
    async fn staff_and_a_school_office_work_their_pages() {
        super::staff_and_a_school_office_work_their_pages(crate::common::Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(
        not(all(test_database_url, chromedriver)),
        ignore = "needs TEST_DATABASE_URL and chromedriver (apt-get install chromium chromium-driver)"
    )]
    async fn the_market_board_speaks_and_onboarding_reads_a_qr_picture() {
        super::the_market_board_speaks_and_onboarding_reads_a_qr_picture(
            crate::common::Backend::Postgres,
        )
        .await
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session in it.
struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
}

impl Drop for Browser {
    /// Also when a test fails before `quit`: chromedriver and the Chromium it started share a
    /// process group of their own, and the whole group goes.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver never answered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=360,800", "--lang=vi-VN", "--autoplay-policy=no-user-gesture-required"],
        });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": options,
                "goog:loggingPrefs": { "browser": "ALL" },
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            driver,
        }
    }

    /// Ends the session, which closes Chromium (killing chromedriver alone would leave it).
    async fn quit(&self) {
        self.command(reqwest::Method::DELETE, "", Value::Null).await;
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, body).await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {found}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    async fn run(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    async fn log_in(&self, app: &TestApp, username: &str) {
        self.goto(&app.url("/app/login")).await;
        self.type_into("#username", username).await;
        self.type_into("#password", PASSWORD).await;
        self.click("form.stack button").await;
        // The login page's own address has "/app" in it too: wait until the browser left it,
        // or the next page opened may race the login and land on the login page.
        let started = Instant::now();
        while self.url().await.contains("/app/login") {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "still on the login page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session, as the page's "log out" button does.
    async fn log_out(&self) {
        self.click("form[action='/app/logout'] button").await;
        self.wait_for_url("/app/login").await;
    }

    async fn text(&self) -> String {
        self.run("return document.body.innerText;")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (at most 5 s) for a navigation the last click started to reach a URL containing
    /// `part`.
    async fn wait_for_url(&self, part: &str) {
        let started = Instant::now();
        loop {
            let url = self.url().await;
            if url.contains(part) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "still at {url}, not {part}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn png(&self, path: &str) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self.command(reqwest::Method::GET, path, Value::Null).await;
        base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap())
            .unwrap()
    }

    /// A picture of one element, scrolled into view first (one cut by the window's edge
    /// would be cut in the picture too).
    async fn element_png(&self, css: &str) -> Vec<u8> {
        let element = self.find(css).await;
        self.post(
            "/execute/sync",
            json!({ "script": "arguments[0].scrollIntoView({block: 'center'});",
                    "args": [{ ELEMENT: element }] }),
        )
        .await;
        self.png(&format!("/element/{element}/screenshot")).await
    }

    /// Saves the page at 360×800 and at 1280×800 as `<name>-360.png` and `<name>-1280.png`.
    async fn screenshots(&self, name: &str) {
        self.screenshots_from(name, "window.scrollTo(0, 0);").await;
    }

    /// The same, each after running `scroll` (to show a part further down the page).
    async fn screenshots_from(&self, name: &str, scroll: &str) {
        let dir = std::env::var_os("SCREENSHOT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("screenshots"));
        std::fs::create_dir_all(&dir).unwrap();
        for width in [1280, 360] {
            self.post("/window/rect", json!({ "width": width, "height": 800 }))
                .await;
            self.run(scroll).await;
            std::fs::write(
                dir.join(format!("{name}-{width}.png")),
                self.png("/screenshot").await,
            )
            .unwrap();
        }
    }

    /// What the page logged at level SEVERE (script errors, failed loads).
    async fn console_errors(&self) -> Vec<String> {
        let entries = self.post("/se/log", json!({ "type": "browser" })).await;
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// A TCP relay between the browser and the server whose line the test can cut, as a phone
/// loses its signal: open connections drop and new ones are closed at once until it is back.
struct Line {
    address: String,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Line {
    async fn to(server: &str) -> Line {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let server = server.trim_start_matches("http://").to_owned();
        let (cut, watching) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watching = watching.clone();
                let server = server.clone();
                tokio::spawn(async move {
                    if *watching.borrow() {
                        return;
                    }
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&server).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watching.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Line { address, cut }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// What zbarimg (a second, independent QR decoder) reads in a PNG.
fn zbar(png: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shot.png");
    std::fs::write(&file, png).unwrap();
    let output = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&file)
        .output()
        .expect("zbarimg runs (apt-get install zbar-tools)");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Replaces the browser's speech with a recorder: a Vietnamese voice is there, and what the
/// page says is kept in `window.spoken`.
const SPEECH_HOOK: &str = "
    window.spoken = [];
    const voice = { lang: 'vi-VN', name: 'test', voiceURI: 'test', localService: true, default: true };
    speechSynthesis.getVoices = () => [voice];
    speechSynthesis.speak = (utterance) => window.spoken.push(utterance.text);
    return true;";

/// A customer's transfer to stall V12's account, reported by the signed bank feed.
/// Waits for the page to say something, and checks it did within a second of now.
async fn first_said_within_a_second(browser: &Browser) {
    let sent = Instant::now();
    loop {
        let spoken = browser.run("return window.spoken;").await;
        if !spoken.as_array().unwrap().is_empty() {
            assert!(
                sent.elapsed() < Duration::from_secs(1),
                "{:?}",
                sent.elapsed()
            );
            return;
        }
        assert!(sent.elapsed() < Duration::from_secs(2), "nothing was said");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn pay_by_static_qr(app: &TestApp, id: &str, amount: i64, memo: &str) {
    let body = transfer(id, "1212343456", "in", amount, memo, chrono::Utc::now());
    let (status, ack) = send_standard(app, STANDARD_SECRET, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
}

async fn a_vendor_sees_and_hears_a_payment_on_the_stall_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V12", "970436", "1212343456").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let (other, _) = vendor(&app, "V13", "970436", "7878909012").await;
    let username = new_user(
        &app,
        Role::Vendor,
        payee["id"].as_str().unwrap().parse().ok(),
    )
    .await;
    let browser = Browser::start().await;
    let line = Line::to(&app.address).await;

    browser.goto(&line.url("/app/login")).await;
    browser.screenshots("login").await;
    browser.type_into("#username", &username).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form.stack button").await;
    let stall = line.url(&format!("/app/payees/{}", payee["id"].as_str().unwrap()));
    browser.wait_for_url(&stall).await;

    // The static QR on the screen reads back as the payee's code.
    let shown = browser.element_png("#static-qr").await;
    assert_eq!(zbar(&shown), payee["static_qr_payload"].as_str().unwrap());

    assert_eq!(browser.run(SPEECH_HOOK).await, true);
    browser.click("#sound").await;
    pay_by_static_qr(&app, "browser-1", 50_000, "ND:CT DEN:0815 V12 mua che").await;
    first_said_within_a_second(&browser).await;
    // Once, however long the page stays open.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        browser.run("return window.spoken;").await,
        json!(["Đã nhận năm mươi nghìn đồng"])
    );
    let total = browser
        .run("return document.getElementById('today-total').textContent;")
        .await;
    assert_eq!(total, "50.000");
    browser.screenshots("stall").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    // The phone loses its connection; a payment lands meanwhile. Back online, the page
    // catches up (Last-Event-ID) and says it once.
    line.set_cut(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    pay_by_static_qr(&app, "browser-2", 21_000, "ND:CT DEN:0816 V12 mua banh").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(browser.run("return window.spoken.length;").await, 1);
    line.set_cut(false);
    let back = Instant::now();
    while browser.run("return window.spoken.length;").await == 1 {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "the missed payment never came"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        browser.run("return window.spoken;").await,
        json!([
            "Đã nhận năm mươi nghìn đồng",
            "Đã nhận hai mươi mốt nghìn đồng"
        ])
    );
    let total = browser
        .run("return document.getElementById('today-total').textContent;")
        .await;
    assert_eq!(total, "71.000");

    // A dynamic QR for one sale, typed in with the thousands dot.
    browser.type_into("#amount", "35.000").await;
    browser.click("form.sale button").await;
    browser.wait_for_url("?intent=").await;
    let sale = zbar(&browser.element_png("#sale-qr").await);
    assert!(sale.contains("540535000"), "amount tag 54 = 35000: {sale}");
    browser.screenshots("sale").await;

    browser.goto(&format!("{stall}/sticker")).await;
    browser.screenshots("sticker").await;

    // Another vendor's page is not found.
    browser
        .goto(&line.url(&format!("/app/payees/{}", other["id"].as_str().unwrap())))
        .await;
    let text = browser.run("return document.body.innerText;").await;
    assert!(text.as_str().unwrap().contains("Không tìm thấy"), "{text}");

    browser.quit().await;
}

/// The commune staff and a school's accountant at their desks: the adoption dashboard, a
/// transfer resolved from the suspense queue, cash recorded from the run board with its
/// receipt, the pupils' QR slips, the parents' page; and the admin's users page.
async fn staff_and_a_school_office_work_their_pages(backend: Backend) {
    use crate::schools::{items, parent_link, post_run, pupils, run, school};
    use crate::statistics::{at, small_commune_paying_in_march};
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // The dashboard of a small commune late in March (its charts have bars, a hidden cell and
    // a trend), then back to today for the rest.
    small_commune_paying_in_march(&app).await;
    app.state.clock.set(at("2026-03-25T03:00:00Z"));
    let staff = new_user(&app, Role::Staff, None).await;
    let browser = Browser::start().await;
    browser.log_in(&app, &staff).await;
    browser.goto(&app.url("/app/adoption")).await;
    let charts = browser
        .run(
            "return [...document.querySelectorAll('svg.chart')].map(s => s.textContent).join(' ');",
        )
        .await;
    let charts = charts.as_str().unwrap();
    for shown in ["Mục tiêu 50%", "Toàn xã", "41,7%", "03/26", "<5"] {
        assert!(charts.contains(shown), "{shown}: {charts}");
    }
    browser.screenshots("adoption").await;
    browser
        .screenshots_from(
            "adoption-trend",
            "document.getElementById('trend').scrollIntoView();",
        )
        .await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.log_out().await;
    app.state.clock.set(chrono::Utc::now());

    let (_, collection) = vendor(&app, "V43", "970436", "5556667778").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let stray = transfer(
        "browser-stray",
        "5556667778",
        "in",
        42_000,
        "tien hang ba Tu",
        chrono::Utc::now(),
    );
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &stray).await;
    assert_eq!(status, StatusCode::OK, "{ack}");

    browser.log_in(&app, &staff).await;
    browser.goto(&app.url("/app/suspense")).await;
    assert!(browser.text().await.contains("tien hang ba Tu"));
    browser.screenshots("suspense").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    // A form posted from the page without its CSRF token is refused.
    let forged = browser
        .run(
            "return fetch(document.querySelector('form[action$=\"/resolve\"]').getAttribute('action'), {method: 'POST', \
             headers: {'Content-Type': 'application/x-www-form-urlencoded'}, \
             body: 'action=refund&note=x'}).then(r => r.status);",
        )
        .await;
    assert_eq!(forged, 403);
    let logged = browser.console_errors().await;
    assert!(
        logged.iter().all(|e| e.contains("403 (Forbidden)")),
        "{logged:?}"
    );
    // The queue also holds the small commune's stray transfer: this one is resolved.
    let item = browser
        .run(
            "return [...document.querySelectorAll('article.waiting')] \
             .find(a => a.textContent.includes('tien hang ba Tu')).id;",
        )
        .await;
    let item = format!("#{}", item.as_str().unwrap());
    browser
        .run(&format!(
            "const s = document.querySelector('{item} select[name=payee_id]'); \
             s.value = [...s.options].find(o => o.text.startsWith('V43')).value;"
        ))
        .await;
    browser
        .type_into(&format!("{item} input[name=note]"), "bà Tư bán ở quầy V43")
        .await;
    browser.click(&format!("{item} button[type=submit]")).await;
    browser.wait_for_url("done=").await;
    assert_eq!(app.balance("payee:V43").await, "42000");
    browser.screenshots("suspense-done").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.log_out().await;

    let mine = school(&app, "THC", "1900000011").await;
    let pupils = pupils(&app, &mine, 2).await;
    let [meals, ..] = items(&app, &mine).await;
    let run = run(&app, &mine, "Tháng 9/2026", &[&meals]).await;
    post_run(&app, &mine, &run).await;
    let accountant = new_user(&app, Role::School, Some(mine.id.parse().unwrap())).await;
    browser.log_in(&app, &accountant).await;
    let board = app.url(&format!("/app/schools/{}/runs/{run}", mine.id));
    browser.goto(&board).await;
    browser.screenshots("school-board").await;
    for (number, pupil) in pupils.iter().enumerate() {
        let row = format!("#pupil-{pupil}");
        browser
            .type_into(&format!("{row} input[name=amount]"), "150.000")
            .await;
        browser
            .type_into(&format!("{row} input[name=payer_name]"), "Trần Thị Mẹ")
            .await;
        browser.click(&format!("{row} button")).await;
        browser.wait_for_url("/receipts/").await;
        // Each receipt prints with the next number of the school's sequence.
        let receipt = browser.text().await;
        assert!(
            receipt.contains(&format!("Số: {}", number + 1)),
            "{receipt}"
        );
        assert!(receipt.contains("150.000"), "{receipt}");
        if number == 0 {
            browser.screenshots("receipt").await;
        }
        browser.goto(&board).await;
    }
    let totals = browser
        .run("return document.getElementById('partly-paid').textContent;")
        .await;
    assert_eq!(totals, "2");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    // Both still owe part: a slip each.
    browser.goto(&format!("{board}/slips")).await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('.slip').length;")
            .await,
        2
    );
    browser.screenshots("slips").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    // The print sheet has no page frame: log out from the board.
    browser.goto(&board).await;
    browser.log_out().await;

    let link = parent_link(&app, &mine, &pupils[0]).await;
    browser
        .goto(&app.url(&format!("/app/parents/{}", link["token"].as_str().unwrap())))
        .await;
    assert!(browser.text().await.contains("Nguyễn Văn Học Sinh 1"));
    browser.screenshots("parents").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    let admin = new_user(&app, Role::Admin, None).await;
    browser.log_in(&app, &admin).await;
    browser.goto(&app.url("/app/users")).await;
    assert!(browser.text().await.contains(&accountant));
    browser.screenshots("users").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.quit().await;
    app.assert_verified().await;
}

async fn the_market_board_speaks_and_onboarding_reads_a_qr_picture(backend: Backend) {
    use market_ledger::services::payments::qr_image::{render, ImageFormat};
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (status, payee) = app
        .post(
            "/v1/payees",
            &json!({
                "kind": "vendor", "code": "V12", "name": "Cô Lan", "stall": "12",
                "collection_account": {
                    "bank_bin": "970436", "account_number": "1212343456",
                    "holder_name": "TRAN THI LAN"
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payee}");
    let collection = payee["collection_account"]["id"].as_str().unwrap();
    configure(&app, collection, "standard", &[STANDARD_SECRET]).await;
    let (status, link) = app
        .post("/v1/board-links", &json!({ "label": "Cổng chợ" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let browser = Browser::start().await;

    // The hall's screen: a signed payment is said once, within a second, by stall and amount.
    browser.goto(&app.url(link["url"].as_str().unwrap())).await;
    assert_eq!(browser.run(SPEECH_HOOK).await, true);
    browser.click("#sound").await;
    pay_by_static_qr(&app, "board-1", 35_000, "ND:CT DEN:0815 V12 mua rau").await;
    first_said_within_a_second(&browser).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        browser.run("return window.spoken;").await,
        json!(["Quầy 12 đã nhận ba mươi lăm nghìn đồng"])
    );
    assert_eq!(
        browser
            .run("return document.getElementById('announce').textContent;")
            .await,
        "Quầy 12 đã nhận 35.000đ"
    );
    browser.screenshots("board").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    // Onboarding: the bank details come from a picture of the bank app's QR.
    let acb = "00020101021138530010A0000007270123000697041601092576788590208QRIBFTTA53037045802VN6304AE9F";
    let picture = std::env::temp_dir().join(format!("ml-qr-{}.png", std::process::id()));
    std::fs::write(&picture, render(acb, ImageFormat::Png, 600).bytes).unwrap();
    let staff = new_user(&app, Role::Staff, None).await;
    browser.log_in(&app, &staff).await;
    browser.goto(&app.url("/app/payees/new")).await;
    browser.screenshots("onboard").await;
    browser
        .type_into("#qr-file", picture.to_str().unwrap())
        .await;
    browser.wait_for_url("/app/payees/new/scan").await;
    let filled = browser
        .run("return [document.getElementById('bank_bin').value, document.getElementById('account_number').value];")
        .await;
    assert_eq!(filled, json!(["970416", "257678859"]));
    browser.screenshots("onboard-scanned").await;
    browser.goto(&app.url("/app/board-links")).await;
    browser.screenshots("board-links").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    let _ = std::fs::remove_file(&picture);
    browser.quit().await;
}
