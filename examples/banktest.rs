//! Bank test under crashes: the real binary, concurrent clients moving money between accounts
//! with a known total, and a chaos loop that `kill -9`s the server every 10-20 seconds and
//! starts it again. Every request and its outcome goes into a history; a checker then reads the
//! history and the ledger and counts violations. `bench/banktest.sh` runs it on both backends.
//!
//! ```text
//! cargo run --release --example banktest -- --binary target/release/market-ledger \
//!     --database-url sqlite:///tmp/bank/ledger.db --data-dir /tmp/bank [--seconds 120] \
//!     [--clients 16] [--accounts 10] [--kill-every 10-20] [--seed 1]
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

const USAGE: &str = "usage: banktest --binary PATH --database-url URL --data-dir DIR \
[--seconds N] [--clients N] [--accounts N] [--kill-every MIN-MAX] [--seed N]";
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

    /// Every account's balance from one list answer (one database read, so one snapshot).
    async fn balances(&self, accounts: usize) -> Result<Vec<i64>, String> {
        let (status, page) = self
            .get("/v1/accounts?code_prefix=bank-test:&limit=500")
            .await?;
        if !status.is_success() {
            return Err(format!("balances: {status} {page}"));
        }
        let mut balances = vec![0; accounts];
        for account in page["data"].as_array().ok_or("no data")? {
            let code = account["code"].as_str().unwrap_or_default();
            let Some(index) = code
                .strip_prefix("bank-test:")
                .and_then(|i| i.parse::<usize>().ok())
            else {
                continue;
            };
            let balance: i64 = account["balance"]["balance"]
                .as_str()
                .and_then(|b| b.parse().ok())
                .ok_or("unreadable balance")?;
            if let Some(slot) = balances.get_mut(index) {
                *slot = balance;
            }
        }
        Ok(balances)
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

/// Sends one transfer and retries it with the same key until it gets a definite answer or the
/// settle time after the run is over.
async fn settle_transfer(api: &Api, mut transfer: Transfer, give_up: Instant) -> Transfer {
    let body = transfer_body(&transfer);
    loop {
        transfer.attempts += 1;
        match api.post("/v1/transactions", &transfer.key, &body).await {
            Ok((status, _)) if status.as_u16() == 201 => {
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
            let from = rng.gen_range(0..options.accounts);
            let mut to = rng.gen_range(0..options.accounts - 1);
            if to >= from {
                to += 1;
            }
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
            if let Ok(balances) = api.balances(options.accounts).await {
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
            if let Some(key) = transaction["metadata"]["bank_test_key"].as_str() {
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
    accounts: usize,
    in_ledger: &HashMap<String, usize>,
    final_balances: &[i64],
    final_verify: bool,
) -> Vec<String> {
    let mut violations = Vec::new();
    let total = OPENING_BALANCE * accounts as i64;
    for (index, read) in history.reads.iter().enumerate() {
        let sum: i64 = read.balances.iter().sum();
        if sum != total {
            violations.push(format!("read {index}: balances sum to {sum}, not {total}"));
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
    let mut expected = vec![OPENING_BALANCE; accounts];
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
            // Liability accounts: a debit lowers the balance, a credit raises it.
            expected[transfer.from] -= transfer.amount;
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

async fn set_up(api: &Api, accounts: usize) -> Result<(), String> {
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
    Ok(())
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
    let api = Arc::new(Api {
        token: login(&http, &base).await?,
        http,
        base,
    });
    set_up(&api, options.accounts).await?;

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
    let final_balances = api.balances(options.accounts).await?;
    let (_, report) = api.get("/v1/ledger/verify").await?;
    let history = history.lock().unwrap();
    let violations = check(
        &history,
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
        "seconds={} clients={} accounts={} seed={} transfers={} acknowledged={} refused={} \
         unknown={} retried={} reads={} verifies={} kills={} violations={} refusal_codes={:?}",
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
        assert!(check(&history, 2, &in_ledger, &balances, true).is_empty());
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
        let violations = check(&history, 2, &in_ledger, &balances, true);
        for word in ["lost", "doubled", "refused", "invented"] {
            assert!(
                violations.iter().any(|v| v.contains(word)),
                "{word}: {violations:?}"
            );
        }
    }

    #[test]
    fn a_torn_read_a_wrong_balance_and_a_failed_verify_are_violations() {
        let mut history = history(vec![transfer("a", Outcome::Acknowledged)]);
        history.reads.push(Read {
            balances: vec![OPENING_BALANCE, OPENING_BALANCE - 10],
        });
        let in_ledger = HashMap::from([("a".to_owned(), 1)]);
        let violations = check(&history, 2, &in_ledger, &[0, 0], false);
        assert_eq!(violations.len(), 3, "{violations:?}");
    }
}
