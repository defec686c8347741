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

mod parse;
mod reconcile;
#[cfg(test)]
mod tests;

pub use parse::*;
pub use reconcile::*;
