//! Thin handlers for the adoption statistics and the personal-data access log.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::ApiQuery;
use super::AppState;
use crate::domain::statistics::period::{parse_month, vietnam_day, Granularity};
use crate::services::auth::Caller;
use crate::services::statistics::{parse_query, AdoptionReport, AdoptionRequest};
use crate::services::ErrorEnvelope;

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdoptionQuery {
    /// survey, observed_residents, observed_households, cashless_share, vendors,
    /// vendor_takings, coverage or funnel
    #[param(
        pattern = "^(survey|observed_residents|observed_households|cashless_share|vendors|vendor_takings|coverage|funnel)$"
    )]
    pub indicator: String,
    /// month (default), quarter, year or rolling12 (the 12 months ending at each month)
    #[param(pattern = "^(month|quarter|year|rolling12)$")]
    pub period: Option<String>,
    /// First month of the range, `YYYY-MM`; default: this month
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub from: Option<String>,
    /// Last month of the range, `YYYY-MM`; default: `from`
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub to: Option<String>,
    /// total (default), hamlet, gender, age_band or payee_kind
    #[param(pattern = "^(total|hamlet|gender|age_band|payee_kind)$")]
    pub by: Option<String>,
    /// made, received or either (default): which online payments count for a resident
    #[param(pattern = "^(made|received|either)$")]
    pub flow: Option<String>,
    /// applied (default) or off: raw figures, admins only, written to the access log
    #[param(pattern = "^(applied|off)$")]
    pub suppression: Option<String>,
}

fn invalid(field: &str, problem: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::BAD_REQUEST,
        "STATISTICS_QUERY_INVALID",
        format!("{field} {problem}"),
    )
}

fn month_param(field: &str, text: Option<&str>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    text.map(|text| parse_month(text).ok_or_else(|| invalid(field, "must be a month, YYYY-MM")))
        .transpose()
}

#[utoipa::path(get, path = "/v1/statistics/adoption", tag = "statistics", params(AdoptionQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The indicator for each period; `Accept: text/csv` gives the same rows as CSV (UTF-8 with BOM, for Excel)",
            content((AdoptionReport = "application/json"), (String = "text/csv"))),
        (status = 400, description = "STATISTICS_QUERY_INVALID, STATISTICS_PERIOD_INVALID, STATISTICS_BREAKDOWN_UNSUPPORTED", body = ErrorEnvelope)))]
pub async fn adoption(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    ApiQuery(query): ApiQuery<AdoptionQuery>,
) -> Result<HttpResponse, ApiError> {
    let parsed = parse_query(&query.indicator, query.flow.as_deref(), query.by.as_deref())
        .map_err(|(field, problem)| invalid(field, &problem))?;
    let granularity = match query.period.as_deref() {
        None => Granularity::Month,
        Some(text) => Granularity::parse(text)
            .ok_or_else(|| invalid("period", "must be month, quarter, year or rolling12"))?,
    };
    let this_month = parse_month(
        &vietnam_day(state.clock.now_micros())
            .format("%Y-%m")
            .to_string(),
    )
    .expect("a formatted month parses back");
    let from = month_param("from", query.from.as_deref())?.unwrap_or(this_month);
    let to = month_param("to", query.to.as_deref())?.unwrap_or(from);
    let unsuppressed = match query.suppression.as_deref() {
        None | Some("applied") => false,
        Some("off") => true,
        Some(_) => return Err(invalid("suppression", "must be applied or off")),
    };
    let adoption_request = AdoptionRequest {
        query: parsed,
        granularity,
        from,
        to,
        unsuppressed,
    };
    let report = state
        .run(move |s| async move { s.statistics.adoption(&caller, &adoption_request).await })
        .await?;
    let wants_csv = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if wants_csv {
        Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"adoption-{}-{}.csv\"",
                    report.indicator,
                    report
                        .periods
                        .first()
                        .map_or("", |p| p.period.as_str())
                        .replace("..", "-")
                ),
            ))
            .body(report_csv(&report)))
    } else {
        Ok(HttpResponse::Ok().json(report))
    }
}

/// Text a spreadsheet shows as text: a cell starting with `=`, `+`, `-`, `@` or a tab would
/// run as a formula when the commune officer opens the file, so it gets a leading `'`. Names
/// come from the registry import, which anyone with a spreadsheet can write.
fn inert_in_spreadsheets(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// One line per row of every table of every period. A BOM first, so Excel opens the
/// Vietnamese labels as UTF-8.
fn report_csv(report: &AdoptionReport) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "indicator",
        "period",
        "first_day",
        "last_day",
        "table",
        "key",
        "label",
        "numerator",
        "denominator",
        "share_percent",
        "amount_numerator",
        "amount_denominator",
        "suppressed",
        "display",
    ];
    let optional = |value: Option<String>| value.unwrap_or_default();
    let mut lines = vec![header.map(str::to_owned).to_vec()];
    for period in &report.periods {
        for table in &period.tables {
            for row in &table.rows {
                lines.push(vec![
                    report.indicator.clone(),
                    period.period.clone(),
                    period.first_day.to_string(),
                    period.last_day.to_string(),
                    table.name.clone(),
                    inert_in_spreadsheets(&row.key),
                    inert_in_spreadsheets(&row.label),
                    optional(row.numerator.map(|n| n.to_string())),
                    row.denominator.to_string(),
                    optional(row.share_percent.map(|s| format!("{s:.1}"))),
                    optional(row.amount_numerator.map(|n| n.to_string())),
                    optional(row.amount_denominator.map(|n| n.to_string())),
                    optional(row.suppressed.clone()),
                    row.display.clone(),
                ]);
            }
        }
    }
    for line in lines {
        writer
            .write_record(&line)
            .expect("writing to memory cannot fail");
    }
    let bytes = writer.into_inner().expect("writing to memory cannot fail");
    format!(
        "\u{FEFF}{}",
        String::from_utf8(bytes).expect("the fields are UTF-8")
    )
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessLogQuery {
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessView {
    pub id: Uuid,
    /// The username that read the data.
    pub actor: String,
    pub what: String,
    pub subject: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessPage {
    pub data: Vec<AccessView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit/personal-data-access", tag = "statistics",
    params(AccessLogQuery), security(("bearer" = [])),
    responses((status = 200, body = AccessPage), (status = 400, body = ErrorEnvelope)))]
pub async fn personal_data_access(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<AccessLogQuery>,
) -> Result<web::Json<AccessPage>, ApiError> {
    let (rows, next_cursor) = state
        .run(move |s| async move {
            s.statistics
                .personal_data_accesses(query.cursor.as_deref(), query.limit)
                .await
        })
        .await?;
    Ok(web::Json(AccessPage {
        next_cursor,
        data: rows
            .into_iter()
            .map(|row| AccessView {
                id: row.id,
                actor: row.actor,
                what: row.what,
                subject: row.subject,
                at: crate::clock::to_datetime(row.at),
            })
            .collect(),
    }))
}
