//! A real server on a random port, on SQLite or on a fresh PostgreSQL database.

use std::path::PathBuf;

use market_ledger::config::Settings;
use market_ledger::domain::user::Role;
use market_ledger::http::AppState;
use market_ledger::services::auth::Caller;
use market_ledger::startup::Application;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const PASSWORD: &str = "a long test password";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub settings: Settings,
    pub admin: String,
    /// The first instance owns the directory and the database; a sibling borrows them.
    _dir: Option<TempDir>,
    _database: Option<ScratchDatabase>,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
}

/// A test's own PostgreSQL database on the server `TEST_DATABASE_URL` points at. It is dropped
/// when the test ends; a failed test keeps it (its name is printed) for a look.
pub struct ScratchDatabase {
    server_url: String,
    name: String,
}

impl ScratchDatabase {
    async fn create() -> ScratchDatabase {
        // Only the PostgreSQL variants get here, and they are compiled as ignored without the
        // variable: reaching this without it (e.g. `--ignored`) must fail, not pass untested.
        let server_url = std::env::var("TEST_DATABASE_URL")
            .expect("TEST_DATABASE_URL must be set at run time for the PostgreSQL tests");
        let name = format!("ml_test_{}", Uuid::new_v4().simple());
        execute_on_server(&server_url, &format!("CREATE DATABASE {name}")).await;
        ScratchDatabase { server_url, name }
    }

    fn url(&self) -> String {
        let (server, _) = self
            .server_url
            .rsplit_once('/')
            .expect("URL has a database name");
        format!("{server}/{}", self.name)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the failed test's database {}", self.name);
            return;
        }
        // Drop cannot await, and blocking on the test's own runtime is not allowed: a thread
        // with its own runtime drops the database. FORCE ends the service's pooled connections.
        let (server_url, statement) = (
            self.server_url.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(execute_on_server(&server_url, &statement))
        })
        .join()
        .expect("drop the test database");
    }
}

async fn execute_on_server(server_url: &str, statement: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(server_url)
        .await
        .expect("TEST_DATABASE_URL is set but PostgreSQL is not reachable");
    sqlx::query(statement)
        .execute(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Settings for a test's own database: a SQLite file in `dir`, or a scratch PostgreSQL
/// database, which lives as long as the returned guard.
pub async fn test_settings(
    backend: Backend,
    dir: &TempDir,
) -> Option<(Settings, Option<ScratchDatabase>)> {
    let (database_url, database) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("ledger.db").display()),
            None,
        ),
        Backend::Postgres => {
            let database = ScratchDatabase::create().await;
            (database.url(), Some(database))
        }
    };
    let settings = Settings {
        database_url,
        listen: "127.0.0.1:0".into(),
        data_dir: PathBuf::from(dir.path()),
        log_filter: "warn".into(),
        ..Settings::default()
    };
    Some((settings, database))
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut Settings),
    ) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut settings, database) = test_settings(backend, &dir).await?;
        adjust(&mut settings);
        let mut test_app = Self::start(settings, Some(dir), database).await;
        test_app.admin = test_app.token_for(Role::Admin).await;
        Some(test_app)
    }

    /// A fresh service with no user at all, as on first run.
    pub async fn spawn_without_users(backend: Backend) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (settings, database) = test_settings(backend, &dir).await?;
        Some(Self::start(settings, Some(dir), database).await)
    }

    /// A second instance on the same database and data directory (so the same signing keys),
    /// as when several instances run behind one load balancer. Drop it before `self`.
    pub async fn spawn_sibling(&self) -> TestApp {
        let settings = Settings {
            listen: "127.0.0.1:0".into(),
            ..self.settings.clone()
        };
        let mut sibling = Self::start(settings, None, None).await;
        sibling.admin = self.admin.clone();
        sibling
    }

    async fn start(
        settings: Settings,
        dir: Option<TempDir>,
        database: Option<ScratchDatabase>,
    ) -> TestApp {
        market_ledger::telemetry::init_tracing(&settings);
        let app = Application::build(&settings)
            .await
            .expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        // The server closes a connection after 5 s without a request (actix's keep-alive);
        // a request sent on it at that moment fails with IncompleteMessage. Browser tests pause
        // that long between API calls, so the client drops idle connections first.
        let client = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(3))
            .build()
            .expect("an HTTP client");
        TestApp {
            address,
            client,
            state,
            settings,
            admin: String::new(),
            _dir: dir,
            _database: database,
            shutdown,
            server,
        }
    }

    /// Starts a graceful shutdown and waits for the server to finish its requests.
    pub async fn shut_down(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(());
        self.server.await.expect("server task")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Creates a user with `role` and returns an access token for it.
    pub async fn token_for(&self, role: Role) -> String {
        let username = format!(
            "{}-{}",
            role.as_str(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let payee = role.is_payee_bound().then(Uuid::now_v7);
        self.state
            .auth
            .create_user(
                &Caller::system("test"),
                &username,
                role,
                payee,
                PASSWORD.into(),
            )
            .await
            .expect("user created");
        self.login(&username, PASSWORD).await.1["access_token"]
            .as_str()
            .expect("token issued")
            .to_owned()
    }

    pub async fn login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url("/v1/auth/token"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request sent");
        read(response).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(path, &self.admin).await
    }

    pub async fn get_as(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent");
        read(response).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_as(path, body, &self.admin).await
    }

    pub async fn post_as(&self, path: &str, body: &Value, token: &str) -> (StatusCode, Value) {
        self.send_as(reqwest::Method::POST, path, body, token).await
    }

    pub async fn patch_as(&self, path: &str, body: &Value, token: &str) -> (StatusCode, Value) {
        self.send_as(reqwest::Method::PATCH, path, body, token)
            .await
    }

    async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        token: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent");
        read(response).await
    }

    /// POSTs a money-moving request with an Idempotency-Key as the admin.
    pub async fn post_idempotent(&self, path: &str, key: &str, body: &Value) -> Response {
        self.post_idempotent_as(path, key, body, &self.admin).await
    }

    pub async fn post_idempotent_as(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        token: &str,
    ) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn create_account(&self, code: &str, kind: &str, flags: Value) -> Value {
        let (status, body) = self
            .post(
                "/v1/accounts",
                &json!({ "code": code, "name": format!("Account {code}"), "kind": kind, "currency": "VND", "flags": flags }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Posts one transfer with a fresh key; returns status and body.
    pub async fn transfer(&self, debit: &str, credit: &str, amount: &str) -> (StatusCode, Value) {
        let body = json!({
            "description": "transfer",
            "postings": [{ "debit": debit, "credit": credit, "amount": amount }]
        });
        read(
            self.post_idempotent("/v1/transactions", &Uuid::new_v4().to_string(), &body)
                .await,
        )
        .await
    }

    pub async fn balance(&self, account: &str) -> String {
        let (status, body) = self.get(&format!("/v1/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["balance"]["balance"]
            .as_str()
            .expect("balance")
            .to_owned()
    }

    pub async fn assert_verified(&self) {
        let (status, report) = self.get("/v1/ledger/verify").await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["ok"], true, "{report}");
    }

    pub async fn transaction_count(&self) -> i64 {
        let (_, report) = self.get("/v1/ledger/verify").await;
        report["transactions_checked"].as_i64().expect("count")
    }

    /// Asserts that the generic reversal refuses this transaction, which a domain of the
    /// service posted and keeps records of, and posts nothing.
    pub async fn assert_reversal_refused(&self, transaction_id: &str) {
        let count = self.transaction_count().await;
        let (status, answer) = read(
            self.post_idempotent(
                &format!("/v1/transactions/{transaction_id}/reverse"),
                &format!("reverse-{transaction_id}"),
                &Value::Null,
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::CONFLICT, "TRANSACTION_KEPT_ELSEWHERE"),
            "{answer}"
        );
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(
            !message.contains("  "),
            "a message one can read: {message:?}"
        );
        assert_eq!(self.transaction_count().await, count);
    }
}

// Payees, tokens bound to them, payment intents and QR images, as several test files need them.

pub fn collection(bin: &str, account: &str, holder: &str) -> Value {
    json!({ "bank_bin": bin, "account_number": account, "holder_name": holder })
}

pub fn vendor(code: &str, account: &str) -> Value {
    json!({
        "kind": "vendor", "code": code, "name": "Bà Hoa, quầy chè", "hamlet": "Khe Cốc",
        "stall": "Sạp 12", "phone": "0912 345 678", "category": "chè",
        "collection_account": collection("970436", account, "Nguyễn Thị Hồng"),
    })
}

pub async fn create_payee(app: &TestApp, body: &Value) -> Value {
    let (status, payee) = app.post("/v1/payees", body).await;
    assert_eq!(status, StatusCode::CREATED, "{payee}");
    payee
}

pub async fn payee_id(app: &TestApp, code: &str, account: &str) -> String {
    create_payee(app, &vendor(code, account)).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A new user of `role`, bound to `payee` if given, with [`PASSWORD`]; its username.
pub async fn new_user(app: &TestApp, role: Role, payee: Option<Uuid>) -> String {
    let username = format!(
        "{}-{}",
        role.as_str(),
        &Uuid::new_v4().simple().to_string()[..8]
    );
    app.state
        .auth
        .create_user(
            &Caller::system("test"),
            &username,
            role,
            payee,
            PASSWORD.into(),
        )
        .await
        .unwrap();
    username
}

/// A token for a new user of `role` bound to `payee`.
pub async fn token_for_payee(app: &TestApp, role: Role, payee: impl std::fmt::Display) -> String {
    let username = new_user(app, role, Some(payee.to_string().parse().unwrap())).await;
    app.login(&username, PASSWORD).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn create_intent_as(
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

pub async fn create_intent(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    create_intent_as(app, &app.admin, &Uuid::new_v4().to_string(), body).await
}

pub async fn pending_intent(app: &TestApp, payee: &str, amount: &str) -> Value {
    let (status, intent) =
        create_intent(app, &json!({ "payee_id": payee, "amount": amount })).await;
    assert_eq!(status, StatusCode::CREATED, "{intent}");
    intent
}

pub async fn fetch(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Decodes a PNG with a real QR decoder (rqrr), as a phone camera would read the screen.
pub fn decode_png(bytes: &[u8]) -> String {
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

pub async fn png_payload(app: &TestApp, path: &str, token: &str) -> String {
    let response = fetch(app, path, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(response.headers()[CONTENT_TYPE], "image/png");
    decode_png(&response.bytes().await.unwrap())
}

pub async fn read(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let path = response.url().path().to_owned();
    let json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = response.text().await.expect("body read");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    assert_documented(&path, status, json.then_some(&value));
    (status, value)
}

/// The API contract, as the code generates it (the contract test keeps
/// `api-spec/openapi.yaml` equal to it).
static SPEC: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    serde_json::to_value(<market_ledger::http::ApiDoc as utoipa::OpenApi>::openapi())
        .expect("the spec serializes")
});

/// The spec's path template for a request path: `{...}` matches one segment, and the
/// template with the most literal segments wins (`/v1/transactions/batch` over `{id}`).
fn path_template(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    SPEC["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            let fits = parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(part, segment)| {
                    (part.starts_with('{') && !segment.is_empty()) || part == segment
                });
            fits.then(|| {
                (
                    parts.iter().filter(|p| !p.starts_with('{')).count(),
                    template,
                )
            })
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template.as_str())
}

/// Every answer a test reads must be one the committed contract documents: its status on
/// that route, and a JSON body that matches the documented schema (for some method of the
/// route: a response does not say which method asked). Routes outside the spec (the 404 of an
/// unknown path) and 405s are the framework's, not a route's.
pub fn assert_documented(path: &str, status: StatusCode, json_body: Option<&Value>) {
    let Some(template) = path_template(path) else {
        return;
    };
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return;
    }
    let code = status.as_str();
    let documented: Vec<&Value> = SPEC["paths"][template]
        .as_object()
        .into_iter()
        .flat_map(|operations| operations.values())
        .filter_map(|operation| operation["responses"].get(code))
        .collect();
    assert!(
        !documented.is_empty(),
        "{path} answered {status}, which the spec does not document for {template}"
    );
    let Some(body) = json_body else {
        return;
    };
    let schemas: Vec<&Value> = documented
        .iter()
        .filter_map(|response| response["content"]["application/json"].get("schema"))
        .collect();
    if schemas.is_empty() {
        return;
    }
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": SPEC["components"],
        "anyOf": schemas,
    });
    let validator = jsonschema::validator_for(&root).expect("the spec's schemas compile");
    if let Err(error) = validator.validate(body) {
        panic!("{path} answered {status} with a body the spec does not allow for {template}: {error}\n{body}");
    }
}

/// Runs each statement straight on the app's database, past the service, and asserts the
/// database refuses it as changing immutable rows.
pub async fn assert_refused_by_the_database(app: &TestApp, backend: Backend, statements: &[&str]) {
    let url = &app.settings.database_url;
    for statement in statements {
        let outcome = match backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(url).await.unwrap();
                sqlx::query(statement).execute(&pool).await.map(|_| ())
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::query(statement).execute(&pool).await.map(|_| ())
            }
        };
        let error = outcome.expect_err(statement).to_string();
        assert!(error.contains("immutable"), "{statement}: {error}");
    }
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// The `code` of every row of a list page, in order.
pub fn codes_of(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["code"].as_str().unwrap().to_owned())
        .collect()
}

/// Declares each listed test once per backend: `sqlite::name` always runs,
/// `postgres::name` runs when TEST_DATABASE_URL is set at build time, and is reported as
/// ignored otherwise (see build.rs).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                #[cfg_attr(not(test_database_url), ignore = "TEST_DATABASE_URL is not set")]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
