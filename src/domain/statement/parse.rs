//! Reading a statement CSV into [`StatementLine`]s, and checking its period.

use super::*;
use crate::domain::csv_lines::{line_at, quoted, LineCounter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Column {
    Date,
    Direction,
    Amount,
    Description,
    BankReference,
    RunningBalance,
}

impl Column {
    const ALL: [Column; 6] = [
        Column::Date,
        Column::Direction,
        Column::Amount,
        Column::Description,
        Column::BankReference,
        Column::RunningBalance,
    ];

    fn name(self) -> &'static str {
        STATEMENT_COLUMNS[self as usize]
    }

    fn from_header(text: &str) -> Option<Self> {
        Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(text))
    }
}

/// Parses an uploaded statement (the exact bytes of the file) into its rows, in file order.
pub fn parse_statement(bytes: &[u8]) -> Result<Vec<StatementLine>, StatementError> {
    if bytes.len() > MAX_STATEMENT_BYTES {
        return Err(StatementError::TooManyBytes {
            line: line_at(bytes, MAX_STATEMENT_BYTES),
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| StatementError::NotUtf8 {
        line: line_at(bytes, e.valid_up_to()),
    })?;

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();

    let mut lines_of = LineCounter::new(text);
    let header = match records.next() {
        None => return Err(StatementError::Empty { line: 1 }),
        Some(record) => record.map_err(csv_error)?,
    };
    let header_line = lines_of.record(&header);
    let positions = header_positions(&header, header_line)?;

    let mut lines = Vec::new();
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = lines_of.record(&record);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if lines.len() == MAX_STATEMENT_LINES {
            return Err(StatementError::TooManyLines { line });
        }
        if record.len() != STATEMENT_COLUMNS.len() {
            return Err(StatementError::LineInvalid {
                line,
                field: "the row",
                problem: format!(
                    "has {} columns but the header has {}; put a description that contains \
                     commas in double quotes",
                    record.len(),
                    STATEMENT_COLUMNS.len()
                ),
            });
        }
        let field = |column: Column| &record[positions[column as usize]];
        lines.push(parse_row(line, field)?);
    }
    if lines.is_empty() {
        return Err(StatementError::Empty {
            line: header_line + 1,
        });
    }
    Ok(lines)
}

/// The input was checked to be UTF-8 and rows may have any length, so the reader has nothing
/// left to fail on; this is a safety net, not an expected path.
pub(super) fn csv_error(error: csv::Error) -> StatementError {
    StatementError::LineInvalid {
        line: error
            .position()
            .map_or(1, |p| usize::try_from(p.line()).unwrap_or(usize::MAX)),
        field: "the row",
        problem: "could not be read as CSV".to_owned(),
    }
}

/// For each [`Column`] (by its index), where it sits in a row.
pub(super) fn header_positions(
    header: &csv::StringRecord,
    line: usize,
) -> Result<[usize; 6], StatementError> {
    let invalid = |problem: String| StatementError::HeaderInvalid { line, problem };
    let mut positions = [usize::MAX; 6];
    for (position, name) in header.iter().enumerate() {
        let column = Column::from_header(name).ok_or_else(|| {
            invalid(format!(
                "column {} is not one of {}; the first row must be the header",
                quoted(name),
                STATEMENT_COLUMNS.join(", ")
            ))
        })?;
        if positions[column as usize] != usize::MAX {
            return Err(invalid(format!(
                "column \"{}\" appears more than once",
                column.name()
            )));
        }
        positions[column as usize] = position;
    }
    if let Some(missing) = Column::ALL
        .into_iter()
        .find(|c| positions[*c as usize] == usize::MAX)
    {
        return Err(invalid(format!(
            "column \"{}\" is missing; the header must name {}",
            missing.name(),
            STATEMENT_COLUMNS.join(", ")
        )));
    }
    Ok(positions)
}

pub(super) fn parse_row<'a>(
    line: usize,
    field: impl Fn(Column) -> &'a str,
) -> Result<StatementLine, StatementError> {
    let invalid = |column: Column, problem: String| StatementError::LineInvalid {
        line,
        field: column.name(),
        problem,
    };

    // No database stores text with NUL in it.
    if let Some(column) = Column::ALL.into_iter().find(|c| field(*c).contains('\0')) {
        return Err(invalid(column, "contains a NUL character".to_owned()));
    }
    let date = field(Column::Date);
    let (occurred_at_micros, has_time) = parse_date(date).ok_or_else(|| {
        invalid(
            Column::Date,
            format!(
                "{} is not a date such as 2024-03-01 08:30:00, 01/03/2024 08:30:00 or 01/03/2024",
                quoted(date)
            ),
        )
    })?;

    let direction_text = field(Column::Direction);
    let direction = parse_direction(direction_text).ok_or_else(|| {
        invalid(
            Column::Direction,
            format!("{} is not \"in\" or \"out\"", quoted(direction_text)),
        )
    })?;

    let amount_text = field(Column::Amount);
    let amount = match parse_dong(amount_text) {
        Ok(amount) if amount > 0 => amount,
        Ok(0) => {
            return Err(invalid(
                Column::Amount,
                format!("{} must be greater than zero", quoted(amount_text)),
            ))
        }
        Ok(_) => {
            return Err(invalid(
                Column::Amount,
                format!(
                    "{} is negative; write the amount without a sign and give \"in\" or \"out\" \
                     in the direction column",
                    quoted(amount_text)
                ),
            ))
        }
        Err(problem) => return Err(invalid(Column::Amount, problem.describe(amount_text))),
    };

    let balance_text = field(Column::RunningBalance);
    let running_balance =
        if balance_text.is_empty() {
            None
        } else {
            Some(parse_dong(balance_text).map_err(|problem| {
                invalid(Column::RunningBalance, problem.describe(balance_text))
            })?)
        };

    let reference = field(Column::BankReference);
    if reference.chars().count() > crate::domain::bank_feed::MAX_IDENTIFIER_CHARS {
        return Err(invalid(
            Column::BankReference,
            "is longer than 128 characters".to_owned(),
        ));
    }
    Ok(StatementLine {
        line,
        occurred_at_micros,
        has_time,
        direction,
        amount,
        description: field(Column::Description).to_owned(),
        bank_reference: (!reference.is_empty()).then(|| reference.to_owned()),
        running_balance,
    })
}

pub(super) fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(VIETNAM_OFFSET_SECONDS).expect("UTC+7 is a valid offset")
}

/// Parses a statement date: UTC micros and whether a time of day was given.
pub(super) fn parse_date(text: &str) -> Option<(i64, bool)> {
    let at = |utc: DateTime<Utc>| {
        (2000..=2099)
            .contains(&chrono::Datelike::year(&utc.with_timezone(&vietnam())))
            .then(|| utc.timestamp_micros())
    };
    for format in ["%Y-%m-%d", "%d/%m/%Y"] {
        if let Ok(date) = NaiveDate::parse_from_str(text, format) {
            let midnight = vietnam()
                .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
                .single()?;
            return at(midnight.to_utc()).map(|micros| (micros, false));
        }
    }
    // ISO 8601 with an offset (`Z` read as `+00:00`), with a `T` or a space, seconds optional.
    let zulu = text
        .strip_suffix(['Z', 'z'])
        .map(|rest| format!("{rest}+00:00"));
    let with_offset = zulu.as_deref().unwrap_or(text);
    const OFFSET_FORMATS: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y-%m-%d %H:%M%z",
    ];
    if let Some(time) = OFFSET_FORMATS
        .into_iter()
        .find_map(|format| DateTime::parse_from_str(with_offset, format).ok())
    {
        return at(time.to_utc()).map(|micros| (micros, true));
    }
    const LOCAL_FORMATS: [&str; 6] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%d/%m/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
    ];
    let local = LOCAL_FORMATS
        .into_iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())?;
    let time = vietnam().from_local_datetime(&local).single()?;
    at(time.to_utc()).map(|micros| (micros, true))
}

pub(super) fn parse_direction(text: &str) -> Option<Direction> {
    match text.to_ascii_lowercase().as_str() {
        "in" | "credit" | "c" => Some(Direction::In),
        "out" | "debit" | "d" => Some(Direction::Out),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DongProblem {
    Missing,
    NotWhole,
    TooLarge,
}

impl DongProblem {
    fn describe(self, text: &str) -> String {
        match self {
            DongProblem::Missing => "is empty".to_owned(),
            DongProblem::NotWhole => format!("{} is not a whole number of đồng", quoted(text)),
            DongProblem::TooLarge => format!(
                "{} is larger than {MAX_STATEMENT_AMOUNT} đồng",
                quoted(text)
            ),
        }
    }
}

/// A whole number of đồng, optionally negative (`-`), in plain digits or grouped by thousands
/// with `,` or `.`; at most [`MAX_STATEMENT_AMOUNT`] in magnitude. Zero is returned as is: the
/// caller decides whether it is allowed.
pub(super) fn parse_dong(text: &str) -> Result<i64, DongProblem> {
    if text.is_empty() {
        return Err(DongProblem::Missing);
    }
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let digits = match (unsigned.contains(','), unsigned.contains('.')) {
        (false, false) => unsigned.to_owned(),
        (true, true) => return Err(DongProblem::NotWhole),
        (comma, _) => {
            let mut groups = unsigned.split(if comma { ',' } else { '.' });
            let first = groups.next().unwrap_or_default();
            // "0.500" reads as a fraction, not as 500.
            if !all_digits(first) || first.len() > 3 || first.starts_with('0') {
                return Err(DongProblem::NotWhole);
            }
            let mut digits = first.to_owned();
            for group in groups {
                if group.len() != 3 || !all_digits(group) {
                    return Err(DongProblem::NotWhole);
                }
                digits.push_str(group);
            }
            digits
        }
    };
    if !all_digits(&digits) {
        return Err(DongProblem::NotWhole);
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 16 {
        return Err(DongProblem::TooLarge);
    }
    let magnitude: i64 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| DongProblem::TooLarge)?
    };
    if magnitude > MAX_STATEMENT_AMOUNT {
        return Err(DongProblem::TooLarge);
    }
    Ok(if negative { -magnitude } else { magnitude })
}

/// A time as staff read it: Vietnam local time, seconds precision, or only the date.
pub(super) fn vietnam_time_text(micros: i64, has_time: bool) -> String {
    let local = to_datetime(micros).with_timezone(&vietnam());
    if has_time {
        local.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d").to_string()
    }
}

/// Checks the requested statement period `[from_micros, to_micros)` (UTC micros) and that every
/// line falls inside it. A date-only line is inside when its Vietnam calendar day overlaps the
/// period. The first line outside, in file order, is reported.
pub fn check_period(
    lines: &[StatementLine],
    from_micros: i64,
    to_micros: i64,
) -> Result<(), StatementError> {
    if from_micros >= to_micros {
        return Err(StatementError::PeriodInvalid {
            problem: "must end after it starts".to_owned(),
        });
    }
    if i128::from(to_micros) - i128::from(from_micros) > i128::from(MAX_PERIOD_DAYS * DAY_MICROS) {
        return Err(StatementError::PeriodInvalid {
            problem: format!(
                "is longer than {MAX_PERIOD_DAYS} days; upload shorter periods separately"
            ),
        });
    }
    for line in lines {
        let start = line.occurred_at_micros;
        let inside = if line.has_time {
            from_micros <= start && start < to_micros
        } else {
            start < to_micros && start.saturating_add(DAY_MICROS) > from_micros
        };
        if !inside {
            return Err(StatementError::LineOutsidePeriod {
                line: line.line,
                occurred_at: vietnam_time_text(start, line.has_time),
            });
        }
    }
    Ok(())
}
