//! Command line: serve (default), migrate, verify, users create, openapi.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::user::Role;
use crate::services::ledger::LedgerService;
use crate::services::payments::PaymentService;
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
    /// Print the OpenAPI document (api-spec/openapi.yaml).
    Openapi,
}

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
            Application::build(&settings)
                .await?
                .run_until_stopped()
                .await?;
            Ok(0)
        }
        Command::Migrate => {
            open_store(&settings).await?;
            println!("migrations applied");
            Ok(0)
        }
        Command::Verify => {
            let store = open_store(&settings).await?;
            let report = LedgerService::new(store).verify().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(if report.ok { 0 } else { 1 })
        }
        Command::Users {
            command:
                UsersCommand::Create {
                    username,
                    role,
                    payee,
                    password_stdin: _,
                },
        } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            let store = open_store(&settings).await?;
            if let (true, Some(payee)) = (role.is_payee_bound(), payee) {
                PaymentService::new(store.clone())
                    .require_payee(payee)
                    .await?;
            }
            let user = auth_service(&settings, store)?
                .create_user(&username, role, payee, password)
                .await?;
            println!(
                "created {} user {} ({})",
                user.role.as_str(),
                user.username,
                user.id
            );
            Ok(0)
        }
        Command::Openapi => {
            print!("{}", crate::http::openapi_yaml());
            Ok(0)
        }
    }
}
