//! Reporting periods: calendar month, quarter, year, and rolling 12 months ending at a month,
//! all in Vietnam calendar days (UTC+7, no daylight saving), which is how the commune counts.

use chrono::{DateTime, Datelike, FixedOffset, Months, NaiveDate, TimeZone, Utc};

const VIETNAM_OFFSET_SECONDS: i32 = 7 * 3600;

fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(VIETNAM_OFFSET_SECONDS).expect("UTC+7 is a valid offset")
}

/// The Vietnam calendar day a moment (microseconds since the Unix epoch) falls on.
pub fn vietnam_day(at_micros: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_micros(at_micros)
        .unwrap_or_default()
        .with_timezone(&vietnam())
        .date_naive()
}

/// The Vietnam wall-clock time of a moment.
pub fn vietnam_local(at: DateTime<Utc>) -> chrono::NaiveDateTime {
    at.with_timezone(&vietnam()).naive_local()
}

/// Microseconds since the epoch at which a Vietnam calendar day begins.
pub fn vietnam_day_start_micros(day: NaiveDate) -> i64 {
    vietnam()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("a fixed offset has no gaps")
        .timestamp_micros()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Month,
    Quarter,
    Year,
    /// The 12 months ending at each month.
    Rolling12,
}

impl Granularity {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "month" => Some(Granularity::Month),
            "quarter" => Some(Granularity::Quarter),
            "year" => Some(Granularity::Year),
            "rolling12" => Some(Granularity::Rolling12),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
            Granularity::Year => "year",
            Granularity::Rolling12 => "rolling12",
        }
    }
}

/// A reporting period: its first and last day, inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// "2026-03", "2026-Q1", "2026", or "2025-04..2026-03" for a rolling 12 months.
    pub label: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
}

impl Period {
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.first_day <= day && day <= self.last_day
    }

    /// The calendar month of a day, as a period.
    pub fn month_of(day: NaiveDate) -> Period {
        let first = first_of_month(day.year(), day.month());
        Period {
            label: format!("{:04}-{:02}", day.year(), day.month()),
            first_day: first,
            last_day: last_of_month(first),
        }
    }
}

fn first_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).expect("month 1..=12 has a first day")
}

fn last_of_month(first: NaiveDate) -> NaiveDate {
    first + Months::new(1) - chrono::Days::new(1)
}

/// A month as the API names it: `YYYY-MM`.
pub fn parse_month(text: &str) -> Option<NaiveDate> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let year: i32 = year.parse().ok()?;
    let month: u32 = month.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, 1)
}

/// Most periods one request may ask for: ten years of months.
pub const MAX_PERIODS: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("`to` is before `from`")]
    Reversed,
    #[error("the range holds more than {MAX_PERIODS} periods; ask for a shorter range")]
    TooMany,
}

/// The periods of a granularity whose months run from `from` to `to` (both first days of a
/// month): every month, every quarter or year touching the range, or the rolling 12 months
/// ending at each month.
pub fn periods(
    granularity: Granularity,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Period>, PeriodError> {
    if to < from {
        return Err(PeriodError::Reversed);
    }
    let months_between = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    if months_between as usize >= MAX_PERIODS * 12 {
        return Err(PeriodError::TooMany);
    }
    let mut result: Vec<Period> = Vec::new();
    let mut month = first_of_month(from.year(), from.month());
    while month <= to {
        let period = match granularity {
            Granularity::Month => Period::month_of(month),
            Granularity::Quarter => {
                let quarter = (month.month() - 1) / 3;
                let first = first_of_month(month.year(), quarter * 3 + 1);
                Period {
                    label: format!("{}-Q{}", month.year(), quarter + 1),
                    first_day: first,
                    last_day: last_of_month(first + Months::new(2)),
                }
            }
            Granularity::Year => {
                let first = first_of_month(month.year(), 1);
                Period {
                    label: format!("{}", month.year()),
                    first_day: first,
                    last_day: last_of_month(first_of_month(month.year(), 12)),
                }
            }
            Granularity::Rolling12 => {
                let first = month - Months::new(11);
                Period {
                    label: format!(
                        "{:04}-{:02}..{:04}-{:02}",
                        first.year(),
                        first.month(),
                        month.year(),
                        month.month()
                    ),
                    first_day: first,
                    last_day: last_of_month(month),
                }
            }
        };
        if result.last() != Some(&period) {
            result.push(period);
        }
        if result.len() > MAX_PERIODS {
            return Err(PeriodError::TooMany);
        }
        month = month + Months::new(1);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn each_granularity_covers_the_range_once() {
        let months = periods(Granularity::Month, day("2026-01-01"), day("2026-03-01")).unwrap();
        assert_eq!(
            months.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(),
            ["2026-01", "2026-02", "2026-03"]
        );
        assert_eq!(months[1].last_day, day("2026-02-28"));
        let quarters = periods(Granularity::Quarter, day("2026-02-01"), day("2026-04-01")).unwrap();
        assert_eq!(quarters.len(), 2);
        assert_eq!(
            (quarters[0].first_day, quarters[0].last_day),
            (day("2026-01-01"), day("2026-03-31"))
        );
        let years = periods(Granularity::Year, day("2025-12-01"), day("2026-01-01")).unwrap();
        assert_eq!(years.len(), 2);
        let rolling =
            periods(Granularity::Rolling12, day("2026-03-01"), day("2026-03-01")).unwrap();
        assert_eq!(rolling[0].label, "2025-04..2026-03");
        assert_eq!(
            (rolling[0].first_day, rolling[0].last_day),
            (day("2025-04-01"), day("2026-03-31"))
        );
        assert_eq!(
            periods(Granularity::Month, day("2026-03-01"), day("2026-01-01")),
            Err(PeriodError::Reversed)
        );
        assert_eq!(
            periods(Granularity::Month, day("2000-01-01"), day("2026-01-01")),
            Err(PeriodError::TooMany)
        );
    }

    #[test]
    fn days_are_vietnam_days() {
        // 2026-03-31 17:00 UTC is already 1 April in Vietnam.
        let at = Utc.with_ymd_and_hms(2026, 3, 31, 17, 0, 0).unwrap();
        assert_eq!(vietnam_day(at.timestamp_micros()), day("2026-04-01"));
        assert_eq!(
            vietnam_day_start_micros(day("2026-04-01")),
            at.timestamp_micros()
        );
        assert_eq!(parse_month("2026-04"), Some(day("2026-04-01")));
        assert_eq!(parse_month("2026-4"), None);
        assert_eq!(parse_month("2026-13"), None);
    }
}
