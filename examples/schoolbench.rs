//! School fee benchmark, used by `bench/schools.sh`: one school, a year, `--classes` classes of
//! `--pupils` pupils in all, five fee items (month, school day, year, year, and an optional
//! term item every pupil is enrolled in), the roster through the CSV import; then it times the
//! run's preview and its posting, and pays every pupil's QR with one signed bank-feed webhook
//! each (`--clients` at a time, the intent's reference in the memo, its exact amount).
//!
//! ```text
//! cargo run --release --example schoolbench -- --url http://127.0.0.1:8080 --token TOKEN \
//!     [--pupils 1000] [--classes 25] [--clients 8]
//! ```
//!
//! Prints `key=value` lines on stdout (`setup`, `preview`, `post`, `mode=school-webhooks`,
//! `status`) and fails (exit status 1) when a webhook fails or the run's status does not show
//! every pupil paid.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::Rng;
use serde_json::{json, Value};
use uuid::Uuid;

#[allow(dead_code)]
#[path = "support/feed.rs"]
mod feed;
#[path = "support/flags.rs"]
mod flags;
use feed::StandardFeed;

const USAGE: &str =
    "usage: schoolbench --url URL --token TOKEN [--pupils N] [--classes C] [--clients K]";

/// Pupils per enrolment request: a class-sized list, as the school office sends them.
const ENROLMENT_CHUNK: usize = 200;

struct Options {
    url: String,
    token: String,
    pupils: usize,
    classes: usize,
    clients: usize,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let (mut url, mut token) = (None, None);
    let (mut pupils, mut classes, mut clients) = (1000, 25, 8);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |value: &str| flags::positive(&flag, value);
        match flag.as_str() {
            "--url" => url = Some(value.trim_end_matches('/').to_owned()),
            "--token" => token = Some(value),
            "--pupils" => pupils = number(&value)?,
            "--classes" => classes = number(&value)?,
            "--clients" => clients = number(&value)?,
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(Options {
        url: url.ok_or("--url is required")?,
        token: token.ok_or("--token is required")?,
        pupils,
        classes,
        clients,
    })
}

/// The staff API, with the answer's JSON or why there was none.
struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Value, String> {
        feed::answer(request.bearer_auth(&self.token), what).await
    }

    async fn post(&self, path: &str, body: &Value, what: &str) -> Result<Value, String> {
        let request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(body);
        self.send(request, what).await
    }

    async fn get(&self, path: &str, what: &str) -> Result<Value, String> {
        self.send(self.http.get(format!("{}{path}", self.url)), what)
            .await
    }
}

fn id_of(answer: &Value, what: &str) -> Result<String, String> {
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{what}: the answer lacks an id: {answer}"))
}

/// A school on a fresh bank account with a Standard Webhooks feed on its collection account.
async fn create_school(api: &Api) -> Result<(String, StandardFeed), String> {
    let account_number = format!(
        "{:012}",
        rand::thread_rng().gen_range(0..1_000_000_000_000u64)
    );
    let school = api
        .post(
            "/v1/payees",
            &json!({
                "kind": "school",
                "name": "Trường Tiểu học Khe Cốc",
                "collection_account": {
                    "bank_bin": "970436",
                    "account_number": account_number,
                    "holder_name": "Truong Tieu hoc Khe Coc",
                },
            }),
            "creating the school",
        )
        .await?;
    let field = |key: &str| school[key].as_str().map(str::to_owned);
    let (Some(school_id), Some(payee_code), Some(payee_account_code)) =
        (field("id"), field("code"), field("ledger_account_code"))
    else {
        return Err(format!("the school answer lacks a field: {school}"));
    };
    let collection = school["collection_account"]["id"].as_str().unwrap_or("");
    let bank_account_id = school["collection_account"]["ledger_account_id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let key: Vec<u8> = (0..32).map(|_| rand::thread_rng().gen()).collect();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&key)
    );
    let request = api
        .http
        .put(format!(
            "{}/v1/collection-accounts/{collection}/feed",
            api.url
        ))
        .json(&json!({ "provider": "standard", "secrets": [secret] }));
    api.send(request, "configuring the school's feed").await?;
    let feed = StandardFeed {
        payee_code,
        payee_account_code,
        bank_account_id,
        account_number,
        key,
    };
    Ok((school_id, feed))
}

/// The year, its classes (grades 1 to 5 in turn), the roster and five fee items, the last
/// optional with every pupil enrolled. Answers the run's id.
async fn set_up_run(api: &Api, options: &Options, school: &str) -> Result<String, String> {
    let base = format!("/v1/schools/{school}");
    let year = id_of(
        &api.post(
            &format!("{base}/years"),
            &json!({"name": "2026-2027", "starts_on": "2026-09-05", "ends_on": "2027-05-31"}),
            "creating the year",
        )
        .await?,
        "year",
    )?;
    let mut class_names = Vec::with_capacity(options.classes);
    for index in 0..options.classes {
        let grade = index % 5 + 1;
        let name = format!("{grade}{}", index / 5 + 1);
        api.post(
            &format!("{base}/classes"),
            &json!({"year_id": year, "grade": grade, "name": name}),
            "creating a class",
        )
        .await?;
        class_names.push(name);
    }
    let mut roster =
        String::from("class,pupil_code,full_name,guardian_name,guardian_phone,joined_on\n");
    for pupil in 0..options.pupils {
        roster.push_str(&format!(
            "{},HS{pupil:05},Nguyễn Văn Học {pupil},Nguyễn Thị Mẹ {pupil},09{:08},2026-09-05\n",
            class_names[pupil % class_names.len()],
            pupil
        ));
    }
    let imported = api
        .send(
            api.http
                .post(format!(
                    "{}{base}/roster/import?year_id={year}&dry_run=false",
                    api.url
                ))
                .header("Content-Type", "text/csv")
                .body(roster),
            "importing the roster",
        )
        .await?;
    if imported["pupils_created"].as_u64() != Some(options.pupils as u64) {
        return Err(format!(
            "the roster import did not create every pupil: {imported}"
        ));
    }
    let grades = |amount: i64| -> Value {
        (1..=5)
            .map(|grade| json!({"grade": grade, "amount": amount + grade * 1_000}))
            .collect()
    };
    let items = [
        ("Học phí", "school", true, "month", grades(100_000)),
        (
            "Tiền ăn bán trú",
            "school",
            true,
            "school_day",
            grades(20_000),
        ),
        (
            "Quỹ hội cha mẹ học sinh",
            "parents_association",
            true,
            "year",
            grades(150_000),
        ),
        (
            "Bảo hiểm y tế học sinh",
            "pass_through",
            true,
            "year",
            grades(680_000),
        ),
        (
            "Học thêm tiếng Anh",
            "school",
            false,
            "term",
            grades(300_000),
        ),
    ];
    let mut item_ids = Vec::with_capacity(items.len());
    for (name, fund, mandatory, unit, grade_amounts) in items {
        let item = api
            .post(
                &format!("{base}/fee-items"),
                &json!({"year_id": year, "name": name, "fund": fund, "mandatory": mandatory,
                        "unit": unit, "grade_amounts": grade_amounts}),
                "creating a fee item",
            )
            .await?;
        item_ids.push(id_of(&item, "fee item")?);
    }
    let run = id_of(
        &api.post(
            &format!("{base}/runs"),
            &json!({"year_id": year, "name": "Tháng 9/2026", "fee_item_ids": item_ids,
                    "due_on": "2026-09-30", "school_days": 20}),
            "creating the run",
        )
        .await?,
        "run",
    )?;
    // There is no pupil list; an untimed preview names every pupil the run charges.
    let preview = api
        .get(&format!("{base}/runs/{run}/preview"), "previewing the run")
        .await?;
    let mut pupil_ids: Vec<&str> = preview["charges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|charge| charge["pupil_id"].as_str())
        .collect();
    pupil_ids.sort_unstable();
    pupil_ids.dedup();
    if pupil_ids.len() != options.pupils {
        return Err(format!(
            "the preview charges {} pupils, not {}",
            pupil_ids.len(),
            options.pupils
        ));
    }
    let optional = item_ids.last().expect("five items");
    for chunk in pupil_ids.chunks(ENROLMENT_CHUNK) {
        api.post(
            &format!("{base}/fee-items/{optional}/enrolments"),
            &json!({ "pupil_ids": chunk }),
            "enrolling pupils",
        )
        .await?;
    }
    Ok(run)
}

/// One pupil's QR: what the bank transfer must carry.
struct PupilIntent {
    reference: String,
    amount: i64,
}

/// Reads every posted intent, `clients` requests at a time (all at once, a thousand
/// connections opened and closed just before the timed phase would still be settling in it).
async fn pupil_intents(
    api: Arc<Api>,
    posted: &Value,
    clients: usize,
) -> Result<Vec<PupilIntent>, String> {
    let ids: Arc<Vec<String>> = Arc::new(
        posted["intents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|intent| intent["intent_id"].as_str().map(str::to_owned))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..clients)
        .map(|_| {
            let (api, ids, next) = (api.clone(), ids.clone(), next.clone());
            tokio::spawn(async move {
                let mut read = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(index) else {
                        return Ok::<_, String>(read);
                    };
                    let intent = api
                        .get(&format!("/v1/payment-intents/{id}"), "reading an intent")
                        .await?;
                    let reference = intent["reference"].as_str().map(str::to_owned);
                    let amount = intent["amount"].as_str().and_then(|a| a.parse().ok());
                    match (reference, amount) {
                        (Some(reference), Some(amount)) => {
                            read.push((index, PupilIntent { reference, amount }))
                        }
                        _ => return Err(format!("the intent answer lacks a field: {intent}")),
                    }
                }
            })
        })
        .collect();
    let mut intents = Vec::with_capacity(ids.len());
    for reader in readers {
        intents.extend(
            reader
                .await
                .map_err(|e| format!("intent task failed: {e}"))??,
        );
    }
    // In the order posted, as read one by one before.
    intents.sort_unstable_by_key(|(index, _)| *index);
    Ok(intents.into_iter().map(|(_, intent)| intent).collect())
}

/// Pays every intent with its exact amount, `clients` deliveries at a time. Answers the
/// latencies of the deliveries and the failures.
async fn pay_all(
    api: Arc<Api>,
    feed: Arc<StandardFeed>,
    intents: Arc<Vec<PupilIntent>>,
    clients: usize,
) -> Result<(Vec<Duration>, Vec<String>), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (api, feed, intents, next) =
                (api.clone(), feed.clone(), intents.clone(), next.clone());
            tokio::spawn(async move {
                let (mut latencies, mut failures) = (Vec::new(), Vec::new());
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(intent) = intents.get(index) else {
                        break;
                    };
                    let id = Uuid::new_v4().to_string();
                    let body = json!({
                        "type": "bank_transaction",
                        "data": {
                            "id": id, "account_number": feed.account_number, "direction": "in",
                            "amount": intent.amount,
                            "description": format!("PHU HUYNH HS{index:05} {} hoc phi", intent.reference),
                            "occurred_at": chrono::Utc::now().to_rfc3339(),
                        }
                    })
                    .to_string();
                    let started = Instant::now();
                    let response = feed.deliver(&api.http, &api.url, &id, &body).send().await;
                    latencies.push(started.elapsed());
                    match response {
                        Ok(response) if response.status().is_success() => {}
                        Ok(response) => failures.push(format!(
                            "webhook answered {}: {}",
                            response.status(),
                            response.text().await.unwrap_or_default()
                        )),
                        Err(e) => failures.push(format!("webhook failed: {e}")),
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    for worker in workers {
        let (l, f) = worker
            .await
            .map_err(|e| format!("client task failed: {e}"))?;
        latencies.extend(l);
        failures.extend(f);
    }
    Ok((latencies, failures))
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

async fn run(options: Options) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let api = Arc::new(Api {
        http,
        url: options.url.clone(),
        token: options.token.clone(),
    });
    let started = Instant::now();
    let (school, feed) = create_school(&api).await?;
    let run = set_up_run(&api, &options, &school).await?;
    println!(
        "setup pupils={} classes={} items=5 seconds={:.2}",
        options.pupils,
        options.classes,
        started.elapsed().as_secs_f64()
    );
    let base = format!("/v1/schools/{school}/runs/{run}");

    let started = Instant::now();
    let preview = api
        .get(&format!("{base}/preview"), "previewing the run")
        .await?;
    println!(
        "preview pupils={} charges={} seconds={:.3}",
        preview["pupils"],
        preview["charges"].as_array().map_or(0, Vec::len),
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let posted = api
        .post(&format!("{base}/post"), &json!({}), "posting the run")
        .await?;
    let post_seconds = started.elapsed().as_secs_f64();
    println!(
        "post charges={} intents={} total={} seconds={post_seconds:.3}",
        posted["charges"],
        posted["intents"].as_array().map_or(0, Vec::len),
        posted["total"]
    );

    let intents = Arc::new(pupil_intents(api.clone(), &posted, options.clients).await?);
    if intents.len() != options.pupils {
        return Err(format!(
            "posting made {} QRs for {} pupils",
            intents.len(),
            options.pupils
        ));
    }
    let started = Instant::now();
    let (mut latencies, failures) = pay_all(
        api.clone(),
        Arc::new(feed),
        intents.clone(),
        options.clients,
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "mode=school-webhooks clients={} seconds={elapsed:.2} requests={} transfers={} \
         transfers_per_s={:.1} p50_ms={:.2} p99_ms={:.2} errors={}",
        options.clients,
        latencies.len(),
        latencies.len() - failures.len(),
        (latencies.len() - failures.len()) as f64 / elapsed,
        percentile_ms(&latencies, 0.50),
        percentile_ms(&latencies, 0.99),
        failures.len()
    );
    for failure in failures.iter().take(5) {
        eprintln!("schoolbench: {failure}");
    }

    let status = api
        .get(&format!("{base}/status"), "reading the run's status")
        .await?;
    println!(
        "status pupils={} paid={} partly_paid={} unpaid={} paid_percent={}",
        status["pupils"],
        status["paid"],
        status["partly_paid"],
        status["unpaid"],
        status["paid_percent"]
    );
    if !failures.is_empty() {
        return Err(format!("{} webhooks failed", failures.len()));
    }
    if status["paid"].as_u64() != Some(options.pupils as u64) {
        return Err(format!(
            "the run's status shows {} of {} pupils paid",
            status["paid"], options.pupils
        ));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("schoolbench: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("schoolbench: {why}");
            ExitCode::FAILURE
        }
    }
}
