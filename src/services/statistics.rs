//! The commune's adoption statistics: reads the facts in one snapshot, computes the indicator
//! for each period (`domain::statistics::indicators`) and suppresses what could point at a
//! person (`domain::statistics::suppression`). Figures without suppression are individual-level
//! data: only admins get them, and each such read is written to the access log.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::paging::{self, PageError};
use super::PublicError;
use crate::clock::Clock;
use crate::domain::statistics::indicators::{
    Breakdown, Flow, Indicator, Query, Statistics, Table, UnsupportedBreakdown,
};
use crate::domain::statistics::period::{
    periods, vietnam_day, vietnam_day_start_micros, Granularity, PeriodError,
};
use crate::domain::statistics::suppression::{suppress, Cell, Sum, Visibility};
use crate::domain::user::Role;
use crate::store::statistics::PersonalDataAccess;
use crate::store::{Store, StoreError};

/// What the commune publishes with: the smallest count shown (k) and its adoption target.
#[derive(Debug, Clone, Copy)]
pub struct StatisticsSettings {
    pub min_count: u64,
    pub target_percent: u32,
}

#[derive(Clone)]
pub struct StatisticsService {
    store: Arc<dyn Store>,
    clock: Clock,
    settings: StatisticsSettings,
}

/// One request for an indicator over a range of periods.
#[derive(Debug, Clone)]
pub struct AdoptionRequest {
    pub query: Query,
    pub granularity: Granularity,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Raw figures, no suppression: individual-level data, for admins only.
    pub unsuppressed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StatisticsError {
    #[error(transparent)]
    Breakdown(#[from] UnsupportedBreakdown),
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error("figures without suppression are individual-level data; only admins may read them")]
    UnsuppressedNotAllowed,
    #[error(transparent)]
    Page(#[from] PageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PublicError for StatisticsError {
    fn status(&self) -> u16 {
        match self {
            StatisticsError::Breakdown(_)
            | StatisticsError::Period(_)
            | StatisticsError::Page(_) => 400,
            StatisticsError::UnsuppressedNotAllowed => 403,
            StatisticsError::Store(error) => error.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            StatisticsError::Breakdown(_) => "STATISTICS_BREAKDOWN_UNSUPPORTED",
            StatisticsError::Period(_) => "STATISTICS_PERIOD_INVALID",
            StatisticsError::UnsuppressedNotAllowed => "FORBIDDEN",
            StatisticsError::Page(error) => error.code(),
            StatisticsError::Store(error) => error.code(),
        }
    }
}

/// An indicator's figures for a range of periods.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdoptionReport {
    pub indicator: String,
    /// What the indicator counts, in a sentence.
    pub definition: String,
    /// numerator / denominator, in words.
    pub formula: String,
    /// True for figures the ledger observed: they count only payments it saw and could
    /// attribute, so the true share is at least this.
    pub lower_bound: bool,
    pub flow: String,
    pub by: String,
    pub period: String,
    /// The commune's target share of residents paying online, in percent.
    pub target_percent: u32,
    /// Cells counting fewer than this many people (on either side of the share) are hidden.
    pub min_count: u64,
    pub suppression: String,
    /// The registry and the payments as they stood at this moment.
    pub registry_snapshot_at: DateTime<Utc>,
    pub periods: Vec<PeriodFigures>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PeriodFigures {
    /// "2026-03", "2026-Q1", "2026" or "2025-04..2026-03".
    pub period: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub tables: Vec<TableFigures>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TableFigures {
    /// "share"; for the survey also "coverage"; for the funnel each stage's name.
    pub name: String,
    /// The rows of the breakdown, the commune total last.
    pub rows: Vec<RowFigures>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowFigures {
    /// Hamlet code, gender, age band, payee kind, `unplaced` or `total`.
    pub key: String,
    pub label: String,
    /// Absent when suppressed.
    pub numerator: Option<u64>,
    pub denominator: u64,
    /// numerator / denominator in percent, one decimal; absent when suppressed or 0 of 0.
    pub share_percent: Option<f64>,
    /// For shares of money (đồng): online amount and all amount; absent when suppressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_numerator: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_denominator: Option<i64>,
    /// `primary` (too few people), `secondary` (hidden so a primary one cannot be recomputed)
    /// or absent.
    pub suppressed: Option<String>,
    /// What to print: "37,5%", "<5" for a primary suppression, "x" for a secondary one.
    pub display: String,
}

fn describe(indicator: Indicator) -> (&'static str, &'static str, bool) {
    match indicator {
        Indicator::Survey => (
            "Share of surveyed adults (15 and over) who said they paid online in the 12 months \
             before the period's last day; each resident's latest answer in those 12 months \
             counts. The coverage table shows how many adults were surveyed.",
            "adults answering yes / adults surveyed",
            false,
        ),
        Indicator::ObservedResidents => (
            "Share of adult residents living in the commune during the period with at least one \
             online payment the ledger recorded and could attribute to them (made, received or \
             either, per `flow`). Payments from accounts nobody linked, or of residents who did \
             not consent, are not attributed, so this is a lower bound.",
            "adults with an attributed online payment in the period / adults living here",
            true,
        ),
        Indicator::ObservedHouseholds => (
            "Share of households living in the commune during the period with at least one \
             attributed online payment by the household or any of its members.",
            "households with an attributed online payment / households living here",
            true,
        ),
        Indicator::CashlessShare => (
            "Of all payments recorded in the period (online transfers into the commune's \
             collection accounts and cash recorded by payees), the share made online, by count; \
             the amounts show the same by value.",
            "online payments / all recorded payments",
            false,
        ),
        Indicator::Vendors => (
            "Market vendors with a QR code (an active vendor payee) who received at least one \
             online payment in the period.",
            "vendors paid online / vendors with a QR",
            false,
        ),
        Indicator::VendorTakings => (
            "For vendors who record their cash, the online share of their takings in the \
             period, by count and by value.",
            "online payments / online and cash payments of vendors recording cash",
            false,
        ),
        Indicator::Coverage => (
            "Of the online payments in the period, the share whose payer the ledger could \
             identify (a linked bank account or a payer named on the payment request): how \
             much of the observed indicators' ground they cover.",
            "online payments with an identified payer / online payments",
            false,
        ),
        Indicator::Funnel => (
            "For the hamlet's digital-technology team: of the adults living here, how many have \
             a linked bank account, ever paid online, paid online in the period, and paid online \
             in each of the last 3 months (regular users).",
            "adults at each stage / adults living here",
            true,
        ),
    }
}

impl StatisticsService {
    pub fn new(store: Arc<dyn Store>, clock: Clock, settings: StatisticsSettings) -> Self {
        Self {
            store,
            clock,
            settings,
        }
    }

    #[tracing::instrument(skip(self, caller), fields(indicator = request.query.indicator.as_str()))]
    pub async fn adoption(
        &self,
        caller: &Caller,
        request: &AdoptionRequest,
    ) -> Result<AdoptionReport, StatisticsError> {
        if request.unsuppressed && caller.role != Role::Admin {
            return Err(StatisticsError::UnsuppressedNotAllowed);
        }
        let ranges = periods(request.granularity, request.from, request.to)?;
        if !request
            .query
            .indicator
            .breakdowns()
            .contains(&request.query.breakdown)
        {
            return Err(UnsupportedBreakdown {
                indicator: request.query.indicator.as_str(),
                breakdown: request.query.breakdown.as_str(),
            }
            .into());
        }
        let now = self.clock.now_micros();
        let last_day = ranges.last().map_or(request.to, |p| p.last_day);
        let until = vietnam_day_start_micros(last_day.succ_opt().unwrap_or(last_day)).min(now);
        if request.unsuppressed {
            self.store
                .record_personal_data_access(&PersonalDataAccess {
                    id: self.clock.new_id(),
                    actor: caller.username.clone(),
                    what: "adoption statistics without suppression".to_owned(),
                    subject: Some(request.query.indicator.as_str().to_owned()),
                    at: now,
                })
                .await?;
        }
        let facts = self.store.statistics_facts(until).await?;
        let statistics = Statistics::new(&facts);
        let mut figures = Vec::with_capacity(ranges.len());
        for period in &ranges {
            let tables = statistics.compute(&request.query, period)?;
            figures.push(PeriodFigures {
                period: period.label.clone(),
                first_day: period.first_day,
                last_day: period.last_day,
                tables: tables
                    .iter()
                    .map(|table| self.publish(table, request.unsuppressed))
                    .collect(),
            });
        }
        let (definition, formula, lower_bound) = describe(request.query.indicator);
        tracing::info!(
            periods = figures.len(),
            today = %vietnam_day(now),
            "adoption statistics computed"
        );
        Ok(AdoptionReport {
            indicator: request.query.indicator.as_str().to_owned(),
            definition: definition.to_owned(),
            formula: formula.to_owned(),
            lower_bound,
            flow: request.query.flow.as_str().to_owned(),
            by: request.query.breakdown.as_str().to_owned(),
            period: request.granularity.as_str().to_owned(),
            target_percent: self.settings.target_percent,
            min_count: self.settings.min_count,
            suppression: if request.unsuppressed {
                "off"
            } else {
                "applied"
            }
            .to_owned(),
            registry_snapshot_at: DateTime::<Utc>::from_timestamp_micros(now).unwrap_or_default(),
            periods: figures,
        })
    }

    /// A page of the access log of individual-level data, oldest first, and the next cursor.
    pub async fn personal_data_accesses(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<PersonalDataAccess>, Option<String>), StatisticsError> {
        let limit = paging::limit(limit)?;
        let after = paging::read_cursor(cursor, |key| key.parse::<uuid::Uuid>().ok())?;
        let rows = self.store.personal_data_accesses(after, limit).await?;
        let next = paging::next_cursor(&rows, limit, |row| row.id.to_string());
        Ok((rows, next))
    }

    /// The table as it may be shown: suppressed cells lose their numerator and amounts. The
    /// survey's coverage (who was surveyed) says nothing about how anyone pays, and equals the
    /// share table's published denominators, so it is shown as it is.
    fn publish(&self, table: &Table, unsuppressed: bool) -> TableFigures {
        let cells: Vec<Cell> = table
            .rows
            .iter()
            .map(|row| Cell {
                numerator: row.numerator,
                denominator: row.denominator,
            })
            .collect();
        let visibility = if unsuppressed || table.name == "coverage" {
            vec![Visibility::Shown; cells.len()]
        } else {
            suppress_published(&cells, self.settings.min_count)
        };
        let rows = table
            .rows
            .iter()
            .zip(visibility)
            .map(|(row, visibility)| {
                let shown = visibility == Visibility::Shown;
                let share = |numerator: i128, denominator: i128| {
                    (shown && denominator > 0).then(|| {
                        let tenths = (numerator * 1000 + denominator / 2) / denominator;
                        tenths as f64 / 10.0
                    })
                };
                let share_percent = share(row.numerator.into(), row.denominator.into());
                RowFigures {
                    key: row.key.clone(),
                    label: row.label.clone(),
                    numerator: shown.then_some(row.numerator),
                    denominator: row.denominator,
                    share_percent,
                    amount_numerator: row.amount_numerator.filter(|_| shown),
                    amount_denominator: row.amount_denominator.filter(|_| shown),
                    suppressed: match visibility {
                        Visibility::Shown => None,
                        Visibility::Primary => Some("primary".to_owned()),
                        Visibility::Secondary => Some("secondary".to_owned()),
                    },
                    display: match (visibility, share_percent) {
                        (Visibility::Primary, _) => format!("<{}", self.settings.min_count),
                        (Visibility::Secondary, _) => "x".to_owned(),
                        (Visibility::Shown, Some(share)) => {
                            format!("{share:.1}%").replace('.', ",")
                        }
                        (Visibility::Shown, None) => "—".to_owned(),
                    },
                }
            })
            .collect();
        TableFigures {
            name: table.name.to_owned(),
            rows,
        }
    }
}

/// Suppression for a table of parts and their total (the last cell). An empty row (0 of 0)
/// says nothing about anyone and its numerator follows from its published denominator, so it
/// is shown and left out of the sum: were it hidden, it would pass for the second hidden cell
/// that keeps a small one from being worked out from the total.
fn suppress_published(cells: &[Cell], min_count: u64) -> Vec<Visibility> {
    let counted: Vec<usize> = (0..cells.len())
        .filter(|&i| cells[i].denominator > 0)
        .collect();
    let mut visibility = vec![Visibility::Shown; cells.len()];
    let Some((&total, parts)) = counted.split_last() else {
        return visibility;
    };
    let compact: Vec<Cell> = counted.iter().map(|&i| cells[i]).collect();
    let sums = if total == cells.len() - 1 && !parts.is_empty() {
        vec![Sum::new(parts.len(), 0..parts.len())]
    } else {
        Vec::new()
    };
    for (position, shown) in suppress(&compact, &sums, min_count).into_iter().enumerate() {
        visibility[counted[position]] = shown;
    }
    visibility
}

/// The query parameters a request names, parsed.
pub fn parse_query(
    indicator: &str,
    flow: Option<&str>,
    by: Option<&str>,
) -> Result<Query, (&'static str, String)> {
    let indicator = Indicator::parse(indicator).ok_or_else(|| {
        let known: Vec<&str> = Indicator::ALL.iter().map(|i| i.as_str()).collect();
        ("indicator", format!("must be one of {}", known.join(", ")))
    })?;
    let flow = match flow {
        None => Flow::Either,
        Some(text) => {
            Flow::parse(text).ok_or(("flow", "must be made, received or either".to_owned()))?
        }
    };
    let breakdown = match by {
        None => Breakdown::Total,
        Some(text) => Breakdown::parse(text).ok_or((
            "by",
            "must be total, hamlet, gender, age_band or payee_kind".to_owned(),
        ))?,
    };
    Ok(Query {
        indicator,
        flow,
        breakdown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::statistics::suppression::recoverable_cells;

    /// Empty rows (0 of 0) are not cover: with two of them hidden, a small row would follow
    /// from the total and the one other row.
    #[test]
    fn empty_rows_do_not_hide_a_small_one() {
        let cell = |numerator, denominator| Cell {
            numerator,
            denominator,
        };
        let cells = [
            cell(3, 400),
            cell(150, 380),
            cell(0, 0),
            cell(0, 0),
            cell(153, 780),
        ];
        let visibility = suppress_published(&cells, 5);
        assert_eq!(
            visibility,
            [
                Visibility::Primary,
                Visibility::Secondary,
                Visibility::Shown,
                Visibility::Shown,
                Visibility::Shown
            ]
        );
        // Checked against every row, the empty ones included as known zeros.
        assert!(recoverable_cells(&cells, &[Sum::new(4, 0..4)], &visibility).is_empty());
    }
}
