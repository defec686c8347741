//! The ground truth of a simulation, from its own bookkeeping, never from the service: every
//! payment with who made it and whom the commune's rules let it be counted for, every
//! resident with what the registry knows of them, every survey answer.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::plan::{Memo, Plan, Provider};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroundTruth {
    pub seed: u64,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub hamlets: Vec<TruthHamlet>,
    pub households: Vec<TruthHousehold>,
    pub residents: Vec<TruthResident>,
    pub payees: Vec<TruthPayee>,
    pub payments: Vec<TruthPayment>,
    pub surveys: Vec<TruthSurvey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TruthHamlet {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TruthHousehold {
    pub code: String,
    pub hamlet: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TruthResident {
    pub code: String,
    pub household: String,
    pub birth_year: i32,
    pub gender: String,
    pub left_on: Option<NaiveDate>,
    /// Has a bank account registered with (linked by) the commune.
    pub linked_account: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TruthPayee {
    pub code: String,
    pub kind: String,
    pub owner: Option<String>,
    pub records_cash: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TruthPayment {
    pub day: NaiveDate,
    /// "online" or "cash".
    pub channel: String,
    pub amount: i64,
    /// How many payments the amount sums (a vendor's day of cash sales).
    pub count: u32,
    /// `None` for money that waits in suspense.
    pub payee: Option<String>,
    /// The resident whose account sent an online payment.
    pub sent_by: Option<String>,
    /// Whom the statistics may count it for: a consenting resident whose account is linked
    /// and reported by the feed (or who is a member of the household the charge names), and
    /// that resident's or the named household.
    pub counted_for_resident: Option<String>,
    pub counted_for_household: Option<String>,
    /// The consenting resident who runs the payee that received it.
    pub received_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TruthSurvey {
    pub resident: String,
    pub day: NaiveDate,
    pub used_online_payment: bool,
}

/// What the simulation did, as the indicators must see it.
pub fn ground_truth(plan: &Plan) -> GroundTruth {
    let resident_code = |index: usize| plan.residents[index].code.clone();
    let household_code = |index: usize| plan.households[index].code.clone();
    let received_by = |payee: usize, day: NaiveDate| {
        plan.payees[payee]
            .owner
            .filter(|&owner| plan.residents[owner].consented_on(day))
            .map(resident_code)
    };
    let mut payments = Vec::with_capacity(plan.online.len() + plan.cash.len());
    for payment in &plan.online {
        let payer = &plan.residents[payment.payer];
        // SePay reports no payer account, so nobody can be linked to what it delivers.
        let reported = plan.payees[payment.payee].provider != Provider::SePay;
        let linked = reported && payer.account.as_ref().is_some_and(|a| a.registered);
        let counted_resident = (linked && payer.consented_on(payment.day)).then_some(payment.payer);
        let (payee, named_household) = match payment.memo {
            Memo::PayeeCode => (Some(payment.payee), None),
            Memo::Charge { charge } => (Some(payment.payee), Some(plan.charges[charge].household)),
            Memo::Unmatched => (None, None),
        };
        let counted_household = match (counted_resident, named_household) {
            (Some(resident), _) => Some(plan.residents[resident].household),
            (None, named) => named,
        };
        payments.push(TruthPayment {
            day: payment.day,
            channel: "online".to_owned(),
            amount: payment.amount,
            count: 1,
            payee: payee.map(|p| plan.payees[p].code.clone()),
            sent_by: Some(resident_code(payment.payer)),
            counted_for_resident: counted_resident.map(resident_code),
            counted_for_household: counted_household.map(household_code),
            received_by: payee.and_then(|p| received_by(p, payment.day)),
        });
    }
    for cash in &plan.cash {
        payments.push(TruthPayment {
            day: cash.day,
            channel: "cash".to_owned(),
            amount: cash.amount,
            count: cash.count,
            payee: Some(plan.payees[cash.payee].code.clone()),
            sent_by: None,
            counted_for_resident: None,
            counted_for_household: cash.household.map(household_code),
            received_by: None,
        });
    }
    GroundTruth {
        seed: plan.seed,
        first_day: plan.first_day,
        last_day: plan.last_day,
        hamlets: plan
            .hamlets
            .iter()
            .map(|h| TruthHamlet {
                code: h.code.clone(),
                name: h.name.clone(),
            })
            .collect(),
        households: plan
            .households
            .iter()
            .map(|h| TruthHousehold {
                code: h.code.clone(),
                hamlet: plan.hamlets[h.hamlet].code.clone(),
            })
            .collect(),
        residents: plan
            .residents
            .iter()
            .map(|r| TruthResident {
                code: r.code.clone(),
                household: household_code(r.household),
                birth_year: r.birth_year,
                gender: r.gender.to_owned(),
                left_on: r.left_on,
                linked_account: r.account.as_ref().is_some_and(|a| a.registered),
            })
            .collect(),
        payees: plan
            .payees
            .iter()
            .map(|p| TruthPayee {
                code: p.code.clone(),
                kind: p.kind.to_owned(),
                owner: p.owner.map(resident_code),
                records_cash: p.records_cash,
            })
            .collect(),
        payments,
        surveys: plan
            .surveys
            .iter()
            .map(|s| TruthSurvey {
                resident: resident_code(s.resident),
                day: s.day,
                used_online_payment: s.used_online_payment,
            })
            .collect(),
    }
}
