//! Command line: serve (default), migrate, verify, users create, webhooks send, simulate,
//! openapi.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::user::Role;
use crate::services::auth::Caller;
use crate::services::bank_feed::models::{shown_headers, SentDeliveryView};
use crate::services::ledger::LedgerService;
use crate::services::users::UserPatchRequest;
use crate::startup::{auth_service, open_store, Application};
use crate::telemetry;

#[derive(Parser)]
#[command(
    name = "market-ledger",
    version,
    about = "Payment ledger for a commune's cashless market"
)]
pub struct Cli {
    /// TOML config file (also MARKET_LEDGER_CONFIG); environment variables override it.
    #[arg(long, global = true, env = "MARKET_LEDGER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the ledger invariants; exits 1 on any violation.
    Verify,
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Write a consistent copy of the SQLite database to a new file while the service runs
    /// (PostgreSQL: use pg_dump or pg_basebackup, as the README says).
    Backup {
        /// The new file; an existing file is never overwritten.
        #[arg(long)]
        to: PathBuf,
    },
    /// Bank-feed deliveries.
    Webhooks {
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Seed a fresh database with a simulated commune (hamlets, households, residents,
    /// vendors, schools) and play months of market days and school collections through the
    /// real pipeline; writes what it did as a ground-truth JSON file.
    Simulate(SimulateArgs),
    /// Print the OpenAPI document (api-spec/openapi.yaml).
    Openapi,
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Deliver an incoming transfer to a collection account exactly as its feed's provider
    /// would (signed with the configured secret) and print the delivery and the answer. The
    /// transfer is posted as real: use it to see a payment land while setting up.
    Send {
        /// The collection account's number.
        #[arg(long)]
        account: String,
        /// Its bank's BIN, when the number exists at several banks.
        #[arg(long)]
        bin: Option<String>,
        /// Whole đồng.
        #[arg(long)]
        amount: String,
        /// The transfer memo: a payee code, an intent reference.
        #[arg(long)]
        memo: String,
        /// sepay, payos, casso or standard: must be the account's feed (the default).
        #[arg(long)]
        provider: Option<String>,
        /// Post the delivery over HTTP to the service at this address (e.g.
        /// https://ledger.example.vn, through the reverse proxy), as the provider would, instead
        /// of handing it to the service in this process.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Same seed, same commune and same payments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Households to create (about 3.7 residents each; Tức Tranh has about 2,700).
    #[arg(long, default_value_t = 2_700)]
    households: usize,
    #[arg(long, default_value_t = 60)]
    vendors: usize,
    #[arg(long, default_value_t = 3)]
    schools: usize,
    /// Months to play.
    #[arg(long, default_value_t = 1)]
    months: u32,
    /// First month to play, YYYY-MM; default: so that the last one played is last month.
    #[arg(long, value_parser = parse_month_arg)]
    first_month: Option<chrono::NaiveDate>,
    /// Where to write the ground truth.
    #[arg(long, default_value = "ground-truth.json")]
    ground_truth: PathBuf,
}

fn parse_month_arg(text: &str) -> Result<chrono::NaiveDate, String> {
    crate::domain::statistics::period::parse_month(text)
        .ok_or_else(|| "a month is YYYY-MM, e.g. 2026-10".into())
}

/// How changes made with the command line appear in the audit trail.
const COMMAND_LINE: &str = "command line";

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        /// admin, staff, auditor, vendor or school
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The payee a vendor or school user acts for.
        #[arg(long)]
        payee: Option<Uuid>,
        /// Read the password from standard input (required: no password on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users with their role, payee, state and last login.
    List,
    /// Disable a user: no login, and their tokens stop working within seconds.
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
    /// Change a user's role (and the payee a vendor or school user acts for).
    SetRole {
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The payee, for vendor and school; left out for the other roles.
        #[arg(long)]
        payee: Option<Uuid>,
    },
    /// Give a user a temporary password (printed once) they must change at their next login.
    ResetPassword { username: String },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "role must be admin, staff, auditor, vendor or school".into())
}

/// Runs the command line; returns the process exit code.
pub async fn run() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init_tracing(&settings);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(&settings).await?;
            if let Some(token) = app.state().web.open_setup().await? {
                tracing::warn!(
                    "no admin user exists yet: create the first one with \
                     `market-ledger users create --username admin --role admin --password-stdin` \
                     (the password is read from standard input), or open the setup link"
                );
                // On the console, not only in the log: the one way in without a command line.
                println!(
                    "No admin exists yet. Open this one-time link to create the first admin:\n  \
                     http://{}/app/setup?token={token}",
                    browsable(&app.local_addr()?)
                );
            }
            app.run_until_stopped().await?;
            Ok(0)
        }
        Command::Migrate => {
            let store = open_store(&settings).await?;
            crate::startup::sealed_feed_secrets(&settings, store.as_ref()).await?;
            println!("migrations applied, feed secrets sealed under the current key");
            Ok(0)
        }
        Command::Verify => {
            let store = open_store(&settings).await?;
            let report = LedgerService::new(store).verify().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.ok { 0 } else { 1 })
        }
        Command::Users { command } => users(&settings, command).await,
        Command::Simulate(args) => simulate(settings, args).await,
        Command::Backup { to } => {
            if to.exists() {
                anyhow::bail!("{} exists; a backup goes to a new file", to.display());
            }
            let store = open_store(&settings).await?;
            let started = std::time::Instant::now();
            store.backup(&to.to_string_lossy()).await?;
            // The copy holds the registry and payments: readable by its owner only.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))?;
            }
            println!(
                "backed up to {} in {:.1} s; check it with DATABASE_URL=sqlite://{} market-ledger verify",
                to.display(),
                started.elapsed().as_secs_f64(),
                to.display()
            );
            Ok(0)
        }
        Command::Webhooks {
            command:
                WebhooksCommand::Send {
                    account,
                    bin,
                    amount,
                    memo,
                    provider,
                    url,
                },
        } => {
            let transfer = TestTransfer {
                account,
                bin,
                amount,
                memo,
                provider,
            };
            send_delivery(settings, transfer, url.as_deref()).await
        }
        Command::Openapi => {
            print!("{}", crate::http::openapi_yaml());
            Ok(0)
        }
    }
}

async fn users(settings: &Settings, command: UsersCommand) -> anyhow::Result<i32> {
    let store = open_store(settings).await?;
    let auth = auth_service(settings, store)?;
    let operator = Caller::system(COMMAND_LINE);
    let patch = |role: Option<Role>, payee: Option<Option<Uuid>>, disabled: Option<bool>| {
        UserPatchRequest {
            role: role.map(|r| r.as_str().to_owned()),
            payee_id: payee,
            disabled,
        }
    };
    let changed = match command {
        UsersCommand::Create {
            username,
            role,
            payee,
            password_stdin: _,
        } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            auth.require_payee(payee).await?;
            let user = auth
                .create_user(&operator, &username, role, payee, password)
                .await?;
            println!(
                "created {} user {} ({})",
                user.role.as_str(),
                user.username,
                user.id
            );
            return Ok(0);
        }
        UsersCommand::List => {
            for user in auth.list_users().await?.data {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    user.username,
                    user.role,
                    user.payee_id.map_or("-".into(), |p| p.to_string()),
                    if user.disabled { "disabled" } else { "enabled" },
                    user.last_login_at
                        .map_or("never logged in".into(), |at| format!("last login {at}")),
                );
            }
            return Ok(0);
        }
        UsersCommand::ResetPassword { username } => {
            let reset = auth.reset_password(&operator, &username).await?;
            println!(
                "temporary password for {} (give it to them; they must change it at their next login): {}",
                reset.user.username, reset.temporary_password
            );
            return Ok(0);
        }
        UsersCommand::Disable { username } => {
            auth.update_user(&operator, &username, patch(None, None, Some(true)))
                .await?
        }
        UsersCommand::Enable { username } => {
            auth.update_user(&operator, &username, patch(None, None, Some(false)))
                .await?
        }
        UsersCommand::SetRole {
            username,
            role,
            payee,
        } => {
            auth.update_user(&operator, &username, patch(Some(role), Some(payee), None))
                .await?
        }
    };
    println!(
        "{}: {}{}{}",
        changed.username,
        changed.role,
        changed
            .payee_id
            .map_or(String::new(), |p| format!(" of payee {p}")),
        if changed.disabled { ", disabled" } else { "" }
    );
    Ok(0)
}

async fn simulate(mut settings: Settings, args: SimulateArgs) -> anyhow::Result<i32> {
    use chrono::{Datelike, Months};
    // The simulation calls the use cases in-process; it serves nothing.
    settings.listen = "127.0.0.1:0".into();
    let app = Application::build(&settings).await?;
    let today = crate::domain::registry::day_in_vietnam(chrono::Utc::now());
    let this_month = chrono::NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .expect("every month has a first day");
    let options = crate::simulation::plan::Options {
        seed: args.seed,
        households: args.households,
        vendors: args.vendors,
        schools: args.schools,
        first_month: args
            .first_month
            .unwrap_or(this_month - Months::new(args.months)),
        months: args.months,
    };
    let started = std::time::Instant::now();
    let driver = crate::simulation::Driver::new(app.state());
    let truth = crate::simulation::simulate(&driver, &options).await?;
    std::fs::write(&args.ground_truth, serde_json::to_vec_pretty(&truth)?)?;
    let online = truth
        .payments
        .iter()
        .filter(|p| p.channel == "online")
        .count();
    println!(
        "simulated {} residents in {} households, {} months from {}: {} online payments, {} cash \
         records, {} survey answers in {:.1} s; ground truth in {}",
        truth.residents.len(),
        truth.households.len(),
        options.months,
        options.first_month.format("%Y-%m"),
        online,
        truth.payments.len() - online,
        truth.surveys.len(),
        started.elapsed().as_secs_f64(),
        args.ground_truth.display()
    );
    Ok(0)
}

/// What `webhooks send` delivers.
struct TestTransfer {
    account: String,
    bin: Option<String>,
    amount: String,
    memo: String,
    provider: Option<String>,
}

async fn send_delivery(
    mut settings: Settings,
    transfer: TestTransfer,
    url: Option<&str>,
) -> anyhow::Result<i32> {
    // The delivery is built (and, without --url, processed) in-process; nothing is served.
    settings.listen = "127.0.0.1:0".into();
    let app = Application::build(&settings).await?;
    let state = app.state();
    let account = transfer.account.as_str();
    let matching: Vec<_> = state
        .bank_feed
        .collection_accounts()
        .await?
        .data
        .into_iter()
        .filter(|a| {
            a.account_number == account && transfer.bin.as_ref().is_none_or(|b| &a.bank_bin == b)
        })
        .collect();
    let collection = match matching.as_slice() {
        [one] => one.id,
        [] => anyhow::bail!("no collection account has number {account}"),
        _ => anyhow::bail!("account {account} exists at several banks; give --bin"),
    };
    let caller = Caller::system(COMMAND_LINE);
    let request = crate::services::bank_feed::models::SendDeliveryRequest {
        amount: crate::services::ledger::models::AmountText(transfer.amount),
        memo: transfer.memo,
    };
    let delivery = state
        .bank_feed
        .sign_test_delivery(&caller, collection, request)
        .await?;
    if let Some(asked) = transfer.provider {
        if asked != delivery.provider {
            anyhow::bail!(
                "account {account} has a {} feed, not {asked}: its deliveries are signed as {} signs them",
                delivery.provider,
                delivery.provider
            );
        }
    }
    let Some(url) = url else {
        let answer = state
            .bank_feed
            .receive(delivery.provider, &delivery.headers, &delivery.body)
            .await?;
        let sent = SentDeliveryView::new(delivery, answer);
        println!("{}", serde_json::to_string_pretty(&sent)?);
        return Ok(0);
    };
    let endpoint = format!(
        "{}/v1/webhooks/{}",
        url.trim_end_matches('/'),
        delivery.provider
    );
    let mut post = reqwest::Client::new().post(&endpoint);
    for (name, value) in &delivery.headers {
        post = post.header(name, value);
    }
    let response = post
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST {endpoint}: {e}"))?;
    let status = response.status();
    let answer = response.text().await.unwrap_or_default();
    let printed = serde_json::json!({
        "url": endpoint,
        "provider": delivery.provider,
        "headers": shown_headers(delivery.headers),
        "body": serde_json::from_slice::<serde_json::Value>(&delivery.body).unwrap_or_default(),
        "status": status.as_u16(),
        "answer": serde_json::from_str::<serde_json::Value>(&answer)
            .unwrap_or(serde_json::Value::String(answer)),
    });
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(if status.is_success() { 0 } else { 1 })
}

/// An address a browser on this machine can open: a wildcard listen address is reached on
/// localhost.
fn browsable(address: &std::net::SocketAddr) -> String {
    if address.ip().is_unspecified() {
        format!("localhost:{}", address.port())
    } else {
        address.to_string()
    }
}
