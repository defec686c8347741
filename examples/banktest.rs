//! Bank test under crashes: the real binary, concurrent clients moving money between accounts
//! with a known total (or, with `--workload webhooks`, a bank-feed aggregator delivering signed
//! incoming transfers and retrying each until it is answered), and a chaos loop that `kill -9`s
//! the server every 10-20 seconds and starts it again. Every request and its outcome goes into a history; a checker then reads the
//! history and the ledger and counts violations. `bench/banktest.sh` runs it on both backends.
//!
//! ```text
//! cargo run --release --example banktest -- --binary target/release/market-ledger \
//!     --database-url sqlite:///tmp/bank/ledger.db --data-dir /tmp/bank [--seconds 120] \
//!     [--clients 16] [--accounts 10] [--kill-every 10-20] [--seed 1] \
//!     [--workload transfers|webhooks]
//! ```
//!
//! What the checker holds the service to:
//! - every balance read (one `GET /v1/accounts` answer, one snapshot) sums to the known total,
//!   and no account breaks its no-overdraft flag;
//! - every acknowledged transfer (201) is in the ledger exactly once, also when it was only
//!   acknowledged on a retry with the same Idempotency-Key after a crash;
//! - a transfer refused with a 4xx is not in the ledger; a transfer whose outcome stayed unknown
//!   (the server died and no retry got an answer) is in it at most once; nothing is in the
//!   ledger that no client sent;
//! - the final balances equal the opening balances plus the transfers the ledger holds (a
//!   reference model replayed from the history), and `verify` is clean after the last restart.
//!
//! With webhooks, a delivery is a transfer from the bank account to the payee: every read must
//! show the bank account's balance equal to the payee's (each delivery posts both sides in one
//! transaction), and every delivery the aggregator got a 2xx for, also only on a retry after a
//! crash, is posted exactly once.
//!
//! It prints one `key=value` line (`requests=... acknowledged=... refused=... unknown=...
//! reads=... kills=... violations=...`) and exits 1 when there is any violation.
//!
//! With `--servers URL,URL` it runs against instances already running (the high-availability
//! cluster of `deploy/ha/`, whose admin `bank-test-admin` must exist) and kills nothing itself:
//! `bench/failover.sh` kills the PostgreSQL primary meanwhile. Clients are spread over the
//! instances; every attempt's answer is counted (a 5xx other than 503 is a violation), the
//! longest stretch without any acknowledged write is the unavailability window, and with
//! webhooks a phone on each instance's live event stream (which, when told it may have missed
//! events, fetches the payee's payments again and reconnects with `Last-Event-ID`) must know
//! every payment the ledger holds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

#[path = "support/feed.rs"]
mod feed;
use feed::StandardFeed;

const USAGE: &str = "usage: banktest --binary PATH --database-url URL --data-dir DIR \
[--seconds N] [--clients N] [--accounts N] [--kill-every MIN-MAX] [--seed N] \
[--workload transfers|webhooks] | --servers URL[,URL...] [same options]";
const ADMIN: &str = "bank-test-admin";
const PASSWORD: &str = "bank test admin password";
const OPENING_BALANCE: i64 = 1_000_000;
/// A request that takes longer than this is treated as lost and retried with the same key.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// After the run, no more kills: retries of transfers still unknown get this long to settle.
const SETTLE: Duration = Duration::from_secs(15);

struct Options {
    /// Instances already running (no server is started or killed); empty: start `binary`.
    servers: Vec<String>,
    binary: String,
    database_url: String,
    data_dir: String,
    seconds: u64,
    clients: usize,
    accounts: usize,
    kill_every: (u64, u64),
    seed: u64,
    workload: Workload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// Clients post transfers between the test's accounts.
    Transfers,
    /// An aggregator delivers incoming transfers to one payee: account 0 is the bank account,
    /// account 1 the payee.
    Webhooks,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        servers: Vec::new(),
        binary: String::new(),
        database_url: String::new(),
        data_dir: String::new(),
        seconds: 120,
        clients: 16,
        accounts: 10,
        kill_every: (10, 20),
        seed: rand::random(),
        workload: Workload::Transfers,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--binary" => options.binary = value,
            "--servers" => {
                options.servers = value
                    .split(',')
                    .map(|url| url.trim_end_matches('/').to_owned())
                    .collect()
            }
            "--database-url" => options.database_url = value,
            "--data-dir" => options.data_dir = value,
            "--seconds" => options.seconds = number(&value)?,
            "--clients" => options.clients = number(&value)? as usize,
            "--accounts" => options.accounts = number(&value)? as usize,
            "--seed" => options.seed = number(&value)?,
            "--workload" => {
                options.workload = match value.as_str() {
                    "transfers" => Workload::Transfers,
                    "webhooks" => Workload::Webhooks,
                    _ => return Err("--workload transfers|webhooks".into()),
                }
            }
            "--kill-every" => {
                let (low, high) = value.split_once('-').ok_or("--kill-every MIN-MAX")?;
                options.kill_every = (number(low)?, number(high)?);
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let own_server = !options.binary.is_empty()
        && !options.database_url.is_empty()
        && !options.data_dir.is_empty();
    if options.servers.is_empty() && !own_server {
        return Err("--binary, --database-url and --data-dir (or --servers) are required".into());
    }
    if options.workload == Workload::Webhooks {
        options.accounts = 2;
    }
    if options.accounts < 2 || options.clients == 0 || options.kill_every.0 > options.kill_every.1 {
        return Err("need 2+ accounts, 1+ clients and MIN <= MAX".into());
    }
    Ok(options)
}

fn account_code(index: usize) -> String {
    format!("bank-test:{index:03}")
}

/// What became of one transfer, after every retry with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Acknowledged,
    Refused(String),
    Unknown,
}

#[derive(Debug, Clone)]
struct Transfer {
    key: String,
    from: usize,
    to: usize,
    amount: i64,
    attempts: u32,
    outcome: Outcome,
    /// Each attempt: when it was answered (since the run started) and how.
    answers: Vec<(Duration, Answer)>,
}

/// How one attempt was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Acknowledged,
    Refused,
    /// 503: the database is away; the client retries.
    Unavailable,
    /// Any other 5xx: a bug.
    ServerError(u16),
    /// No answer (connection refused or lost, timeout).
    Nothing,
}

/// One consistent read of every account's balance.
struct Read {
    balances: Vec<i64>,
}

#[derive(Default)]
struct History {
    transfers: Vec<Transfer>,
    reads: Vec<Read>,
    verifies: Vec<bool>,
}

/// The server process, restarted on the same port and database after every kill.
struct Server {
    options: Arc<Options>,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.options.binary);
        command
            .env("DATABASE_URL", &self.options.database_url)
            .env("MARKET_LEDGER_DATA_DIR", &self.options.data_dir)
            .env("MARKET_LEDGER_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("MARKET_LEDGER_LOG", "error")
            .stdout(Stdio::null());
        command
    }

    fn create_admin(&self) -> Result<(), String> {
        use std::io::Write;
        let mut child = self
            .command()
            .args(["users", "create", "--username", ADMIN, "--role", "admin"])
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.options.binary))?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(PASSWORD.as_bytes())
            .map_err(|e| e.to_string())?;
        match child.wait() {
            Ok(status) if status.success() => Ok(()),
            _ => Err("users create failed".into()),
        }
    }

    async fn start(&mut self, http: &reqwest::Client) -> Result<(), String> {
        let child = self.command().spawn().map_err(|e| e.to_string())?;
        self.child = Some(child);
        let ready = format!("http://127.0.0.1:{}/readyz", self.port);
        for _ in 0..300 {
            if let Ok(response) = http.get(&ready).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the server did not become ready in 15 s".into())
    }

    /// SIGKILL: no shutdown, no flush, as a power cut would stop it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    /// The accounts the model follows, by id or code, in model order.
    tracked: Vec<String>,
    /// With webhooks: the feed the aggregator delivers to.
    feed: Option<Arc<StandardFeed>>,
}

impl Api {
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Value), String> {
        let response = request
            .bearer_auth(&self.token)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.json().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    async fn get(&self, path: &str) -> Result<(reqwest::StatusCode, Value), String> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> Result<(reqwest::StatusCode, Value), String> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", key)
            .json(body);
        self.send(request).await
    }

    /// The tracked accounts' balances from one list answer (one database read, one snapshot).
    async fn balances(&self) -> Result<Vec<i64>, String> {
        let (status, page) = self.get("/v1/accounts?limit=500").await?;
        if !status.is_success() {
            return Err(format!("balances: {status} {page}"));
        }
        let mut balances = vec![None; self.tracked.len()];
        for account in page["data"].as_array().ok_or("no data")? {
            let Some(slot) = self
                .tracked
                .iter()
                .position(|wanted| account["id"] == *wanted || account["code"] == *wanted)
            else {
                continue;
            };
            balances[slot] = account["balance"]["balance"]
                .as_str()
                .and_then(|b| b.parse::<i64>().ok());
        }
        balances
            .into_iter()
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| "a tracked account is missing or unreadable".to_owned())
    }
}

fn transfer_body(transfer: &Transfer) -> Value {
    json!({
        "description": "bank test transfer",
        "metadata": { "bank_test_key": transfer.key },
        "postings": [{
            "debit": account_code(transfer.from),
            "credit": account_code(transfer.to),
            "amount": transfer.amount.to_string(),
        }],
    })
}

/// Sends one transfer (or delivery) and retries it with the same key (or delivery id and
/// body) until it gets a definite answer or the settle time after the run is over.
async fn settle_transfer(
    api: &Api,
    mut transfer: Transfer,
    started: Instant,
    give_up: Instant,
) -> Transfer {
    let body = match &api.feed {
        None => transfer_body(&transfer).to_string(),
        Some(feed) => feed.incoming_transfer(&transfer.key, transfer.amount),
    };
    loop {
        transfer.attempts += 1;
        let request = match &api.feed {
            None => api
                .http
                .post(format!("{}/v1/transactions", api.base))
                .header("Idempotency-Key", &transfer.key)
                .header("Content-Type", "application/json")
                .body(body.clone()),
            Some(feed) => feed.deliver(&api.http, &api.base, &transfer.key, &body),
        };
        let sent = api.send(request).await;
        let answer = match &sent {
            Ok((status, _)) if status.is_success() => Answer::Acknowledged,
            Ok((status, _)) if status.as_u16() == 503 => Answer::Unavailable,
            Ok((status, _)) if status.is_server_error() => Answer::ServerError(status.as_u16()),
            Ok(_) => Answer::Refused,
            Err(_) => Answer::Nothing,
        };
        transfer.answers.push((started.elapsed(), answer));
        match sent {
            Ok((status, _)) if status.is_success() => {
                transfer.outcome = Outcome::Acknowledged;
                return transfer;
            }
            Ok((status, answer))
                if status.is_client_error()
                    && answer["error"]["code"] != "IDEMPOTENCY_KEY_IN_PROGRESS" =>
            {
                let code = answer["error"]["code"].as_str().unwrap_or("?").to_owned();
                transfer.outcome = Outcome::Refused(code);
                return transfer;
            }
            // 503, a key still in progress, no answer at all: the same request again.
            _ => {}
        }
        if Instant::now() >= give_up {
            transfer.outcome = Outcome::Unknown;
            return transfer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run_client(
    api: Arc<Api>,
    options: Arc<Options>,
    history: Arc<Mutex<History>>,
    seed: u64,
    started: Instant,
    until: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    while Instant::now() < until {
        let roll: f64 = rng.gen();
        if roll < 0.75 {
            let (from, to) = match options.workload {
                Workload::Webhooks => (0, 1),
                Workload::Transfers => {
                    let from = rng.gen_range(0..options.accounts);
                    let to = rng.gen_range(0..options.accounts - 1);
                    (from, if to >= from { to + 1 } else { to })
                }
            };
            let transfer = Transfer {
                key: Uuid::new_v4().to_string(),
                from,
                to,
                amount: rng.gen_range(1..=OPENING_BALANCE / 4),
                attempts: 0,
                outcome: Outcome::Unknown,
                answers: Vec::new(),
            };
            let settled = settle_transfer(&api, transfer, started, until + SETTLE).await;
            history.lock().unwrap().transfers.push(settled);
        } else if roll < 0.97 {
            if let Ok(balances) = api.balances().await {
                history.lock().unwrap().reads.push(Read { balances });
            }
        } else if let Ok((status, report)) = api.get("/v1/ledger/verify").await {
            if status.is_success() {
                history.lock().unwrap().verifies.push(report["ok"] == true);
            }
        }
    }
}

/// Every transaction the ledger holds for this test, by the client key in its metadata.
async fn ledger_transfers(api: &Api) -> Result<HashMap<String, usize>, String> {
    let mut found: HashMap<String, usize> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/transactions?limit=500&cursor={cursor}"),
            None => "/v1/transactions?limit=500".to_owned(),
        };
        let (status, page) = api.get(&path).await?;
        if !status.is_success() {
            return Err(format!("listing transactions: {status} {page}"));
        }
        for transaction in page["data"].as_array().ok_or("no data")? {
            let metadata = &transaction["metadata"];
            let key = metadata["bank_test_key"]
                .as_str()
                .or(metadata["provider_transaction_id"].as_str());
            if let Some(key) = key {
                *found.entry(key.to_owned()).or_default() += 1;
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(found),
        }
    }
}

/// The checker: every violation found in the history and the final ledger, as sentences.
fn check(
    history: &History,
    workload: Workload,
    accounts: usize,
    in_ledger: &HashMap<String, usize>,
    final_balances: &[i64],
    final_verify: bool,
) -> Vec<String> {
    let mut violations = Vec::new();
    let total = OPENING_BALANCE * accounts as i64;
    for (index, read) in history.reads.iter().enumerate() {
        match workload {
            Workload::Transfers => {
                let sum: i64 = read.balances.iter().sum();
                if sum != total {
                    violations.push(format!("read {index}: balances sum to {sum}, not {total}"));
                }
            }
            Workload::Webhooks if read.balances[0] != read.balances[1] => {
                violations.push(format!(
                    "read {index}: the bank account holds {} but the payee {}",
                    read.balances[0], read.balances[1]
                ));
            }
            Workload::Webhooks => {}
        }
        if let Some(negative) = read.balances.iter().find(|b| **b < 0) {
            violations.push(format!("read {index}: an overdrawn account ({negative})"));
        }
    }
    if let Some(index) = history.verifies.iter().position(|ok| !ok) {
        violations.push(format!(
            "verify {index} during the run reported a broken invariant"
        ));
    }
    let sent: HashMap<&str, &Transfer> = history
        .transfers
        .iter()
        .map(|t| (t.key.as_str(), t))
        .collect();
    for (key, count) in in_ledger {
        if !sent.contains_key(key.as_str()) {
            violations.push(format!(
                "transfer {key} is in the ledger but was never sent"
            ));
        }
        if *count > 1 {
            violations.push(format!("transfer {key} is in the ledger {count} times"));
        }
    }
    let opening = match workload {
        Workload::Transfers => OPENING_BALANCE,
        Workload::Webhooks => 0,
    };
    let mut expected = vec![opening; accounts];
    for transfer in &history.transfers {
        let count = in_ledger.get(&transfer.key).copied().unwrap_or(0);
        match (&transfer.outcome, count) {
            (Outcome::Acknowledged, 1) | (Outcome::Refused(_), 0) | (Outcome::Unknown, 0 | 1) => {}
            (outcome, count) => violations.push(format!(
                "transfer {} ({outcome:?} after {} attempts) is in the ledger {count} times",
                transfer.key, transfer.attempts
            )),
        }
        if count > 0 {
            match workload {
                // Liability accounts: a debit lowers the balance, a credit raises it.
                Workload::Transfers => expected[transfer.from] -= transfer.amount,
                // The bank account is an asset: the debit raises it too.
                Workload::Webhooks => expected[transfer.from] += transfer.amount,
            }
            expected[transfer.to] += transfer.amount;
        }
    }
    if final_balances != expected {
        violations.push(format!(
            "final balances {final_balances:?} differ from the replayed model {expected:?}"
        ));
    }
    if !final_verify {
        violations.push("verify after the last restart reported a broken invariant".into());
    }
    violations
}

/// Opens the accounts of the transfers workload: each funded with the opening balance from a
/// capital account, behind a no-overdraft flag.
async fn open_accounts(api: &Api, accounts: usize) -> Result<Vec<String>, String> {
    let create = |code: String, kind: &str, guarded: bool| {
        json!({
            "code": code, "name": code, "kind": kind, "currency": "VND",
            "flags": { "debits_must_not_exceed_credits": guarded },
        })
    };
    let capital = create("bank-test-capital".into(), "equity", false);
    let (status, answer) = api
        .send(
            api.http
                .post(format!("{}/v1/accounts", api.base))
                .json(&capital),
        )
        .await?;
    if status.as_u16() != 201 {
        return Err(format!("creating the capital account: {status} {answer}"));
    }
    for index in 0..accounts {
        let account = create(account_code(index), "liability", true);
        let (status, answer) = api
            .send(
                api.http
                    .post(format!("{}/v1/accounts", api.base))
                    .json(&account),
            )
            .await?;
        if status.as_u16() != 201 {
            return Err(format!(
                "creating {}: {status} {answer}",
                account_code(index)
            ));
        }
        let funding = json!({
            "description": "bank test opening balance",
            "postings": [{
                "debit": "bank-test-capital",
                "credit": account_code(index),
                "amount": OPENING_BALANCE.to_string(),
            }],
        });
        let (status, answer) = api
            .post("/v1/transactions", &Uuid::new_v4().to_string(), &funding)
            .await?;
        if status.as_u16() != 201 {
            return Err(format!(
                "funding {}: {status} {answer}",
                account_code(index)
            ));
        }
    }
    Ok((0..accounts).map(account_code).collect())
}

async fn login(http: &reqwest::Client, base: &str) -> Result<String, String> {
    let answer: Value = http
        .post(format!("{base}/v1/auth/token"))
        .json(&json!({ "username": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("login failed: {answer}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// What one instance's live event stream announced.
#[derive(Default)]
struct Heard {
    /// Announced by the stream, live or in a catch-up.
    payments: HashSet<String>,
    /// Read from the payee's payment list after a `lagged` (what the API asks a client to do)
    /// and never announced.
    fetched: HashSet<String>,
    /// The last payment id, sent as `Last-Event-ID` when the stream is opened again.
    last: Option<String>,
    lagged: u32,
}

/// Listens to the payee's live events on one instance as a phone would: when told it may have
/// missed events (`lagged`), it fetches the payee's payments again; when told so, or when the
/// stream ends, it opens the stream again with `Last-Event-ID`, and the instance first sends
/// the payments recorded after that one.
async fn watch_events(api: Arc<Api>, payee: String, heard: Arc<Mutex<Heard>>) {
    use futures::StreamExt;
    loop {
        let mut request = api
            .http
            .get(format!("{}/v1/payees/{payee}/events", api.base))
            .bearer_auth(&api.token);
        if let Some(last) = heard.lock().unwrap().last.clone() {
            request = request.header("Last-Event-ID", last);
        }
        if let Ok(response) = request.send().await {
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            'stream: while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let field = |name: &str| {
                        frame
                            .lines()
                            .find_map(|line| line.strip_prefix(name))
                            .map(|value| value.trim_start().to_owned())
                    };
                    match field("event:").as_deref() {
                        Some("payment_received") => {
                            if let Some(id) = field("id:") {
                                let mut heard = heard.lock().unwrap();
                                heard.payments.insert(id.clone());
                                heard.last = Some(id);
                            }
                        }
                        Some("lagged") => {
                            heard.lock().unwrap().lagged += 1;
                            if let Ok(listed) = received_payments(&api, &payee).await {
                                let mut heard = heard.lock().unwrap();
                                let missed: Vec<String> = listed
                                    .into_iter()
                                    .filter(|id| !heard.payments.contains(id))
                                    .collect();
                                heard.fetched.extend(missed);
                            }
                            break 'stream;
                        }
                        _ => {}
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The bank transaction ids of every payment the payee received.
async fn received_payments(api: &Api, payee: &str) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/payees/{payee}/payments?limit=500&cursor={cursor}"),
            None => format!("/v1/payees/{payee}/payments?limit=500"),
        };
        let (status, page) = api.get(&path).await?;
        if !status.is_success() {
            return Err(format!("listing payments: {status} {page}"));
        }
        for payment in page["data"].as_array().ok_or("no data")? {
            if let Some(id) = payment["bank_transaction_id"].as_str() {
                ids.push(id.to_owned());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(ids),
        }
    }
}

/// The id of the payee with `code` (a fresh database holds few).
async fn payee_id(api: &Api, code: &str) -> Result<String, String> {
    let (status, page) = api.get("/v1/payees?limit=500").await?;
    if !status.is_success() {
        return Err(format!("listing payees: {status} {page}"));
    }
    page["data"]
        .as_array()
        .and_then(|payees| payees.iter().find(|payee| payee["code"] == code))
        .and_then(|payee| payee["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("payee {code} not found"))
}

/// Attempts by answer, the longest stretch without an acknowledged write, and the span of
/// failed attempts, over every attempt of the run.
struct Availability {
    attempts: usize,
    unavailable: usize,
    server_errors: usize,
    no_answer: usize,
    longest_write_gap: Duration,
    failing: Option<(Duration, Duration)>,
}

fn availability(transfers: &[Transfer]) -> Availability {
    let answers: Vec<(Duration, Answer)> = transfers
        .iter()
        .flat_map(|t| t.answers.iter().copied())
        .collect();
    let count = |wanted: fn(&Answer) -> bool| answers.iter().filter(|(_, a)| wanted(a)).count();
    let mut acknowledged: Vec<Duration> = answers
        .iter()
        .filter(|(_, answer)| *answer == Answer::Acknowledged)
        .map(|(at, _)| *at)
        .collect();
    acknowledged.sort();
    let longest_write_gap = acknowledged
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    let failed = answers.iter().filter(|(_, answer)| {
        matches!(
            answer,
            Answer::Unavailable | Answer::ServerError(_) | Answer::Nothing
        )
    });
    let failing = failed
        .clone()
        .map(|(at, _)| *at)
        .min()
        .zip(failed.map(|(at, _)| *at).max());
    Availability {
        attempts: answers.len(),
        unavailable: count(|a| *a == Answer::Unavailable),
        server_errors: count(|a| matches!(a, Answer::ServerError(_))),
        no_answer: count(|a| *a == Answer::Nothing),
        longest_write_gap,
        failing,
    }
}

async fn run(options: Options) -> Result<bool, String> {
    let options = Arc::new(options);
    let http = reqwest::Client::new();
    let mut server = None;
    let bases = if options.servers.is_empty() {
        let mut own = Server {
            options: options.clone(),
            port: free_port(),
            child: None,
        };
        own.create_admin()?;
        own.start(&http).await?;
        let base = format!("http://127.0.0.1:{}", own.port);
        server = Some(own);
        vec![base]
    } else {
        options.servers.clone()
    };
    let mut api = Api {
        token: login(&http, &bases[0]).await?,
        http,
        base: bases[0].clone(),
        tracked: Vec::new(),
        feed: None,
    };
    let mut payee = None;
    match options.workload {
        Workload::Transfers => api.tracked = open_accounts(&api, options.accounts).await?,
        Workload::Webhooks => {
            let feed = StandardFeed::create(&api.http, &api.base, &api.token).await?;
            api.tracked = vec![
                feed.bank_account_id.clone(),
                feed.payee_account_code.clone(),
            ];
            payee = Some(payee_id(&api, &feed.payee_code).await?);
            api.feed = Some(Arc::new(feed));
        }
    }
    let apis: Vec<Arc<Api>> = bases
        .iter()
        .map(|base| {
            Arc::new(Api {
                base: base.clone(),
                ..api.clone()
            })
        })
        .collect();
    let api = apis[0].clone();
    // Live events are watched on the cluster's instances (on one own server, the crashes
    // would end every stream anyway).
    let watchers: Vec<(Arc<Mutex<Heard>>, tokio::task::JoinHandle<()>)> = match &payee {
        Some(payee) if server.is_none() => apis
            .iter()
            .map(|api| {
                let heard = Arc::new(Mutex::new(Heard::default()));
                let task = tokio::spawn(watch_events(api.clone(), payee.clone(), heard.clone()));
                (heard, task)
            })
            .collect(),
        _ => Vec::new(),
    };

    let history = Arc::new(Mutex::new(History::default()));
    let started = Instant::now();
    let until = started + Duration::from_secs(options.seconds);
    let clients: Vec<_> = (0..options.clients)
        .map(|index| {
            tokio::spawn(run_client(
                apis[index % apis.len()].clone(),
                options.clone(),
                history.clone(),
                options.seed.wrapping_add(index as u64),
                started,
                until,
            ))
        })
        .collect();

    let mut chaos = StdRng::seed_from_u64(options.seed ^ 0x5eed);
    let mut kills = 0;
    if let Some(server) = server.as_mut() {
        loop {
            let pause =
                Duration::from_secs(chaos.gen_range(options.kill_every.0..=options.kill_every.1));
            if Instant::now() + pause >= until {
                break;
            }
            tokio::time::sleep(pause).await;
            server.kill();
            kills += 1;
            server.start(&api.http).await?;
        }
    }
    for client in clients {
        client.await.map_err(|e| format!("a client failed: {e}"))?;
    }
    if let Some(server) = server.as_mut() {
        // One last crash once every client has settled, then the ledger is read back.
        server.kill();
        kills += 1;
        server.start(&api.http).await?;
    }

    let in_ledger = ledger_transfers(&api).await?;
    let final_balances = api.balances().await?;
    let (_, report) = api.get("/v1/ledger/verify").await?;
    // Every payment the ledger holds, announced on every instance's stream (live, or in the
    // catch-up after a reconnection).
    let posted: usize = in_ledger.values().sum();
    let mut heard_counts = Vec::new();
    let mut stream_violations = Vec::new();
    for (index, (heard, task)) in watchers.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(10);
        let known = |heard: &Heard| heard.payments.union(&heard.fetched).count();
        while known(&heard.lock().unwrap()) < posted && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        task.abort();
        let heard = heard.lock().unwrap();
        if known(&heard) != posted {
            stream_violations.push(format!(
                "the phone on {} knows {} payments of the {posted} posted ({} announced)",
                apis[index].base,
                known(&heard),
                heard.payments.len()
            ));
        }
        heard_counts.push(format!(
            "{}+{}/{}",
            heard.payments.len(),
            heard.fetched.len(),
            heard.lagged
        ));
    }
    let history = history.lock().unwrap();
    let mut violations = check(
        &history,
        options.workload,
        options.accounts,
        &in_ledger,
        &final_balances,
        report["ok"] == true,
    );
    violations.extend(stream_violations);
    let figures = availability(&history.transfers);
    if figures.server_errors > 0 {
        violations.push(format!(
            "{} attempts were answered with a 5xx other than 503",
            figures.server_errors
        ));
    }
    for violation in violations.iter().take(20) {
        eprintln!("banktest: VIOLATION {violation}");
    }
    let count = |wanted: fn(&Outcome) -> bool| {
        history
            .transfers
            .iter()
            .filter(|t| wanted(&t.outcome))
            .count()
    };
    let retried = history.transfers.iter().filter(|t| t.attempts > 1).count();
    let refusals: BTreeMap<&str, usize> =
        history
            .transfers
            .iter()
            .fold(BTreeMap::new(), |mut codes, transfer| {
                if let Outcome::Refused(code) = &transfer.outcome {
                    *codes.entry(code.as_str()).or_default() += 1;
                }
                codes
            });
    let mut cluster_figures = String::new();
    if server.is_none() {
        let (failing_from, failing_to) = figures
            .failing
            .map(|(from, to)| (from.as_secs_f64(), to.as_secs_f64()))
            .unwrap_or_default();
        cluster_figures = format!(
            " instances={} attempts={} answered_503={} answered_other_5xx={} no_answer={} \
             longest_write_gap_s={:.2} failing_from_s={failing_from:.2} \
             failing_to_s={failing_to:.2} events_announced+fetched/lagged={}",
            apis.len(),
            figures.attempts,
            figures.unavailable,
            figures.server_errors,
            figures.no_answer,
            figures.longest_write_gap.as_secs_f64(),
            heard_counts.join(","),
        );
    }
    println!(
        "workload={:?} seconds={} clients={} accounts={} seed={} transfers={} acknowledged={} refused={} \
         unknown={} retried={} reads={} verifies={} kills={} violations={} refusal_codes={:?}{cluster_figures}",
        options.workload,
        started.elapsed().as_secs(),
        options.clients,
        options.accounts,
        options.seed,
        history.transfers.len(),
        count(|o| *o == Outcome::Acknowledged),
        count(|o| matches!(o, Outcome::Refused(_))),
        count(|o| *o == Outcome::Unknown),
        retried,
        history.reads.len(),
        history.verifies.len() + 1,
        kills,
        violations.len(),
        refusals,
    );
    Ok(violations.is_empty())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("banktest: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(problem) => {
            eprintln!("banktest: {problem}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(key: &str, outcome: Outcome) -> Transfer {
        Transfer {
            key: key.into(),
            from: 0,
            to: 1,
            amount: 10,
            attempts: 1,
            outcome,
            answers: Vec::new(),
        }
    }

    fn history(transfers: Vec<Transfer>) -> History {
        History {
            transfers,
            reads: vec![Read {
                balances: vec![OPENING_BALANCE, OPENING_BALANCE],
            }],
            verifies: vec![true],
        }
    }

    #[test]
    fn a_clean_run_has_no_violations() {
        let history = history(vec![
            transfer("a", Outcome::Acknowledged),
            transfer("b", Outcome::Refused("OVERDRAFT".into())),
            transfer("c", Outcome::Unknown),
        ]);
        let in_ledger = HashMap::from([("a".to_owned(), 1), ("c".to_owned(), 1)]);
        let balances = [OPENING_BALANCE - 20, OPENING_BALANCE + 20];
        assert!(check(
            &history,
            Workload::Transfers,
            2,
            &in_ledger,
            &balances,
            true
        )
        .is_empty());
    }

    #[test]
    fn lost_doubled_refused_or_invented_transfers_are_violations() {
        let history = history(vec![
            transfer("lost", Outcome::Acknowledged),
            transfer("doubled", Outcome::Acknowledged),
            transfer("refused", Outcome::Refused("X".into())),
        ]);
        let in_ledger = HashMap::from([
            ("doubled".to_owned(), 2),
            ("refused".to_owned(), 1),
            ("invented".to_owned(), 1),
        ]);
        let balances = [OPENING_BALANCE - 30, OPENING_BALANCE + 30];
        let violations = check(
            &history,
            Workload::Transfers,
            2,
            &in_ledger,
            &balances,
            true,
        );
        for word in ["lost", "doubled", "refused", "invented"] {
            assert!(
                violations.iter().any(|v| v.contains(word)),
                "{word}: {violations:?}"
            );
        }
    }

    #[test]
    fn deliveries_raise_the_bank_and_the_payee_alike() {
        let mut history = history(vec![
            transfer("posted", Outcome::Acknowledged),
            transfer("retried", Outcome::Acknowledged),
        ]);
        history.reads = vec![Read {
            balances: vec![10, 10],
        }];
        let in_ledger = HashMap::from([("posted".to_owned(), 1), ("retried".to_owned(), 1)]);
        assert!(check(&history, Workload::Webhooks, 2, &in_ledger, &[20, 20], true).is_empty());
        history.reads.push(Read {
            balances: vec![20, 10],
        });
        let in_ledger = HashMap::from([("posted".to_owned(), 1), ("retried".to_owned(), 2)]);
        // A torn read, a delivery posted twice (seen twice: by count and by outcome), and
        // balances that hold the second posting.
        let violations = check(&history, Workload::Webhooks, 2, &in_ledger, &[30, 30], true);
        assert_eq!(violations.len(), 4, "{violations:?}");
    }

    #[test]
    fn a_torn_read_a_wrong_balance_and_a_failed_verify_are_violations() {
        let mut history = history(vec![transfer("a", Outcome::Acknowledged)]);
        history.reads.push(Read {
            balances: vec![OPENING_BALANCE, OPENING_BALANCE - 10],
        });
        let in_ledger = HashMap::from([("a".to_owned(), 1)]);
        let violations = check(&history, Workload::Transfers, 2, &in_ledger, &[0, 0], false);
        assert_eq!(violations.len(), 3, "{violations:?}");
    }
}
