//! Pairing statement lines with the bank transactions our webhooks stored.

use super::*;

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
pub(super) fn normalize_description(text: &str) -> String {
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

pub(super) fn normalize_reference(reference: Option<&str>) -> Option<String> {
    reference
        .map(|r| r.trim().to_uppercase())
        .filter(|r| !r.is_empty())
}

/// Number of distinct words two normalized descriptions share.
pub(super) fn shared_words(a: &[&str], b: &[&str]) -> usize {
    a.iter().filter(|w| b.binary_search(w).is_ok()).count()
}

pub(super) fn words(normalized: &str) -> Vec<&str> {
    let mut words: Vec<&str> = normalized.split_whitespace().collect();
    words.sort();
    words.dedup();
    words
}

/// The times a stored transaction may have to be matched with `line` without a reference:
/// inclusive start, exclusive end.
pub(super) fn match_window(line: &StatementLine) -> (i64, i64) {
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
pub(super) struct Candidate {
    pub(super) distance: i64,
    pub(super) similarity: usize,
    pub(super) known_at: i64,
    pub(super) known_id: Uuid,
    pub(super) line_no: usize,
    pub(super) line: usize,
    pub(super) known: usize,
}

impl Candidate {
    /// Line `i` with transaction `k`. A date-only line is equally close to its whole day.
    fn pair(
        lines: &[StatementLine],
        i: usize,
        known: &[KnownBankTransaction],
        k: usize,
        similarity: usize,
    ) -> Self {
        let (line, transaction) = (&lines[i], &known[k]);
        let distance = if line.has_time {
            i64::try_from(
                line.occurred_at_micros
                    .abs_diff(transaction.occurred_at_micros),
            )
            .unwrap_or(i64::MAX)
        } else {
            0
        };
        Candidate {
            distance,
            similarity,
            known_at: transaction.occurred_at_micros,
            known_id: transaction.id,
            line_no: line.line,
            line: i,
            known: k,
        }
    }

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
            let similarity = shared_words(&line_words[i], &known_words[k]);
            candidates.push(Candidate::pair(lines, i, known, k, similarity));
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
            candidates.push(Candidate::pair(lines, i, known, k, 0));
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
pub(super) fn in_window<'a>(
    group: &'a [usize],
    known: &[KnownBankTransaction],
    (start, end): (i64, i64),
) -> &'a [usize] {
    let first = group.partition_point(|&k| known[k].occurred_at_micros < start);
    let last = group.partition_point(|&k| known[k].occurred_at_micros < end);
    &group[first..last.max(first)]
}

/// Whether one normalized description contains the other, whole words only.
pub(super) fn descriptions_related(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= MIN_DESCRIPTION_MATCH_CHARS
        && format!(" {long} ").contains(&format!(" {short} "))
}

/// Accepts candidates best first while both sides are still free.
pub(super) fn take_best(
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

pub(super) fn format_dong(amount: i64) -> String {
    Currency::Vnd.format_minor(amount)
}

pub(super) fn build_report(
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
pub(super) fn closing_line(lines: &[StatementLine]) -> Option<&StatementLine> {
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
