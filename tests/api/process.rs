//! The real binary: acknowledged transactions survive SIGKILL, `verify` exits 1 on a
//! corrupted ledger, `webhooks send` delivers as a provider.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{
    create_payee, read, test_settings, vendor, Backend, ScratchDatabase, TestApp, PASSWORD,
};

crate::on_both_backends!(
    acknowledged_transactions_survive_sigkill,
    sigterm_finishes_requests_in_flight,
    verify_command_fails_on_a_corrupted_ledger,
    webhooks_send_delivers_as_the_provider_would,
);

/// A running server process, killed when dropped so a failing test leaves nothing behind.
struct Server(Child);

impl Server {
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_for_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not exit after SIGTERM");
    }

    /// SIGKILL, as a crash or power cut would stop it.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Binary {
    env: Vec<(&'static str, String)>,
    /// The PostgreSQL database the binary runs on, dropped with it.
    _database: Option<ScratchDatabase>,
}

impl Binary {
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_market-ledger"));
        command.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        command
    }

    fn create_admin(&self) {
        let mut child = self
            .command()
            .args([
                "users",
                "create",
                "--username",
                "admin",
                "--role",
                "admin",
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    async fn serve(&self, port: u16) -> Server {
        let server = Server(
            self.command()
                .env("MARKET_LEDGER_LISTEN", format!("127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become ready");
    }

    fn verify(&self) -> (bool, String) {
        let output = self.command().arg("verify").output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

async fn binary_for(backend: Backend, dir: &tempfile::TempDir) -> Option<Binary> {
    let (settings, database) = test_settings(backend, dir).await?;
    Some(Binary {
        _database: database,
        env: vec![
            ("DATABASE_URL", settings.database_url),
            ("MARKET_LEDGER_DATA_DIR", dir.path().display().to_string()),
            ("MARKET_LEDGER_LOG", "warn".into()),
        ],
    })
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let response = client
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    read(response).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn acknowledged_transactions_survive_sigkill(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(Running {
        binary,
        port,
        base,
        mut server,
        client,
        token,
    }) = Running::start(backend, &dir).await
    else {
        return;
    };
    // Keep posting while the process is killed; count what was acknowledged.
    let poster = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..10_000 {
                let sent = client
                    .post(format!("{base}/v1/transactions"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", format!("k{i}"))
                    .json(&json!({"description": "sale", "postings": [{"debit": "bank", "credit": "vendor", "amount": "10"}]}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == StatusCode::CREATED => {
                        let body: serde_json::Value = response.json().await.unwrap();
                        acknowledged.push(body["id"].as_str().unwrap().to_owned());
                    }
                    _ => break,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill();
    let acknowledged = poster.await.unwrap();
    assert!(
        !acknowledged.is_empty(),
        "some transactions were acknowledged before the kill"
    );

    let mut server = binary.serve(port).await;
    let token = login(&client, &base).await;
    for id in &acknowledged {
        let response = client
            .get(format!("{base}/v1/transactions/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "acknowledged transaction {id} lost"
        );
    }
    let (_, vendor) = read(
        client
            .get(format!("{base}/v1/accounts/vendor"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let balance: usize = vendor["balance"]["balance"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // At most one more than acknowledged: one whose answer was lost with the process.
    assert!(
        balance == acknowledged.len() * 10 || balance == (acknowledged.len() + 1) * 10,
        "{balance}"
    );
    server.kill();
    let (ok, report) = binary.verify();
    assert!(ok, "{report}");
}

/// The binary serving a fresh ledger with an admin and two accounts, `bank` and `vendor`.
struct Running {
    binary: Binary,
    port: u16,
    base: String,
    server: Server,
    client: reqwest::Client,
    token: String,
}

impl Running {
    async fn start(backend: Backend, dir: &tempfile::TempDir) -> Option<Running> {
        let binary = binary_for(backend, dir).await?;
        binary.create_admin();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let server = binary.serve(port).await;
        let client = reqwest::Client::new();
        let token = login(&client, &base).await;
        create_accounts(&client, &base, &token).await;
        Some(Running {
            binary,
            port,
            base,
            server,
            client,
            token,
        })
    }
}

async fn create_accounts(client: &reqwest::Client, base: &str, token: &str) {
    for (code, kind) in [("bank", "asset"), ("vendor", "liability")] {
        let response = client
            .post(format!("{base}/v1/accounts"))
            .bearer_auth(token)
            .json(&json!({"code": code, "name": code, "kind": kind, "currency": "VND"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

async fn sigterm_finishes_requests_in_flight(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(Running {
        binary,
        port: _,
        base,
        mut server,
        client,
        token,
    }) = Running::start(backend, &dir).await
    else {
        return;
    };
    let transfers: Vec<_> = (0..1000)
        .map(|_| json!({"description": "sale", "postings": [{"debit": "bank", "credit": "vendor", "amount": "1"}]}))
        .collect();
    let body = serde_json::to_vec(&json!({ "transactions": transfers })).unwrap();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let (send_chunk, chunks) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    send_chunk.send(Ok(first_half.to_vec())).await.unwrap();
    let batch = {
        let (client, base) = (client.clone(), base.clone());
        let stream = futures::stream::unfold(chunks, |mut chunks| async move {
            chunks.recv().await.map(|chunk| (chunk, chunks))
        });
        tokio::spawn(async move {
            client
                .post(format!("{base}/v1/transactions/batch"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "slow-batch")
                .header("Content-Type", "application/json")
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await
        })
    };
    // The request is surely in flight: its headers and half its body have been sent, and the
    // rest follows only after the signal, so the server must wait for it before exiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_chunk.send(Ok(second_half.to_vec())).await.unwrap();
    drop(send_chunk);
    let response = batch
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), StatusCode::OK);
    let (_, body) = read(response).await;
    assert_eq!(body["posted"], 1000);
    assert!(
        server.wait_for_exit().success(),
        "a clean exit after SIGTERM"
    );
    let (ok, report) = binary.verify();
    assert!(ok, "{report}");
}

async fn verify_command_fails_on_a_corrupted_ledger(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(binary) = binary_for(backend, &dir).await else {
        return;
    };
    binary.create_admin();
    let (ok, report) = binary.verify();
    assert!(ok, "an empty ledger verifies: {report}");
    let url = &binary.env[0].1;
    let corrupt = "INSERT INTO accounts (id, code, name, kind, currency, debits_must_not_exceed_credits, \
                   credits_must_not_exceed_debits, debits_posted, credits_posted, entry_count, created_at) \
                   VALUES ($1, 'ghost', 'ghost', 'asset', 'VND', false, false, 500, 0, 0, 0)";
    // A second pair of accounts whose totals agree with their entries, but one entry claims
    // running totals its history does not add up to.
    let [till, owed, forged] = [
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    ];
    // Parameters are numbered in order of first use: SQLite binds `$N` by appearance.
    let wrong_running_total = [
        (
            "INSERT INTO accounts (id, code, name, kind, currency, debits_must_not_exceed_credits, \
             credits_must_not_exceed_debits, debits_posted, credits_posted, entry_count, created_at) \
             VALUES ($1, 'till', 'till', 'asset', 'VND', false, false, 7, 0, 1, 0), \
                    ($2, 'owed', 'owed', 'liability', 'VND', false, false, 0, 7, 1, 0)",
            vec![till, owed],
        ),
        (
            "INSERT INTO transactions (id, description, effective_at, created_at, created_by) \
             VALUES ($1, 'forged', 0, 0, $2)",
            vec![forged, forged],
        ),
        (
            "INSERT INTO entries (account_id, account_seq, transaction_id, posting_index, is_debit, \
             amount, debits_after, credits_after, effective_at, created_at) \
             VALUES ($1, 1, $2, 0, true, 7, 9, 0, 0, 0), ($3, 1, $4, 1, false, 7, 0, 7, 0, 0)",
            vec![till, forged, owed, forged],
        ),
    ];
    macro_rules! corrupt_with {
        ($pool:expr) => {{
            let pool = $pool;
            sqlx::query(corrupt)
                .bind(uuid::Uuid::now_v7())
                .execute(&pool)
                .await
                .unwrap();
            for (statement, binds) in &wrong_running_total {
                let mut query = sqlx::query(statement);
                for id in binds {
                    query = query.bind(*id);
                }
                query.execute(&pool).await.unwrap();
            }
        }};
    }
    match backend {
        Backend::Sqlite => corrupt_with!(sqlx::SqlitePool::connect(url).await.unwrap()),
        Backend::Postgres => corrupt_with!(sqlx::PgPool::connect(url).await.unwrap()),
    }
    let (ok, report) = binary.verify();
    assert!(!ok, "a corrupted ledger must fail verify");
    assert!(report.contains("ACCOUNT_BALANCE_MISMATCH"), "{report}");
    assert!(report.contains("ENTRY_RUNNING_TOTAL_WRONG"), "{report}");
    assert!(report.contains("account till: entry 1"), "{report}");
    assert!(!report.contains("account owed"), "{report}");
}

/// `webhooks send` signs as the account's feed provider signs; with `--url` it posts the delivery
/// over HTTP to a running service, as the provider would, and prints the service's answer.
async fn webhooks_send_delivers_as_the_provider_would(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let payee = create_payee(&app, &vendor("V042", "0123456789")).await;
    let collection = payee["collection_account"]["id"].as_str().unwrap();
    crate::webhooks::configure(&app, collection, "payos", &["payos-checksum-key"]).await;
    let send = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_market-ledger"))
            .env("DATABASE_URL", &app.settings.database_url)
            .env("MARKET_LEDGER_DATA_DIR", &app.settings.data_dir)
            .env("MARKET_LEDGER_LOG", "warn")
            .args(["webhooks", "send", "--account", "0123456789"])
            .args(["--amount", "45000", "--memo", "V042 mua che"])
            .args(extra)
            .output()
            .unwrap()
    };

    let over_http = send(&["--url", &app.address, "--provider", "payos"]);
    let stderr = String::from_utf8_lossy(&over_http.stderr);
    assert!(over_http.status.success(), "{stderr}");
    let printed: Value = serde_json::from_slice(&over_http.stdout).unwrap();
    assert_eq!(printed["status"], 200, "{printed}");
    assert_eq!(printed["url"], format!("{}/v1/webhooks/payos", app.address));
    assert_eq!(printed["answer"]["success"], true, "{printed}");
    assert_eq!(app.balance("payee:V042").await, "45000");

    let in_process = send(&[]);
    assert!(in_process.status.success());
    assert_eq!(app.balance("payee:V042").await, "90000");

    let wrong_provider = send(&["--provider", "sepay"]);
    assert!(!wrong_provider.status.success());
    let stderr = String::from_utf8_lossy(&wrong_provider.stderr);
    assert!(stderr.contains("has a payos feed, not sepay"), "{stderr}");
    assert_eq!(app.balance("payee:V042").await, "90000");
    app.assert_verified().await;
}
