//! The adoption statistics against ground truth: a simulated commune plays two months through
//! the real pipeline (registry import, linked accounts, payees, payment intents naming
//! households, signed payOS/Casso/SePay deliveries, cash records, a survey import), and every
//! indicator, for every hamlet and month, must equal what a reference model computes from the
//! simulation's own record of what it did. Then the published (suppressed) figures must hide
//! every small cell and leave none recoverable from the totals.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, Months, NaiveDate};
use market_ledger::domain::statistics::suppression::{recoverable_cells, Cell, Sum, Visibility};
use market_ledger::simulation::plan::Options;
use market_ledger::simulation::truth::GroundTruth;
use market_ledger::simulation::{simulate, Driver};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Backend, TestApp};

crate::on_both_backends!(every_indicator_equals_the_ground_truth_and_suppression_holds);

/// Rows of one table: key → (numerator, denominator).
type Figures = BTreeMap<String, (u64, u64)>;

struct Reference<'a> {
    truth: &'a GroundTruth,
    hamlet_of_household: HashMap<&'a str, &'a str>,
    household_of_resident: HashMap<&'a str, &'a str>,
}

fn month_bounds(first: NaiveDate) -> (NaiveDate, NaiveDate) {
    (first, first + Months::new(1) - chrono::Days::new(1))
}

impl<'a> Reference<'a> {
    fn new(truth: &'a GroundTruth) -> Self {
        Self {
            truth,
            hamlet_of_household: truth
                .households
                .iter()
                .map(|h| (h.code.as_str(), h.hamlet.as_str()))
                .collect(),
            household_of_resident: truth
                .residents
                .iter()
                .map(|r| (r.code.as_str(), r.household.as_str()))
                .collect(),
        }
    }

    fn empty_hamlet_rows(&self) -> Figures {
        let mut rows: Figures = self
            .truth
            .hamlets
            .iter()
            .map(|h| (h.code.clone(), (0, 0)))
            .collect();
        rows.insert("total".into(), (0, 0));
        rows
    }

    fn count(rows: &mut Figures, key: &str, numerator: u64, denominator: u64) {
        let keys: &[&str] = if key == "total" {
            &["total"]
        } else {
            &[key, "total"]
        };
        for key in keys {
            let row = rows.entry((*key).to_owned()).or_insert((0, 0));
            row.0 += numerator;
            row.1 += denominator;
        }
    }

    /// Adults (15 or over at the period's end) living here at some time in the period.
    fn adults(&self, first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = &'a str> + '_ {
        self.truth
            .residents
            .iter()
            .filter(move |r| {
                last.year() - r.birth_year >= 15 && r.left_on.is_none_or(|d| d >= first)
            })
            .map(|r| r.code.as_str())
    }

    fn used_online(&self, resident: &str, first: NaiveDate, last: NaiveDate) -> bool {
        self.truth.payments.iter().any(|p| {
            p.channel == "online"
                && first <= p.day
                && p.day <= last
                && (p.counted_for_resident.as_deref() == Some(resident)
                    || p.received_by.as_deref() == Some(resident))
        })
    }

    fn hamlet_of_resident(&self, resident: &str) -> String {
        self.hamlet_of_household[self.household_of_resident[resident]].to_owned()
    }

    /// Observed residents by gender and by age band (15-24 ... 65+, birthday on 1 January when
    /// only the year is known).
    fn observed_residents_by(&self, by: &str, first: NaiveDate, last: NaiveDate) -> Figures {
        let mut rows: Figures = match by {
            "gender" => ["female", "male", "other", "unknown"].as_slice(),
            _ => ["15-24", "25-34", "35-44", "45-54", "55-64", "65+"].as_slice(),
        }
        .iter()
        .map(|key| ((*key).to_owned(), (0, 0)))
        .collect();
        let residents: HashMap<&str, &market_ledger::simulation::truth::TruthResident> = self
            .truth
            .residents
            .iter()
            .map(|r| (r.code.as_str(), r))
            .collect();
        for code in self.adults(first, last) {
            let resident = residents[code];
            let key = if by == "gender" {
                resident.gender.clone()
            } else {
                let age = last.year() - resident.birth_year;
                let band = [15, 25, 35, 45, 55, 65]
                    .iter()
                    .rposition(|from| age >= *from)
                    .expect("adults are 15 or over");
                ["15-24", "25-34", "35-44", "45-54", "55-64", "65+"][band].to_owned()
            };
            let paid = self.used_online(code, first, last);
            Self::count(&mut rows, &key, u64::from(paid), 1);
        }
        rows
    }

    fn observed_residents(&self, first: NaiveDate, last: NaiveDate) -> Figures {
        let mut rows = self.empty_hamlet_rows();
        for resident in self.adults(first, last) {
            let paid = self.used_online(resident, first, last);
            Self::count(
                &mut rows,
                &self.hamlet_of_resident(resident),
                u64::from(paid),
                1,
            );
        }
        rows
    }

    fn observed_households(&self, first: NaiveDate, last: NaiveDate) -> Figures {
        let mut paying: HashSet<&str> = HashSet::new();
        for p in &self.truth.payments {
            if p.channel != "online" || p.day < first || p.day > last {
                continue;
            }
            paying.extend(p.counted_for_household.as_deref());
            if let Some(receiver) = p.received_by.as_deref() {
                paying.insert(self.household_of_resident[receiver]);
            }
        }
        let mut rows = self.empty_hamlet_rows();
        for household in &self.truth.households {
            let paid = paying.contains(household.code.as_str());
            Self::count(&mut rows, &household.hamlet, u64::from(paid), 1);
        }
        rows
    }

    fn cashless_share(&self, first: NaiveDate, last: NaiveDate) -> Figures {
        let mut rows = self.empty_hamlet_rows();
        rows.insert("unplaced".into(), (0, 0));
        for p in &self.truth.payments {
            if p.day < first || p.day > last {
                continue;
            }
            let row = p
                .counted_for_household
                .as_deref()
                .map_or("unplaced", |h| self.hamlet_of_household[h]);
            let online = if p.channel == "online" { p.count } else { 0 };
            Self::count(&mut rows, row, online.into(), p.count.into());
        }
        rows
    }

    fn vendors(&self, first: NaiveDate, last: NaiveDate) -> Figures {
        let paid: HashSet<&str> = self
            .truth
            .payments
            .iter()
            .filter(|p| p.channel == "online" && first <= p.day && p.day <= last)
            .filter_map(|p| p.payee.as_deref())
            .collect();
        let mut rows = Figures::new();
        for vendor in self.truth.payees.iter().filter(|p| p.kind == "vendor") {
            Self::count(
                &mut rows,
                "total",
                u64::from(paid.contains(vendor.code.as_str())),
                1,
            );
        }
        rows
    }

    fn vendor_takings(&self, first: NaiveDate, last: NaiveDate) -> Figures {
        let in_period =
            |p: &&market_ledger::simulation::truth::TruthPayment| first <= p.day && p.day <= last;
        let vendors: HashSet<&str> = self
            .truth
            .payees
            .iter()
            .filter(|p| p.kind == "vendor")
            .map(|p| p.code.as_str())
            .collect();
        let recording: HashSet<&str> = self
            .truth
            .payments
            .iter()
            .filter(in_period)
            .filter(|p| p.channel == "cash")
            .filter_map(|p| p.payee.as_deref())
            .filter(|code| vendors.contains(code))
            .collect();
        let mut rows = Figures::new();
        rows.insert("total".into(), (0, 0));
        for p in self.truth.payments.iter().filter(in_period) {
            if p.payee
                .as_deref()
                .is_some_and(|code| recording.contains(code))
            {
                let online = if p.channel == "online" { p.count } else { 0 };
                Self::count(&mut rows, "total", online.into(), p.count.into());
            }
        }
        rows
    }

    fn coverage(&self, first: NaiveDate, last: NaiveDate) -> Figures {
        let mut rows = Figures::new();
        rows.insert("total".into(), (0, 0));
        for p in &self.truth.payments {
            if p.channel == "online" && first <= p.day && p.day <= last {
                Self::count(
                    &mut rows,
                    "total",
                    p.counted_for_household.is_some().into(),
                    1,
                );
            }
        }
        rows
    }

    fn survey(&self, first: NaiveDate, last: NaiveDate) -> (Figures, Figures) {
        let window = last - Months::new(12) + chrono::Days::new(1);
        let mut latest: HashMap<&str, (NaiveDate, bool)> = HashMap::new();
        for answer in &self.truth.surveys {
            if answer.day < window || answer.day > last {
                continue;
            }
            let entry = latest
                .entry(answer.resident.as_str())
                .or_insert((answer.day, answer.used_online_payment));
            if answer.day > entry.0 {
                *entry = (answer.day, answer.used_online_payment);
            }
        }
        let (mut share, mut coverage) = (self.empty_hamlet_rows(), self.empty_hamlet_rows());
        for resident in self.adults(first, last) {
            let hamlet = self.hamlet_of_resident(resident);
            let answer = latest.get(resident);
            Self::count(&mut coverage, &hamlet, answer.is_some().into(), 1);
            if let Some((_, yes)) = answer {
                Self::count(&mut share, &hamlet, (*yes).into(), 1);
            }
        }
        (share, coverage)
    }

    fn funnel(&self, first: NaiveDate, last: NaiveDate) -> BTreeMap<&'static str, Figures> {
        let linked: HashSet<&str> = self
            .truth
            .residents
            .iter()
            .filter(|r| r.linked_account)
            .map(|r| r.code.as_str())
            .collect();
        let months: Vec<(NaiveDate, NaiveDate)> = (0..3)
            .map(|back| {
                month_bounds(
                    NaiveDate::from_ymd_opt(last.year(), last.month(), 1).unwrap()
                        - Months::new(back),
                )
            })
            .collect();
        let mut stages: BTreeMap<&'static str, Figures> = BTreeMap::new();
        for resident in self.adults(first, last) {
            let hamlet = self.hamlet_of_resident(resident);
            let reached = [
                ("linked_account", linked.contains(resident)),
                (
                    "paid_online_ever",
                    self.used_online(resident, NaiveDate::MIN, last),
                ),
                (
                    "paid_online_in_period",
                    self.used_online(resident, first, last),
                ),
                (
                    "paid_online_each_of_last_3_months",
                    months
                        .iter()
                        .all(|(f, l)| self.used_online(resident, *f, *l)),
                ),
            ];
            for (stage, yes) in reached {
                let rows = stages
                    .entry(stage)
                    .or_insert_with(|| self.empty_hamlet_rows());
                Self::count(rows, &hamlet, yes.into(), 1);
            }
        }
        stages
    }
}

/// The raw figures of every table of the report's only period, by table name.
fn raw_tables(report: &Value) -> BTreeMap<String, Figures> {
    let periods = report["periods"].as_array().expect("periods");
    assert_eq!(periods.len(), 1, "{report}");
    periods[0]["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|table| {
            let rows = table["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|row| {
                    let numerator = row["numerator"].as_u64().expect("raw figures are shown");
                    let denominator = row["denominator"].as_u64().expect("denominator");
                    (
                        row["key"].as_str().unwrap().to_owned(),
                        (numerator, denominator),
                    )
                })
                .collect();
            (table["name"].as_str().unwrap().to_owned(), rows)
        })
        .collect()
}

/// Checks the published report against the raw one: small cells hidden, shown cells exact,
/// and no hidden cell recoverable from the table's sums.
fn assert_suppression_holds(published: &Value, raw: &Value, k: u64) {
    let tables = |report: &Value| report["periods"][0]["tables"].as_array().unwrap().clone();
    for (shown, exact) in tables(published).iter().zip(tables(raw)) {
        let rows = shown["rows"].as_array().unwrap();
        let exact_rows = exact["rows"].as_array().unwrap();
        let mut cells = Vec::new();
        let mut visibility = Vec::new();
        for (row, exact_row) in rows.iter().zip(exact_rows) {
            let numerator = exact_row["numerator"].as_u64().unwrap();
            let denominator = exact_row["denominator"].as_u64().unwrap();
            cells.push(Cell {
                numerator,
                denominator,
            });
            let small = numerator < k || denominator - numerator < k;
            match row["suppressed"].as_str() {
                None => {
                    // An empty row (0 of 0) tells nothing and is shown; so is the survey's
                    // coverage.
                    assert!(
                        !small || denominator == 0 || shown["name"] == "coverage",
                        "a small cell is shown: {row}"
                    );
                    assert_eq!(row["numerator"], exact_row["numerator"], "{row}");
                    visibility.push(Visibility::Shown);
                }
                Some("primary") => {
                    assert!(small, "{row}");
                    assert!(row["numerator"].is_null(), "{row}");
                    assert_eq!(row["display"], format!("<{k}"));
                    visibility.push(Visibility::Primary);
                }
                Some(_) => {
                    assert!(row["numerator"].is_null(), "{row}");
                    visibility.push(Visibility::Secondary);
                }
            }
            assert_eq!(row["denominator"], exact_row["denominator"]);
        }
        let total = cells.len() - 1;
        let sums = if total == 0 {
            vec![]
        } else {
            vec![Sum::new(total, 0..total)]
        };
        assert_eq!(
            recoverable_cells(&cells, &sums, &visibility),
            Vec::<usize>::new(),
            "{shown}"
        );
    }
}

async fn every_indicator_equals_the_ground_truth_and_suppression_holds(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let options = Options {
        seed: 7,
        households: 240,
        vendors: 12,
        schools: 3,
        first_month: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        months: 2,
    };
    let truth: GroundTruth = simulate(&Driver::new(&app.state), &options)
        .await
        .expect("the simulation plays through the service");
    assert!(truth.payments.iter().any(|p| p.channel == "online"));
    assert!(truth
        .payments
        .iter()
        .any(|p| p.counted_for_resident.is_none()));
    // Two months later, as the commune officer reads them.
    app.state.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-05-10T03:00:00Z")
            .unwrap()
            .into(),
    );
    let reference = Reference::new(&truth);
    let k = app.settings.statistics_min_count;

    for month in ["2026-03", "2026-04"] {
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").unwrap();
        let (first, last) = month_bounds(first);
        let (survey_share, survey_coverage) = reference.survey(first, last);
        let mut expected: Vec<(&str, &str, BTreeMap<String, Figures>)> = vec![
            (
                "observed_residents",
                "hamlet",
                [(
                    "share".to_owned(),
                    reference.observed_residents(first, last),
                )]
                .into(),
            ),
            (
                "observed_residents",
                "gender",
                [(
                    "share".to_owned(),
                    reference.observed_residents_by("gender", first, last),
                )]
                .into(),
            ),
            (
                "observed_residents",
                "age_band",
                [(
                    "share".to_owned(),
                    reference.observed_residents_by("age_band", first, last),
                )]
                .into(),
            ),
            (
                "observed_households",
                "hamlet",
                [(
                    "share".to_owned(),
                    reference.observed_households(first, last),
                )]
                .into(),
            ),
            (
                "cashless_share",
                "hamlet",
                [("share".to_owned(), reference.cashless_share(first, last))].into(),
            ),
            (
                "vendors",
                "total",
                [("share".to_owned(), reference.vendors(first, last))].into(),
            ),
            (
                "vendor_takings",
                "total",
                [("share".to_owned(), reference.vendor_takings(first, last))].into(),
            ),
            (
                "coverage",
                "total",
                [("share".to_owned(), reference.coverage(first, last))].into(),
            ),
            (
                "survey",
                "hamlet",
                [
                    ("share".to_owned(), survey_share),
                    ("coverage".to_owned(), survey_coverage),
                ]
                .into(),
            ),
        ];
        expected.push((
            "funnel",
            "hamlet",
            reference
                .funnel(first, last)
                .into_iter()
                .map(|(stage, rows)| (stage.to_owned(), rows))
                .collect(),
        ));
        for (indicator, by, tables) in expected {
            let path = format!(
                "/v1/statistics/adoption?indicator={indicator}&by={by}&from={month}&to={month}"
            );
            let (status, raw) = app.get(&format!("{path}&suppression=off")).await;
            assert_eq!(status, StatusCode::OK, "{raw}");
            assert_eq!(
                raw_tables(&raw),
                tables,
                "{indicator} by {by} in {month} differs from the ground truth"
            );
            let (status, published) = app.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{published}");
            assert_suppression_holds(&published, &raw, k);
        }
    }

    // Each raw read is in the access log; the suppressed ones are not.
    let (status, log) = app.get("/v1/audit/personal-data-access?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["data"].as_array().unwrap().len(), 20, "{log}");
    app.assert_verified().await;
}
