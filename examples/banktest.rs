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

use std::collections::{BTreeMap, HashMap};
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
[--workload transfers|webhooks]";
const ADMIN: &str = "bank-test-admin";
const PASSWORD: &str = "bank test admin password";
const OPENING_BALANCE: i64 = 1_000_000;
/// A request that takes longer than this is treated as lost and retried with the same key.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// After the run, no more kills: retries of transfers still unknown get this long to settle.
const SETTLE: Duration = Duration::from_secs(15);

struct Options {
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
    if options.binary.is_empty() || options.database_url.is_empty() || options.data_dir.is_empty() {
        return Err("--binary, --database-url and --data-dir are required".into());
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

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    /// The accounts the model follows, by id or code, in model order.
    tracked: Vec<String>,
    /// With webhooks: the feed the aggregator delivers to.
    feed: Option<StandardFeed>,
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
async fn settle_transfer(api: &Api, mut transfer: Transfer, give_up: Instant) -> Transfer {
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
        match api.send(request).await {
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
            };
            let settled = settle_transfer(&api, transfer, until + SETTLE).await;
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

async fn run(options: Options) -> Result<bool, String> {
    let options = Arc::new(options);
    let http = reqwest::Client::new();
    let mut server = Server {
        options: options.clone(),
        port: free_port(),
        child: None,
    };
    server.create_admin()?;
    server.start(&http).await?;
    let base = format!("http://127.0.0.1:{}", server.port);
    let mut api = Api {
        token: login(&http, &base).await?,
        http,
        base,
        tracked: Vec::new(),
        feed: None,
    };
    match options.workload {
        Workload::Transfers => api.tracked = open_accounts(&api, options.accounts).await?,
        Workload::Webhooks => {
            let feed = StandardFeed::create(&api.http, &api.base, &api.token).await?;
            api.tracked = vec![
                feed.bank_account_id.clone(),
                feed.payee_account_code.clone(),
            ];
            api.feed = Some(feed);
        }
    }
    let api = Arc::new(api);

    let history = Arc::new(Mutex::new(History::default()));
    let started = Instant::now();
    let until = started + Duration::from_secs(options.seconds);
    let clients: Vec<_> = (0..options.clients)
        .map(|index| {
            tokio::spawn(run_client(
                api.clone(),
                options.clone(),
                history.clone(),
                options.seed.wrapping_add(index as u64),
                until,
            ))
        })
        .collect();

    let mut chaos = StdRng::seed_from_u64(options.seed ^ 0x5eed);
    let mut kills = 0;
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
    for client in clients {
        client.await.map_err(|e| format!("a client failed: {e}"))?;
    }
    // One last crash once every client has settled, then the ledger is read back.
    server.kill();
    kills += 1;
    server.start(&api.http).await?;

    let in_ledger = ledger_transfers(&api).await?;
    let final_balances = api.balances().await?;
    let (_, report) = api.get("/v1/ledger/verify").await?;
    let history = history.lock().unwrap();
    let violations = check(
        &history,
        options.workload,
        options.accounts,
        &in_ledger,
        &final_balances,
        report["ok"] == true,
    );
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
    println!(
        "workload={:?} seconds={} clients={} accounts={} seed={} transfers={} acknowledged={} refused={} \
         unknown={} retried={} reads={} verifies={} kills={} violations={} refusal_codes={:?}",
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
