//! The adoption indicators, computed from facts the store gathered: the registry, who each
//! online or cash payment is attributed to, payees and survey answers. Pure: the same facts
//! give the same tables, which is what the simulation's ground truth is checked against.
//!
//! Who a payment counts for:
//! - the payer the payment intent names (a pupil's household) comes first, unless the bank
//!   account it came from is linked to a member of that household, who is then the payer;
//!   otherwise the resident or household the payer's bank account is linked to;
//! - a resident only while their consent to statistics linking is in force on the payment's
//!   day (the latest consent on or before that day says given); a household needs no consent,
//!   as it names nobody;
//! - a payment made by a resident also counts for their household;
//! - money received by a payee counts as received by the resident who runs it (its owner),
//!   with the same consent rule.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, Months, NaiveDate};
use uuid::Uuid;

use super::period::Period;
use crate::domain::payee::PayeeKind;
use crate::domain::registry::Gender;

/// Residents count as adults from this age at the period's last day (as Findex does).
pub const ADULT_AGE: i32 = 15;

#[derive(Debug, Clone)]
pub struct HamletFacts {
    pub code: String,
    pub name: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub merged_into: Option<String>,
}

impl HamletFacts {
    fn valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|to| day <= to)
    }
}

#[derive(Debug, Clone)]
pub struct HouseholdFacts {
    pub id: Uuid,
    pub hamlet_code: String,
    pub moved_in_on: Option<NaiveDate>,
    pub moved_out_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    pub effective_on: NaiveDate,
    pub given: bool,
}

#[derive(Debug, Clone)]
pub struct ResidentFacts {
    pub id: Uuid,
    pub household_id: Uuid,
    pub birth_year: i32,
    pub birth_date: Option<NaiveDate>,
    pub gender: Gender,
    pub living_since: Option<NaiveDate>,
    pub left_on: Option<NaiveDate>,
    /// Consent history in the order it was recorded: of two decisions on one day, the later
    /// recorded is in force.
    pub consents: Vec<Consent>,
}

impl ResidentFacts {
    /// Whole years of age on `day`; with only a birth year, the birthday is taken as 1 January.
    pub fn age_on(&self, day: NaiveDate) -> i32 {
        match self.birth_date {
            Some(born) => {
                let had_birthday = (day.month(), day.day()) >= (born.month(), born.day());
                day.year() - born.year() - i32::from(!had_birthday)
            }
            None => day.year() - self.birth_year,
        }
    }

    fn consented_on(&self, day: NaiveDate) -> bool {
        self.consents
            .iter()
            .filter(|consent| consent.effective_on <= day)
            .max_by_key(|consent| consent.effective_on)
            .is_some_and(|consent| consent.given)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Payer {
    Resident(Uuid),
    Household(Uuid),
}

/// Money that arrived in a commune collection account.
#[derive(Debug, Clone)]
pub struct OnlinePayment {
    pub day: NaiveDate,
    pub amount: i64,
    /// The payee credited; `None` while the money waits in suspense.
    pub payee_id: Option<Uuid>,
    /// The payer the payment intent named.
    pub named_payer: Option<Payer>,
    /// Whom the payer's bank account is linked to.
    pub account_payer: Option<Payer>,
}

/// Cash a payee recorded: one payment, or `count` payments as one total.
#[derive(Debug, Clone)]
pub struct CashPayment {
    pub day: NaiveDate,
    pub amount: i64,
    pub count: u64,
    pub payee_id: Uuid,
    pub named_payer: Option<Payer>,
}

#[derive(Debug, Clone)]
pub struct PayeeFacts {
    pub id: Uuid,
    pub kind: PayeeKind,
    pub owner_resident_id: Option<Uuid>,
    /// An active payee shows a QR code; onboarding gives every payee one.
    pub active: bool,
    pub created_on: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct SurveyAnswer {
    pub resident_id: Uuid,
    pub surveyed_on: NaiveDate,
    pub used_online_payment: bool,
}

/// Everything the indicators read.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub hamlets: Vec<HamletFacts>,
    pub households: Vec<HouseholdFacts>,
    pub residents: Vec<ResidentFacts>,
    pub payees: Vec<PayeeFacts>,
    pub online: Vec<OnlinePayment>,
    pub cash: Vec<CashPayment>,
    pub surveys: Vec<SurveyAnswer>,
    /// Residents with at least one bank account linked to them.
    pub residents_with_linked_account: Vec<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indicator {
    /// A: share of surveyed adults who said they paid online in the last 12 months.
    Survey,
    /// B: share of adult residents with an online payment in the period.
    ObservedResidents,
    /// B for households: share of households with an online payment in the period.
    ObservedHouseholds,
    /// C: online share of all recorded payments (by count, and by value beside it).
    CashlessShare,
    /// D: vendors with a QR that received at least one online payment in the period.
    Vendors,
    /// D: online share of the takings of vendors who record their cash.
    VendorTakings,
    /// Of the online payments in the period, those with an identified payer.
    Coverage,
    /// Per hamlet: residents, with a linked account, paid online ever, in the period, in each
    /// of the last 3 months.
    Funnel,
}

impl Indicator {
    pub const ALL: [Indicator; 8] = [
        Indicator::Survey,
        Indicator::ObservedResidents,
        Indicator::ObservedHouseholds,
        Indicator::CashlessShare,
        Indicator::Vendors,
        Indicator::VendorTakings,
        Indicator::Coverage,
        Indicator::Funnel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::Survey => "survey",
            Indicator::ObservedResidents => "observed_residents",
            Indicator::ObservedHouseholds => "observed_households",
            Indicator::CashlessShare => "cashless_share",
            Indicator::Vendors => "vendors",
            Indicator::VendorTakings => "vendor_takings",
            Indicator::Coverage => "coverage",
            Indicator::Funnel => "funnel",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Indicator::ALL.into_iter().find(|i| i.as_str() == text)
    }

    /// The breakdowns the indicator can be split by, besides the commune total.
    pub fn breakdowns(self) -> &'static [Breakdown] {
        match self {
            Indicator::Survey | Indicator::ObservedResidents => &[
                Breakdown::Total,
                Breakdown::Hamlet,
                Breakdown::Gender,
                Breakdown::AgeBand,
            ],
            Indicator::ObservedHouseholds | Indicator::Funnel => {
                &[Breakdown::Total, Breakdown::Hamlet]
            }
            Indicator::CashlessShare => {
                &[Breakdown::Total, Breakdown::Hamlet, Breakdown::PayeeKind]
            }
            Indicator::Vendors | Indicator::VendorTakings | Indicator::Coverage => {
                &[Breakdown::Total]
            }
        }
    }
}

/// Payments a resident made, received, or either (Findex counts both as using online payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Made,
    Received,
    Either,
}

impl Flow {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "made" => Some(Flow::Made),
            "received" => Some(Flow::Received),
            "either" => Some(Flow::Either),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Made => "made",
            Flow::Received => "received",
            Flow::Either => "either",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakdown {
    Total,
    Hamlet,
    Gender,
    AgeBand,
    PayeeKind,
}

impl Breakdown {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "total" => Some(Breakdown::Total),
            "hamlet" => Some(Breakdown::Hamlet),
            "gender" => Some(Breakdown::Gender),
            "age_band" => Some(Breakdown::AgeBand),
            "payee_kind" => Some(Breakdown::PayeeKind),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Breakdown::Total => "total",
            Breakdown::Hamlet => "hamlet",
            Breakdown::Gender => "gender",
            Breakdown::AgeBand => "age_band",
            Breakdown::PayeeKind => "payee_kind",
        }
    }
}

/// Age bands of the breakdown: lower bounds, the last open-ended.
pub const AGE_BANDS: [(i32, &str); 6] = [
    (15, "15-24"),
    (25, "25-34"),
    (35, "35-44"),
    (45, "45-54"),
    (55, "55-64"),
    (65, "65+"),
];

/// The key of the commune-total row; also the key of the row for people or payments a
/// breakdown cannot place (a payment with no identified payer, by hamlet).
pub const TOTAL: &str = "total";
pub const UNPLACED: &str = "unplaced";

/// One line of a table: `numerator` of `denominator`, and for shares of money the amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub label: String,
    pub numerator: u64,
    pub denominator: u64,
    pub amount_numerator: Option<i64>,
    pub amount_denominator: Option<i64>,
}

/// Rows whose numerators (and denominators) sum to the last row, the commune total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// What the table counts, when an indicator has several ("share", "coverage", a funnel
    /// stage).
    pub name: &'static str,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub indicator: Indicator,
    pub flow: Flow,
    pub breakdown: Breakdown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("indicator {indicator} cannot be broken down by {breakdown}")]
pub struct UnsupportedBreakdown {
    pub indicator: &'static str,
    pub breakdown: &'static str,
}

/// The facts indexed once, for any number of periods.
pub struct Statistics<'a> {
    facts: &'a Facts,
    hamlets: HashMap<&'a str, &'a HamletFacts>,
    households: HashMap<Uuid, &'a HouseholdFacts>,
    residents: HashMap<Uuid, &'a ResidentFacts>,
    payees: HashMap<Uuid, &'a PayeeFacts>,
    /// Sorted days each resident made / received an attributed online payment.
    made_days: HashMap<Uuid, Vec<NaiveDate>>,
    received_days: HashMap<Uuid, Vec<NaiveDate>>,
    /// Sorted days each household made an attributed online payment (itself or a member).
    household_days: HashMap<Uuid, Vec<NaiveDate>>,
    linked: HashSet<Uuid>,
}

impl<'a> Statistics<'a> {
    pub fn new(facts: &'a Facts) -> Self {
        let residents: HashMap<Uuid, &ResidentFacts> =
            facts.residents.iter().map(|r| (r.id, r)).collect();
        let payees: HashMap<Uuid, &PayeeFacts> = facts.payees.iter().map(|p| (p.id, p)).collect();
        let mut made_days: HashMap<Uuid, Vec<NaiveDate>> = HashMap::new();
        let mut received_days: HashMap<Uuid, Vec<NaiveDate>> = HashMap::new();
        let mut household_days: HashMap<Uuid, Vec<NaiveDate>> = HashMap::new();
        for payment in &facts.online {
            let attributed = payment.attributed(&residents);
            if let Some(resident) = attributed.resident {
                made_days.entry(resident).or_default().push(payment.day);
            }
            if let Some(household) = attributed.household {
                household_days
                    .entry(household)
                    .or_default()
                    .push(payment.day);
            }
            let owner = payment
                .payee_id
                .and_then(|id| payees.get(&id))
                .and_then(|payee| payee.owner_resident_id);
            if let Some(owner) = owner {
                if residents
                    .get(&owner)
                    .is_some_and(|r| r.consented_on(payment.day))
                {
                    received_days.entry(owner).or_default().push(payment.day);
                }
            }
        }
        for days in made_days
            .values_mut()
            .chain(received_days.values_mut())
            .chain(household_days.values_mut())
        {
            days.sort_unstable();
        }
        Self {
            facts,
            hamlets: facts.hamlets.iter().map(|h| (h.code.as_str(), h)).collect(),
            households: facts.households.iter().map(|h| (h.id, h)).collect(),
            residents,
            payees,
            made_days,
            received_days,
            household_days,
            linked: facts
                .residents_with_linked_account
                .iter()
                .copied()
                .collect(),
        }
    }

    /// The indicator's tables for one period.
    pub fn compute(
        &self,
        query: &Query,
        period: &Period,
    ) -> Result<Vec<Table>, UnsupportedBreakdown> {
        if !query.indicator.breakdowns().contains(&query.breakdown) {
            return Err(UnsupportedBreakdown {
                indicator: query.indicator.as_str(),
                breakdown: query.breakdown.as_str(),
            });
        }
        let tables = match query.indicator {
            Indicator::Survey => self.survey(query, period),
            Indicator::ObservedResidents => vec![self.observed_residents(query, period)],
            Indicator::ObservedHouseholds => vec![self.observed_households(query, period)],
            Indicator::CashlessShare => vec![self.cashless_share(query.breakdown, period, None)],
            Indicator::Vendors => vec![self.vendors(period)],
            Indicator::VendorTakings => {
                let recording_cash: HashSet<Uuid> = self
                    .facts
                    .cash
                    .iter()
                    .filter(|cash| period.contains(cash.day))
                    .filter(|cash| {
                        self.payees
                            .get(&cash.payee_id)
                            .is_some_and(|p| p.kind == PayeeKind::Vendor)
                    })
                    .map(|cash| cash.payee_id)
                    .collect();
                vec![self.cashless_share(Breakdown::Total, period, Some(&recording_cash))]
            }
            Indicator::Coverage => vec![self.coverage(period)],
            Indicator::Funnel => self.funnel(query, period),
        };
        debug_assert!(tables.iter().all(rows_sum_to_total));
        Ok(tables)
    }

    /// Adults living in the commune at some time in the period, with the key of the row they
    /// fall in.
    fn adults<'s>(
        &'s self,
        breakdown: Breakdown,
        period: &'s Period,
    ) -> impl Iterator<Item = (&'s ResidentFacts, (String, String))> + 's {
        self.facts.residents.iter().filter_map(move |resident| {
            let household = self.households.get(&resident.household_id)?;
            let lived_here = resident.living_since.is_none_or(|d| d <= period.last_day)
                && resident.left_on.is_none_or(|d| d >= period.first_day)
                && household_present(household, period);
            if !lived_here || resident.age_on(period.last_day) < ADULT_AGE {
                return None;
            }
            let row = match breakdown {
                Breakdown::Hamlet => self.hamlet_row(&household.hamlet_code, period),
                Breakdown::Gender => (
                    resident.gender.as_str().to_owned(),
                    gender_label(resident.gender).to_owned(),
                ),
                Breakdown::AgeBand => {
                    let age = resident.age_on(period.last_day);
                    let (_, band) = AGE_BANDS
                        .iter()
                        .rev()
                        .find(|(from, _)| age >= *from)
                        .expect("adults are at least the first band's age");
                    ((*band).to_owned(), (*band).to_owned())
                }
                Breakdown::Total | Breakdown::PayeeKind => total_row(),
            };
            Some((resident, row))
        })
    }

    /// The hamlet a household's hamlet had become by the period's last day, following merges;
    /// a hamlet closed without a successor keeps its own row.
    fn hamlet_row(&self, code: &str, period: &Period) -> (String, String) {
        let mut hamlet = match self.hamlets.get(code) {
            Some(hamlet) => *hamlet,
            None => return unplaced_row(),
        };
        // A merge chain is finite; the bound guards against a cycle in bad data.
        for _ in 0..self.hamlets.len() {
            if hamlet.valid_on(period.last_day) {
                break;
            }
            match hamlet
                .merged_into
                .as_deref()
                .and_then(|next| self.hamlets.get(next))
            {
                Some(next) if hamlet.valid_to.is_some_and(|to| to < period.last_day) => {
                    hamlet = next
                }
                _ => break,
            }
        }
        (hamlet.code.clone(), hamlet.name.clone())
    }

    /// Every row a breakdown has in the period, so empty ones show (suppressed) rather than
    /// vanish: the hamlets valid on the period's last day, each gender, each age band.
    fn fixed_rows(&self, breakdown: Breakdown, period: &Period) -> Vec<(String, String)> {
        match breakdown {
            Breakdown::Hamlet => {
                let mut hamlets: Vec<&HamletFacts> = self
                    .facts
                    .hamlets
                    .iter()
                    .filter(|h| h.valid_on(period.last_day))
                    .collect();
                hamlets.sort_by(|a, b| a.code.cmp(&b.code));
                hamlets
                    .into_iter()
                    .map(|h| (h.code.clone(), h.name.clone()))
                    .collect()
            }
            Breakdown::Gender => Gender::ALL
                .iter()
                .map(|g| (g.as_str().to_owned(), gender_label(*g).to_owned()))
                .collect(),
            Breakdown::AgeBand => AGE_BANDS
                .iter()
                .map(|(_, band)| ((*band).to_owned(), (*band).to_owned()))
                .collect(),
            Breakdown::PayeeKind => PayeeKind::ALL
                .iter()
                .map(|k| (k.as_str().to_owned(), payee_kind_label(*k).to_owned()))
                .collect(),
            Breakdown::Total => Vec::new(),
        }
    }

    fn used_online(&self, resident: Uuid, flow: Flow, first: NaiveDate, last: NaiveDate) -> bool {
        let within =
            |days: Option<&Vec<NaiveDate>>| days.is_some_and(|d| any_within(d, first, last));
        match flow {
            Flow::Made => within(self.made_days.get(&resident)),
            Flow::Received => within(self.received_days.get(&resident)),
            Flow::Either => {
                within(self.made_days.get(&resident)) || within(self.received_days.get(&resident))
            }
        }
    }

    fn observed_residents(&self, query: &Query, period: &Period) -> Table {
        let mut table = Tally::new(self.fixed_rows(query.breakdown, period));
        for (resident, row) in self.adults(query.breakdown, period) {
            let paid = self.used_online(resident.id, query.flow, period.first_day, period.last_day);
            table.count(row, paid);
        }
        table.finish("share")
    }

    fn survey(&self, query: &Query, period: &Period) -> Vec<Table> {
        // Each resident's latest answer in the 12 months ending at the period's last day.
        let window_start = period.last_day - Months::new(12) + chrono::Days::new(1);
        let mut latest: HashMap<Uuid, &SurveyAnswer> = HashMap::new();
        for answer in &self.facts.surveys {
            if answer.surveyed_on < window_start || answer.surveyed_on > period.last_day {
                continue;
            }
            let entry = latest.entry(answer.resident_id).or_insert(answer);
            if answer.surveyed_on > entry.surveyed_on {
                *entry = answer;
            }
        }
        let rows = self.fixed_rows(query.breakdown, period);
        let mut share = Tally::new(rows.clone());
        let mut coverage = Tally::new(rows);
        for (resident, row) in self.adults(query.breakdown, period) {
            let answer = latest.get(&resident.id);
            coverage.count(row.clone(), answer.is_some());
            if let Some(answer) = answer {
                share.count(row, answer.used_online_payment);
            }
        }
        vec![share.finish("share"), coverage.finish("coverage")]
    }

    fn observed_households(&self, query: &Query, period: &Period) -> Table {
        let mut table = Tally::new(self.fixed_rows(query.breakdown, period));
        let mut receiving_households: HashMap<Uuid, bool> = HashMap::new();
        if query.flow != Flow::Made {
            for resident in &self.facts.residents {
                if self.used_online(
                    resident.id,
                    Flow::Received,
                    period.first_day,
                    period.last_day,
                ) {
                    receiving_households.insert(resident.household_id, true);
                }
            }
        }
        for household in &self.facts.households {
            if !household_present(household, period) {
                continue;
            }
            let made = query.flow != Flow::Received
                && self
                    .household_days
                    .get(&household.id)
                    .is_some_and(|d| any_within(d, period.first_day, period.last_day));
            let received = receiving_households.contains_key(&household.id);
            let row = match query.breakdown {
                Breakdown::Hamlet => self.hamlet_row(&household.hamlet_code, period),
                _ => total_row(),
            };
            table.count(row, made || received);
        }
        table.finish("share")
    }

    /// Online share of recorded payments; `only_payees` limits it to some payees' takings.
    fn cashless_share(
        &self,
        breakdown: Breakdown,
        period: &Period,
        only_payees: Option<&HashSet<Uuid>>,
    ) -> Table {
        let included = |payee: Option<Uuid>| match only_payees {
            Some(only) => payee.is_some_and(|p| only.contains(&p)),
            None => true,
        };
        let mut rows = self.fixed_rows(breakdown, period);
        if breakdown != Breakdown::Total {
            rows.push(unplaced_row());
        }
        let mut table = Tally::new(rows);
        let row_of = |payee: Option<Uuid>, household: Option<Uuid>| match breakdown {
            Breakdown::Hamlet => match household.and_then(|h| self.households.get(&h)) {
                Some(household) => self.hamlet_row(&household.hamlet_code, period),
                None => unplaced_row(),
            },
            Breakdown::PayeeKind => match payee.and_then(|p| self.payees.get(&p)) {
                Some(payee) => (
                    payee.kind.as_str().to_owned(),
                    payee_kind_label(payee.kind).to_owned(),
                ),
                None => unplaced_row(),
            },
            _ => total_row(),
        };
        for payment in &self.facts.online {
            if period.contains(payment.day) && included(payment.payee_id) {
                let household = payment.attributed(&self.residents).household;
                let row = row_of(payment.payee_id, household);
                table.add_money(row, 1, payment.amount, true);
            }
        }
        for cash in &self.facts.cash {
            if period.contains(cash.day) && included(Some(cash.payee_id)) {
                let household = attribute(&self.residents, cash.named_payer, cash.day).household;
                let row = row_of(Some(cash.payee_id), household);
                table.add_money(row, cash.count, cash.amount, false);
            }
        }
        table.finish("share")
    }

    fn vendors(&self, period: &Period) -> Table {
        let mut paid: HashSet<Uuid> = HashSet::new();
        for payment in &self.facts.online {
            if let Some(payee) = payment.payee_id.filter(|_| period.contains(payment.day)) {
                paid.insert(payee);
            }
        }
        let mut table = Tally::new(Vec::new());
        for payee in &self.facts.payees {
            if payee.kind == PayeeKind::Vendor
                && payee.active
                && payee.created_on <= period.last_day
            {
                table.count(total_row(), paid.contains(&payee.id));
            }
        }
        table.finish("share")
    }

    fn coverage(&self, period: &Period) -> Table {
        let mut table = Tally::new(Vec::new());
        for payment in &self.facts.online {
            if period.contains(payment.day) {
                let attributed = payment.attributed(&self.residents);
                table.count(total_row(), attributed.household.is_some());
            }
        }
        table.finish("share")
    }

    fn funnel(&self, query: &Query, period: &Period) -> Vec<Table> {
        let rows = self.fixed_rows(query.breakdown, period);
        let month_start = |months_back: u32| {
            let last_month = Period::month_of(period.last_day);
            last_month.first_day - Months::new(months_back)
        };
        let stages: [FunnelStage<'_>; 4] = [
            ("linked_account", Box::new(|id| self.linked.contains(&id))),
            (
                "paid_online_ever",
                Box::new(|id| self.used_online(id, query.flow, NaiveDate::MIN, period.last_day)),
            ),
            (
                "paid_online_in_period",
                Box::new(|id| self.used_online(id, query.flow, period.first_day, period.last_day)),
            ),
            (
                "paid_online_each_of_last_3_months",
                Box::new(|id| {
                    (0..3).all(|back| {
                        let month = Period::month_of(month_start(back));
                        self.used_online(id, query.flow, month.first_day, month.last_day)
                    })
                }),
            ),
        ];
        let adults: Vec<(&ResidentFacts, (String, String))> =
            self.adults(query.breakdown, period).collect();
        stages
            .iter()
            .map(|(name, reached)| {
                let mut table = Tally::new(rows.clone());
                for (resident, row) in &adults {
                    table.count(row.clone(), reached(resident.id));
                }
                table.finish(name)
            })
            .collect()
    }
}

/// A funnel stage: its name, and whether a resident has reached it.
type FunnelStage<'s> = (&'static str, Box<dyn Fn(Uuid) -> bool + 's>);

impl OnlinePayment {
    /// Whom the payment counts for on its day (see the module's rules).
    fn attributed(&self, residents: &HashMap<Uuid, &ResidentFacts>) -> Attributed {
        if let (Some(Payer::Household(named)), Some(Payer::Resident(member))) =
            (self.named_payer, self.account_payer)
        {
            let counted = attribute(residents, Some(Payer::Resident(member)), self.day);
            if counted.household == Some(named) {
                return counted;
            }
        }
        attribute(residents, self.named_payer.or(self.account_payer), self.day)
    }
}

struct Attributed {
    resident: Option<Uuid>,
    household: Option<Uuid>,
}

fn attribute(
    residents: &HashMap<Uuid, &ResidentFacts>,
    payer: Option<Payer>,
    day: NaiveDate,
) -> Attributed {
    match payer {
        Some(Payer::Resident(id)) => match residents.get(&id) {
            Some(resident) if resident.consented_on(day) => Attributed {
                resident: Some(id),
                household: Some(resident.household_id),
            },
            _ => Attributed {
                resident: None,
                household: None,
            },
        },
        Some(Payer::Household(id)) => Attributed {
            resident: None,
            household: Some(id),
        },
        None => Attributed {
            resident: None,
            household: None,
        },
    }
}

fn household_present(household: &HouseholdFacts, period: &Period) -> bool {
    household.moved_in_on.is_none_or(|d| d <= period.last_day)
        && household.moved_out_on.is_none_or(|d| d >= period.first_day)
}

fn any_within(sorted_days: &[NaiveDate], first: NaiveDate, last: NaiveDate) -> bool {
    let from = sorted_days.partition_point(|d| *d < first);
    sorted_days.get(from).is_some_and(|d| *d <= last)
}

fn total_row() -> (String, String) {
    (TOTAL.to_owned(), "Toàn xã".to_owned())
}

fn unplaced_row() -> (String, String) {
    (UNPLACED.to_owned(), "Chưa xác định".to_owned())
}

fn gender_label(gender: Gender) -> &'static str {
    match gender {
        Gender::Female => "Nữ",
        Gender::Male => "Nam",
        Gender::Other => "Khác",
        Gender::Unknown => "Không rõ",
    }
}

fn payee_kind_label(kind: PayeeKind) -> &'static str {
    match kind {
        PayeeKind::Vendor => "Tiểu thương",
        PayeeKind::School => "Trường học",
        PayeeKind::Cooperative => "Hợp tác xã",
    }
}

/// Counts rows in a fixed order, then appends the total.
struct Tally {
    rows: BTreeMap<String, Row>,
    order: Vec<String>,
}

impl Tally {
    fn new(fixed_rows: Vec<(String, String)>) -> Self {
        let mut tally = Self {
            rows: BTreeMap::new(),
            order: Vec::new(),
        };
        for (key, label) in fixed_rows {
            tally.row(key, label);
        }
        tally
    }

    fn row(&mut self, key: String, label: String) -> &mut Row {
        if !self.rows.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.rows.entry(key.clone()).or_insert(Row {
            key,
            label,
            numerator: 0,
            denominator: 0,
            amount_numerator: None,
            amount_denominator: None,
        })
    }

    fn count(&mut self, (key, label): (String, String), counted: bool) {
        let row = self.row(key, label);
        row.denominator += 1;
        row.numerator += u64::from(counted);
    }

    fn add_money(&mut self, (key, label): (String, String), count: u64, amount: i64, online: bool) {
        let row = self.row(key, label);
        row.denominator += count;
        let total = row.amount_denominator.get_or_insert(0);
        *total = total.saturating_add(amount);
        let online_total = row.amount_numerator.get_or_insert(0);
        if online {
            row.numerator += count;
            *online_total = online_total.saturating_add(amount);
        }
    }

    fn finish(mut self, name: &'static str) -> Table {
        let mut rows: Vec<Row> = self
            .order
            .iter()
            .filter(|key| key.as_str() != TOTAL)
            .filter_map(|key| self.rows.remove(key))
            .collect();
        let money = rows.iter().any(|r| r.amount_denominator.is_some())
            || self.rows.values().any(|r| r.amount_denominator.is_some());
        let mut total = self.rows.remove(TOTAL).unwrap_or(Row {
            key: TOTAL.to_owned(),
            label: total_row().1,
            numerator: 0,
            denominator: 0,
            amount_numerator: None,
            amount_denominator: None,
        });
        if !rows.is_empty() {
            total.numerator = rows.iter().map(|r| r.numerator).sum();
            total.denominator = rows.iter().map(|r| r.denominator).sum();
        }
        if money {
            for row in rows.iter_mut().chain(std::iter::once(&mut total)) {
                row.amount_numerator.get_or_insert(0);
                row.amount_denominator.get_or_insert(0);
            }
            if !rows.is_empty() {
                // Saturating like each row's own sums: cash is never posted, so nothing else
                // bounds what the rows add up to.
                total.amount_numerator = Some(
                    rows.iter()
                        .filter_map(|r| r.amount_numerator)
                        .fold(0, i64::saturating_add),
                );
                total.amount_denominator = Some(
                    rows.iter()
                        .filter_map(|r| r.amount_denominator)
                        .fold(0, i64::saturating_add),
                );
            }
        }
        rows.push(total);
        Table { name, rows }
    }
}

fn rows_sum_to_total(table: &Table) -> bool {
    let Some((total, parts)) = table.rows.split_last() else {
        return false;
    };
    parts.is_empty()
        || (parts.iter().map(|r| r.numerator).sum::<u64>() == total.numerator
            && parts.iter().map(|r| r.denominator).sum::<u64>() == total.denominator)
}

#[cfg(test)]
mod tests;
