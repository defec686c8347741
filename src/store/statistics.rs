//! What the adoption statistics read, in one consistent snapshot: the registry, every incoming
//! bank transaction and cash payment up to a moment with whom it may be attributed to, payees
//! and survey answers. Reads only indexed columns of those tables, never webhook payloads.

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

use super::unit_of_work::Backend;
use super::{StoreError, StoreResult};
use crate::domain::payee::PayeeKind;
use crate::domain::registry::Gender;
use crate::domain::statistics::indicators::{
    CashPayment, Consent, Facts, HamletFacts, HouseholdFacts, OnlinePayment, PayeeFacts, Payer,
    ResidentFacts, SurveyAnswer,
};
use crate::domain::statistics::period::vietnam_day;

#[async_trait]
pub trait StatisticsStore: Send + Sync {
    /// The facts as they stand, with payments and survey answers before `until` (microseconds
    /// since the epoch).
    async fn statistics_facts(&self, until: i64) -> StoreResult<Facts>;
    async fn record_personal_data_access(&self, access: &PersonalDataAccess) -> StoreResult<()>;
    /// Oldest first, after the access with this id.
    async fn personal_data_accesses(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<PersonalDataAccess>>;
}

/// One read of individual-level data: who, what, about whom, when (microseconds).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonalDataAccess {
    pub id: Uuid,
    pub actor: String,
    pub what: String,
    pub subject: Option<String>,
    pub at: i64,
}

type ResidentRow = (
    Uuid,
    Uuid,
    i32,
    Option<NaiveDate>,
    String,
    Option<NaiveDate>,
    Option<NaiveDate>,
);
type OnlineRow = (
    i64,
    i64,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
);
type CashRow = (i64, i64, i32, Uuid, Option<Uuid>, Option<Uuid>);

fn payer(resident: Option<Uuid>, household: Option<Uuid>) -> Option<Payer> {
    resident
        .map(Payer::Resident)
        .or(household.map(Payer::Household))
}

#[async_trait]
impl<T: Backend + 'static> StatisticsStore for T {
    async fn record_personal_data_access(&self, access: &PersonalDataAccess) -> StoreResult<()> {
        let sql = "INSERT INTO personal_data_access (id, actor, what, subject, at) \
                   VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool| sqlx::query(sql)
            .bind(access.id)
            .bind(&access.actor)
            .bind(&access.what)
            .bind(&access.subject)
            .bind(access.at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    async fn personal_data_accesses(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<PersonalDataAccess>> {
        // Ids are UUIDv7 from the clock, so their order is the order of the reads.
        Ok(pool_rows!(
            self,
            fetch_all,
            "SELECT id, actor, what, subject, at FROM personal_data_access \
             WHERE $1 IS NULL OR id > $1 ORDER BY id LIMIT $2",
            after,
            i64::from(limit)
        )?)
    }

    async fn statistics_facts(&self, until: i64) -> StoreResult<Facts> {
        let mut unit = self.begin_snapshot().await?;
        let hamlets: Vec<(String, String, NaiveDate, Option<NaiveDate>, Option<String>)> = tx_rows!(
            unit,
            fetch_all,
            "SELECT code, name, valid_from, valid_to, merged_into FROM hamlets"
        )?;
        let households: Vec<(Uuid, String, Option<NaiveDate>, Option<NaiveDate>)> = tx_rows!(
            unit,
            fetch_all,
            "SELECT id, hamlet_code, moved_in_on, moved_out_on FROM households"
        )?;
        let residents: Vec<ResidentRow> = tx_rows!(
            unit,
            fetch_all,
            "SELECT id, household_id, birth_year, birth_date, gender, living_since, left_on \
             FROM residents"
        )?;
        let consents: Vec<(Uuid, bool, NaiveDate)> = tx_rows!(
            unit,
            fetch_all,
            // Oldest first, so that of two decisions on one day the later recorded wins.
            "SELECT resident_id, given, effective_on FROM resident_consents \
             ORDER BY resident_id, effective_on, recorded_at, id"
        )?;
        let payees: Vec<(Uuid, String, Option<Uuid>, bool, i64)> = tx_rows!(
            unit,
            fetch_all,
            "SELECT id, kind, owner_resident_id, active, created_at FROM payees"
        )?;
        let online: Vec<OnlineRow> = tx_rows!(
            unit,
            fetch_all,
            "SELECT bt.occurred_at, bt.amount, bt.payee_id, \
                    pi.payer_resident_id, pi.payer_household_id, pa.resident_id, pa.household_id \
             FROM bank_transactions bt \
             LEFT JOIN payment_intents pi ON pi.id = bt.payment_intent_id \
             LEFT JOIN payer_accounts pa ON pa.account_hash = bt.payer_account_hash \
             WHERE bt.direction = 'in' AND bt.occurred_at < $1",
            until
        )?;
        let cash: Vec<CashRow> = tx_rows!(
            unit,
            fetch_all,
            "SELECT occurred_at, amount, payment_count, payee_id, payer_resident_id, \
                    payer_household_id \
             FROM cash_payments WHERE occurred_at < $1",
            until
        )?;
        let surveys: Vec<(Uuid, NaiveDate, bool)> = tx_rows!(
            unit,
            fetch_all,
            "SELECT resident_id, surveyed_on, used_online_payment FROM survey_responses \
             WHERE surveyed_on <= $1",
            vietnam_day(until)
        )?;
        let linked: Vec<(Uuid,)> = tx_rows!(
            unit,
            fetch_all,
            "SELECT DISTINCT resident_id FROM payer_accounts WHERE resident_id IS NOT NULL"
        )?;
        unit.rollback().await?;

        let mut consents_of: std::collections::HashMap<Uuid, Vec<Consent>> =
            std::collections::HashMap::new();
        for (resident, given, effective_on) in consents {
            consents_of.entry(resident).or_default().push(Consent {
                effective_on,
                given,
            });
        }
        Ok(Facts {
            hamlets: hamlets
                .into_iter()
                .map(
                    |(code, name, valid_from, valid_to, merged_into)| HamletFacts {
                        code,
                        name,
                        valid_from,
                        valid_to,
                        merged_into,
                    },
                )
                .collect(),
            households: households
                .into_iter()
                .map(
                    |(id, hamlet_code, moved_in_on, moved_out_on)| HouseholdFacts {
                        id,
                        hamlet_code,
                        moved_in_on,
                        moved_out_on,
                    },
                )
                .collect(),
            residents: residents
                .into_iter()
                .map(
                    |(id, household_id, birth_year, birth_date, gender, living_since, left_on)| {
                        Ok(ResidentFacts {
                            id,
                            household_id,
                            birth_year,
                            birth_date,
                            gender: Gender::parse(&gender)
                                .map_err(|_| StoreError::Corrupt(format!("gender {gender:?}")))?,
                            living_since,
                            left_on,
                            consents: consents_of.remove(&id).unwrap_or_default(),
                        })
                    },
                )
                .collect::<StoreResult<_>>()?,
            payees: payees
                .into_iter()
                .map(|(id, kind, owner_resident_id, active, created_at)| {
                    Ok(PayeeFacts {
                        id,
                        kind: PayeeKind::parse(&kind)
                            .map_err(|_| StoreError::Corrupt(format!("payee kind {kind:?}")))?,
                        owner_resident_id,
                        active,
                        created_on: vietnam_day(created_at),
                    })
                })
                .collect::<StoreResult<_>>()?,
            online: online
                .into_iter()
                .map(
                    |(at, amount, payee_id, named_r, named_h, account_r, account_h)| {
                        OnlinePayment {
                            day: vietnam_day(at),
                            amount,
                            payee_id,
                            named_payer: payer(named_r, named_h),
                            account_payer: payer(account_r, account_h),
                        }
                    },
                )
                .collect(),
            cash: cash
                .into_iter()
                .map(
                    |(at, amount, count, payee_id, resident, household)| CashPayment {
                        day: vietnam_day(at),
                        amount,
                        count: u64::try_from(count).unwrap_or(0),
                        payee_id,
                        named_payer: payer(resident, household),
                    },
                )
                .collect(),
            surveys: surveys
                .into_iter()
                .map(
                    |(resident_id, surveyed_on, used_online_payment)| SurveyAnswer {
                        resident_id,
                        surveyed_on,
                        used_online_payment,
                    },
                )
                .collect(),
            residents_with_linked_account: linked.into_iter().map(|(id,)| id).collect(),
        })
    }
}
