//! The commune staff's adoption dashboard: the share of adults paying online, by hamlet, as a
//! bar chart against the commune's target, and the monthly trend of the whole commune. The
//! charts are SVG drawn here on the server (bars hatched, the total solid, the target dashed,
//! every value written next to its mark) so they read the same printed in black and white.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, Months};

use super::{page, Frame};
use crate::domain::statistics::indicators::{Breakdown, Flow, Indicator, Query};
use crate::domain::statistics::period::{vietnam_day, Granularity};
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::statistics::{AdoptionReport, AdoptionRequest, RowFigures};

/// How many months the trend shows, this one included.
const TREND_MONTHS: u32 = 6;
/// The bar chart's drawing: 100 % is this wide, leaving room for the value after the bar.
const BAR_SCALE: f64 = 2.4;
const BAR_ROW: u32 = 44;
const BAR_TOP: u32 = 18;
/// The trend's plot area in the SVG's own units.
const TREND_LEFT: f64 = 34.0;
const TREND_RIGHT: f64 = 306.0;
const TREND_TOP: f64 = 16.0;
const TREND_BOTTOM: f64 = 136.0;

/// One hamlet's bar (or the commune total's).
pub struct Bar {
    pub label: String,
    pub display: String,
    pub adults: u64,
    /// Top of the row, in SVG units.
    pub y: u32,
    pub width: String,
    /// Where the value is written: after the bar.
    pub value_x: String,
    /// Hidden to protect people: no bar, only the mark ("<5" or "x").
    pub suppressed: bool,
    pub total: bool,
}

/// One month of the trend.
pub struct TrendPoint {
    pub month: String,
    pub x: String,
    /// Absent when the month has no share to show.
    pub y: Option<String>,
    pub display: String,
}

#[derive(Template)]
#[template(path = "adoption.html")]
struct AdoptionPage<'a> {
    f: &'a Frame,
    month: String,
    target_percent: u32,
    bars: Vec<Bar>,
    bars_height: u32,
    target_x: String,
    trend: Vec<TrendPoint>,
    trend_line: String,
    trend_target_y: String,
}

fn share_of(row: &RowFigures) -> Option<f64> {
    row.suppressed
        .is_none()
        .then_some(row.share_percent)
        .flatten()
}

fn bars(rows: &[RowFigures]) -> Vec<Bar> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let width = share_of(row).unwrap_or(0.0) * BAR_SCALE;
            Bar {
                label: row.label.clone(),
                display: row.display.clone(),
                adults: row.denominator,
                y: BAR_TOP + BAR_ROW * i as u32,
                width: format!("{width:.1}"),
                value_x: format!("{:.1}", width + 4.0),
                suppressed: row.suppressed.is_some(),
                total: row.key == "total",
            }
        })
        .collect()
}

fn trend_y(percent: f64) -> f64 {
    TREND_BOTTOM - percent / 100.0 * (TREND_BOTTOM - TREND_TOP)
}

/// The commune total of each month, left to right.
fn trend(report: &AdoptionReport) -> Vec<TrendPoint> {
    let count = report.periods.len().max(2) - 1;
    report
        .periods
        .iter()
        .enumerate()
        .map(|(i, period)| {
            let total = period
                .tables
                .first()
                .and_then(|table| table.rows.iter().find(|row| row.key == "total"));
            let x = TREND_LEFT + (TREND_RIGHT - TREND_LEFT) * i as f64 / count as f64;
            TrendPoint {
                month: period.first_day.format("%m/%y").to_string(),
                x: format!("{x:.1}"),
                y: total
                    .and_then(share_of)
                    .map(|share| format!("{:.1}", trend_y(share))),
                display: total.map(|row| row.display.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

pub async fn adoption_page(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> HttpResponse {
    let this_month = vietnam_day(state.clock.now_micros())
        .with_day(1)
        .expect("every month has a first day");
    let adoption_request = AdoptionRequest {
        query: Query {
            indicator: Indicator::ObservedResidents,
            flow: Flow::Either,
            breakdown: Breakdown::Hamlet,
        },
        granularity: Granularity::Month,
        from: this_month - Months::new(TREND_MONTHS - 1),
        to: this_month,
        unsuppressed: false,
    };
    let report = match state
        .run(move |s| async move { s.statistics.adoption(&caller, &adoption_request).await })
        .await
    {
        Ok(report) => report,
        Err(e) => return super::refusal(&request, &e),
    };
    let latest: &[RowFigures] = report
        .periods
        .last()
        .and_then(|period| period.tables.first())
        .map_or(&[], |table| &table.rows);
    let bars = bars(latest);
    let trend = trend(&report);
    let trend_line = trend
        .iter()
        .filter_map(|point| point.y.as_ref().map(|y| format!("{},{y}", point.x)))
        .collect::<Vec<_>>()
        .join(" ");
    let frame = Frame::new(&request);
    let target = f64::from(report.target_percent);
    let body = AdoptionPage {
        f: &frame,
        month: this_month.format("%m/%Y").to_string(),
        target_percent: report.target_percent,
        bars_height: BAR_TOP + BAR_ROW * bars.len() as u32 + 4,
        bars,
        target_x: format!("{:.1}", target * BAR_SCALE),
        trend,
        trend_line,
        trend_target_y: format!("{:.1}", trend_y(target)),
    };
    page(&request, &frame, StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, share: Option<f64>, suppressed: Option<&str>, display: &str) -> RowFigures {
        RowFigures {
            key: key.to_owned(),
            label: key.to_owned(),
            numerator: None,
            denominator: 7,
            share_percent: share,
            amount_numerator: None,
            amount_denominator: None,
            suppressed: suppressed.map(str::to_owned),
            display: display.to_owned(),
        }
    }

    #[test]
    fn suppressed_rows_get_no_bar_and_the_total_is_marked() {
        let drawn = bars(&[
            row("KC", None, Some("primary"), "<5"),
            row("total", Some(41.7), None, "41,7%"),
        ]);
        assert!(drawn[0].suppressed);
        assert_eq!(drawn[0].width, "0.0");
        assert_eq!(drawn[0].display, "<5");
        assert!(drawn[1].total);
        assert_eq!(drawn[1].width, format!("{:.1}", 41.7 * BAR_SCALE));
        assert_eq!(drawn[1].y, BAR_TOP + BAR_ROW);
    }

    #[test]
    fn the_trend_runs_from_the_bottom_at_nothing_to_the_top_at_everyone() {
        assert_eq!(trend_y(0.0), TREND_BOTTOM);
        assert_eq!(trend_y(100.0), TREND_TOP);
    }
}
