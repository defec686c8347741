//! Load generator for the ledger's write path, used by `bench/ledger.sh`.
//!
//! ```text
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 --token TOKEN \
//!     --mode single --clients 8 --seconds 20 --accounts 1000 [--batch-size 100]
//! ```
//!
//! Modes:
//! - `setup`:  create accounts `bench:0000`.. (liability, VND); codes that exist are kept.
//! - `single`: one transfer per request between a random pair of distinct accounts.
//! - `hot`:    like `single`, but every transfer debits `bench:0000` (one contended row).
//! - `batch`:  one non-atomic batch of `--batch-size` random transfers per request.
//! - `intents`: one payment intent per request (`POST /v1/payment-intents`, a random amount)
//!   for the payee `--payee ID`, or for a payee it creates first when that is not given.
//! - `webhooks`: one signed bank-feed webhook per request (`POST /v1/webhooks/standard`, a
//!   Standard Webhooks signature, a fresh transaction id, the payee's code in the memo), so
//!   each is verified, recorded, matched to the payee and posted. It creates the payee and
//!   configures its feed first.
//!
//! The run modes print one `key=value` line on stdout, e.g.
//! `mode=single clients=8 seconds=20.01 requests=... transfers=... transfers_per_s=...
//! p50_ms=... p99_ms=... errors=... rejected=...`. `errors` counts failed requests (non-2xx or
//! no answer); `rejected` counts transfers a 2xx batch answer reports as rejected. In `intents`
//! mode `transfers` counts the payment intents created, in `webhooks` mode the webhooks
//! processed. The first few failures are printed on
//! stderr.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

// The bank test also reads the feed's ledger accounts; this program only delivers to it.
#[allow(dead_code)]
#[path = "support/feed.rs"]
mod feed;
#[path = "support/flags.rs"]
mod flags;
use feed::StandardFeed;

/// Enough failure bodies to diagnose a problem without flooding the terminal.
const MAX_PRINTED_FAILURES: usize = 5;

const USAGE: &str =
    "usage: loadgen --url URL --token TOKEN --mode setup|single|batch|hot|intents|webhooks \
[--clients N] [--seconds T] [--accounts A] [--batch-size B] [--payee ID]";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Setup,
    Load(Workload),
}

/// The shape of the transfers a load run sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Single,
    Batch,
    Hot,
    Intents,
    Webhooks,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Single => "single",
            Workload::Batch => "batch",
            Workload::Hot => "hot",
            Workload::Intents => "intents",
            Workload::Webhooks => "webhooks",
        }
    }
}

#[derive(Debug)]
struct Options {
    url: String,
    token: String,
    mode: Mode,
    clients: usize,
    seconds: u64,
    accounts: usize,
    batch_size: usize,
    /// The payee of `intents` runs.
    payee: Option<String>,
    /// The feed `webhooks` runs deliver to.
    feed: Option<StandardFeed>,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut url = None;
    let mut token = None;
    let mut mode = None;
    let mut clients = 8;
    let mut seconds = 20;
    let mut accounts = 1000;
    let mut batch_size = 100;
    let mut payee = None;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |value: &str| flags::positive(&flag, value);
        match flag.as_str() {
            "--url" => url = Some(value.trim_end_matches('/').to_owned()),
            "--token" => token = Some(value),
            "--mode" => {
                mode = Some(match value.as_str() {
                    "setup" => Mode::Setup,
                    "single" => Mode::Load(Workload::Single),
                    "batch" => Mode::Load(Workload::Batch),
                    "hot" => Mode::Load(Workload::Hot),
                    "intents" => Mode::Load(Workload::Intents),
                    "webhooks" => Mode::Load(Workload::Webhooks),
                    other => return Err(format!("unknown mode {other:?}")),
                })
            }
            "--clients" => clients = number(&value)?,
            "--seconds" => seconds = number(&value)? as u64,
            "--accounts" => accounts = number(&value)?,
            "--batch-size" => batch_size = number(&value)?,
            "--payee" => payee = Some(value),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    let options = Options {
        url: url.ok_or("--url is required")?,
        token: token.ok_or("--token is required")?,
        mode: mode.ok_or("--mode is required")?,
        clients,
        seconds,
        accounts,
        batch_size,
        payee,
        feed: None,
    };
    if options.mode != Mode::Setup && options.accounts < 2 {
        return Err("a transfer needs at least 2 accounts".into());
    }
    Ok(options)
}

fn account_code(index: usize) -> String {
    format!("bench:{index:04}")
}

/// What one request achieved.
enum Outcome {
    /// A 2xx answer: how many transfers it posted and how many it rejected.
    Success { posted: u64, rejected: u64 },
    /// No 2xx answer; the text says why.
    Failure(String),
}

/// Shared by all clients: the HTTP pool and the budget of failures still worth printing.
struct Target {
    http: reqwest::Client,
    url: String,
    token: String,
    printed_failures: AtomicUsize,
}

impl Target {
    async fn post(&self, path: &str, body: &Value) -> Result<(u16, String), String> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(body)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        Ok((status, text))
    }

    fn report_failure(&self, what: &str) {
        if self.printed_failures.fetch_add(1, Ordering::Relaxed) < MAX_PRINTED_FAILURES {
            eprintln!("loadgen: {what}");
        }
    }
}

/// Picks two distinct accounts; in hot mode the debit is always account 0.
fn transfer(rng: &mut StdRng, accounts: usize, hot: bool) -> Value {
    let debit = if hot { 0 } else { rng.gen_range(0..accounts) };
    // Draw from the other accounts-1 codes and skip over the debit to keep the pair distinct.
    let mut credit = rng.gen_range(0..accounts - 1);
    if credit >= debit {
        credit += 1;
    }
    json!({
        "description": "bench",
        "postings": [{
            "debit": account_code(debit),
            "credit": account_code(credit),
            "amount": "1",
        }],
    })
}

async fn send_one(
    target: &Target,
    options: &Options,
    workload: Workload,
    rng: &mut StdRng,
) -> Outcome {
    if workload == Workload::Webhooks {
        return send_webhook(target, options.feed.as_ref().expect("feed set up"), rng).await;
    }
    let (path, body) = match workload {
        Workload::Webhooks => unreachable!("handled above"),
        Workload::Single | Workload::Hot => (
            "/v1/transactions",
            transfer(rng, options.accounts, workload == Workload::Hot),
        ),
        Workload::Intents => (
            "/v1/payment-intents",
            json!({
                "payee_id": options.payee,
                "amount": rng.gen_range(1_000..=500_000).to_string(),
            }),
        ),
        Workload::Batch => {
            let transactions: Vec<Value> = (0..options.batch_size)
                .map(|_| transfer(rng, options.accounts, false))
                .collect();
            (
                "/v1/transactions/batch",
                json!({ "transactions": transactions, "atomic": false }),
            )
        }
    };
    let (status, text) = match target.post(path, &body).await {
        Ok(answer) => answer,
        Err(failure) => return Outcome::Failure(failure),
    };
    if !(200..300).contains(&status) {
        return Outcome::Failure(format!("{path} answered {status}: {text}"));
    }
    if workload != Workload::Batch {
        return Outcome::Success {
            posted: 1,
            rejected: 0,
        };
    }
    let answer: Value = match serde_json::from_str(&text) {
        Ok(answer) => answer,
        Err(e) => {
            return Outcome::Failure(format!(
                "{path} answered {status} with bad JSON ({e}): {text}"
            ))
        }
    };
    let count = |key: &str| answer.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (posted, rejected) = (count("posted"), count("rejected"));
    if rejected > 0 {
        let first = answer["results"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["status"] == "rejected"))
            .map(|item| item["error"].to_string())
            .unwrap_or_default();
        target.report_failure(&format!(
            "batch posted {posted} but rejected {rejected}; first rejection: {first}"
        ));
    }
    Outcome::Success { posted, rejected }
}

/// One incoming transfer naming the payee, signed as Standard Webhooks specifies.
async fn send_webhook(target: &Target, feed: &StandardFeed, rng: &mut StdRng) -> Outcome {
    let id = Uuid::new_v4().to_string();
    let body = feed.incoming_transfer(&id, rng.gen_range(1_000..=500_000));
    let response = feed
        .deliver(&target.http, &target.url, &id, &body)
        .send()
        .await;
    match response {
        Err(e) => Outcome::Failure(format!("request failed: {e}")),
        Ok(response) if response.status().is_success() => Outcome::Success {
            posted: 1,
            rejected: 0,
        },
        Ok(response) => Outcome::Failure(format!(
            "webhook answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        )),
    }
}

#[derive(Default)]
struct ClientTally {
    requests: u64,
    transfers: u64,
    rejected: u64,
    errors: u64,
    /// Latency of every answered request, successful or not.
    latencies: Vec<Duration>,
}

async fn run_client(
    target: Arc<Target>,
    options: Arc<Options>,
    workload: Workload,
    deadline: Instant,
) -> ClientTally {
    let mut rng = StdRng::from_entropy();
    let mut tally = ClientTally::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        let outcome = send_one(&target, &options, workload, &mut rng).await;
        tally.latencies.push(started.elapsed());
        tally.requests += 1;
        match outcome {
            Outcome::Success { posted, rejected } => {
                tally.transfers += posted;
                tally.rejected += rejected;
            }
            Outcome::Failure(why) => {
                tally.errors += 1;
                target.report_failure(&why);
            }
        }
    }
    tally
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

async fn run_load(
    target: Arc<Target>,
    options: Arc<Options>,
    workload: Workload,
) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let clients: Vec<_> = (0..options.clients)
        .map(|_| {
            tokio::spawn(run_client(
                target.clone(),
                options.clone(),
                workload,
                deadline,
            ))
        })
        .collect();
    let mut total = ClientTally::default();
    for client in clients {
        let tally = client
            .await
            .map_err(|e| format!("client task failed: {e}"))?;
        total.requests += tally.requests;
        total.transfers += tally.transfers;
        total.rejected += tally.rejected;
        total.errors += tally.errors;
        total.latencies.extend(tally.latencies);
    }
    // Requests in flight at the deadline still finish, so rate over the real elapsed time.
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies.sort_unstable();
    println!(
        "mode={} clients={} seconds={:.2} requests={} transfers={} transfers_per_s={:.1} \
         p50_ms={:.2} p99_ms={:.2} errors={} rejected={}",
        workload.name(),
        options.clients,
        elapsed,
        total.requests,
        total.transfers,
        total.transfers as f64 / elapsed,
        percentile_ms(&total.latencies, 0.50),
        percentile_ms(&total.latencies, 0.99),
        total.errors,
        total.rejected,
    );
    Ok(())
}

/// Creates the bench accounts, `clients` at a time. An account that already exists (409) is
/// fine, so setup can be rerun against the same database.
async fn run_setup(target: Arc<Target>, options: Arc<Options>) -> Result<(), String> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..options.clients)
        .map(|_| {
            let (target, next, accounts) = (target.clone(), next.clone(), options.accounts);
            tokio::spawn(async move {
                let (mut created, mut existing, mut failed) = (0u64, 0u64, 0u64);
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= accounts {
                        break;
                    }
                    let code = account_code(index);
                    let body = json!({
                        "code": code,
                        "name": format!("bench account {index}"),
                        "kind": "liability",
                        "currency": "VND",
                    });
                    match target.post("/v1/accounts", &body).await {
                        Ok((201, _)) => created += 1,
                        Ok((409, _)) => existing += 1,
                        Ok((status, text)) => {
                            failed += 1;
                            target.report_failure(&format!(
                                "creating {code} answered {status}: {text}"
                            ));
                        }
                        Err(why) => {
                            failed += 1;
                            target.report_failure(&format!("creating {code}: {why}"));
                        }
                    }
                }
                (created, existing, failed)
            })
        })
        .collect();
    let (mut created, mut existing, mut failed) = (0, 0, 0);
    for worker in workers {
        let (c, e, f) = worker
            .await
            .map_err(|e| format!("setup task failed: {e}"))?;
        created += c;
        existing += e;
        failed += f;
    }
    println!(
        "mode=setup accounts={} created={created} existing={existing} errors={failed} seconds={:.2}",
        options.accounts,
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        return Err(format!("{failed} accounts could not be created"));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("loadgen: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let http = match reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            eprintln!("loadgen: cannot build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = Arc::new(Target {
        http,
        url: options.url.clone(),
        token: options.token.clone(),
        printed_failures: AtomicUsize::new(0),
    });
    let prepared = match options.mode {
        Mode::Load(Workload::Intents) if options.payee.is_none() => {
            feed::create_vendor(&target.http, &target.url, &target.token, "0123456789")
                .await
                .and_then(|payee| {
                    payee["id"]
                        .as_str()
                        .map(|id| options.payee = Some(id.to_owned()))
                        .ok_or_else(|| format!("the payee answer lacks an id: {payee}"))
                })
        }
        Mode::Load(Workload::Webhooks) => {
            StandardFeed::create(&target.http, &target.url, &target.token)
                .await
                .map(|feed| options.feed = Some(feed))
        }
        _ => Ok(()),
    };
    if let Err(why) = prepared {
        eprintln!("loadgen: {why}");
        return ExitCode::FAILURE;
    }
    let options = Arc::new(options);
    let result = match options.mode {
        Mode::Setup => run_setup(target, options).await,
        Mode::Load(workload) => run_load(target, options, workload).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("loadgen: {why}");
            ExitCode::FAILURE
        }
    }
}
