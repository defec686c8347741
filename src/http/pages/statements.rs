//! The bank statement upload for commune staff: a collection account, a period and the bank's
//! CSV statement (pasted), compared with what the webhooks recorded and with the ledger by the
//! same use case as `POST /v1/reconciliation/statements`, the report drawn as tables. Recording
//! the lines no webhook brought is a second, confirmed step: the report shows them first.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Days, NaiveDate};
use serde::Deserialize;
use uuid::Uuid;

use super::{grouped_text as amount, page, Frame, PageForm};
use crate::domain::statement::{MatchBasis, StatementReport};
use crate::domain::statistics::period::vietnam_local;
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::bank_feed::models::{
    CollectionAccountView, StatementImportView, StatementQuery,
};

/// A collection account to choose.
pub struct AccountChoice {
    pub id: Uuid,
    pub label: String,
    pub selected: bool,
}

/// One row of a report table: its cells, already written for the page.
pub struct Row(pub Vec<String>);

/// The report as the page shows it.
pub struct Report {
    pub lines: usize,
    pub known: usize,
    pub matched: Vec<Row>,
    pub mismatches: Vec<Row>,
    pub missing: Vec<Row>,
    pub not_in_statement: Vec<Row>,
    pub statement_closing: Option<String>,
    pub ledger_closing: String,
    pub closing_difference: Option<String>,
    pub ingested: Option<Ingested>,
}

/// What recording the missing lines did.
pub struct Ingested {
    pub recorded: usize,
    pub already: usize,
    pub refused_lines: String,
    pub closing_difference: Option<String>,
}

#[derive(Template)]
#[template(path = "statements.html")]
struct StatementsPage<'a> {
    f: &'a Frame,
    accounts: Vec<AccountChoice>,
    from: &'a str,
    to: &'a str,
    csv: &'a str,
    report: Option<Report>,
    error: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct StatementForm {
    account: Option<Uuid>,
    /// First day of the period, `YYYY-MM-DD` (Vietnam time).
    #[serde(default)]
    from: String,
    /// Last day of the period, included.
    #[serde(default)]
    to: String,
    #[serde(default)]
    csv: String,
    /// Set by the confirmation form only: record the missing lines.
    #[serde(default)]
    ingest: Option<String>,
    /// The confirmation box that goes with `ingest`.
    #[serde(default)]
    confirm: Option<String>,
}

/// The period as the API takes it: from the first day's midnight to the midnight after the
/// last day, Vietnam time.
fn period(form: &StatementForm) -> Option<(String, String)> {
    let from = NaiveDate::parse_from_str(form.from.trim(), "%Y-%m-%d").ok()?;
    let last = NaiveDate::parse_from_str(form.to.trim(), "%Y-%m-%d").ok()?;
    let end = last.checked_add_days(Days::new(1))?;
    let midnight = |day: NaiveDate| format!("{day}T00:00:00+07:00");
    Some((midnight(from), midnight(end)))
}

fn basis(f: &Frame, basis: MatchBasis) -> String {
    match basis {
        MatchBasis::BankReference => f.t.matched_by_reference,
        MatchBasis::AmountAndTime => f.t.matched_by_amount,
        MatchBasis::DescriptionAndTime => f.t.matched_by_memo,
    }
    .to_owned()
}

fn when(at: chrono::DateTime<chrono::Utc>, has_time: bool) -> String {
    let format = if has_time {
        "%d/%m/%Y %H:%M"
    } else {
        "%d/%m/%Y"
    };
    vietnam_local(at).format(format).to_string()
}

fn signed(f: &Frame, direction: &str, value: &str) -> String {
    let sign = if direction == "in" { "+" } else { "−" };
    format!("{sign}{}{}", amount(value), f.t.currency_suffix)
}

fn money(f: &Frame, value: &str) -> String {
    format!("{}{}", amount(value), f.t.currency_suffix)
}

fn report(f: &Frame, view: &StatementImportView) -> Report {
    let StatementReport {
        counts,
        matched,
        amount_mismatches,
        missing_webhooks,
        not_in_statement,
        statement_closing_balance,
        ledger_closing_balance,
        closing_balance_difference,
    } = &view.report;
    Report {
        lines: counts.statement_lines,
        known: counts.known_transactions,
        matched: matched
            .iter()
            .map(|m| Row(vec![m.line.to_string(), basis(f, m.matched_by)]))
            .collect(),
        mismatches: amount_mismatches
            .iter()
            .map(|m| {
                Row(vec![
                    m.line.to_string(),
                    money(f, &m.statement_amount),
                    money(f, &m.recorded_amount),
                ])
            })
            .collect(),
        missing: missing_webhooks
            .iter()
            .map(|m| {
                Row(vec![
                    m.line.to_string(),
                    when(m.occurred_at, m.has_time),
                    signed(f, &m.direction, &m.amount),
                    m.description.clone(),
                ])
            })
            .collect(),
        not_in_statement: not_in_statement
            .iter()
            .map(|n| {
                Row(vec![
                    when(n.occurred_at, true),
                    signed(f, &n.direction, &n.amount),
                    n.description.clone(),
                ])
            })
            .collect(),
        statement_closing: statement_closing_balance.as_deref().map(|b| money(f, b)),
        ledger_closing: money(f, ledger_closing_balance),
        closing_difference: closing_balance_difference.as_deref().map(|d| money(f, d)),
        ingested: view.ingest.then(|| Ingested {
            recorded: view.ingested.iter().filter(|i| !i.duplicate).count(),
            already: view.ingested.iter().filter(|i| i.duplicate).count(),
            refused_lines: view
                .not_ingested
                .iter()
                .map(|n| n.line.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            closing_difference: view
                .closing_balance_difference_after_ingest
                .as_deref()
                .map(|d| money(f, d)),
        }),
    }
}

fn choices(accounts: &[CollectionAccountView], chosen: Option<Uuid>) -> Vec<AccountChoice> {
    accounts
        .iter()
        .map(|a| {
            let payees: Vec<&str> = a.payees.iter().map(|p| p.code.as_str()).collect();
            AccountChoice {
                id: a.id,
                label: format!(
                    "{} · {} ({})",
                    a.holder_name,
                    a.account_number,
                    payees.join(", ")
                ),
                selected: chosen == Some(a.id),
            }
        })
        .collect()
}

/// Draws the page: the form with what was sent, and the report or the reason there is none.
async fn draw(
    request: &HttpRequest,
    state: &web::Data<AppState>,
    form: &StatementForm,
    outcome: Option<Result<StatementImportView, (StatusCode, String)>>,
) -> HttpResponse {
    let accounts = match state
        .run(|s| async move { s.bank_feed.collection_accounts().await })
        .await
    {
        Ok(accounts) => accounts,
        Err(e) => return super::refusal(request, &e),
    };
    let frame = Frame::new(request);
    let (status, report, error) = match &outcome {
        None => (StatusCode::OK, None, None),
        Some(Ok(view)) => (StatusCode::OK, Some(report(&frame, view)), None),
        Some(Err((status, code))) => (*status, None, Some(frame.t.statement_error(code))),
    };
    let body = StatementsPage {
        f: &frame,
        accounts: choices(&accounts.data, form.account),
        from: &form.from,
        to: &form.to,
        csv: &form.csv,
        report,
        error,
    };
    page(request, &frame, status, &body)
}

pub async fn statements_page(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    draw(&request, &state, &StatementForm::default(), None).await
}

/// Compares the statement, and records its missing lines when the confirmation was ticked.
pub async fn compare(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    PageForm(form): PageForm<StatementForm>,
) -> HttpResponse {
    let (Some(account), Some((from, to))) = (form.account, period(&form)) else {
        let refused = Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "STATEMENT_PERIOD_INVALID".into(),
        ));
        return draw(&request, &state, &form, Some(refused)).await;
    };
    let query = StatementQuery {
        collection_account_id: account,
        from,
        to,
        ingest: Some(form.ingest.is_some() && form.confirm.is_some()),
    };
    let csv = form.csv.clone().into_bytes();
    let outcome = state
        .run(move |s| async move { s.bank_feed.import_statement(&caller, query, &csv).await })
        .await;
    let outcome = outcome.map_err(|refused| (refused.status(), refused.code().to_owned()));
    draw(&request, &state, &form, Some(outcome)).await
}
