//! Bank statement import: staff upload the CSV statement of one collection account for a
//! period, and it is compared with the bank transactions our webhooks stored and with the
//! ledger. Pure: no I/O, no clock; the caller loads the stored transactions and the ledger
//! balance and passes them in.
//!
//! # Statement CSV format
//!
//! - UTF-8 text (a leading byte-order mark is ignored), comma-separated, fields with commas,
//!   quotes or line breaks inside double quotes (`"Bà Hoa, quầy chè"`; a quote inside is
//!   doubled: `""`). Spaces around a field are ignored. Rows that are entirely empty are
//!   skipped.
//! - At most [`MAX_STATEMENT_BYTES`] (4 MiB) and [`MAX_STATEMENT_LINES`] (50,000) rows after the
//!   header. Longer periods are uploaded as several statements.
//! - The first row is a header naming exactly these six columns, in any order, names
//!   case-insensitive: `date`, `direction`, `amount`, `description`, `bank_reference`,
//!   `running_balance`. A missing, repeated or unknown column is refused.
//! - `date`: when the bank booked the transaction, one of
//!   - `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` (seconds and a fraction of a second are
//!     optional), with an optional offset: `Z`, `+07:00` or `+0700`;
//!   - `DD/MM/YYYY HH:MM:SS` (seconds optional), day first as Vietnamese banks write it;
//!   - a date only: `YYYY-MM-DD` or `DD/MM/YYYY`.
//!
//!   A time without an offset, and a date only, are Vietnam time (UTC+7, no daylight saving).
//!   Years 2000 to 2099.
//! - `direction`: `in` or `out`; also `credit`/`debit` and `C`/`D`; case-insensitive. `in` is
//!   money received on the account.
//! - `amount`: a whole number of đồng greater than zero and at most 10^15
//!   ([`MAX_STATEMENT_AMOUNT`]): `150000`, or grouped by thousands as `150,000` or `150.000`
//!   (every group after the first exactly 3 digits, one kind of separator). A fraction
//!   (`150000.00`, `12,34`), a sign or a zero is refused: the sign belongs in `direction`.
//! - `description`: the transfer memo, free text, may be empty.
//! - `bank_reference`: the bank's reference for the transaction (e.g. `FT24061234567890`); may
//!   be empty.
//! - `running_balance`: the account balance after the transaction; may be empty. Same digits
//!   and grouping as `amount`, but zero and a negative balance (leading `-`) are accepted.
//!
//! Errors name the line: line 1 is the header, and a row is numbered by the text line it starts
//! on (the spreadsheet row number, unless a quoted field spans several lines).
//!
//! ```csv
//! date,direction,amount,description,bank_reference,running_balance
//! 01/03/2024 08:30:00,in,"150,000","NGUYEN VAN A chuyen tien, V042",FT24061234567890,"12,650,000"
//! 2024-03-01T09:05:00+07:00,out,2.000.000,Rut tien,,10650000
//! ```

use std::cmp::Reverse;
use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::clock::to_datetime;
use crate::domain::bank_feed::Direction;
use crate::domain::money::{Currency, MAX_AMOUNT_MINOR};
use crate::domain::text::fold_to_ascii;

/// Largest statement file accepted, in bytes (4 MiB).
pub const MAX_STATEMENT_BYTES: usize = 4 * 1024 * 1024;

/// Most rows a statement may have after its header.
pub const MAX_STATEMENT_LINES: usize = 50_000;

/// Largest `amount` (and largest `running_balance` magnitude) accepted: the most one posting
/// may carry, 10^15 đồng.
pub const MAX_STATEMENT_AMOUNT: i64 = MAX_AMOUNT_MINOR;

/// Longest statement period, in days.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// How far apart in time a statement line with a time of day and a stored transaction may be
/// and still be matched without a bank reference: 10 minutes either way. A date-only line
/// matches any transaction on the same Vietnam calendar day instead.
pub const MATCH_TIME_TOLERANCE_MICROS: i64 = 10 * 60 * 1_000_000;

/// Shortest normalized description that may pair a line with a transaction of a different
/// amount (the third matching pass); shorter memos ("CK", "chuyen") say too little.
pub const MIN_DESCRIPTION_MATCH_CHARS: usize = 8;

/// The header's column names, in the order of the documentation.
pub const STATEMENT_COLUMNS: [&str; 6] = [
    "date",
    "direction",
    "amount",
    "description",
    "bank_reference",
    "running_balance",
];

const DAY_MICROS: i64 = 86_400_000_000;
const VIETNAM_OFFSET_SECONDS: i32 = 7 * 3600;
/// Field values quoted in error messages are cut to this many characters.
const QUOTED_VALUE_MAX_CHARS: usize = 40;

/// One transaction row of an uploaded statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// The text line the row starts on (line 1 is the header).
    pub line: usize,
    /// When the bank booked it, microseconds since the Unix epoch, UTC. For a date-only row,
    /// the start of that day in Vietnam time.
    pub occurred_at_micros: i64,
    /// Whether the row gave a time of day (false: a date only).
    pub has_time: bool,
    pub direction: Direction,
    /// Đồng, > 0 and at most [`MAX_STATEMENT_AMOUNT`].
    pub amount: i64,
    pub description: String,
    /// `None` when the column is empty.
    pub bank_reference: Option<String>,
    /// The balance after this row, where the bank gives it; may be zero or negative.
    pub running_balance: Option<i64>,
}

/// Why a statement (or its period) was refused. [`StatementError::code`] is the stable code
/// for API error bodies; the message tells staff what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("line {line}: the file is not UTF-8 text; export the statement as \"CSV UTF-8\"")]
    NotUtf8 { line: usize },
    #[error(
        "line {line}: the file is larger than {MAX_STATEMENT_BYTES} bytes (4 MiB); upload \
         shorter periods separately"
    )]
    TooManyBytes { line: usize },
    #[error(
        "line {line}: the statement has more than {MAX_STATEMENT_LINES} rows; upload shorter \
         periods separately"
    )]
    TooManyLines { line: usize },
    #[error(
        "line {line}: the statement has no transactions; expected a header row followed by one \
         row per transaction"
    )]
    Empty { line: usize },
    #[error("line {line}: {problem}")]
    HeaderInvalid { line: usize, problem: String },
    #[error("line {line}: {field} {problem}")]
    LineInvalid {
        line: usize,
        /// The column name, or `the row` for a problem with the whole row.
        field: &'static str,
        problem: String,
    },
    #[error("the statement period {problem}")]
    PeriodInvalid { problem: String },
    #[error(
        "line {line}: {occurred_at} (Vietnam time) is outside the statement period; check the \
         period or remove the line"
    )]
    LineOutsidePeriod { line: usize, occurred_at: String },
}

impl StatementError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            StatementError::NotUtf8 { .. } => "STATEMENT_NOT_UTF8",
            StatementError::TooManyBytes { .. } | StatementError::TooManyLines { .. } => {
                "STATEMENT_TOO_LARGE"
            }
            StatementError::Empty { .. } => "STATEMENT_EMPTY",
            StatementError::HeaderInvalid { .. } => "STATEMENT_HEADER_INVALID",
            StatementError::LineInvalid { .. } => "STATEMENT_LINE_INVALID",
            StatementError::PeriodInvalid { .. } => "STATEMENT_PERIOD_INVALID",
            StatementError::LineOutsidePeriod { .. } => "STATEMENT_LINE_OUTSIDE_PERIOD",
        }
    }

    /// The 1-based line of the file the error is about; `None` only for
    /// [`StatementError::PeriodInvalid`], which is about the requested period, not the file.
    pub fn line(&self) -> Option<usize> {
        match self {
            StatementError::NotUtf8 { line }
            | StatementError::TooManyBytes { line }
            | StatementError::TooManyLines { line }
            | StatementError::Empty { line }
            | StatementError::HeaderInvalid { line, .. }
            | StatementError::LineInvalid { line, .. }
            | StatementError::LineOutsidePeriod { line, .. } => Some(*line),
            StatementError::PeriodInvalid { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
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

/// The 1-based line holding byte `offset` of `bytes`.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The text line each record starts on. The reader's own line count is off by one after a
/// CRLF or a blank line (a record's start offset can sit before the line break that precedes
/// it), so lines are counted here from the record's byte offset, skipping line breaks.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// Records must be passed in file order.
    fn record(&mut self, record: &csv::StringRecord) -> usize {
        let mut start = record
            .position()
            .map_or(self.offset, |p| {
                usize::try_from(p.byte()).unwrap_or(usize::MAX)
            })
            .clamp(self.offset, self.text.len());
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        // A line ends at "\n", "\r\n", or a lone "\r" (old Mac exports).
        let skipped = &self.text[self.offset..start];
        self.line += skipped
            .iter()
            .enumerate()
            .filter(|&(i, &b)| {
                b == b'\n' || (b == b'\r' && self.text.get(self.offset + i + 1) != Some(&b'\n'))
            })
            .count();
        self.offset = start;
        self.line
    }
}

/// The input was checked to be UTF-8 and rows may have any length, so the reader has nothing
/// left to fail on; this is a safety net, not an expected path.
fn csv_error(error: csv::Error) -> StatementError {
    StatementError::LineInvalid {
        line: error
            .position()
            .map_or(1, |p| usize::try_from(p.line()).unwrap_or(usize::MAX)),
        field: "the row",
        problem: "could not be read as CSV".to_owned(),
    }
}

/// For each [`Column`] (by its index), where it sits in a row.
fn header_positions(header: &csv::StringRecord, line: usize) -> Result<[usize; 6], StatementError> {
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

fn parse_row<'a>(
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

fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(VIETNAM_OFFSET_SECONDS).expect("UTC+7 is a valid offset")
}

/// Parses a statement date: UTC micros and whether a time of day was given.
fn parse_date(text: &str) -> Option<(i64, bool)> {
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

fn parse_direction(text: &str) -> Option<Direction> {
    match text.to_ascii_lowercase().as_str() {
        "in" | "credit" | "c" => Some(Direction::In),
        "out" | "debit" | "d" => Some(Direction::Out),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DongProblem {
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
fn parse_dong(text: &str) -> Result<i64, DongProblem> {
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

/// `"text"` with Rust escaping, cut so an error message never carries a whole field.
fn quoted(text: &str) -> String {
    if text.chars().count() > QUOTED_VALUE_MAX_CHARS {
        let cut: String = text.chars().take(QUOTED_VALUE_MAX_CHARS).collect();
        format!("{:?}…", cut)
    } else {
        format!("{text:?}")
    }
}

/// A time as staff read it: Vietnam local time, seconds precision, or only the date.
fn vietnam_time_text(micros: i64, has_time: bool) -> String {
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

/// A bank transaction our webhooks stored for the statement's account and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownBankTransaction {
    pub id: Uuid,
    pub direction: Direction,
    /// Đồng, > 0.
    pub amount: i64,
    /// When the bank booked it, UTC micros.
    pub occurred_at_micros: i64,
    pub description: String,
    pub bank_reference: Option<String>,
}

/// How a statement line was paired with a stored transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchBasis {
    /// The same bank reference and direction.
    BankReference,
    /// The same direction and amount, close in time.
    AmountAndTime,
    /// The same direction, close in time, one description containing the other.
    DescriptionAndTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MatchedLine {
    /// Line of the statement file.
    #[schema(example = 2)]
    pub line: usize,
    pub bank_transaction_id: Uuid,
    pub matched_by: MatchBasis,
}

/// A statement line paired with a stored transaction whose amount differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AmountMismatch {
    #[schema(example = 2)]
    pub line: usize,
    pub bank_transaction_id: Uuid,
    pub matched_by: MatchBasis,
    #[schema(example = "150000")]
    pub statement_amount: String,
    #[schema(example = "15000")]
    pub recorded_amount: String,
}

/// A statement line with no stored transaction: a webhook that never arrived (or was refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MissingWebhook {
    #[schema(example = 2)]
    pub line: usize,
    /// For a date-only line, the start of that day in Vietnam time.
    pub occurred_at: DateTime<Utc>,
    /// False when the statement gave only the date.
    pub has_time: bool,
    /// `in` or `out`.
    #[schema(example = "in")]
    pub direction: String,
    #[schema(example = "150000")]
    pub amount: String,
    pub description: String,
    pub bank_reference: Option<String>,
}

/// A stored transaction that no statement line accounts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NotInStatement {
    pub bank_transaction_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// `in` or `out`.
    #[schema(example = "in")]
    pub direction: String,
    #[schema(example = "150000")]
    pub amount: String,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementCounts {
    pub statement_lines: usize,
    pub known_transactions: usize,
    pub matched: usize,
    pub amount_mismatches: usize,
    pub missing_webhooks: usize,
    pub not_in_statement: usize,
}

/// The statement compared with the stored transactions and the ledger. Lists are ordered by
/// statement line, `not_in_statement` by time (then id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatementReport {
    pub counts: StatementCounts,
    pub matched: Vec<MatchedLine>,
    pub amount_mismatches: Vec<AmountMismatch>,
    pub missing_webhooks: Vec<MissingWebhook>,
    pub not_in_statement: Vec<NotInStatement>,
    /// The running balance of the statement's latest line, where the statement gives it.
    #[schema(example = "12650000")]
    pub statement_closing_balance: Option<String>,
    /// The ledger balance of the account's bank asset at the end of the period.
    #[schema(example = "12500000")]
    pub ledger_closing_balance: String,
    /// Statement minus ledger; `"0"` when they agree.
    #[schema(example = "150000")]
    pub closing_balance_difference: Option<String>,
}

/// Uppercase ASCII words of a memo, single-spaced: "Chuyển tiền,  V042" → "CHUYEN TIEN V042".
fn normalize_description(text: &str) -> String {
    let spaced: String = fold_to_ascii(text)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                ' '
            }
        })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn normalize_reference(reference: Option<&str>) -> Option<String> {
    reference
        .map(|r| r.trim().to_uppercase())
        .filter(|r| !r.is_empty())
}

/// Number of distinct words two normalized descriptions share.
fn shared_words(a: &[&str], b: &[&str]) -> usize {
    a.iter().filter(|w| b.binary_search(w).is_ok()).count()
}

fn words(normalized: &str) -> Vec<&str> {
    let mut words: Vec<&str> = normalized.split_whitespace().collect();
    words.sort();
    words.dedup();
    words
}

/// The times a stored transaction may have to be matched with `line` without a reference:
/// inclusive start, exclusive end.
fn match_window(line: &StatementLine) -> (i64, i64) {
    let t = line.occurred_at_micros;
    if line.has_time {
        (
            t.saturating_sub(MATCH_TIME_TOLERANCE_MICROS),
            t.saturating_add(MATCH_TIME_TOLERANCE_MICROS)
                .saturating_add(1),
        )
    } else {
        (t, t.saturating_add(DAY_MICROS))
    }
}

/// A candidate pairing for the time-based passes, ordered best first.
struct Candidate {
    distance: i64,
    similarity: usize,
    known_at: i64,
    known_id: Uuid,
    line_no: usize,
    line: usize,
    known: usize,
}

impl Candidate {
    fn sort_key(&self) -> (i64, Reverse<usize>, i64, Uuid, usize) {
        (
            self.distance,
            Reverse(self.similarity),
            self.known_at,
            self.known_id,
            self.line_no,
        )
    }
}

/// Compares a parsed statement with the stored transactions of the same account and period and
/// with the ledger's closing balance for the account.
///
/// Each stored transaction and each line is paired at most once, in three passes:
/// 1. the same non-empty bank reference (trimmed, case-insensitive) and direction: a match if
///    the amounts agree, else an amount mismatch;
/// 2. the same direction and amount within [`MATCH_TIME_TOLERANCE_MICROS`] (a date-only line:
///    the same Vietnam day): a match; the closest pairs in time are taken first, ties going to
///    the pair whose descriptions share more words, then to the earliest transaction;
/// 3. the same direction within the same tolerance, one normalized description (ASCII-folded,
///    case and punctuation ignored) containing the other, the shorter being at least
///    [`MIN_DESCRIPTION_MATCH_CHARS`] long: an amount mismatch.
///
/// What is left is a missing webhook (a line) or not in the statement (a stored transaction).
/// The work is proportional to the (line, transaction) pairs inside one another's time window,
/// which for date-only statements is the same-direction transactions of each day.
pub fn reconcile(
    lines: &[StatementLine],
    known: &[KnownBankTransaction],
    ledger_closing_balance: i64,
) -> StatementReport {
    let mut line_pair: Vec<Option<(usize, MatchBasis)>> = vec![None; lines.len()];
    let mut known_taken = vec![false; known.len()];

    let mut line_order: Vec<usize> = (0..lines.len()).collect();
    line_order.sort_by_key(|&i| (lines[i].line, i));
    let mut known_order: Vec<usize> = (0..known.len()).collect();
    known_order.sort_by_key(|&k| (known[k].occurred_at_micros, known[k].id, k));

    // Pass 1: bank reference.
    let mut by_reference: HashMap<(Direction, String), Vec<usize>> = HashMap::new();
    for &k in &known_order {
        if let Some(reference) = normalize_reference(known[k].bank_reference.as_deref()) {
            by_reference
                .entry((known[k].direction, reference))
                .or_default()
                .push(k);
        }
    }
    for &i in &line_order {
        let line = &lines[i];
        let Some(reference) = normalize_reference(line.bank_reference.as_deref()) else {
            continue;
        };
        let Some(candidates) = by_reference.get(&(line.direction, reference)) else {
            continue;
        };
        // Several stored transactions with one reference should not happen; prefer the one
        // that agrees on the amount, then the closest in time (candidates are in time order).
        let best = candidates
            .iter()
            .copied()
            .filter(|&k| !known_taken[k])
            .min_by_key(|&k| {
                (
                    known[k].amount != line.amount,
                    known[k]
                        .occurred_at_micros
                        .abs_diff(line.occurred_at_micros),
                )
            });
        if let Some(k) = best {
            known_taken[k] = true;
            line_pair[i] = Some((k, MatchBasis::BankReference));
        }
    }

    let line_normalized: Vec<String> = lines
        .iter()
        .map(|l| normalize_description(&l.description))
        .collect();
    let known_normalized: Vec<String> = known
        .iter()
        .map(|k| normalize_description(&k.description))
        .collect();
    let line_words: Vec<Vec<&str>> = line_normalized.iter().map(|t| words(t)).collect();
    let known_words: Vec<Vec<&str>> = known_normalized.iter().map(|t| words(t)).collect();
    let distance = |line: &StatementLine, k: &KnownBankTransaction| {
        if line.has_time {
            i64::try_from(line.occurred_at_micros.abs_diff(k.occurred_at_micros))
                .unwrap_or(i64::MAX)
        } else {
            0
        }
    };

    // Pass 2: direction, amount and time.
    let mut by_amount: HashMap<(Direction, i64), Vec<usize>> = HashMap::new();
    for &k in &known_order {
        if !known_taken[k] {
            by_amount
                .entry((known[k].direction, known[k].amount))
                .or_default()
                .push(k);
        }
    }
    let mut candidates = Vec::new();
    for &i in &line_order {
        let line = &lines[i];
        if line_pair[i].is_some() {
            continue;
        }
        let Some(group) = by_amount.get(&(line.direction, line.amount)) else {
            continue;
        };
        for &k in in_window(group, known, match_window(line)) {
            candidates.push(Candidate {
                distance: distance(line, &known[k]),
                similarity: shared_words(&line_words[i], &known_words[k]),
                known_at: known[k].occurred_at_micros,
                known_id: known[k].id,
                line_no: line.line,
                line: i,
                known: k,
            });
        }
    }
    take_best(
        candidates,
        &mut line_pair,
        &mut known_taken,
        MatchBasis::AmountAndTime,
    );

    // Pass 3: direction, time and description, any amount.
    let mut by_direction: HashMap<Direction, Vec<usize>> = HashMap::new();
    for &k in &known_order {
        if !known_taken[k] && known_normalized[k].len() >= MIN_DESCRIPTION_MATCH_CHARS {
            by_direction.entry(known[k].direction).or_default().push(k);
        }
    }
    let mut candidates = Vec::new();
    for &i in &line_order {
        let line = &lines[i];
        if line_pair[i].is_some() || line_normalized[i].len() < MIN_DESCRIPTION_MATCH_CHARS {
            continue;
        }
        let Some(group) = by_direction.get(&line.direction) else {
            continue;
        };
        for &k in in_window(group, known, match_window(line)) {
            if !descriptions_related(&line_normalized[i], &known_normalized[k]) {
                continue;
            }
            candidates.push(Candidate {
                distance: distance(line, &known[k]),
                similarity: 0,
                known_at: known[k].occurred_at_micros,
                known_id: known[k].id,
                line_no: line.line,
                line: i,
                known: k,
            });
        }
    }
    take_best(
        candidates,
        &mut line_pair,
        &mut known_taken,
        MatchBasis::DescriptionAndTime,
    );

    build_report(
        lines,
        known,
        &line_order,
        &known_order,
        &line_pair,
        &known_taken,
        ledger_closing_balance,
    )
}

/// The transactions of `group` (in time order) whose time is in `[start, end)`.
fn in_window<'a>(
    group: &'a [usize],
    known: &[KnownBankTransaction],
    (start, end): (i64, i64),
) -> &'a [usize] {
    let first = group.partition_point(|&k| known[k].occurred_at_micros < start);
    let last = group.partition_point(|&k| known[k].occurred_at_micros < end);
    &group[first..last.max(first)]
}

/// Whether one normalized description contains the other, whole words only.
fn descriptions_related(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= MIN_DESCRIPTION_MATCH_CHARS
        && format!(" {long} ").contains(&format!(" {short} "))
}

/// Accepts candidates best first while both sides are still free.
fn take_best(
    mut candidates: Vec<Candidate>,
    line_pair: &mut [Option<(usize, MatchBasis)>],
    known_taken: &mut [bool],
    basis: MatchBasis,
) {
    candidates.sort_by_key(Candidate::sort_key);
    for candidate in candidates {
        if line_pair[candidate.line].is_none() && !known_taken[candidate.known] {
            line_pair[candidate.line] = Some((candidate.known, basis));
            known_taken[candidate.known] = true;
        }
    }
}

fn format_dong(amount: i64) -> String {
    Currency::Vnd.format_minor(amount)
}

fn build_report(
    lines: &[StatementLine],
    known: &[KnownBankTransaction],
    line_order: &[usize],
    known_order: &[usize],
    line_pair: &[Option<(usize, MatchBasis)>],
    known_taken: &[bool],
    ledger_closing_balance: i64,
) -> StatementReport {
    let mut matched = Vec::new();
    let mut amount_mismatches = Vec::new();
    let mut missing_webhooks = Vec::new();
    for &i in line_order {
        let line = &lines[i];
        match line_pair[i] {
            Some((k, matched_by)) if known[k].amount == line.amount => matched.push(MatchedLine {
                line: line.line,
                bank_transaction_id: known[k].id,
                matched_by,
            }),
            Some((k, matched_by)) => amount_mismatches.push(AmountMismatch {
                line: line.line,
                bank_transaction_id: known[k].id,
                matched_by,
                statement_amount: format_dong(line.amount),
                recorded_amount: format_dong(known[k].amount),
            }),
            None => missing_webhooks.push(MissingWebhook {
                line: line.line,
                occurred_at: to_datetime(line.occurred_at_micros),
                has_time: line.has_time,
                direction: line.direction.as_str().to_owned(),
                amount: format_dong(line.amount),
                description: line.description.clone(),
                bank_reference: line.bank_reference.clone(),
            }),
        }
    }
    let not_in_statement: Vec<NotInStatement> = known_order
        .iter()
        .filter(|&&k| !known_taken[k])
        .map(|&k| NotInStatement {
            bank_transaction_id: known[k].id,
            occurred_at: to_datetime(known[k].occurred_at_micros),
            direction: known[k].direction.as_str().to_owned(),
            amount: format_dong(known[k].amount),
            description: known[k].description.clone(),
        })
        .collect();

    let statement_closing = closing_line(lines).and_then(|line| line.running_balance);
    StatementReport {
        counts: StatementCounts {
            statement_lines: lines.len(),
            known_transactions: known.len(),
            matched: matched.len(),
            amount_mismatches: amount_mismatches.len(),
            missing_webhooks: missing_webhooks.len(),
            not_in_statement: not_in_statement.len(),
        },
        matched,
        amount_mismatches,
        missing_webhooks,
        not_in_statement,
        statement_closing_balance: statement_closing.map(format_dong),
        ledger_closing_balance: format_dong(ledger_closing_balance),
        closing_balance_difference: statement_closing
            .map(|balance| format_dong(balance.saturating_sub(ledger_closing_balance))),
    }
}

/// The statement's last line by time. Lines at the same time (always the case for a date-only
/// day) are ordered as the file is: oldest first, unless the file runs newest first (its first
/// line is later than its last), as many bank exports do.
fn closing_line(lines: &[StatementLine]) -> Option<&StatementLine> {
    let newest_first = match (lines.first(), lines.last()) {
        (Some(first), Some(last)) => first.occurred_at_micros > last.occurred_at_micros,
        _ => false,
    };
    lines.iter().max_by(|a, b| {
        a.occurred_at_micros
            .cmp(&b.occurred_at_micros)
            .then_with(|| {
                let by_file = a.line.cmp(&b.line);
                if newest_first {
                    by_file.reverse()
                } else {
                    by_file
                }
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "date,direction,amount,description,bank_reference,running_balance\n";

    #[test]
    fn a_nul_character_is_refused_with_its_line() {
        let csv = format!("{HEADER}2024-03-01,in,1000,a\0b,,\n");
        let error = parse_statement(csv.as_bytes()).unwrap_err();
        assert_eq!(error.code(), "STATEMENT_LINE_INVALID");
        assert_eq!(error.line(), Some(2));
        assert!(error.to_string().contains("NUL"), "{error}");
    }

    #[test]
    fn a_bank_reference_longer_than_an_index_takes_is_refused() {
        let csv = format!("{HEADER}2024-03-01,in,1000,a,{},\n", "F".repeat(129));
        let error = parse_statement(csv.as_bytes()).unwrap_err();
        assert_eq!(error.code(), "STATEMENT_LINE_INVALID");
        assert_eq!(error.line(), Some(2));
    }

    fn utc(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_micros()
    }

    fn parse(rows: &str) -> Result<Vec<StatementLine>, StatementError> {
        parse_statement(format!("{HEADER}{rows}").as_bytes())
    }

    fn parse_err(rows: &str) -> StatementError {
        parse(rows).expect_err("the statement should be refused")
    }

    #[test]
    fn documented_example_parses() {
        let doc = "date,direction,amount,description,bank_reference,running_balance\n\
            01/03/2024 08:30:00,in,\"150,000\",\"NGUYEN VAN A chuyen tien, V042\",FT24061234567890,\"12,650,000\"\n\
            2024-03-01T09:05:00+07:00,out,2.000.000,Rut tien,,10650000\n";
        let lines = parse_statement(doc.as_bytes()).unwrap();
        assert_eq!(
            lines,
            vec![
                StatementLine {
                    line: 2,
                    occurred_at_micros: utc("2024-03-01T01:30:00Z"),
                    has_time: true,
                    direction: Direction::In,
                    amount: 150_000,
                    description: "NGUYEN VAN A chuyen tien, V042".to_owned(),
                    bank_reference: Some("FT24061234567890".to_owned()),
                    running_balance: Some(12_650_000),
                },
                StatementLine {
                    line: 3,
                    occurred_at_micros: utc("2024-03-01T02:05:00Z"),
                    has_time: true,
                    direction: Direction::Out,
                    amount: 2_000_000,
                    description: "Rut tien".to_owned(),
                    bank_reference: None,
                    running_balance: Some(10_650_000),
                },
            ]
        );
    }

    #[test]
    fn parses_bom_any_column_order_and_every_date_form() {
        let text = "\u{FEFF}Running_Balance, DATE ,direction,AMOUNT,Description,bank_reference\r\n\
            0,2024-03-01 02:10:00Z,Credit,1500,\"Memo \"\"quoted\"\", with comma\",ref-3\r\n\
            -500,2024-03-02,c,999,,\r\n\
            ,05/03/2024,D,1.000,x,\r\n\
            ,2024-03-05T10:00:00,debit,1000000,y,  \r\n\
            \"-1,234,567\",2024-03-05 10:00:00+0700,IN,5,z,\r\n\
            ,06/03/2024 23:59,out,\"1,000,000,000,000,000\",z,\r\n\
            ,2024-03-06 20:00:00.5,in,7,z,\r\n\
            ,2024-03-06T20:00+07:00,in,8,z,\r\n\
            ,2024-03-06 13:00Z,in,9,z,\r\n\
            ,2024-03-06 20:00:00+07:00,in,10,z,\r\n\
            ,2024-03-06T13:00:00.25z,in,11,z,\r\n";
        let lines = parse_statement(text.as_bytes()).unwrap();
        let got: Vec<String> = lines
            .iter()
            .map(|l| {
                format!(
                    "{} {} {} {} {} {:?}",
                    l.line,
                    to_datetime(l.occurred_at_micros)
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    if l.has_time { "time" } else { "date" },
                    l.direction.as_str(),
                    l.amount,
                    l.running_balance,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "2 2024-03-01T02:10:00Z time in 1500 Some(0)",
                // A date only is the start of the Vietnam day: 17:00 UTC the day before.
                "3 2024-03-01T17:00:00Z date in 999 Some(-500)",
                "4 2024-03-04T17:00:00Z date out 1000 None",
                "5 2024-03-05T03:00:00Z time out 1000000 None",
                "6 2024-03-05T03:00:00Z time in 5 Some(-1234567)",
                "7 2024-03-06T16:59:00Z time out 1000000000000000 None",
                "8 2024-03-06T13:00:00.500Z time in 7 None",
                "9 2024-03-06T13:00:00Z time in 8 None",
                "10 2024-03-06T13:00:00Z time in 9 None",
                "11 2024-03-06T13:00:00Z time in 10 None",
                "12 2024-03-06T13:00:00.250Z time in 11 None",
            ]
        );
        assert_eq!(lines[0].description, "Memo \"quoted\", with comma");
        assert_eq!(lines[0].bank_reference.as_deref(), Some("ref-3"));
        assert_eq!(lines[1].description, "");
        assert_eq!(lines[1].bank_reference, None);
    }

    #[test]
    fn line_numbers_follow_the_text_lines() {
        let lines = parse(
            "\n2024-03-01,in,1000,\"first\nsecond\",,\n2024-03-01,in,2000,x,,\n,,,,,\n2024-03-01,in,3000,x,,\n",
        )
        .unwrap();
        assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), [3, 5, 7]);
        assert_eq!(lines[0].description, "first\nsecond");

        let error = parse_err("\n2024-03-01,in,1000,\"a\nb\",,\n,,,,,\n2024-03-01,in,abc,x,,\n");
        assert_eq!(error.line(), Some(6));

        let mac = "date,direction,amount,description,bank_reference,running_balance\r\r\
            2024-03-01,in,1000,x,,\r2024-03-01,in,abc,x,,\r";
        let error = parse_statement(mac.as_bytes()).unwrap_err();
        assert_eq!(error.line(), Some(4));
        assert_eq!(error.code(), "STATEMENT_LINE_INVALID");
    }

    #[test]
    fn not_utf8_names_the_line() {
        let mut bytes = format!("{HEADER}2024-03-01,in,1000,ok,,\n").into_bytes();
        bytes.extend_from_slice(b"2024-03-01,in,1000,caf\xe9,,\n");
        let error = parse_statement(&bytes).unwrap_err();
        assert_eq!(error, StatementError::NotUtf8 { line: 3 });
        assert_eq!(error.code(), "STATEMENT_NOT_UTF8");
        assert!(error
            .to_string()
            .starts_with("line 3: the file is not UTF-8"));
    }

    #[test]
    fn empty_statements_are_refused() {
        for (bytes, line) in [
            (&b""[..], 1),
            (&b"\xEF\xBB\xBF"[..], 1),
            (&b"\n\n"[..], 1),
            (HEADER.as_bytes(), 2),
            (
                b"date,direction,amount,description,bank_reference,running_balance",
                2,
            ),
        ] {
            let error = parse_statement(bytes).unwrap_err();
            assert_eq!(error, StatementError::Empty { line }, "{bytes:?}");
            assert_eq!(error.code(), "STATEMENT_EMPTY");
        }
        let error = parse(",,,,,\n").unwrap_err();
        assert_eq!(error, StatementError::Empty { line: 2 });
    }

    #[test]
    fn header_problems_are_refused_on_line_1() {
        let row = "2024-03-01,in,1000,x,,\n";
        for (header, needle) in [
            (
                "date,direction,amount,memo,bank_reference,running_balance",
                "column \"memo\" is not one of",
            ),
            (
                "date,direction,amount,amount,description,bank_reference",
                "column \"amount\" appears more than once",
            ),
            (
                "date,direction,amount,description,bank_reference",
                "column \"running_balance\" is missing",
            ),
            (
                "2024-03-01,in,1000,x,,",
                "column \"2024-03-01\" is not one of",
            ),
        ] {
            let error = parse_statement(format!("{header}\n{row}").as_bytes()).unwrap_err();
            assert_eq!(error.code(), "STATEMENT_HEADER_INVALID", "{header}");
            assert_eq!(error.line(), Some(1));
            let message = error.to_string();
            assert!(message.starts_with("line 1: "), "{message}");
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn each_invalid_field_is_reported_with_its_line_and_name() {
        let cases = [
            (
                "2024-13-01,in,1000,x,,",
                "date",
                "\"2024-13-01\" is not a date",
            ),
            ("32/01/2024,in,1000,x,,", "date", "is not a date"),
            ("1999-12-31,in,1000,x,,", "date", "is not a date"),
            ("2024-03-01 25:00:00,in,1000,x,,", "date", "is not a date"),
            (",in,1000,x,,", "date", "\"\" is not a date"),
            (
                "2024-03-01,sideways,1000,x,,",
                "direction",
                "\"sideways\" is not \"in\" or \"out\"",
            ),
            (
                "2024-03-01,in,\"12,34\",x,,",
                "amount",
                "\"12,34\" is not a whole number of đồng",
            ),
            (
                "2024-03-01,in,150000.00,x,,",
                "amount",
                "is not a whole number of đồng",
            ),
            (
                "2024-03-01,in,\"1,50,000\",x,,",
                "amount",
                "is not a whole number of đồng",
            ),
            (
                "2024-03-01,in,\"1.500,00\",x,,",
                "amount",
                "is not a whole number of đồng",
            ),
            (
                "2024-03-01,in,0,x,,",
                "amount",
                "\"0\" must be greater than zero",
            ),
            ("2024-03-01,in,-5,x,,", "amount", "\"-5\" is negative"),
            (
                "2024-03-01,in,1000000000000001,x,,",
                "amount",
                "is larger than 1000000000000000 đồng",
            ),
            (
                "2024-03-01,in,99999999999999999999999,x,,",
                "amount",
                "is larger than",
            ),
            ("2024-03-01,in,,x,,", "amount", "is empty"),
            (
                "2024-03-01,in,1000,x,,\"1,2\"",
                "running_balance",
                "\"1,2\" is not a whole number",
            ),
            (
                "2024-03-01,in,1000,x,,-1000000000000001",
                "running_balance",
                "is larger than",
            ),
            (
                "2024-03-01,in,1000,x",
                "the row",
                "has 4 columns but the header has 6",
            ),
            (
                "2024-03-01,in,1000,a,b,c,d",
                "the row",
                "has 7 columns but the header has 6",
            ),
        ];
        for (row, field, needle) in cases {
            let error = parse_err(&format!("2024-03-01,in,1,ok,,\n{row}\n"));
            assert_eq!(error.code(), "STATEMENT_LINE_INVALID", "{row}");
            let StatementError::LineInvalid {
                line, field: got, ..
            } = &error
            else {
                panic!("{error:?}");
            };
            assert_eq!((*line, *got), (3, field), "{row}");
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("line 3: {field} ")),
                "{message}"
            );
            assert!(message.contains(needle), "{row}: {message}");
        }
        assert_eq!(
            parse_err("2024-03-01,in,\"12,34\",x,,\n").to_string(),
            "line 2: amount \"12,34\" is not a whole number of đồng"
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let error = parse_err(&format!("{},in,1000,x,,\n", "9".repeat(500)));
        assert!(error.to_string().len() < 200, "{error}");
    }

    #[test]
    fn amounts_follow_the_grouping_rules() {
        for (text, value) in [
            ("150000", 150_000),
            ("150,000", 150_000),
            ("150.000", 150_000),
            ("1,500,000", 1_500_000),
            ("1.500.000", 1_500_000),
            ("007", 7),
            ("0", 0),
            ("-0", 0),
            ("-1,500", -1_500),
            ("1000000000000000", MAX_STATEMENT_AMOUNT),
            ("1.000.000.000.000.000", MAX_STATEMENT_AMOUNT),
            ("-1000000000000000", -MAX_STATEMENT_AMOUNT),
        ] {
            assert_eq!(parse_dong(text), Ok(value), "{text}");
        }
        for (text, problem) in [
            ("", DongProblem::Missing),
            ("12,34", DongProblem::NotWhole),
            ("150000.00", DongProblem::NotWhole),
            ("150.0000", DongProblem::NotWhole),
            ("1,50,000", DongProblem::NotWhole),
            ("1.500,000", DongProblem::NotWhole),
            ("1500,000", DongProblem::NotWhole),
            (",500", DongProblem::NotWhole),
            ("500,", DongProblem::NotWhole),
            ("0.500", DongProblem::NotWhole),
            ("+5", DongProblem::NotWhole),
            ("--5", DongProblem::NotWhole),
            ("-", DongProblem::NotWhole),
            ("1 000", DongProblem::NotWhole),
            ("1e5", DongProblem::NotWhole),
            ("１２", DongProblem::NotWhole),
            ("1000000000000001", DongProblem::TooLarge),
            ("1,000,000,000,000,001", DongProblem::TooLarge),
            ("99999999999999999999999999", DongProblem::TooLarge),
        ] {
            assert_eq!(parse_dong(text), Err(problem), "{text}");
        }
    }

    fn rows(count: usize) -> String {
        "2024-03-01 08:00:00,in,1000,x,,\n".repeat(count)
    }

    #[test]
    fn line_limit_is_enforced() {
        let lines = parse(&rows(MAX_STATEMENT_LINES)).unwrap();
        assert_eq!(lines.len(), MAX_STATEMENT_LINES);

        let error = parse_err(&rows(MAX_STATEMENT_LINES + 1));
        assert_eq!(
            error,
            StatementError::TooManyLines {
                line: MAX_STATEMENT_LINES + 2
            }
        );
        assert_eq!(error.code(), "STATEMENT_TOO_LARGE");
    }

    #[test]
    fn byte_limit_is_enforced() {
        // Long enough rows that the byte limit comes before the line limit.
        let row = format!("2024-03-01,in,1000,{},,\n", "a long description ".repeat(5));
        let row = row.as_str();
        let count = MAX_STATEMENT_BYTES / row.len() + 1;
        let text = format!("{HEADER}{}", row.repeat(count));
        assert!(text.len() > MAX_STATEMENT_BYTES);
        let error = parse_statement(text.as_bytes()).unwrap_err();
        assert_eq!(error.code(), "STATEMENT_TOO_LARGE");
        let line = error.line().unwrap();
        assert_eq!(line, (MAX_STATEMENT_BYTES - HEADER.len()) / row.len() + 2);

        let fits = format!(
            "{HEADER}{}",
            row.repeat((MAX_STATEMENT_BYTES - HEADER.len()) / row.len())
        );
        assert!(fits.len() <= MAX_STATEMENT_BYTES);
        assert!(parse_statement(fits.as_bytes()).is_ok());
    }

    #[test]
    fn period_is_checked() {
        let lines = parse(
            "2024-03-01 00:00:00,in,1000,x,,\n\
             2024-03-31 23:59:59,in,1000,x,,\n\
             15/03/2024,in,1000,x,,\n",
        )
        .unwrap();
        let from = utc("2024-03-01T00:00:00+07:00");
        let to = utc("2024-04-01T00:00:00+07:00");
        assert_eq!(check_period(&lines, from, to), Ok(()));

        for (from, to) in [(to, from), (from, from)] {
            let error = check_period(&lines, from, to).unwrap_err();
            assert_eq!(error.code(), "STATEMENT_PERIOD_INVALID");
            assert_eq!(error.line(), None);
            assert_eq!(
                error.to_string(),
                "the statement period must end after it starts"
            );
        }
        assert_eq!(check_period(&lines, from, from + 366 * DAY_MICROS), Ok(()));
        let error = check_period(&lines, from, from + 366 * DAY_MICROS + 1).unwrap_err();
        assert_eq!(error.code(), "STATEMENT_PERIOD_INVALID");
        let error = check_period(&lines, i64::MIN, i64::MAX).unwrap_err();
        assert_eq!(error.code(), "STATEMENT_PERIOD_INVALID");

        // The end is exclusive; the first line outside, in file order, is named.
        let error = check_period(&lines, from, utc("2024-03-31T23:59:59+07:00")).unwrap_err();
        assert_eq!(
            error,
            StatementError::LineOutsidePeriod {
                line: 3,
                occurred_at: "2024-03-31 23:59:59".to_owned()
            }
        );
        assert_eq!(error.code(), "STATEMENT_LINE_OUTSIDE_PERIOD");
        assert!(error
            .to_string()
            .starts_with("line 3: 2024-03-31 23:59:59 (Vietnam time) is outside"));
        let error = check_period(&lines, from + 1, to).unwrap_err();
        assert_eq!(error.line(), Some(2));
    }

    #[test]
    fn a_date_only_line_is_inside_when_its_day_overlaps() {
        let lines = parse("01/03/2024,in,1000,x,,\n").unwrap();
        let noon = utc("2024-03-01T12:00:00+07:00");
        let next_midnight = utc("2024-03-02T00:00:00+07:00");
        assert_eq!(check_period(&lines, noon, next_midnight), Ok(()));
        assert_eq!(check_period(&lines, noon - DAY_MICROS, noon), Ok(()));
        let error = check_period(&lines, next_midnight, next_midnight + DAY_MICROS).unwrap_err();
        assert_eq!(
            error,
            StatementError::LineOutsidePeriod {
                line: 2,
                occurred_at: "2024-03-01".to_owned()
            }
        );
        let error =
            check_period(&lines, noon - DAY_MICROS, utc("2024-03-01T00:00:00+07:00")).unwrap_err();
        assert_eq!(error.line(), Some(2));
    }

    // --- reconcile ---

    fn line(
        line: usize,
        at: &str,
        direction: Direction,
        amount: i64,
        description: &str,
        reference: Option<&str>,
    ) -> StatementLine {
        StatementLine {
            line,
            occurred_at_micros: utc(at),
            has_time: true,
            direction,
            amount,
            description: description.to_owned(),
            bank_reference: reference.map(str::to_owned),
            running_balance: None,
        }
    }

    fn date_line(line_no: usize, day: &str, amount: i64, description: &str) -> StatementLine {
        StatementLine {
            has_time: false,
            ..line(
                line_no,
                &format!("{day}T00:00:00+07:00"),
                Direction::In,
                amount,
                description,
                None,
            )
        }
    }

    fn known(
        id: u128,
        at: &str,
        direction: Direction,
        amount: i64,
        description: &str,
        reference: Option<&str>,
    ) -> KnownBankTransaction {
        KnownBankTransaction {
            id: Uuid::from_u128(id),
            direction,
            amount,
            occurred_at_micros: utc(at),
            description: description.to_owned(),
            bank_reference: reference.map(str::to_owned),
        }
    }

    fn matched(report: &StatementReport) -> Vec<(usize, u128, MatchBasis)> {
        report
            .matched
            .iter()
            .map(|m| (m.line, m.bank_transaction_id.as_u128(), m.matched_by))
            .collect()
    }

    use Direction::{In, Out};

    #[test]
    fn matches_by_bank_reference_whatever_the_time() {
        let lines = [line(
            2,
            "2024-03-01T08:00:00+07:00",
            In,
            150_000,
            "a",
            Some(" ft123 "),
        )];
        let known = [
            known(1, "2024-03-01T08:00:00+07:00", In, 150_000, "a", None),
            known(
                2,
                "2024-03-01T11:00:00+07:00",
                In,
                150_000,
                "b",
                Some("FT123"),
            ),
        ];
        let report = reconcile(&lines, &known, 0);
        assert_eq!(matched(&report), [(2, 2, MatchBasis::BankReference)]);
        assert_eq!(report.not_in_statement.len(), 1);
        assert_eq!(
            report.not_in_statement[0].bank_transaction_id,
            Uuid::from_u128(1)
        );
    }

    #[test]
    fn a_reference_in_the_other_direction_does_not_match() {
        let lines = [line(
            2,
            "2024-03-01T08:00:00+07:00",
            Out,
            150_000,
            "a",
            Some("FT1"),
        )];
        let known = [known(
            1,
            "2024-03-01T12:00:00+07:00",
            In,
            150_000,
            "a",
            Some("FT1"),
        )];
        let report = reconcile(&lines, &known, 0);
        assert!(report.matched.is_empty());
        assert_eq!(report.counts.missing_webhooks, 1);
        assert_eq!(report.counts.not_in_statement, 1);
    }

    #[test]
    fn amount_mismatch_by_reference() {
        let lines = [line(
            2,
            "2024-03-01T08:00:00+07:00",
            In,
            150_000,
            "a",
            Some("FT9"),
        )];
        let known = [known(
            7,
            "2024-03-01T08:00:05+07:00",
            In,
            15_000,
            "a",
            Some("ft9"),
        )];
        let report = reconcile(&lines, &known, 0);
        assert!(report.matched.is_empty());
        assert_eq!(
            report.amount_mismatches,
            [AmountMismatch {
                line: 2,
                bank_transaction_id: Uuid::from_u128(7),
                matched_by: MatchBasis::BankReference,
                statement_amount: "150000".to_owned(),
                recorded_amount: "15000".to_owned(),
            }]
        );
        assert!(report.missing_webhooks.is_empty() && report.not_in_statement.is_empty());
    }

    #[test]
    fn matches_by_amount_and_time_choosing_the_closest() {
        let lines = [line(2, "2024-03-01T10:00:00+07:00", In, 50_000, "x", None)];
        let known = [
            known(1, "2024-03-01T09:52:00+07:00", In, 50_000, "x", None),
            known(2, "2024-03-01T10:01:00+07:00", In, 50_000, "x", None),
            known(3, "2024-03-01T10:00:00+07:00", In, 60_000, "x", None),
            known(4, "2024-03-01T10:00:00+07:00", Out, 50_000, "x", None),
        ];
        let report = reconcile(&lines, &known, 0);
        assert_eq!(matched(&report), [(2, 2, MatchBasis::AmountAndTime)]);
        let left: Vec<u128> = report
            .not_in_statement
            .iter()
            .map(|n| n.bank_transaction_id.as_u128())
            .collect();
        // By time, then id.
        assert_eq!(left, [1, 3, 4]);
    }

    #[test]
    fn time_tolerance_is_ten_minutes() {
        let lines = [
            line(2, "2024-03-01T10:00:00+07:00", In, 50_000, "x", None),
            line(3, "2024-03-01T12:00:00+07:00", In, 50_000, "x", None),
        ];
        let known = [
            known(1, "2024-03-01T10:10:00+07:00", In, 50_000, "x", None),
            known(2, "2024-03-01T12:10:00.000001+07:00", In, 50_000, "x", None),
        ];
        let report = reconcile(&lines, &known, 0);
        assert_eq!(matched(&report), [(2, 1, MatchBasis::AmountAndTime)]);
        assert_eq!(report.missing_webhooks[0].line, 3);
        assert_eq!(
            report.not_in_statement[0].bank_transaction_id,
            Uuid::from_u128(2)
        );
    }

    #[test]
    fn two_identical_transfers_each_match_once() {
        let lines = [
            line(2, "2024-03-01T10:00:00+07:00", In, 20_000, "CK V042", None),
            line(3, "2024-03-01T10:00:00+07:00", In, 20_000, "CK V042", None),
        ];
        let known = [
            known(1, "2024-03-01T10:00:40+07:00", In, 20_000, "CK V042", None),
            known(2, "2024-03-01T10:00:20+07:00", In, 20_000, "CK V042", None),
        ];
        let report = reconcile(&lines, &known, 0);
        assert_eq!(
            matched(&report),
            [
                (2, 2, MatchBasis::AmountAndTime),
                (3, 1, MatchBasis::AmountAndTime)
            ]
        );
        assert_eq!(report.counts.matched, 2);
        assert!(report.missing_webhooks.is_empty() && report.not_in_statement.is_empty());

        // Only one of them reached us: one match, one missing webhook.
        let report = reconcile(&lines, &known[..1], 0);
        assert_eq!(report.counts.matched, 1);
        assert_eq!(report.counts.missing_webhooks, 1);
    }

    #[test]
    fn date_only_lines_match_on_the_vietnam_day_by_description() {
        let lines = [
            date_line(2, "2024-03-01", 500_000, "HOC PHI TRAN THI B LOP 3A"),
            date_line(3, "2024-03-01", 500_000, "Học phí Nguyễn Văn A lớp 3A"),
            date_line(4, "2024-03-01", 500_000, "HOC PHI LE VAN C"),
        ];
        let known = [
            known(
                1,
                "2024-03-01T07:00:00+07:00",
                In,
                500_000,
                "MBVCB.1.HOC PHI NGUYEN VAN A LOP 3A",
                None,
            ),
            known(
                2,
                "2024-03-01T23:30:00+07:00",
                In,
                500_000,
                "MBVCB.2.HOC PHI TRAN THI B LOP 3A",
                None,
            ),
            // The next Vietnam day, though still 1 March in UTC.
            known(
                3,
                "2024-03-02T00:10:00+07:00",
                In,
                500_000,
                "HOC PHI LE VAN C",
                None,
            ),
        ];
        let report = reconcile(&lines, &known, 0);
        assert_eq!(
            matched(&report),
            [
                (2, 2, MatchBasis::AmountAndTime),
                (3, 1, MatchBasis::AmountAndTime)
            ]
        );
        assert_eq!(report.missing_webhooks.len(), 1);
        assert_eq!(report.missing_webhooks[0].line, 4);
        assert!(!report.missing_webhooks[0].has_time);
        assert_eq!(
            report.not_in_statement[0].bank_transaction_id,
            Uuid::from_u128(3)
        );
    }

    #[test]
    fn amount_mismatch_by_description_and_time() {
        let lines = [
            line(
                2,
                "2024-03-01T10:00:00+07:00",
                In,
                150_000,
                "MBVCB.123.V042 tien che",
                None,
            ),
            line(3, "2024-03-01T11:00:00+07:00", In, 70_000, "CK", None),
        ];
        let known = [
            known(
                5,
                "2024-03-01T10:02:00+07:00",
                In,
                15_000,
                "V042 TIEN CHE",
                None,
            ),
            known(6, "2024-03-01T11:01:00+07:00", In, 7_000, "CK", None),
        ];
        let report = reconcile(&lines, &known, 0);
        assert_eq!(
            report.amount_mismatches,
            [AmountMismatch {
                line: 2,
                bank_transaction_id: Uuid::from_u128(5),
                matched_by: MatchBasis::DescriptionAndTime,
                statement_amount: "150000".to_owned(),
                recorded_amount: "15000".to_owned(),
            }]
        );
        // "CK" is too short to pair transfers of different amounts.
        assert_eq!(report.missing_webhooks[0].line, 3);
        assert_eq!(
            report.not_in_statement[0].bank_transaction_id,
            Uuid::from_u128(6)
        );
    }

    #[test]
    fn missing_webhook_and_not_in_statement_are_reported_in_full() {
        let lines = [line(
            4,
            "2024-03-01T08:30:00+07:00",
            Out,
            2_000_000,
            "Rut tien",
            Some("FT5"),
        )];
        let known = [known(
            9,
            "2024-03-02T09:00:00+07:00",
            In,
            150_000,
            "V042",
            None,
        )];
        let report = reconcile(&lines, &known, 0);
        assert_eq!(
            report.missing_webhooks,
            [MissingWebhook {
                line: 4,
                occurred_at: to_datetime(utc("2024-03-01T01:30:00Z")),
                has_time: true,
                direction: "out".to_owned(),
                amount: "2000000".to_owned(),
                description: "Rut tien".to_owned(),
                bank_reference: Some("FT5".to_owned()),
            }]
        );
        assert_eq!(
            report.not_in_statement,
            [NotInStatement {
                bank_transaction_id: Uuid::from_u128(9),
                occurred_at: to_datetime(utc("2024-03-02T02:00:00Z")),
                direction: "in".to_owned(),
                amount: "150000".to_owned(),
                description: "V042".to_owned(),
            }]
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["missing_webhooks"][0]["occurred_at"],
            "2024-03-01T01:30:00Z"
        );
        assert_eq!(json["counts"]["missing_webhooks"], 1);
        assert_eq!(json["statement_closing_balance"], serde_json::Value::Null);
    }

    #[test]
    fn closing_balance_difference_uses_the_latest_line() {
        let with_balance = |mut l: StatementLine, balance: Option<i64>| {
            l.running_balance = balance;
            l
        };
        let oldest_first = [
            with_balance(
                line(2, "2024-03-01T08:00:00+07:00", In, 150_000, "a", None),
                Some(12_650_000),
            ),
            with_balance(
                line(3, "2024-03-02T08:00:00+07:00", Out, 150_000, "b", None),
                Some(12_500_000),
            ),
            with_balance(
                line(4, "2024-03-02T08:00:00+07:00", In, 150_000, "c", None),
                Some(12_650_000),
            ),
        ];
        let report = reconcile(&oldest_first, &[], 12_500_000);
        assert_eq!(
            report.statement_closing_balance.as_deref(),
            Some("12650000")
        );
        assert_eq!(report.ledger_closing_balance, "12500000");
        assert_eq!(report.closing_balance_difference.as_deref(), Some("150000"));

        // Newest first, as many bank exports are: the first of the latest lines closes.
        let newest_first = [
            with_balance(
                line(2, "2024-03-02T08:00:00+07:00", In, 150_000, "c", None),
                Some(12_400_000),
            ),
            with_balance(
                line(3, "2024-03-02T08:00:00+07:00", Out, 150_000, "b", None),
                Some(12_250_000),
            ),
            with_balance(
                line(4, "2024-03-01T08:00:00+07:00", In, 150_000, "a", None),
                Some(12_400_000),
            ),
        ];
        let report = reconcile(&newest_first, &[], 12_500_000);
        assert_eq!(
            report.statement_closing_balance.as_deref(),
            Some("12400000")
        );
        assert_eq!(
            report.closing_balance_difference.as_deref(),
            Some("-100000")
        );

        let report = reconcile(&oldest_first[..1], &[], 12_650_000);
        assert_eq!(report.closing_balance_difference.as_deref(), Some("0"));

        let no_balance = [with_balance(oldest_first[0].clone(), None)];
        let report = reconcile(&no_balance, &[], 5);
        assert_eq!(report.statement_closing_balance, None);
        assert_eq!(report.closing_balance_difference, None);
        assert_eq!(report.ledger_closing_balance, "5");
    }

    #[test]
    fn output_does_not_depend_on_input_order() {
        let lines = vec![
            line(2, "2024-03-01T10:00:00+07:00", In, 20_000, "CK V042", None),
            line(3, "2024-03-01T10:00:00+07:00", In, 20_000, "CK V042", None),
            line(
                4,
                "2024-03-01T11:00:00+07:00",
                In,
                150_000,
                "x",
                Some("FT1"),
            ),
            line(5, "2024-03-01T12:00:00+07:00", Out, 10_000, "y", None),
            line(
                6,
                "2024-03-01T13:00:00+07:00",
                In,
                90_000,
                "MBVCB.9.TIEN HOC PHI",
                None,
            ),
            date_line(7, "2024-03-02", 30_000, "z"),
        ];
        let known = vec![
            known(10, "2024-03-01T10:00:30+07:00", In, 20_000, "CK V042", None),
            known(11, "2024-03-01T10:00:30+07:00", In, 20_000, "CK V042", None),
            known(
                12,
                "2024-03-01T11:30:00+07:00",
                In,
                15_000,
                "x",
                Some("fT1"),
            ),
            known(
                13,
                "2024-03-01T13:05:00+07:00",
                In,
                9_000,
                "TIEN HOC PHI",
                None,
            ),
            known(14, "2024-03-03T09:00:00+07:00", In, 30_000, "z", None),
            known(15, "2024-03-02T09:00:00+07:00", In, 30_000, "z", None),
            known(16, "2024-03-01T09:00:00+07:00", Out, 1, "fee", None),
        ];
        let report = reconcile(&lines, &known, 0);
        let mut lines_reversed = lines.clone();
        lines_reversed.reverse();
        let mut known_reversed = known.clone();
        known_reversed.reverse();
        assert_eq!(reconcile(&lines_reversed, &known_reversed, 0), report);
        assert_eq!(
            matched(&report),
            [
                (2, 10, MatchBasis::AmountAndTime),
                (3, 11, MatchBasis::AmountAndTime),
                (7, 15, MatchBasis::AmountAndTime),
            ]
        );
        let mismatched: Vec<_> = report
            .amount_mismatches
            .iter()
            .map(|m| (m.line, m.bank_transaction_id.as_u128(), m.matched_by))
            .collect();
        assert_eq!(
            mismatched,
            [
                (4, 12, MatchBasis::BankReference),
                (6, 13, MatchBasis::DescriptionAndTime)
            ]
        );
        assert_eq!(
            report
                .missing_webhooks
                .iter()
                .map(|m| m.line)
                .collect::<Vec<_>>(),
            [5]
        );
        let left: Vec<u128> = report
            .not_in_statement
            .iter()
            .map(|n| n.bank_transaction_id.as_u128())
            .collect();
        assert_eq!(left, [16, 14]);
        assert_eq!(
            report.counts,
            StatementCounts {
                statement_lines: 6,
                known_transactions: 7,
                matched: 3,
                amount_mismatches: 2,
                missing_webhooks: 1,
                not_in_statement: 2,
            }
        );
    }
}
