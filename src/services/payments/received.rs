//! A payee's own money, for its vendor or school: the balance, every payment received (with the
//! bank's memo) and a daily summary. Other payees answer "not found", as everywhere.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{PaymentError, PaymentService};
use crate::clock::to_datetime;
use crate::domain::statistics::period::{vietnam_day, vietnam_day_start_micros};
use crate::domain::takings::daily_takings;
use crate::services::auth::Caller;
use crate::services::ledger::PageQuery;
use crate::services::paging;
use crate::store::web::{ReceivedFilter, ReceivedPayment};

/// The longest daily summary asked for at once.
pub const MAX_SUMMARY_DAYS: u32 = 31;
const DEFAULT_SUMMARY_DAYS: u32 = 7;
/// Payments read per query while adding up a summary.
const SUMMARY_BATCH: u32 = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceivedPaymentView {
    /// The bank transaction that brought the money (the live stream's event id).
    pub bank_transaction_id: Uuid,
    /// What was credited to the payee, in đồng (a part parked in suspense is not counted).
    #[schema(example = "50000")]
    pub amount: String,
    /// The transfer memo as the bank sent it.
    pub memo: String,
    pub payment_intent_id: Option<Uuid>,
    /// The intent's reference, when the payment paid one (static QR payments have none).
    pub reference: Option<String>,
    /// When the bank booked it.
    pub occurred_at: DateTime<Utc>,
}

impl From<&ReceivedPayment> for ReceivedPaymentView {
    fn from(payment: &ReceivedPayment) -> Self {
        Self {
            bank_transaction_id: payment.bank_transaction_id,
            amount: payment.amount.to_string(),
            memo: payment.memo.clone(),
            payment_intent_id: payment.payment_intent_id,
            reference: payment.reference.clone(),
            occurred_at: to_datetime(payment.occurred_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceivedPaymentPage {
    /// Oldest first, in the order they were recorded.
    pub data: Vec<ReceivedPaymentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// How many Vietnam calendar days, today included: 1 to 31, default 7.
    #[param(minimum = 1, maximum = 31)]
    pub days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayTakingsView {
    /// A Vietnam calendar day (UTC+7).
    pub date: NaiveDate,
    #[schema(example = "850000")]
    pub total: String,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayeeSummaryView {
    pub payee_id: Uuid,
    /// The payee's ledger balance: what the program holds for it, in đồng.
    #[schema(example = "1250000")]
    pub balance: String,
    pub currency: String,
    /// Newest first, today first; days without payments count zero.
    pub days: Vec<DayTakingsView>,
}

impl PaymentService {
    pub async fn received_payments(
        &self,
        caller: &Caller,
        payee_id: Uuid,
        query: PageQuery,
    ) -> Result<ReceivedPaymentPage, PaymentError> {
        let limit = paging::limit(query.limit)?;
        let after = paging::read_id_cursor(query.cursor.as_deref())?;
        let payments = self.received_after(caller, payee_id, after, limit).await?;
        Ok(ReceivedPaymentPage {
            next_cursor: paging::next_cursor(&payments, limit, |p| {
                p.bank_transaction_id.to_string()
            }),
            data: payments.iter().map(ReceivedPaymentView::from).collect(),
        })
    }

    /// At most `limit` credits to the payee made after credit `after` (a bank transaction's
    /// id, or a suspense resolution's), oldest first: what a reconnecting live stream missed,
    /// a transfer staff took out of suspense for the payee included, when they did.
    pub async fn credits_after(
        &self,
        caller: &Caller,
        payee_id: Uuid,
        after: Uuid,
        limit: u32,
    ) -> Result<Vec<crate::store::web::Credit>, PaymentError> {
        self.visible_payee(caller, payee_id).await?;
        Ok(self
            .store
            .credits_after(Some(payee_id), after, limit)
            .await?)
    }

    /// At most `limit` payments the payee received after bank transaction `after`, oldest
    /// first, by bank transaction.
    pub async fn received_after(
        &self,
        caller: &Caller,
        payee_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ReceivedPayment>, PaymentError> {
        self.visible_payee(caller, payee_id).await?;
        Ok(self
            .store
            .received_payments(&ReceivedFilter {
                payee_id,
                after,
                occurred_from: None,
                limit,
            })
            .await?)
    }

    /// Every payment the payee received since `from` (microseconds), oldest first.
    pub async fn received_since(
        &self,
        caller: &Caller,
        payee_id: Uuid,
        from: i64,
    ) -> Result<Vec<ReceivedPayment>, PaymentError> {
        self.visible_payee(caller, payee_id).await?;
        self.all_received_since(payee_id, from).await
    }

    async fn all_received_since(
        &self,
        payee_id: Uuid,
        from: i64,
    ) -> Result<Vec<ReceivedPayment>, PaymentError> {
        let mut payments: Vec<ReceivedPayment> = Vec::new();
        loop {
            let batch = self
                .store
                .received_payments(&ReceivedFilter {
                    payee_id,
                    after: payments.last().map(|p| p.bank_transaction_id),
                    occurred_from: Some(from),
                    limit: SUMMARY_BATCH,
                })
                .await?;
            let full = batch.len() == SUMMARY_BATCH as usize;
            payments.extend(batch);
            if !full {
                return Ok(payments);
            }
        }
    }

    pub async fn payee_summary(
        &self,
        caller: &Caller,
        payee_id: Uuid,
        query: SummaryQuery,
    ) -> Result<PayeeSummaryView, PaymentError> {
        let days = query.days.unwrap_or(DEFAULT_SUMMARY_DAYS);
        if !(1..=MAX_SUMMARY_DAYS).contains(&days) {
            return Err(PaymentError::InvalidQuery(format!(
                "days must be 1 to {MAX_SUMMARY_DAYS}"
            )));
        }
        let payee = self.visible_payee(caller, payee_id).await?;
        let today = vietnam_day(self.clock.now_micros());
        let first_day = today - chrono::Days::new(u64::from(days - 1));
        let payments = self
            .all_received_since(payee_id, vietnam_day_start_micros(first_day))
            .await?;
        let account = self
            .store
            .account_with_balance(payee.ledger_account_id, None)
            .await?
            .ok_or(PaymentError::PayeeNotFound(payee_id))?;
        let balance = account.account.kind.balance(
            account.balance.debits_posted,
            account.balance.credits_posted,
        );
        Ok(PayeeSummaryView {
            payee_id,
            balance: balance.to_string(),
            currency: account.account.currency.code().to_owned(),
            days: daily_takings(
                payments.iter().map(|p| (p.occurred_at, p.amount)),
                today,
                days,
            )
            .into_iter()
            .map(|day| DayTakingsView {
                date: day.day,
                total: day.total.to_string(),
                count: day.count,
            })
            .collect(),
        })
    }
}
