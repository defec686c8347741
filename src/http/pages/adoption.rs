//! The commune staff's adoption dashboard: the share of adults paying online, by hamlet, as a
//! bar chart against the commune's target, and the monthly trend of the whole commune. The
//! charts are SVG drawn on the server by `plotters` (hamlet bars outlined, the total solid, the
//! target dashed, every value written next to its mark) so they read the same printed in black
//! and white. Its SVG backend writes text as `<text>` set in the browser's font, so nothing
//! here measures text: Vietnamese stays Unicode text, escaped by the backend.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, Months};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{page, Frame};
use crate::domain::statistics::indicators::{Breakdown, Flow, Indicator, Query};
use crate::domain::statistics::period::{vietnam_day, Granularity};
use crate::http::AppState;
use crate::services::auth::Caller;
use crate::services::statistics::{AdoptionReport, AdoptionRequest, RowFigures};

/// How many months the trend shows, this one included.
const TREND_MONTHS: u32 = 6;
/// Both charts are this many SVG units wide; the page scales them to the screen (`viewBox`,
/// width 100 %), and the stylesheet sets their text at 14 units.
const WIDTH: u32 = 320;
/// The bar chart: 100 % is this wide, leaving room for the value after the bar.
const BAR_PLOT_WIDTH: u32 = 240;
/// Above the first row: room for the target's label.
const BAR_TOP: u32 = 22;
const BAR_ROW: u32 = 44;
/// Where in its row (as a share of the row) a hamlet's name sits and its bar begins and ends.
const LABEL_AT: f64 = 0.2;
const BAR_FROM: f64 = 0.36;
const BAR_TO: f64 = 0.78;
/// The trend's plot area inside its 320 × 160.
const TREND_HEIGHT: u32 = 160;
const TREND_MARGINS: (u32, u32, u32, u32) = (18, 24, 42, 24);
/// Plotters writes `font-size` as the size given over 1.24: 14, as the stylesheet says.
const TEXT_SIZE: f64 = 14.0 * 1.24;
/// The target line: dashes this long with these gaps, in SVG units.
const DASH: (u32, u32) = (6, 3);

/// One hamlet's row (or the commune total's): a bar in the chart and a line in the table.
pub struct Bar {
    pub label: String,
    pub display: String,
    pub adults: u64,
    /// The share drawn; absent when the cell is hidden or has nobody.
    pub share: Option<f64>,
    pub total: bool,
}

/// A chart's drawing: the SVG elements `plotters` wrote inside its root `<svg>`, which the
/// template replaces by its own (responsive, titled). Hamlet names come from staff input: the
/// backend escapes every text and attribute it writes, so this is safe to insert as is.
pub struct Chart {
    pub height: u32,
    pub body: String,
}

#[derive(Template)]
#[template(path = "adoption.html")]
struct AdoptionPage<'a> {
    f: &'a Frame,
    month: String,
    bars: Vec<Bar>,
    bar_chart: Chart,
    trend_chart: Chart,
}

fn share_of(row: &RowFigures) -> Option<f64> {
    row.suppressed
        .is_none()
        .then_some(row.share_percent)
        .flatten()
}

fn bars(rows: &[RowFigures]) -> Vec<Bar> {
    rows.iter()
        .map(|row| Bar {
            label: row.label.clone(),
            display: row.display.clone(),
            adults: row.denominator,
            share: share_of(row),
            total: row.key == "total",
        })
        .collect()
}

/// One month of the trend: its label, and the commune's share and how it is written when
/// there is one to show.
pub struct TrendPoint {
    pub month: String,
    pub share: Option<(f64, String)>,
}

/// The commune total of each month, left to right.
fn trend(report: &AdoptionReport) -> Vec<TrendPoint> {
    report
        .periods
        .iter()
        .map(|period| {
            let total = period
                .tables
                .first()
                .and_then(|table| table.rows.iter().find(|row| row.key == "total"));
            TrendPoint {
                month: period.first_day.format("%m/%y").to_string(),
                share: total
                    .and_then(|row| share_of(row).map(|share| (share, row.display.clone()))),
            }
        })
        .collect()
}

type DrawError = DrawingAreaErrorKind<std::io::Error>;

fn text_style(anchor: Pos, bold: bool) -> TextStyle<'static> {
    let style = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    ("sans-serif", TEXT_SIZE)
        .into_font()
        .style(style)
        .color(&BLACK)
        .pos(anchor)
}

/// The SVG's inside: what the backend wrote between its root element's tags.
fn inside_root(svg: &str) -> String {
    let start = svg.find('>').map_or(0, |end| end + 1);
    let end = svg.rfind("</svg>").unwrap_or(svg.len());
    svg[start..end].trim().to_owned()
}

/// This month's hamlets as bars against the target: each bar from 0 % with its value written
/// after it, a hidden cell only its mark ("<5", "x"), the commune total solid, the others
/// outlined, and the target a dashed line across every row.
fn bar_chart(bars: &[Bar], target_percent: u32, target_label: &str) -> Result<Chart, DrawError> {
    let rows = bars.len() as u32;
    let height = BAR_TOP + BAR_ROW * rows + 4;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        // Rows count downwards: row i spans i..i + 1 of the y axis. The plot maps its range onto
        // its width less one unit, hence one more: 0..100 % onto 0..240.
        let chart = ChartBuilder::on(&root)
            .margin_top(BAR_TOP)
            .margin_bottom(4)
            .margin_right(WIDTH - BAR_PLOT_WIDTH - 1)
            .build_cartesian_2d(0f64..100f64, f64::from(rows.max(1))..0f64)?;
        let area = chart.plotting_area();
        let left_middle = Pos::new(HPos::Left, VPos::Center);
        for (i, bar) in bars.iter().enumerate() {
            let row = i as f64;
            area.draw(&Text::new(
                bar.label.as_str(),
                (0.0, row + LABEL_AT),
                text_style(left_middle, false),
            ))?;
            let middle = row + (BAR_FROM + BAR_TO) / 2.0;
            let value_at = match bar.share {
                Some(share) => {
                    let corners = [(0.0, row + BAR_FROM), (share, row + BAR_TO)];
                    let style = if bar.total {
                        BLACK.filled()
                    } else {
                        BLACK.stroke_width(1)
                    };
                    area.draw(&Rectangle::new(corners, style))?;
                    share
                }
                None => 0.0,
            };
            area.draw(
                &(EmptyElement::at((value_at, middle))
                    + Text::new(bar.display.clone(), (4, 0), text_style(left_middle, true))),
            )?;
        }
        let target = f64::from(target_percent);
        area.draw(&DashedPathElement::new(
            [(target, -0.1), (target, f64::from(rows))],
            DASH.0,
            DASH.1,
            BLACK.stroke_width(2),
        ))?;
        // Centred over the line, unless that would run off the left edge.
        let h_pos = if target < 15.0 {
            HPos::Left
        } else {
            HPos::Center
        };
        area.draw(
            &(EmptyElement::at((target, 0.0))
                + Text::new(
                    format!("{target_label} {target_percent}%"),
                    (0, -5),
                    text_style(Pos::new(h_pos, VPos::Bottom), false),
                )),
        )?;
        root.present()?;
    }
    Ok(Chart {
        height,
        body: inside_root(&svg),
    })
}

/// The commune total month by month: a line through the months that have a share, each
/// point written with its value, the month under it, the axis from 0 % to 100 % and the
/// target dashed across.
fn trend_chart(
    points: &[TrendPoint],
    target_percent: u32,
    target_label: &str,
) -> Result<Chart, DrawError> {
    let last = points.len().max(2) as f64 - 1.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, TREND_HEIGHT)).into_drawing_area();
        let (top, bottom, left, right) = TREND_MARGINS;
        let mut chart = ChartBuilder::on(&root)
            .margin_top(top)
            .margin_bottom(bottom)
            .margin_left(left)
            .margin_right(right)
            .build_cartesian_2d(0f64..last, 0f64..100f64)?;
        chart.draw_series([
            PathElement::new([(0.0, 0.0), (last, 0.0)], BLACK.stroke_width(1)),
            PathElement::new([(0.0, 0.0), (0.0, 100.0)], BLACK.stroke_width(1)),
        ])?;
        let left_of_axis = text_style(Pos::new(HPos::Right, VPos::Center), false);
        for percent in [0.0, 100.0] {
            chart.draw_series([EmptyElement::at((0.0, percent))
                + Text::new(format!("{percent}%"), (-4, 0), left_of_axis.clone())])?;
        }
        let target = f64::from(target_percent);
        chart.draw_series([DashedPathElement::new(
            [(0.0, target), (last, target)],
            DASH.0,
            DASH.1,
            BLACK.stroke_width(2),
        )])?;
        // At the start of the line: the latest month, at the end, has its value written.
        chart.draw_series([EmptyElement::at((0.0, target))
            + Text::new(
                format!("{target_label} {target_percent}%"),
                (4, -4),
                text_style(Pos::new(HPos::Left, VPos::Bottom), false),
            )])?;
        let shown: Vec<(f64, f64, &str)> = points
            .iter()
            .enumerate()
            .filter_map(|(i, point)| {
                let (share, display) = point.share.as_ref()?;
                Some((i as f64, *share, display.as_str()))
            })
            .collect();
        chart.draw_series(LineSeries::new(
            shown.iter().map(|&(x, y, _)| (x, y)),
            BLACK.stroke_width(2),
        ))?;
        let above = text_style(Pos::new(HPos::Center, VPos::Bottom), true);
        for &(x, y, display) in &shown {
            // An open circle: the line stops at its edge.
            chart.draw_series([
                Circle::new((x, y), 4, WHITE.filled()),
                Circle::new((x, y), 4, BLACK.stroke_width(2)),
            ])?;
            chart
                .draw_series([EmptyElement::at((x, y))
                    + Text::new(display.to_owned(), (0, -8), above.clone())])?;
        }
        let under = text_style(Pos::new(HPos::Center, VPos::Top), false);
        for (i, point) in points.iter().enumerate() {
            chart.draw_series([EmptyElement::at((i as f64, 0.0))
                + Text::new(point.month.clone(), (0, 6), under.clone())])?;
        }
        root.present()?;
    }
    Ok(Chart {
        height: TREND_HEIGHT,
        body: inside_root(&svg),
    })
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
    let frame = Frame::new(&request);
    let target_label = frame.t.adoption_target;
    let charts = bar_chart(&bars, report.target_percent, target_label).and_then(|bar_chart| {
        trend_chart(&trend(&report), report.target_percent, target_label)
            .map(|trend_chart| (bar_chart, trend_chart))
    });
    let (bar_chart, trend_chart) = match charts {
        Ok(charts) => charts,
        Err(e) => {
            tracing::error!(error = %e, "adoption charts were not drawn");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let body = AdoptionPage {
        f: &frame,
        month: this_month.format("%m/%Y").to_string(),
        bars,
        bar_chart,
        trend_chart,
    };
    page(&request, &frame, StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, share: Option<f64>, display: &str, total: bool) -> Bar {
        Bar {
            label: label.to_owned(),
            display: display.to_owned(),
            adults: 7,
            share,
            total,
        }
    }

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

    /// The `<rect>` elements of a drawing, each as its attributes.
    fn rects(svg: &str) -> Vec<&str> {
        svg.split("<rect ")
            .skip(1)
            .map(|rest| rest.split("/>").next().unwrap())
            .collect()
    }

    fn attribute<'a>(element: &'a str, name: &str) -> &'a str {
        element
            .split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in {element}"))
    }

    #[test]
    fn a_hidden_cell_keeps_its_mark_and_gets_no_share() {
        let drawn = bars(&[
            row("KC", Some(40.0), Some("primary"), "<5"),
            row("total", Some(41.7), None, "41,7%"),
        ]);
        assert_eq!(drawn[0].share, None);
        assert_eq!(drawn[0].display, "<5");
        assert_eq!(drawn[1].share, Some(41.7));
        assert!(drawn[1].total);
    }

    #[test]
    fn bars_are_as_long_as_their_share_and_hidden_cells_have_none() {
        let chart = bar_chart(
            &[
                bar("Khe Cốc", Some(50.0), "50,0%", false),
                bar("Tà Bán", None, "<5", false),
                bar("Toàn xã", Some(25.0), "25,0%", true),
            ],
            60,
            "Mục tiêu",
        )
        .unwrap();
        assert_eq!(chart.height, BAR_TOP + 3 * BAR_ROW + 4);
        assert!(!chart.body.contains("<svg"), "{}", chart.body);
        let rects = rects(&chart.body);
        assert_eq!(rects.len(), 2, "{}", chart.body);
        // 100 % is BAR_PLOT_WIDTH wide: half of it, then a quarter.
        let width = |rect: &str| attribute(rect, "width").parse::<i32>().unwrap();
        assert!((width(rects[0]) - 120).abs() <= 1, "{}", rects[0]);
        assert!((width(rects[1]) - 60).abs() <= 1, "{}", rects[1]);
        // The hamlet's bar is outlined, the total's solid: black and white only.
        assert_eq!(attribute(rects[0], "fill"), "none");
        assert_eq!(attribute(rects[0], "stroke"), "#000000");
        assert_eq!(attribute(rects[1], "fill"), "#000000");
        // The total's bar is in the third row.
        let y = |rect: &str| attribute(rect, "y").parse::<u32>().unwrap();
        assert!(y(rects[1]) > BAR_TOP + 2 * BAR_ROW, "{}", rects[1]);
        // Every value is written, the hidden one escaped; names keep their diacritics.
        for text in ["50,0%", "&lt;5", "25,0%", "Khe Cốc", "Tà Bán", "Toàn xã"] {
            assert!(
                chart.body.contains(&format!(">\n{text}\n</text>")),
                "{text}"
            );
        }
    }

    #[test]
    fn the_target_is_a_labelled_dashed_line() {
        let chart =
            bar_chart(&[bar("Toàn xã", Some(25.0), "25,0%", true)], 50, "Mục tiêu").unwrap();
        assert!(
            chart.body.contains(">\nMục tiêu 50%\n</text>"),
            "{}",
            chart.body
        );
        // Dashes: several short pieces of line at 50 % (x 120 of 240).
        let dashes = chart.body.matches("<polyline ").count();
        assert!(dashes > 3, "{}", chart.body);
        assert!(chart.body.contains("points=\"120,"), "{}", chart.body);
    }

    #[test]
    fn a_hamlet_name_cannot_write_markup_into_the_page() {
        let chart = bar_chart(
            &[bar("<script>&\"", Some(10.0), "10,0%", false)],
            50,
            "Mục tiêu",
        )
        .unwrap();
        assert!(!chart.body.contains("<script"), "{}", chart.body);
        assert!(
            chart.body.contains(">\n&lt;script&gt;&amp;&quot;\n</text>"),
            "{}",
            chart.body
        );
    }

    #[test]
    fn the_trend_joins_the_months_that_have_a_share() {
        let point = |month: &str, share: Option<f64>| TrendPoint {
            month: month.to_owned(),
            share: share.map(|share| (share, format!("{share:.1}%").replace('.', ","))),
        };
        let chart = trend_chart(
            &[
                point("01/26", Some(0.0)),
                point("02/26", None),
                point("03/26", Some(100.0)),
            ],
            50,
            "Mục tiêu",
        )
        .unwrap();
        for text in [
            "01/26",
            "02/26",
            "03/26",
            "0,0%",
            "100,0%",
            "0%",
            "100%",
            "Mục tiêu 50%",
        ] {
            assert!(
                chart.body.contains(&format!(">\n{text}\n</text>")),
                "{text}"
            );
        }
        // Two points, each an open circle (white inside, black ring), and the line between
        // them from the bottom left (0 %) to the top right (100 %) of the plot area.
        assert_eq!(chart.body.matches("<circle ").count(), 4, "{}", chart.body);
        let (top, bottom, left, right) = TREND_MARGINS;
        let line = format!(
            "points=\"{left},{} {},{top} \"",
            TREND_HEIGHT - bottom - 1,
            WIDTH - right - 1
        );
        assert!(chart.body.contains(&line), "{line}: {}", chart.body);
    }
}
