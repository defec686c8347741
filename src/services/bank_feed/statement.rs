//! Statement import: staff upload a collection account's bank statement (CSV) for a period; it
//! is compared with the bank transactions the webhooks stored and with the ledger, and on
//! request the lines no webhook brought are recorded through the same pipeline as a webhook.

use std::collections::HashMap;

use chrono::DateTime;
use tracing::instrument;

use super::models::{IngestedLine, NotIngestedLine, StatementImportView, StatementQuery};
use super::record::Transfer;
use super::{BankFeedError, BankFeedService};
use crate::clock::to_datetime;
use crate::domain::bank_feed::{BankTransaction, Provider};
use crate::domain::statement::{
    check_period, parse_statement, reconcile, KnownBankTransaction, StatementError, StatementLine,
    MATCH_TIME_TOLERANCE_MICROS,
};
use crate::services::auth::Caller;
use crate::store::bank_feed::{statement_transaction_id, DeliveryRecord, Feed};
use crate::store::StoreError;

const DAY_MICROS: i64 = 86_400_000_000;

/// `outcome` of the delivery record an imported statement is kept as.
pub const STATEMENT_IMPORT_OUTCOME: &str = "statement_import";

impl BankFeedService {
    /// Compares an uploaded statement (the exact bytes of the CSV file) of one collection
    /// account for `[from, to)` with the stored bank transactions and the ledger; with
    /// `ingest`, records the lines no webhook brought, each once (a bank reference is the
    /// dedupe key, so importing again changes nothing).
    #[instrument(skip(self, caller, query, body),
        fields(user = %caller.username, collection_account = %query.collection_account_id,
            bytes = body.len()))]
    pub async fn import_statement(
        &self,
        caller: &Caller,
        query: StatementQuery,
        body: &[u8],
    ) -> Result<StatementImportView, BankFeedError> {
        let from = parse_period_end("start (from)", &query.from)?;
        let to = parse_period_end("end (to)", &query.to)?;
        let ingest = query.ingest.unwrap_or(false);
        let account = self
            .store
            .list_collection_accounts()
            .await?
            .into_iter()
            .find(|a| a.id == query.collection_account_id)
            .ok_or(BankFeedError::CollectionAccountNotFound(
                query.collection_account_id,
            ))?;

        let lines = parse_statement(body)?;
        check_period(&lines, from, to)?;

        // Stored transactions a line may be matched with: the period widened by the matching
        // tolerance, and by the whole Vietnam day of a date-only line that starts before the
        // period (a period need not start at midnight).
        let (load_from, load_to) = lines.iter().filter(|l| !l.has_time).fold(
            (
                from.saturating_sub(MATCH_TIME_TOLERANCE_MICROS),
                to.saturating_add(MATCH_TIME_TOLERANCE_MICROS),
            ),
            |(start, end), line| {
                (
                    start.min(line.occurred_at_micros),
                    end.max(line.occurred_at_micros.saturating_add(DAY_MICROS)),
                )
            },
        );
        let stored = self
            .store
            .bank_transactions_between(account.id, load_from, load_to)
            .await?;
        let known: Vec<KnownBankTransaction> = stored
            .iter()
            .map(|t| KnownBankTransaction {
                id: t.id,
                direction: t.direction,
                amount: t.amount,
                occurred_at_micros: t.occurred_at,
                description: t.description.clone(),
                bank_reference: t.bank_reference.clone(),
            })
            .collect();
        let ledger_before = self
            .ledger_balance_before(account.ledger_account_id, to)
            .await?;

        // Matching is CPU work that grows with lines × transactions of the same day; off the
        // async workers, so webhooks keep being answered meanwhile.
        let (mut report, lines) = tokio::task::spawn_blocking(move || {
            let report = reconcile(&lines, &known, ledger_before);
            (report, lines)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("statement matching failed: {e}")))?;
        // Transactions outside the period were loaded only so lines near its edges could be
        // matched; unmatched, they belong to another statement.
        let occurred: HashMap<_, _> = stored.iter().map(|t| (t.id, t.occurred_at)).collect();
        report.not_in_statement.retain(|n| {
            occurred
                .get(&n.bank_transaction_id)
                .is_some_and(|&at| from <= at && at < to)
        });
        report.counts.not_in_statement = report.not_in_statement.len();

        let mut view = StatementImportView {
            collection_account_id: account.id,
            from: to_datetime(from),
            to: to_datetime(to),
            report,
            ingest,
            ingested: Vec::new(),
            not_ingested: Vec::new(),
            ledger_closing_balance_after_ingest: None,
            closing_balance_difference_after_ingest: None,
        };
        if !ingest {
            return Ok(view);
        }

        let by_line: HashMap<usize, &StatementLine> = lines.iter().map(|l| (l.line, l)).collect();
        let mut to_record: Vec<(usize, BankTransaction)> = Vec::new();
        for missing in &view.report.missing_webhooks {
            let line = by_line[&missing.line];
            let Some(reference) = line
                .bank_reference
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
            else {
                view.not_ingested.push(NotIngestedLine {
                    line: line.line,
                    code: "NO_BANK_REFERENCE".to_owned(),
                    reason: "the line has no bank_reference, so a webhook for the same transfer \
                             arriving later could not be recognized as the same money; record it \
                             by hand after checking"
                        .to_owned(),
                });
                continue;
            };
            to_record.push((
                line.line,
                BankTransaction {
                    provider: Provider::Standard,
                    provider_transaction_id: statement_transaction_id(
                        account.id,
                        line.direction,
                        reference,
                    ),
                    account_number: account.account_number.clone(),
                    direction: line.direction,
                    amount: line.amount,
                    description: line.description.clone(),
                    occurred_at: to_datetime(line.occurred_at_micros),
                    // Not passed on: the balance check at recording compares it with the
                    // ledger's balance now, which for a line recorded after later transfers
                    // is not the balance after this line. The statement's closing balance is
                    // compared with the ledger's at the end of the period instead.
                    running_balance: None,
                    reference: Some(reference.to_owned()),
                    payer: None,
                },
            ));
        }
        if to_record.is_empty() {
            return Ok(view);
        }

        let now = self.clock.now_micros();
        let delivery = DeliveryRecord {
            id: self.clock.new_id(),
            provider: Provider::Standard,
            collection_account_id: Some(account.id),
            received_at: now,
            headers: serde_json::json!({
                "source": "statement",
                "uploaded_by": caller.username,
                "from": query.from,
                "to": query.to,
            })
            .to_string(),
            body: body.to_vec(),
            provider_transaction_ids: to_record
                .iter()
                .map(|(_, t)| t.provider_transaction_id.as_str())
                .collect::<Vec<_>>()
                .join(","),
            outcome: STATEMENT_IMPORT_OUTCOME.to_owned(),
        };
        let feed = Feed {
            collection_account_id: account.id,
            bank_bin: account.bank_bin.clone(),
            account_number: account.account_number.clone(),
            ledger_account_id: account.ledger_account_id,
            provider: Provider::Standard,
            secrets: Default::default(),
        };
        for (index, (line, transaction)) in to_record.iter().enumerate() {
            // The delivery row is written with the first line, in its database transaction;
            // an error stops the import, so later lines always find it.
            let outcome = self
                .recorder
                .ingest(Transfer {
                    delivery: &delivery,
                    insert_delivery: index == 0,
                    feed: &feed,
                    bank: transaction,
                })
                .await?;
            self.after_ingest(&outcome).await;
            view.ingested.push(IngestedLine {
                line: *line,
                bank_transaction_id: outcome.transaction.id,
                matched_as: outcome.transaction.matched_as.as_str().to_owned(),
                duplicate: outcome.duplicate,
            });
        }
        let recorded = view.ingested.iter().filter(|i| !i.duplicate).count();
        tracing::info!(
            lines = view.ingested.len(),
            recorded,
            "statement lines recorded"
        );

        let ledger_after = self
            .ledger_balance_before(account.ledger_account_id, to)
            .await?;
        view.ledger_closing_balance_after_ingest = Some(ledger_after.to_string());
        view.closing_balance_difference_after_ingest = view
            .report
            .statement_closing_balance
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
            .map(|statement| (i128::from(statement) - i128::from(ledger_after)).to_string());
        Ok(view)
    }

    /// The balance of a bank asset account from the entries effective before `end`.
    async fn ledger_balance_before(
        &self,
        ledger_account_id: uuid::Uuid,
        end: i64,
    ) -> Result<i64, BankFeedError> {
        // `as_of` counts entries effective at or before it.
        let found = self
            .store
            .account_with_balance(ledger_account_id, Some(end.saturating_sub(1)))
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "collection account's ledger account {ledger_account_id} is missing"
                ))
            })?;
        let balance = found
            .account
            .kind
            .balance(found.balance.debits_posted, found.balance.credits_posted);
        i64::try_from(balance).map_err(|_| {
            StoreError::Corrupt(format!(
                "ledger account {ledger_account_id} balance overflows"
            ))
            .into()
        })
    }
}

/// One end of the requested period, RFC 3339, as UTC micros.
fn parse_period_end(name: &str, text: &str) -> Result<i64, StatementError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_micros())
        .map_err(|_| StatementError::PeriodInvalid {
            problem: format!(
                "{name} {:?} is not an RFC 3339 time such as 2024-03-01T00:00:00+07:00",
                text.chars().take(40).collect::<String>()
            ),
        })
}
