//! The web app over HTTP, as a browser uses it: session cookies, CSRF tokens, the first-run
//! setup link, the stall page and a payee's own money through the API.

use std::collections::HashMap;
use std::time::Duration;

use market_ledger::domain::user::Role;
use market_ledger::http::pages::texts::{EN, VI};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::common::{error_code, new_user, read, token_for_payee, Backend, TestApp, PASSWORD};
use crate::statistics::{at, small_commune_paying_in_march};
use crate::webhooks::{
    configure, intent, record, send_standard, transfer, vendor, STANDARD_SECRET,
};

crate::on_both_backends!(
    a_vendor_logs_in_and_opens_its_own_stall_page_only,
    forms_without_the_csrf_token_are_refused_and_logout_ends_the_session,
    web_logins_share_the_api_login_throttle,
    the_setup_link_creates_the_first_admin_once,
    vendors_read_their_own_money_through_the_api,
    a_reconnecting_stream_gets_the_missed_payments_once,
    vietnamese_pages_show_no_english,
    every_page_admits_exactly_its_roles,
    disabling_a_user_or_resetting_their_password_ends_their_browser_sessions,
    staff_see_adoption_by_hamlet_against_the_target,
    staff_resolve_a_suspense_item_from_the_page,
    staff_read_where_the_bank_balance_differs_from_the_ledger,
    staff_check_a_bank_statement_and_record_its_missing_lines_once_confirmed,
    a_school_office_records_cash_from_its_run_board_and_parents_read_what_is_owed,
    a_payment_taken_out_of_suspense_reaches_a_reconnecting_stall_stream,
    the_market_board_announces_each_stall_and_stops_when_its_link_is_revoked,
    an_admin_manages_users_from_the_users_page,
    staff_onboard_a_vendor_from_a_picture_of_its_bank_qr,
);

/// A browser without script: keeps its cookies, follows no redirect by itself.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    /// Every Set-Cookie line, as sent.
    set_cookies: Vec<String>,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn cookie_line(&self, name: &str) -> &str {
        self.set_cookies
            .iter()
            .find(|line| line.starts_with(&format!("{name}=")))
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} cookie set: {:?}", self.set_cookies))
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn answer(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let response = request
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &set_cookies {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            set_cookies,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.client.get(self.app.url(path));
        self.answer(request).await
    }

    async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self.client.post(self.app.url(path)).form(fields);
        self.answer(request).await
    }

    fn csrf(&self) -> String {
        self.cookies.get("ml_csrf").cloned().expect("a CSRF cookie")
    }

    /// Logs in through the login page; the answer to the form.
    async fn log_in(&mut self, username: &str, password: &str) -> Answer {
        let page = self.get("/app/login").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = self.csrf();
        self.post_form(
            "/app/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
                ("next", "/app"),
            ],
        )
        .await
    }
}

fn id_of(payee: &Value) -> Uuid {
    payee["id"].as_str().unwrap().parse().unwrap()
}

async fn a_vendor_logs_in_and_opens_its_own_stall_page_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (mine, _) = vendor(&app, "V12", "970436", "1112223334").await;
    let (theirs, _) = vendor(&app, "V13", "970436", "5556667778").await;
    let username = new_user(&app, Role::Vendor, Some(id_of(&mine))).await;
    let mut phone = Browser::new(&app);
    let own_page = format!("/app/payees/{}", id_of(&mine));

    let refused = phone.get(&own_page).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert!(
        refused
            .location()
            .starts_with("/app/login?next=%2Fapp%2Fpayees%2F"),
        "{}",
        refused.location()
    );

    let logged_in = phone.log_in(&username, PASSWORD).await;
    assert_eq!(
        logged_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        logged_in.body
    );
    assert_eq!(logged_in.location(), "/app");
    let session = logged_in.cookie_line("ml_session");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");

    let home = phone.get("/app").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), own_page);
    let page = phone.get(&own_page).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(page.body.contains("<html lang=\"vi\">"));
    assert!(page.body.contains(mine["qr_svg_url"].as_str().unwrap()));
    assert!(page.body.contains(VI.static_qr));
    // The page's QR image and live stream are reads the session may make.
    let qr = phone.get(mine["qr_svg_url"].as_str().unwrap()).await;
    assert_eq!(qr.status, StatusCode::OK);
    let sticker = phone.get(&format!("{own_page}/sticker")).await;
    assert_eq!(sticker.status, StatusCode::OK);
    assert!(sticker.body.contains("V12"));

    // Another vendor's page is as absent as a page that does not exist.
    for path in [
        format!("/app/payees/{}", id_of(&theirs)),
        format!("/app/payees/{}/sticker", id_of(&theirs)),
        format!("/app/payees/{}", Uuid::now_v7()),
    ] {
        let other = phone.get(&path).await;
        assert_eq!(other.status, StatusCode::NOT_FOUND, "{path}");
        assert!(other.body.contains(VI.not_found), "{}", other.body);
    }
    let other_qr = phone.get(theirs["qr_svg_url"].as_str().unwrap()).await;
    assert_eq!(other_qr.status, StatusCode::NOT_FOUND);

    // The cookie never writes through the API: that needs a bearer token.
    let body = serde_json::json!({ "payee_id": id_of(&mine), "amount": "50000" });
    let write = phone
        .answer(
            phone
                .client
                .post(app.url("/v1/payment-intents"))
                .header("Idempotency-Key", "cookie-write")
                .json(&body),
        )
        .await;
    assert_eq!(write.status, StatusCode::UNAUTHORIZED, "{}", write.body);
}

async fn forms_without_the_csrf_token_are_refused_and_logout_ends_the_session(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, _) = vendor(&app, "V21", "970436", "2223334445").await;
    let username = new_user(&app, Role::Vendor, Some(id_of(&payee))).await;
    let mut phone = Browser::new(&app);

    // The login form itself needs the token.
    phone.get("/app/login").await;
    let no_token = phone
        .post_form(
            "/app/login",
            &[("username", username.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(no_token.body.contains(VI.csrf_refused));
    assert!(!phone.cookies.contains_key("ml_session"));
    let wrong_token = phone
        .post_form(
            "/app/login",
            &[
                ("csrf", "forged"),
                ("username", &username),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong_token.status, StatusCode::FORBIDDEN);

    assert_eq!(
        phone.log_in(&username, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let sale = format!("/app/payees/{}/intents", id_of(&payee));
    let refused = phone
        .post_form(&sale, &[("amount", "50000"), ("key", "k1")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let intents = format!("/v1/payees/{}/payment-intents", id_of(&payee));
    let (_, listed) = app.get(&intents).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "{listed}");

    // With the token: one intent, shown on the page; the same form sent twice makes one.
    let csrf = phone.csrf();
    let made = phone
        .post_form(
            &sale,
            &[("csrf", &csrf), ("amount", "50.000"), ("key", "k2")],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let again = phone
        .post_form(
            &sale,
            &[("csrf", &csrf), ("amount", "50.000"), ("key", "k2")],
        )
        .await;
    assert_eq!(again.location(), made.location());
    let (_, listed) = app.get(&intents).await;
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{listed}");
    assert_eq!(data[0]["amount"], "50000");
    let shown = phone.get(made.location()).await;
    assert!(shown.body.contains(data[0]["reference"].as_str().unwrap()));
    assert!(shown.body.contains("50.000đ"), "{}", shown.body);
    let bad_amount = phone
        .post_form(&sale, &[("csrf", &csrf), ("amount", "năm"), ("key", "k3")])
        .await;
    assert!(
        bad_amount.location().contains("?error=AMOUNT"),
        "{}",
        bad_amount.location()
    );
    let explained = phone.get(bad_amount.location()).await;
    assert!(explained.body.contains(VI.invalid_amount));

    // Logging out needs the token too, then the old cookie opens nothing.
    let session = phone.cookies["ml_session"].clone();
    let no_token = phone.post_form("/app/logout", &[]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let out = phone.post_form("/app/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!phone.cookies.contains_key("ml_session"));
    phone.cookies.insert("ml_session".into(), session);
    let after = phone.get(&format!("/app/payees/{}", id_of(&payee))).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/app/login"));
}

async fn web_logins_share_the_api_login_throttle(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let username = new_user(&app, Role::Staff, None).await;
    let mut browser = Browser::new(&app);
    let wrong = browser.log_in(&username, "not the password at all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains(VI.wrong_credentials));
    for _ in 0..4 {
        let (status, body) = app.login(&username, "still not the password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Five failures, counted across the API and the page: even the right password waits.
    let throttled = browser.log_in(&username, PASSWORD).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers.contains_key("retry-after"));
    assert!(throttled.body.contains(VI.too_many_attempts));
    let (status, body) = app.login(&username, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&body), "TOO_MANY_LOGIN_ATTEMPTS");
}

async fn the_setup_link_creates_the_first_admin_once(backend: Backend) {
    let Some(app) = TestApp::spawn_without_users(backend).await else {
        return;
    };
    let token = app
        .state
        .web
        .open_setup()
        .await
        .unwrap()
        .expect("no admin yet: setup is open");
    // What `serve` prints stays the same until it is used.
    assert_eq!(
        app.state.web.open_setup().await.unwrap(),
        Some(token.clone())
    );
    let mut browser = Browser::new(&app);
    let guessed = browser.get("/app/setup?token=guessed").await;
    assert_eq!(guessed.status, StatusCode::NOT_FOUND);
    assert!(guessed.body.contains(VI.setup_closed));
    let page = browser.get(&format!("/app/setup?token={token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(VI.setup_intro));
    let csrf = browser.csrf();

    let weak = browser
        .post_form(
            "/app/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("username", "chu.tich"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains(VI.weak_password));
    let made = browser
        .post_form(
            "/app/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("username", "chu.tich"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert!(made.body.contains(VI.setup_done));
    let (status, _) = app.login("chu.tich", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);

    // Used: the link and the form stop working, and no new link is made.
    assert_eq!(
        browser
            .get(&format!("/app/setup?token={token}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let again = browser
        .post_form(
            "/app/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("username", "second.admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(app.state.web.open_setup().await.unwrap(), None);
    assert_eq!(
        app.login("second.admin", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// A vendor with a configured bank feed and two payments: one by the static QR (the memo names
/// the stall's code), one paying an intent. Returns (payee, payments' bank transaction ids).
async fn paid_vendor(app: &TestApp) -> (Value, Vec<String>) {
    let (payee, collection) = vendor(app, "V31", "970436", "3334445556").await;
    configure(app, &collection, "standard", &[STANDARD_SECRET]).await;
    let fee = intent(app, &payee, "35000", None).await;
    let mut ids = Vec::new();
    for (n, (amount, memo)) in [
        (50_000, "ND:CT DEN:0815 V31 mua che".to_owned()),
        (
            35_000,
            format!(
                "MBVCB.77.{}.CT tu NGUYEN VAN B",
                fee["reference"].as_str().unwrap()
            ),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let body = transfer(
            &format!("web-{n}"),
            "3334445556",
            "in",
            amount,
            &memo,
            chrono::Utc::now(),
        );
        let (status, ack) = send_standard(app, STANDARD_SECRET, &body).await;
        assert_eq!(status, StatusCode::OK, "{ack}");
        assert_ne!(ack["transactions"][0]["matched_as"], "suspense", "{ack}");
        ids.push(ack["transactions"][0]["id"].as_str().unwrap().to_owned());
    }
    (payee, ids)
}

async fn vendors_read_their_own_money_through_the_api(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, ids) = paid_vendor(&app).await;
    let (other, _) = vendor(&app, "V32", "970436", "9998887776").await;
    let phone = token_for_payee(&app, Role::Vendor, id_of(&payee)).await;
    let payments = format!("/v1/payees/{}/payments", id_of(&payee));
    let (status, page) = app.get_as(&payments, &phone).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{page}");
    assert_eq!(data[0]["bank_transaction_id"], ids[0].as_str());
    assert_eq!(data[0]["amount"], "50000");
    assert_eq!(data[0]["memo"], "ND:CT DEN:0815 V31 mua che");
    assert_eq!(data[0]["reference"], Value::Null);
    assert_eq!(data[1]["amount"], "35000");
    assert!(data[1]["reference"].is_string());
    // Pages of one, then the rest after the cursor.
    let (_, first) = app.get_as(&format!("{payments}?limit=1"), &phone).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get_as(&format!("{payments}?limit=1&cursor={cursor}"), &phone)
        .await;
    assert_eq!(rest["data"][0]["bank_transaction_id"], ids[1].as_str());

    let (status, summary) = app
        .get_as(&format!("/v1/payees/{}/summary", id_of(&payee)), &phone)
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["balance"], "85000");
    assert_eq!(summary["currency"], "VND");
    let days = summary["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[0]["total"], "85000");
    assert_eq!(days[0]["count"], 2);
    assert!(days[1..].iter().all(|day| day["total"] == "0"));
    let (status, body) = app
        .get_as(
            &format!("/v1/payees/{}/summary?days=40", id_of(&payee)),
            &phone,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Another payee's money is not there for this vendor.
    for path in [
        format!("/v1/payees/{}/payments", id_of(&other)),
        format!("/v1/payees/{}/summary", id_of(&other)),
    ] {
        let (status, body) = app.get_as(&path, &phone).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(&body), "PAYEE_NOT_FOUND");
    }
}

async fn a_reconnecting_stream_gets_the_missed_payments_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, ids) = paid_vendor(&app).await;
    let phone = token_for_payee(&app, Role::Vendor, id_of(&payee)).await;
    let mut response = app
        .client
        .get(app.url(&format!("/v1/payees/{}/events", id_of(&payee))))
        .bearer_auth(&phone)
        .header("Last-Event-ID", &ids[0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|frame| frame.contains("event: payment_received"))
        .collect();
    assert_eq!(
        events.len(),
        1,
        "only the payment after the last one seen: {text}"
    );
    assert!(events[0].contains(&format!("id: {}", ids[1])), "{text}");
    let data: Value =
        serde_json::from_str(events[0].split("data: ").nth(1).unwrap().trim()).unwrap();
    assert_eq!(data["amount"], "35000");
    assert_eq!(data["announcement"], "Đã nhận ba mươi lăm nghìn đồng");
}

/// The text a reader sees on a page: no tags, scripts, styles or attribute values.
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        text.push(' ');
        let tail = &rest[start..];
        let skip_to = if tail.starts_with("<script") {
            tail.find("</script>").map(|end| end + "</script>".len())
        } else {
            tail.find('>').map(|end| end + 1)
        };
        rest = &tail[skip_to.unwrap_or(tail.len())..];
    }
    text.push_str(rest);
    text
}

/// Every sentence of a catalogue, read from its Debug form (`field: "text"`).
fn sentences(catalogue: &str) -> Vec<String> {
    catalogue
        .split(": \"")
        .skip(1)
        .filter_map(|part| part.split_once('"').map(|(text, _)| text.to_owned()))
        .collect()
}

/// Each page is in Vietnamese and shows no sentence of the English catalogue.
fn assert_no_english(pages: &[(String, Answer)]) {
    let vietnamese = sentences(&format!("{VI:?}"));
    // English sentences the Vietnamese catalogue does not also use (its link to English).
    let english: Vec<String> = sentences(&format!("{EN:?}"))
        .into_iter()
        .filter(|text| text.chars().count() > 3 && !vietnamese.contains(text))
        .collect();
    assert!(english.len() > 30, "{english:?}");
    for (path, answer) in pages {
        assert!(answer.body.contains("<html lang=\"vi\">"), "{path}");
        let text = visible_text(&answer.body);
        for sentence in &english {
            assert!(
                !text.contains(sentence.as_str()),
                "{path} shows English {sentence:?} in Vietnamese:\n{text}"
            );
        }
    }
}

async fn vietnamese_pages_show_no_english(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, _) = paid_vendor(&app).await;
    let vendor_name = new_user(&app, Role::Vendor, Some(id_of(&payee))).await;
    let staff_name = new_user(&app, Role::Staff, None).await;

    let mut vendor_phone = Browser::new(&app);
    let login = vendor_phone.get("/app/login").await;
    let mut pages = vec![("/app/login".to_owned(), login)];
    vendor_phone.log_in(&vendor_name, PASSWORD).await;
    let stall = format!("/app/payees/{}", id_of(&payee));
    for path in [
        stall.clone(),
        format!("{stall}/sticker"),
        format!("/app/payees/{}", Uuid::now_v7()),
    ] {
        let answer = vendor_phone.get(&path).await;
        pages.push((path, answer));
    }
    let mut office = Browser::new(&app);
    office.log_in(&staff_name, PASSWORD).await;
    pages.push(("/app".to_owned(), office.get("/app").await));
    for path in [
        "/app/adoption",
        "/app/discrepancies",
        "/app/statements",
        "/app/board-links",
        "/app/payees/new",
    ] {
        pages.push((path.to_owned(), office.get(path).await));
    }
    let admin_name = new_user(&app, Role::Admin, None).await;
    let mut admin = Browser::new(&app);
    admin.log_in(&admin_name, PASSWORD).await;
    pages.push(("/app/users".to_owned(), admin.get("/app/users").await));
    // The market hall's screen and a parents' phone: no login.
    let (status, link) = app
        .post(
            "/v1/board-links",
            &serde_json::json!({ "label": "Cổng chợ" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let board = link["url"].as_str().unwrap().to_owned();
    let mut screen = Browser::new(&app);
    pages.push((board.clone(), screen.get(&board).await));

    assert_no_english(&pages);
    let stall_text = visible_text(&pages[1].1.body);
    for sentence in [VI.static_qr, VI.today_takings, VI.sound_on, VI.last_days] {
        assert!(stall_text.contains(sentence), "{sentence}");
    }
    assert!(stall_text.contains("85.000đ"), "{stall_text}");

    // English on request, remembered by a cookie.
    let english_page = vendor_phone.get(&format!("{stall}?lang=en")).await;
    assert!(english_page.body.contains("<html lang=\"en\">"));
    assert!(visible_text(&english_page.body).contains(EN.today_takings));
    let remembered = vendor_phone.get(&stall).await;
    assert!(remembered.body.contains("<html lang=\"en\">"));

    // The first page on a slow phone: HTML, CSS and script well under 100 KB.
    let mut first_page = pages[0].1.body.len();
    for asset in ["/app/static/app.css", "/app/static/live.js"] {
        let answer = vendor_phone.get(asset).await;
        assert_eq!(answer.status, StatusCode::OK, "{asset}");
        assert!(answer.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age"));
        first_page += answer.body.len();
    }
    assert!(first_page < 100_000, "{first_page} bytes");
    let (status, _) = read(
        app.client
            .get(app.url("/app/static/nothing.js"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A GET, or a form posted with the browser's CSRF token and a sale's fields.
async fn visit(browser: &mut Browser<'_>, method: &str, path: &str) -> Answer {
    if method == "GET" {
        return browser.get(path).await;
    }
    let csrf = browser.cookies.get("ml_csrf").cloned().unwrap_or_default();
    browser
        .post_form(
            path,
            &[("csrf", &csrf), ("amount", "1000"), ("key", "walk")],
        )
        .await
}

async fn every_page_admits_exactly_its_roles(backend: Backend) {
    use market_ledger::http::policy::{Access, PAGES};
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, _) = vendor(&app, "V41", "970436", "4445556667").await;
    let mut browsers = Vec::new();
    for role in Role::ALL {
        let bound = role.is_payee_bound().then(|| id_of(&payee));
        let username = new_user(&app, role, bound).await;
        let mut browser = Browser::new(&app);
        let logged_in = browser.log_in(&username, PASSWORD).await;
        assert_eq!(logged_in.status, StatusCode::SEE_OTHER, "{role:?}");
        browsers.push((role, browser));
    }
    let mut anonymous = Browser::new(&app);
    anonymous.get("/app/login").await;
    for page in PAGES {
        let path = page
            .path
            .replace("{id}", &id_of(&payee).to_string())
            .replace("{file}", "app.css");
        let signed_out = visit(&mut anonymous, page.method, &path).await;
        let to_login = signed_out.status == StatusCode::SEE_OTHER
            && signed_out.location().starts_with("/app/login");
        match page.access {
            Access::Public => assert!(!to_login, "{} {path} is public", page.method),
            Access::Roles(_) => assert!(to_login, "{} {path} needs a login", page.method),
        }
        for (role, browser) in &mut browsers {
            // Logging out last, so the other pages are walked signed in.
            if page.path == "/app/logout" {
                continue;
            }
            let answer = visit(browser, page.method, &path).await;
            let allowed = match page.access {
                Access::Public => true,
                Access::Roles(roles) => roles.contains(role),
            };
            if allowed {
                assert!(
                    answer.status != StatusCode::FORBIDDEN
                        && !answer.location().starts_with("/app/login"),
                    "{role:?} {} {path}: {}",
                    page.method,
                    answer.status
                );
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{role:?} {} {path}",
                    page.method
                );
                assert!(answer.body.contains(VI.forbidden));
            }
        }
    }
    for (role, browser) in &mut browsers {
        let csrf = browser.csrf();
        let out = browser.post_form("/app/logout", &[("csrf", &csrf)]).await;
        assert_eq!(out.location(), "/app/login", "{role:?}");
    }
}

async fn disabling_a_user_or_resetting_their_password_ends_their_browser_sessions(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (stall, _) = vendor(&app, "V21", "970436", "2223334445").await;
    let username = new_user(&app, Role::Vendor, Some(id_of(&stall))).await;
    let own_page = format!("/app/payees/{}", id_of(&stall));
    let user_path = format!("/v1/users/{username}");
    let mut phone = Browser::new(&app);
    assert_eq!(
        phone.log_in(&username, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(phone.get(&own_page).await.status, StatusCode::OK);

    let (status, _) = app
        .patch_as(
            &user_path,
            &serde_json::json!({ "disabled": true }),
            &app.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let refused = phone.get(&own_page).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER, "{}", refused.body);
    assert!(refused.location().starts_with("/app/login"));

    // Enabled again, the session works again (as the user's API tokens do) until a reset.
    let (status, _) = app
        .patch_as(
            &user_path,
            &serde_json::json!({ "disabled": false }),
            &app.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(phone.get(&own_page).await.status, StatusCode::OK);
    let (status, _) = app
        .post_as(
            &format!("{user_path}/reset-password"),
            &Value::Null,
            &app.admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(phone.get(&own_page).await.status, StatusCode::SEE_OTHER);
}

async fn staff_see_adoption_by_hamlet_against_the_target(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    small_commune_paying_in_march(&app).await;
    // Late March: the bars show March, the trend October to March.
    app.state.clock.set(at("2026-03-25T03:00:00Z"));
    let (payee, _) = vendor(&app, "V42", "970436", "4445556668").await;
    let staff_name = new_user(&app, Role::Staff, None).await;
    let vendor_name = new_user(&app, Role::Vendor, Some(id_of(&payee))).await;

    let mut office = Browser::new(&app);
    office.log_in(&staff_name, PASSWORD).await;
    let home = office.get("/app").await;
    assert!(
        home.body.contains("href=\"/app/adoption\""),
        "{}",
        home.body
    );
    let dashboard = office.get("/app/adoption").await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.body);
    let html = &dashboard.body;
    assert!(
        html.contains("<svg class=\"chart\" viewBox=\"0 0 320 "),
        "{html}"
    );
    assert!(html.contains("width=\"100%\""), "{html}");
    // Both hamlets count fewer than 5 on one side: shown as "<5" (escaped `&#60;5`), in the
    // chart and the table; the commune total (5 of 12) is drawn.
    for hamlet in ["Khe Cốc", "Tà Bán"] {
        assert!(
            html.contains(&format!("<td>{hamlet}</td><td>")),
            "{hamlet}: {html}"
        );
    }
    assert_eq!(html.matches("<td>&#60;5</td>").count(), 2, "{html}");
    // In the chart (escaped by plotters, `&lt;5`): the two marks, and one bar, the total's.
    assert_eq!(html.matches(">\n&lt;5\n</text>").count(), 2, "{html}");
    assert_eq!(html.matches("<rect ").count(), 1, "{html}");
    assert!(html.contains(">\nToàn xã\n</text>"), "{html}");
    assert!(
        html.contains("<td>Toàn xã</td><td>12</td><td>41,7%</td>"),
        "{html}"
    );
    assert!(
        html.contains(&format!("{} 50%", VI.adoption_target)),
        "{html}"
    );
    // The trend: six months, March's total a point (an open circle: white, then its ring)
    // with its value.
    for month in ["10/25", "11/25", "12/25", "01/26", "02/26", "03/26"] {
        assert!(
            html.contains(&format!(">\n{month}\n</text>")),
            "{month}: {html}"
        );
    }
    assert!(html.matches("<circle ").count() >= 2, "{html}");
    assert!(html.contains(">\n41,7%\n</text>"), "{html}");
    let text = visible_text(html);
    assert!(text.contains(VI.adoption_definition), "{text}");
    assert!(text.contains(VI.adoption_formula), "{text}");
    assert!(
        html.contains(&VI.adoption_suppressed_meaning.replace('<', "&#60;")),
        "{html}"
    );

    let mut stall_phone = Browser::new(&app);
    stall_phone.log_in(&vendor_name, PASSWORD).await;
    let refused = stall_phone.get("/app/adoption").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("Khe Cốc"));
}

async fn staff_resolve_a_suspense_item_from_the_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V43", "970436", "5556667778").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    // A transfer whose memo names nobody: it waits in suspense.
    let stray = record(&app, "5556667778", "in", 42_000, "tien hang ba Tu").await;
    assert_eq!(stray["matched_as"], "suspense", "{stray}");
    let item = stray["id"].as_str().unwrap().to_owned();
    let auditor_name = new_user(&app, Role::Auditor, None).await;
    let mut office = staff_browser_linking_to(&app, "/app/suspense").await;
    let queue = office.get("/app/suspense").await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    assert!(
        queue.body.contains(&format!("id=\"item-{item}\"")),
        "{}",
        queue.body
    );
    assert!(queue.body.contains("tien hang ba Tu"), "{}", queue.body);
    assert!(queue.body.contains("42.000đ"), "{}", queue.body);
    let key = form_key(&queue.body, &format!("item-{item}"));
    let resolve = format!("/app/suspense/{item}/resolve");
    let payee_id = id_of(&payee).to_string();
    let fields = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("key".to_owned(), key.clone()),
            ("action".to_owned(), "payee".to_owned()),
            ("payee_id".to_owned(), payee_id.clone()),
            ("intent_id".to_owned(), String::new()),
            ("note".to_owned(), "bà Tư bán ở quầy V43".to_owned()),
        ]
    };

    // Without the CSRF token: refused, and the money stays in suspense.
    let without_csrf = fields("");
    let forged = office
        .answer(
            office
                .client
                .post(app.url(&resolve))
                .form(&without_csrf[1..]),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.balance("payee:V43").await, "0");

    // An auditor sees the queue but gets no form, and a post is refused.
    let mut auditor = Browser::new(&app);
    auditor.log_in(&auditor_name, PASSWORD).await;
    let read_only = auditor.get("/app/suspense").await;
    assert!(read_only.body.contains(&format!("id=\"item-{item}\"")));
    assert!(!read_only.body.contains(&resolve));

    let csrf = office.csrf();
    // A payment intent that does not exist: back to the queue with a sentence, nothing moved.
    let missing_intent = Uuid::now_v7().to_string();
    let wrong = office
        .post_form(
            &resolve,
            &[
                ("csrf", &csrf),
                ("key", "another form"),
                ("action", "intent"),
                ("intent_id", &missing_intent),
                ("note", "thử sai"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER, "{}", wrong.body);
    let explained = office.get(wrong.location()).await;
    assert!(
        explained.body.contains(VI.resolution_not_possible),
        "{}",
        explained.body
    );
    assert!(explained.body.contains(&format!("id=\"item-{item}\"")));
    let done = office
        .answer(office.client.post(app.url(&resolve)).form(&fields(&csrf)))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), format!("/app/suspense?done={item}"));
    // The same form posted twice (a double tap) resolves once.
    let again = office
        .answer(office.client.post(app.url(&resolve)).form(&fields(&csrf)))
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(again.location(), format!("/app/suspense?done={item}"));

    assert_eq!(app.balance("payee:V43").await, "42000");
    // The vendor's list of payments shows the money staff gave it, as the balance does.
    let (status, received) = app.get(&format!("/v1/payees/{payee_id}/payments")).await;
    assert_eq!(status, StatusCode::OK, "{received}");
    assert_eq!(received["data"][0]["amount"], "42000", "{received}");
    assert_eq!(received["data"][0]["bank_transaction_id"], item.as_str());
    let after = office.get(done.location()).await;
    assert!(after.body.contains(VI.suspense_done), "{}", after.body);
    assert!(
        !after.body.contains(&format!("item-{item}")),
        "{}",
        after.body
    );
    let (status, stored) = app.get(&format!("/v1/bank-transactions/{item}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stored["resolution"]["note"], "bà Tư bán ở quầy V43",
        "{stored}"
    );
    app.assert_verified().await;
}

async fn staff_read_where_the_bank_balance_differs_from_the_ledger(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, collection) = vendor(&app, "V44", "970436", "6667778889").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let staff_name = new_user(&app, Role::Staff, None).await;
    let vendor_name = new_user(&app, Role::Vendor, Some(id_of(&payee))).await;
    let mut office = Browser::new(&app);
    office.log_in(&staff_name, PASSWORD).await;
    assert!(office
        .get("/app")
        .await
        .body
        .contains("href=\"/app/discrepancies\""));
    let none_yet = office.get("/app/discrepancies").await;
    assert_eq!(none_yet.status, StatusCode::OK, "{}", none_yet.body);
    assert!(none_yet.body.contains(VI.discrepancies_empty));

    // The bank says 1,250,000 after a 35,000 transfer the ledger holds alone.
    let mut body = transfer(
        &Uuid::new_v4().to_string(),
        "6667778889",
        "in",
        35_000,
        "V44 rau",
        chrono::Utc::now(),
    );
    body["data"]["running_balance"] = 1_250_000.into();
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &body).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    let (_, found) = app.get("/v1/reconciliation/discrepancies").await;
    let id = found["data"][0]["id"].as_str().expect("a discrepancy");

    let shown = office.get("/app/discrepancies").await;
    let text = visible_text(&shown.body);
    assert!(
        shown.body.contains(&format!("id=\"discrepancy-{id}\"")),
        "{}",
        shown.body
    );
    for expected in [
        "NGUYEN VAN A · 6667778889",
        "1.250.000đ",
        "35.000đ",
        "1.215.000đ",
        VI.difference,
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(!text.contains(VI.discrepancies_empty));

    let mut stall_phone = Browser::new(&app);
    stall_phone.log_in(&vendor_name, PASSWORD).await;
    let refused = stall_phone.get("/app/discrepancies").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("1.250.000"));
}

async fn staff_check_a_bank_statement_and_record_its_missing_lines_once_confirmed(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, collection) = vendor(&app, "V45", "970436", "7778889990").await;
    configure(&app, &collection, "standard", &[STANDARD_SECRET]).await;
    let mut known = transfer(
        "st-1",
        "7778889990",
        "in",
        50_000,
        "V45 rau cai",
        "2025-03-01T08:30:00+07:00".parse().unwrap(),
    );
    known["data"]["reference"] = "FT25060AAA1".into();
    let (status, ack) = send_standard(&app, STANDARD_SECRET, &known).await;
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(app.balance("payee:V45").await, "50000");
    let staff_name = new_user(&app, Role::Staff, None).await;
    let auditor_name = new_user(&app, Role::Auditor, None).await;
    let mut office = Browser::new(&app);
    office.log_in(&staff_name, PASSWORD).await;
    assert!(office
        .get("/app")
        .await
        .body
        .contains("href=\"/app/statements\""));
    let blank = office.get("/app/statements").await;
    assert_eq!(blank.status, StatusCode::OK, "{}", blank.body);
    assert!(blank.body.contains(&collection), "{}", blank.body);

    let statement = "date,direction,amount,description,bank_reference,running_balance\n\
        2025-03-01 08:30:00,in,50000,V45 rau cai,FT25060AAA1,\n\
        2025-03-01 14:00:00,in,\"70,000\",V45 ban ca,FT25060DDD4,120000\n";
    let csrf = office.csrf();
    let fields = |extra: &[(&'static str, &'static str)]| {
        let mut fields = vec![
            ("csrf", csrf.clone()),
            ("account", collection.clone()),
            ("from", "2025-03-01".to_owned()),
            ("to", "2025-03-01".to_owned()),
            ("csv", statement.to_owned()),
        ];
        fields.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        fields
    };
    let compared = office
        .answer(
            office
                .client
                .post(app.url("/app/statements"))
                .form(&fields(&[])),
        )
        .await;
    assert_eq!(compared.status, StatusCode::OK, "{}", compared.body);
    let text = visible_text(&compared.body);
    for expected in [
        VI.missing_webhooks,
        "V45 ban ca",
        "+70.000đ",
        VI.matched_by_reference,
        "120.000đ",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    // The statement's closing balance less the ledger's.
    assert!(
        compared.body.contains(&format!(
            "<th scope=\"row\">{}</th><td>70.000đ</td>",
            VI.difference
        )),
        "{}",
        compared.body
    );
    assert!(compared.body.contains("id=\"ingest\""), "{}", compared.body);
    assert_eq!(
        app.balance("payee:V45").await,
        "50000",
        "comparing records nothing"
    );

    // Asking to record without ticking the confirmation only compares again.
    let unconfirmed = office
        .answer(
            office
                .client
                .post(app.url("/app/statements"))
                .form(&fields(&[("ingest", "1")])),
        )
        .await;
    assert_eq!(unconfirmed.status, StatusCode::OK);
    assert_eq!(app.balance("payee:V45").await, "50000");
    let confirmed = office
        .answer(
            office
                .client
                .post(app.url("/app/statements"))
                .form(&fields(&[("ingest", "1"), ("confirm", "1")])),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert!(
        confirmed.body.contains("id=\"ingested\""),
        "{}",
        confirmed.body
    );
    assert!(!confirmed.body.contains("id=\"ingest\""));
    assert_eq!(app.balance("payee:V45").await, "120000");

    // A line outside the dates: a sentence, nothing recorded.
    let mut outside = fields(&[]);
    outside[3].1 = "2025-02-28".to_owned();
    outside[2].1 = "2025-02-27".to_owned();
    let refused = office
        .answer(
            office
                .client
                .post(app.url("/app/statements"))
                .form(&outside),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains(VI.statement_invalid),
        "{}",
        refused.body
    );
    // Without the CSRF token: refused before anything is compared.
    let forged = office
        .answer(
            office
                .client
                .post(app.url("/app/statements"))
                .form(&fields(&[("ingest", "1"), ("confirm", "1")])[1..]),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Auditors read the ledger but may not record money: no page.
    let mut auditor = Browser::new(&app);
    auditor.log_in(&auditor_name, PASSWORD).await;
    assert_eq!(
        auditor.get("/app/statements").await.status,
        StatusCode::FORBIDDEN
    );
    app.assert_verified().await;
}

/// The idempotency key of the form in the page's element with `id`.
fn form_key(body: &str, id: &str) -> String {
    body.split(&format!("id=\"{id}\""))
        .nth(1)
        .and_then(|form| form.split("name=\"key\" value=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the form's idempotency key")
        .to_owned()
}

async fn a_school_office_records_cash_from_its_run_board_and_parents_read_what_is_owed(
    backend: Backend,
) {
    use crate::schools::{items, ok, parent_link, post_run, pupils, run, school};
    use serde_json::json;
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mine = school(&app, "THC", "1900000011").await;
    let other = school(&app, "THD", "1900000012").await;
    let pupils = pupils(&app, &mine, 2).await;
    let [meals, ..] = items(&app, &mine).await;
    let run = run(&app, &mine, "Tháng 9/2026", &[&meals]).await;
    post_run(&app, &mine, &run).await;
    let school_user = new_user(&app, Role::School, Some(mine.id.parse().unwrap())).await;
    let mut desk = Browser::new(&app);
    desk.log_in(&school_user, PASSWORD).await;

    let board_path = format!("/app/schools/{}/runs/{run}", mine.id);
    let board = desk.get(&board_path).await;
    assert_eq!(board.status, StatusCode::OK, "{}", board.body);
    let (status, expected) = app
        .get(&format!("/v1/schools/{}/runs/{run}/status", mine.id))
        .await;
    assert_eq!(status, StatusCode::OK, "{expected}");
    for (id, field) in [
        ("paid", "paid"),
        ("partly-paid", "partly_paid"),
        ("unpaid", "unpaid"),
    ] {
        assert!(
            board
                .body
                .contains(&format!("id=\"{id}\">{}<", expected[field])),
            "{id}: {}",
            board.body
        );
    }
    assert_eq!(expected["unpaid"], 2);
    assert!(
        board.body.contains("id=\"owed\">800.000đ<"),
        "{}",
        board.body
    );
    // Vietnamese write a decimal comma.
    assert!(
        board.body.contains("id=\"paid-percent\">0,0%<"),
        "{}",
        board.body
    );
    // The school's home lists its runs; the board links the sheet of QR slips.
    let home = desk.get("/app").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(
        home.body.contains(&format!("href=\"{board_path}\"")),
        "{}",
        home.body
    );
    let slips_path = format!("{board_path}/slips");
    assert!(board.body.contains(&format!("href=\"{slips_path}\"")));
    let slips = desk.get(&slips_path).await;
    assert_eq!(slips.status, StatusCode::OK, "{}", slips.body);
    assert_eq!(
        slips.body.matches("class=\"slip\"").count(),
        2,
        "{}",
        slips.body
    );
    let (_, intents) = app
        .get(&format!("/v1/payees/{}/payment-intents?limit=100", mine.id))
        .await;
    let intents = intents["data"].as_array().expect("the run's intents");
    assert_eq!(intents.len(), 2, "{intents:?}");
    for intent in intents {
        let reference = intent["reference"].as_str().unwrap();
        assert!(
            slips.body.contains(reference),
            "{reference}: {}",
            slips.body
        );
    }
    assert!(slips.body.contains("400.000đ"), "{}", slips.body);
    assert!(slips.body.contains("/qr.svg"), "{}", slips.body);
    assert_eq!(
        desk.get(&format!("/app/schools/{}/runs/{run}/slips", other.id))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // The reminder texts: one per guardian (both pupils have the same one), sent once a day
    // whatever the taps; the run's workbook downloads with the session.
    let reminders_path = format!("{board_path}/reminders");
    assert!(board.body.contains(&format!("href=\"{reminders_path}\"")));
    let reminders = desk.get(&reminders_path).await;
    assert_eq!(reminders.status, StatusCode::OK, "{}", reminders.body);
    assert_eq!(
        reminders.body.matches("class=\"reminder\"").count(),
        1,
        "{}",
        reminders.body
    );
    assert!(reminders.body.contains("Kính gửi"), "{}", reminders.body);
    let send_path = format!("{reminders_path}/send");
    assert_eq!(
        desk.post_form(&send_path, &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = desk.csrf();
    let first = desk.post_form(&send_path, &[("csrf", csrf.as_str())]).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert!(
        first.location().ends_with("sent=1&failed=0"),
        "{}",
        first.location()
    );
    let second = desk.post_form(&send_path, &[("csrf", csrf.as_str())]).await;
    assert!(
        second.location().ends_with("sent=0&failed=0"),
        "{}",
        second.location()
    );
    let after_send = desk.get(second.location()).await;
    assert!(
        after_send.body.contains("id=\"sent\">0<"),
        "{}",
        after_send.body
    );
    let workbook_path = format!("/v1/schools/{}/runs/{run}/export.xlsx", mine.id);
    assert!(board.body.contains(&format!("href=\"{workbook_path}\"")));
    let workbook = desk.get(&workbook_path).await;
    assert_eq!(workbook.status, StatusCode::OK);
    let mut vietnamese_pages = vec![
        ("/app".to_owned(), home),
        (board_path.clone(), desk.get(&board_path).await),
        (slips_path, slips),
        (reminders_path, after_send),
    ];

    let key = form_key(&board.body, &format!("pupil-{}", pupils[0]));
    let cash_path = format!("{board_path}/cash");
    let fields = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("key".to_owned(), key.clone()),
            ("pupil_id".to_owned(), pupils[0].clone()),
            ("amount".to_owned(), "150000".to_owned()),
            ("payer_name".to_owned(), "Trần Thị Mẹ".to_owned()),
        ]
    };
    let forged = desk
        .answer(desk.client.post(app.url(&cash_path)).form(&fields("")[1..]))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = desk.csrf();
    let recorded = desk
        .answer(desk.client.post(app.url(&cash_path)).form(&fields(&csrf)))
        .await;
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    // A double tap records the cash once and shows the same receipt.
    let again = desk
        .answer(desk.client.post(app.url(&cash_path)).form(&fields(&csrf)))
        .await;
    assert_eq!(again.location(), recorded.location());
    let receipt_id = recorded.location().rsplit('/').next().unwrap().to_owned();
    let (status, stored) = app
        .get(&format!(
            "/v1/schools/{}/cash-receipts/{receipt_id}",
            mine.id
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["number"], 1);
    let receipt = desk.get(recorded.location()).await;
    assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.body);
    assert!(receipt.body.contains("Số: 1<"), "{}", receipt.body);
    let after = desk.get(&board_path).await;
    assert!(
        after.body.contains("id=\"partly-paid\">1<"),
        "{}",
        after.body
    );
    assert!(
        after.body.contains("id=\"owed\">650.000đ<"),
        "{}",
        after.body
    );

    // Another school's board is not found for this school's user.
    let theirs = desk
        .get(&format!("/app/schools/{}/runs/{run}", other.id))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    // The parents' page: no login, what is owed in Vietnamese; revoked, not found.
    let link = parent_link(&app, &mine, &pupils[0]).await;
    let parents_path = format!("/app/parents/{}", link["token"].as_str().unwrap());
    let mut parent = Browser::new(&app);
    let owed = parent.get(&parents_path).await;
    assert_eq!(owed.status, StatusCode::OK, "{}", owed.body);
    vietnamese_pages.push((parents_path.clone(), parent.get(&parents_path).await));
    assert_no_english(&vietnamese_pages);
    assert!(owed.body.contains("<html lang=\"vi\">"));
    assert!(owed.body.contains("Tiền ăn bán trú"), "{}", owed.body);
    assert!(
        owed.body.contains("id=\"total\">250.000đ<"),
        "{}",
        owed.body
    );
    ok(
        &app,
        &format!(
            "/v1/schools/{}/parent-links/{}/revoke",
            mine.id,
            link["id"].as_str().unwrap()
        ),
        &json!({}),
        StatusCode::NO_CONTENT,
    )
    .await;
    let revoked = parent.get(&parents_path).await;
    assert_eq!(revoked.status, StatusCode::NOT_FOUND);
    assert!(revoked.body.contains(VI.not_found), "{}", revoked.body);
    app.assert_verified().await;
}

/// A new staff member's browser, signed in, whose home page links to `page`.
async fn staff_browser_linking_to<'a>(app: &'a TestApp, page: &str) -> Browser<'a> {
    let staff_name = new_user(app, Role::Staff, None).await;
    let mut office = Browser::new(app);
    office.log_in(&staff_name, PASSWORD).await;
    let home = office.get("/app").await;
    assert!(
        home.body.contains(&format!("href=\"{page}\"")),
        "{}",
        home.body
    );
    office
}

/// Reads an open event stream until `done` says the text read so far is enough, or `within`
/// passes; the text read.
async fn read_stream(
    response: &mut reqwest::Response,
    within: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while !done(&text) {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    text
}

/// The `payment_received` frames of a stream's text: (id, data).
fn payment_frames(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|frame| frame.contains("event: payment_received"))
        .map(|frame| {
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("id"), serde_json::from_str(&field("data")).unwrap())
        })
        .collect()
}

async fn a_payment_taken_out_of_suspense_reaches_a_reconnecting_stall_stream(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, _) = paid_vendor(&app).await;
    // A transfer that names nobody waits in suspense; then a payment the phone hears live.
    let stray = record(&app, "3334445556", "in", 42_000, "tien hang").await;
    assert_eq!(stray["matched_as"], "suspense", "{stray}");
    let heard = record(&app, "3334445556", "in", 20_000, "ND:CT DEN:0815 V31 rau").await;
    assert_eq!(heard["matched_as"], "payee", "{heard}");
    // Staff give the earlier transfer to the vendor while the phone is offline.
    let resolve = format!(
        "/v1/reconciliation/unmatched/{}/resolve",
        stray["id"].as_str().unwrap()
    );
    let request = serde_json::json!({ "payee_id": id_of(&payee), "note": "khách quên mã" });
    let (status, resolved) =
        read(app.post_idempotent(&resolve, "web-replay", &request).await).await;
    assert_eq!(status, StatusCode::OK, "{resolved}");

    let phone = token_for_payee(&app, Role::Vendor, id_of(&payee)).await;
    let mut response = app
        .client
        .get(app.url(&format!("/v1/payees/{}/events", id_of(&payee))))
        .bearer_auth(&phone)
        .header("Last-Event-ID", heard["id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = read_stream(&mut response, Duration::from_secs(2), |_| false).await;
    let frames = payment_frames(&text);
    assert_eq!(frames.len(), 1, "only the resolution, once: {text}");
    let (resolution_id, data) = &frames[0];
    assert_eq!(data["bank_transaction_id"], stray["id"], "{text}");
    assert_eq!(data["amount"], "42000");
    assert_eq!(data["announcement"], "Đã nhận bốn mươi hai nghìn đồng");
    // Reconnecting after it sends nothing again.
    let mut again = app
        .client
        .get(app.url(&format!("/v1/payees/{}/events", id_of(&payee))))
        .bearer_auth(&phone)
        .header("Last-Event-ID", resolution_id)
        .send()
        .await
        .unwrap();
    let text = read_stream(&mut again, Duration::from_millis(800), |_| false).await;
    assert!(payment_frames(&text).is_empty(), "{text}");
}

/// Creates a payee whose stall is written `stall`, with the standard feed configured.
async fn stall_vendor(app: &TestApp, code: &str, stall: &str, account_number: &str) -> Value {
    let (status, payee) = app
        .post(
            "/v1/payees",
            &serde_json::json!({
                "kind": "vendor", "code": code, "name": format!("Cô {code}"), "stall": stall,
                "collection_account": {
                    "bank_bin": "970436", "account_number": account_number,
                    "holder_name": "TRAN THI C"
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payee}");
    let collection = payee["collection_account"]["id"].as_str().unwrap();
    configure(app, collection, "standard", &[STANDARD_SECRET]).await;
    payee
}

async fn the_market_board_announces_each_stall_and_stops_when_its_link_is_revoked(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    stall_vendor(&app, "V61", "12", "6100000001").await;
    stall_vendor(&app, "V62", "Sạp cá 3", "6200000002").await;
    let mut office = staff_browser_linking_to(&app, "/app/board-links").await;
    let links = office.get("/app/board-links").await;
    assert_eq!(links.status, StatusCode::OK, "{}", links.body);
    // Without the CSRF token: refused, nothing made.
    let forged = office
        .post_form("/app/board-links", &[("label", "Cổng chợ")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = office.csrf();
    let created = office
        .post_form(
            "/app/board-links",
            &[("csrf", &csrf), ("label", "Cổng chợ")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let board = created
        .body
        .split("id=\"board-url\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new link's address")
        .to_owned();
    assert!(board.starts_with("/app/board/"), "{board}");
    let token = board.trim_start_matches("/app/board/");
    assert_eq!(token.len(), 64, "256 bits in hex");
    // The API lists it, without its token.
    let (status, listed) = app.get("/v1/board-links").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["data"][0]["label"], "Cổng chợ");
    assert!(!listed.to_string().contains(token));
    let link_id = listed["data"][0]["id"].as_str().unwrap().to_owned();

    // The hall's screen: no login.
    let mut screen = Browser::new(&app);
    let page = screen.get(&board).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<html lang=\"vi\">"));
    assert!(visible_text(&page.body).contains(VI.market_board_title));
    let open_stream = |last: Option<String>| {
        let mut request = app.client.get(app.url(&format!("{board}/events")));
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        request.send()
    };
    let mut stream = open_stream(None).await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    record(
        &app,
        "6100000001",
        "in",
        35_000,
        "ND:CT V61 NGUYEN VAN B chuyen",
    )
    .await;
    let text = read_stream(&mut stream, Duration::from_secs(2), |text| {
        text.contains("event: payment_received")
    })
    .await;
    let frames = payment_frames(&text);
    assert_eq!(frames.len(), 1, "{text}");
    let (first_id, data) = &frames[0];
    assert_eq!(data["stall"], "Quầy 12");
    assert_eq!(data["amount"], "35000");
    assert_eq!(
        data["announcement"],
        "Quầy 12 đã nhận ba mươi lăm nghìn đồng"
    );
    // Never the payer, the memo or the payee's own details.
    for private in ["NGUYEN", "memo", "payee_id", "reference"] {
        assert!(!text.contains(private), "{private} in {text}");
    }
    drop(stream);

    // Paid while the screen was offline: the reconnection brings it, once.
    record(&app, "6200000002", "in", 120_000, "ND:CT V62 ca").await;
    let mut stream = open_stream(Some(first_id.clone())).await.unwrap();
    let text = read_stream(&mut stream, Duration::from_secs(1), |text| {
        text.contains("event: payment_received")
    })
    .await;
    let frames = payment_frames(&text);
    assert_eq!(frames.len(), 1, "{text}");
    assert_eq!(frames[0].1["stall"], "Sạp cá 3");
    assert_eq!(
        frames[0].1["announcement"],
        "Sạp cá 3 đã nhận một trăm hai mươi nghìn đồng"
    );
    // The page lists today's payments by stall.
    let page = screen.get(&board).await;
    assert!(
        page.body.contains("Quầy 12 đã nhận 35.000đ"),
        "{}",
        page.body
    );

    // Revoked from the staff page: the open stream ends at once, the page is gone.
    let revoke = format!("/app/board-links/{link_id}/revoke");
    let forged = office.post_form(&revoke, &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let revoked = office.post_form(&revoke, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let text = read_stream(&mut stream, Duration::from_secs(1), |text| {
        text.contains("event: revoked")
    })
    .await;
    assert!(text.contains("event: revoked"), "{text}");
    let ended = tokio::time::timeout(Duration::from_secs(1), stream.chunk()).await;
    assert!(matches!(ended, Ok(Ok(None))), "the stream ended: {ended:?}");
    assert_eq!(screen.get(&board).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        open_stream(None).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let listed = office.get("/app/board-links").await;
    assert!(listed.body.contains(VI.board_link_is_revoked));
    // Revoking twice: not found.
    let (status, _) = app
        .post(
            &format!("/v1/board-links/{link_id}/revoke"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn an_admin_manages_users_from_the_users_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (payee, _) = vendor(&app, "V71", "970436", "7100000001").await;
    let admin_name = new_user(&app, Role::Admin, None).await;
    let staff_name = new_user(&app, Role::Staff, None).await;
    let mut admin = Browser::new(&app);
    admin.log_in(&admin_name, PASSWORD).await;
    assert!(admin.get("/app").await.body.contains("href=\"/app/users\""));
    let list = admin.get("/app/users").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains(&format!("id=\"user-{staff_name}\"")));
    assert!(visible_text(&list.body).contains(VI.role_staff));
    let mut staff = Browser::new(&app);
    staff.log_in(&staff_name, PASSWORD).await;
    assert_eq!(staff.get("/app/users").await.status, StatusCode::FORBIDDEN);

    // A form without its CSRF token: refused.
    let forged = admin
        .post_form(
            "/app/users",
            &[("username", "lan.staff"), ("role", "staff")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = admin.csrf();
    // A vendor needs a stall: back to the list with why.
    let refused = admin
        .post_form(
            "/app/users",
            &[
                ("csrf", &csrf),
                ("username", "hoa.vendor"),
                ("role", "vendor"),
                ("payee_id", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let explained = admin.get(refused.location()).await;
    assert!(
        explained.body.contains(VI.payee_role_mismatch),
        "{}",
        explained.body
    );
    let payee_id = id_of(&payee).to_string();
    let created = admin
        .post_form(
            "/app/users",
            &[
                ("csrf", &csrf),
                ("username", "hoa.vendor"),
                ("role", "vendor"),
                ("payee_id", &payee_id),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let temporary = |body: &str| {
        body.split("id=\"temporary-password\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .expect("the temporary password")
            .to_owned()
    };
    let password = temporary(&created.body);
    assert_eq!(app.login("hoa.vendor", &password).await.0, StatusCode::OK);
    // Shown once: the list does not show it again.
    assert!(!admin.get("/app/users").await.body.contains(&password));

    // Disabled: no more logins; enabled again.
    let change = "/app/users/hoa.vendor";
    let disabled = admin
        .post_form(change, &[("csrf", &csrf), ("change", "disable")])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER, "{}", disabled.body);
    assert!(admin
        .get(disabled.location())
        .await
        .body
        .contains(VI.user_disabled));
    assert_ne!(app.login("hoa.vendor", &password).await.0, StatusCode::OK);
    admin
        .post_form(change, &[("csrf", &csrf), ("change", "enable")])
        .await;
    // A reset makes a new one-time password.
    let reset = admin
        .post_form(&format!("{change}/reset-password"), &[("csrf", &csrf)])
        .await;
    assert_eq!(reset.status, StatusCode::CREATED, "{}", reset.body);
    let new_password = temporary(&reset.body);
    assert_ne!(new_password, password);
    assert_eq!(
        app.login("hoa.vendor", &new_password).await.0,
        StatusCode::OK
    );
    // The role changes through the same rules: staff take no stall.
    let moved = admin
        .post_form(
            change,
            &[
                ("csrf", &csrf),
                ("change", "role"),
                ("role", "staff"),
                ("payee_id", ""),
            ],
        )
        .await;
    assert_eq!(moved.location(), "/app/users?done=hoa.vendor");
    let (_, user) = app.get("/v1/users/hoa.vendor").await;
    assert_eq!(user["role"], "staff");

    // The last enabled admin cannot be demoted: every other admin first becomes staff.
    let (_, users) = app.get("/v1/users").await;
    for other in users["data"].as_array().unwrap() {
        let name = other["username"].as_str().unwrap();
        if other["role"] == "admin" && name != admin_name {
            admin
                .post_form(
                    &format!("/app/users/{name}"),
                    &[
                        ("csrf", &csrf),
                        ("change", "role"),
                        ("role", "staff"),
                        ("payee_id", ""),
                    ],
                )
                .await;
        }
    }
    let last = admin
        .post_form(
            &format!("/app/users/{admin_name}"),
            &[("csrf", &csrf), ("change", "disable")],
        )
        .await;
    let explained = admin.get(last.location()).await;
    assert!(explained.body.contains(VI.last_admin), "{}", explained.body);
}

async fn staff_onboard_a_vendor_from_a_picture_of_its_bank_qr(backend: Backend) {
    use base64::Engine as _;
    use market_ledger::services::payments::qr_image::{render, ImageFormat};
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // A static ACB code from the shared VietQR vectors (`xuannghia-acb-static`).
    let acb = "00020101021138530010A0000007270123000697041601092576788590208QRIBFTTA53037045802VN6304AE9F";
    if let Ok(text) = std::fs::read_to_string("/work/shared/vectors/vietqr.json") {
        let vectors: Value = serde_json::from_str(&text).unwrap();
        let vector = vectors["vectors"]
            .as_array()
            .and_then(|all| all.iter().find(|v| v["id"] == "xuannghia-acb-static"))
            .expect("the vector");
        assert_eq!(vector["payload"], acb);
    }
    let mut office = staff_browser_linking_to(&app, "/app/payees/new").await;
    let blank = office.get("/app/payees/new").await;
    assert_eq!(blank.status, StatusCode::OK, "{}", blank.body);
    let code = blank
        .body
        .split("id=\"code\" name=\"code\" maxlength=\"16\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a code drawn with the page")
        .to_owned();
    assert!(code.starts_with('V'), "{code}");
    let csrf = office.csrf();
    let filled = |body: &str| {
        body.contains("<option value=\"970416\" selected>")
            && body.contains("id=\"account_number\" name=\"account_number\" inputmode=\"numeric\" required maxlength=\"19\" value=\"257678859\"")
    };

    // Pasted.
    let pasted = office
        .post_form(
            "/app/payees/new/scan",
            &[
                ("csrf", &csrf),
                ("payload", acb),
                ("name", "Bà Hoa"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(pasted.status, StatusCode::OK, "{}", pasted.body);
    assert!(filled(&pasted.body), "{}", pasted.body);
    assert!(
        pasted.body.contains("value=\"Bà Hoa\""),
        "the typed name is kept"
    );
    // A picture: our own renderer's PNG, sent as the page's script sends it.
    let picture = render(acb, ImageFormat::Png, 600);
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&picture.bytes)
    );
    let scanned = office
        .post_form(
            "/app/payees/new/scan",
            &[("csrf", &csrf), ("qr_image", &data_url), ("payload", "")],
        )
        .await;
    assert_eq!(scanned.status, StatusCode::OK, "{}", scanned.body);
    assert!(filled(&scanned.body), "{}", scanned.body);
    assert!(scanned.body.contains(VI.qr_read_check));
    // No code in the picture, or not a VietQR code: said so.
    let nothing = office
        .post_form(
            "/app/payees/new/scan",
            &[("csrf", &csrf), ("qr_image", "data:image/png;base64,AAAA")],
        )
        .await;
    assert_eq!(nothing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nothing.body.contains(VI.qr_not_found), "{}", nothing.body);
    let foreign = office
        .post_form(
            "/app/payees/new/scan",
            &[("csrf", &csrf), ("payload", "hello")],
        )
        .await;
    assert!(foreign.body.contains(VI.qr_unreadable), "{}", foreign.body);
    // Without the CSRF token: refused.
    let forged = office
        .post_form("/app/payees/new/scan", &[("payload", acb)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Saved: to the sticker; the same form again (a double tap) makes no second payee.
    let fields = [
        ("csrf", csrf.as_str()),
        ("kind", "vendor"),
        ("name", "Bà Hoa, quầy chè"),
        ("code", code.as_str()),
        ("stall", "12"),
        ("hamlet", ""),
        ("phone", ""),
        ("bank_bin", "970416"),
        ("account_number", "257678859"),
        ("holder_name", "Nguyễn Thị Hoa"),
    ];
    let saved = office.post_form("/app/payees/new", &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(
        saved.location().ends_with("/sticker"),
        "{}",
        saved.location()
    );
    let again = office.post_form("/app/payees/new", &fields).await;
    assert_eq!(again.location(), saved.location());
    let sticker = office.get(saved.location()).await;
    assert_eq!(sticker.status, StatusCode::OK);
    assert!(sticker.body.contains(&code), "{}", sticker.body);
    let (_, payees) = app.get("/v1/payees?limit=500").await;
    let made: Vec<&Value> = payees["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["code"] == code.as_str())
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(
        made[0]["collection_account"]["holder_name"],
        "NGUYEN THI HOA"
    );
    // A bad account number: the form comes back with why, nothing made.
    let mut wrong = fields;
    wrong[3] = ("code", "V9ZZ");
    wrong[8] = ("account_number", "12");
    let refused = office.post_form("/app/payees/new", &wrong).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(VI.onboard_invalid),
        "{}",
        refused.body
    );
    // Auditors may not onboard.
    let auditor_name = new_user(&app, Role::Auditor, None).await;
    let mut auditor = Browser::new(&app);
    auditor.log_in(&auditor_name, PASSWORD).await;
    assert_eq!(
        auditor.get("/app/payees/new").await.status,
        StatusCode::FORBIDDEN
    );
}
