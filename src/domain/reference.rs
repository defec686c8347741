//! Payment reference codes: the short code a payer's bank transfer carries in its memo (and that
//! our VietQR codes put in tag 62.08), by which an incoming transfer is matched to what it pays.
//!
//! # Shape
//!
//! 8 characters: 7 random characters and 1 check character, all from [`ALPHABET`], e.g.
//! `8K2H9QX4`. There is no fixed prefix: a prefix would eat random characters from the
//! 8-character budget, while the whole-run rule and the check character below already keep
//! memo scanning precise (and every match is still looked up in the database, so a chance match
//! that is not a pending payment does nothing).
//!
//! # Alphabet
//!
//! 23 characters: `2-9` and `A C D E H K M N P Q R T V X Y`. Left out, each for a reason:
//! - `0 O 1 I L`: read and typed as each other.
//! - `B S G Z U`: look like `8 5 6 2 V` on a phone screen, in print and in handwriting.
//! - `F J W`: not in the Vietnamese alphabet, so their spoken names vary from person to person.
//!
//! Being a prime number of characters is what lets the check character below catch every
//! single substitution and every transposition. Seven random characters give 23^7 ≈ 3.4e9
//! codes; uniqueness is still the store's job (unique index, generate again on conflict).
//! References are uppercase ASCII letters and digits, so they are valid VietQR purposes.
//!
//! # Check character
//!
//! With values `v0..v7` (positions in [`ALPHABET`]) and weights 8, 7, …, 1, a reference is
//! valid when `Σ weight_i · v_i ≡ 0 (mod 23)`. Changing one character changes the sum by
//! `weight · (v' − v)`, and swapping two different characters by
//! `(weight_i − weight_j) · (v_j − v_i)`; both factors are non-zero and smaller than the prime
//! 23, so the product is never ≡ 0: every single substitution and every transposition (adjacent
//! or not) is caught.
//!
//! # Finding references in bank memos
//!
//! Banks wrap the payer's text in their own ("ND:CT DEN:123456 MBVCB.123.8K2H9QX4.CT tu ...").
//! [`PaymentReference::find_in_memo`] splits the memo into maximal runs of letters and digits
//! (any script, so "đ" counts) and tries every sequence of consecutive whole runs that are
//! joined only by spaces, dots or dashes and hold exactly 8 characters together. A run is never
//! split: a code glued to other letters or digits ("TT8K2H9QX4") is not matched even when some
//! 8 of its characters validate, because a longer token is a different token and reading codes
//! out of it would turn bank transaction numbers into false matches. Such a payment is left for
//! a person to match, which is the safe way to fail.

use std::fmt;

use rand::Rng;

/// The characters references are made of; see the module documentation for the choice.
pub const ALPHABET: &[u8; 23] = b"23456789ACDEHKMNPQRTVXY";
/// Characters in a reference, check character included.
pub const REFERENCE_LEN: usize = 8;
const RANDOM_LEN: usize = REFERENCE_LEN - 1;
/// Distinct and non-zero modulo 23, which is what the detection proof needs; the check
/// character gets weight 1 so it is simply the value that brings the sum to 0.
const WEIGHTS: [usize; REFERENCE_LEN] = [8, 7, 6, 5, 4, 3, 2, 1];
const MODULUS: usize = ALPHABET.len();

/// A valid payment reference, stored in its canonical uppercase form without separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentReference(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error(
        "a payment reference has {REFERENCE_LEN} letters or digits, not {length} \
         (spaces, dots and dashes are ignored)"
    )]
    WrongLength { length: usize },
    #[error(
        "{character:?} is not used in payment references; they use only 2-9 and \
         A C D E H K M N P Q R T V X Y"
    )]
    InvalidCharacter { character: char },
    #[error("payment reference check character does not match: a character is mistyped")]
    CheckFailed,
}

impl ReferenceError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ReferenceError::WrongLength { .. } => "REFERENCE_WRONG_LENGTH",
            ReferenceError::InvalidCharacter { .. } => "REFERENCE_INVALID_CHARACTER",
            ReferenceError::CheckFailed => "REFERENCE_CHECK_FAILED",
        }
    }
}

impl PaymentReference {
    /// A new random reference. The caller supplies the randomness so this layer stays pure;
    /// pass a cryptographically secure generator (e.g. `rand::thread_rng()`) so that codes
    /// cannot be predicted from earlier ones.
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut values = [0usize; REFERENCE_LEN];
        for value in &mut values[..RANDOM_LEN] {
            *value = rng.gen_range(0..MODULUS);
        }
        values[RANDOM_LEN] = check_value(&values[..RANDOM_LEN]);
        Self(values.iter().map(|&v| char::from(ALPHABET[v])).collect())
    }

    /// Reads a reference as a person typed it: case-insensitive, with any spaces, dots or
    /// dashes ignored ("8k2h-9qx4", "8K2H 9QX4").
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let compact: String = text.chars().filter(|&c| !is_separator(c)).collect();
        let length = compact.chars().count();
        if length != REFERENCE_LEN {
            return Err(ReferenceError::WrongLength { length });
        }
        Self::from_compact(&compact)
    }

    /// Validates exactly [`REFERENCE_LEN`] characters with no separators.
    fn from_compact(compact: &str) -> Result<Self, ReferenceError> {
        let mut values = [0usize; REFERENCE_LEN];
        for (value, character) in values.iter_mut().zip(compact.chars()) {
            *value = value_of(character).ok_or(ReferenceError::InvalidCharacter { character })?;
        }
        if !weighted_sum(&values).is_multiple_of(MODULUS) {
            return Err(ReferenceError::CheckFailed);
        }
        Ok(Self(compact.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every distinct valid reference in a bank memo, in order of first appearance, following
    /// the whole-run rule in the module documentation.
    pub fn find_in_memo(memo: &str) -> Vec<PaymentReference> {
        let runs = alphanumeric_runs(memo);
        let mut found: Vec<PaymentReference> = Vec::new();
        for start in 0..runs.len() {
            let mut candidate = String::new();
            let mut candidate_len = 0;
            for run in &runs[start..] {
                candidate_len += run.char_count;
                if candidate_len > REFERENCE_LEN {
                    break;
                }
                candidate.push_str(run.text);
                if candidate_len == REFERENCE_LEN {
                    if let Ok(reference) = Self::from_compact(&candidate) {
                        if !found.contains(&reference) {
                            found.push(reference);
                        }
                    }
                    break;
                }
                if !run.joined_to_next {
                    break;
                }
            }
        }
        found
    }
}

impl fmt::Display for PaymentReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters people and banks put inside a code without meaning anything.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == '.' || c == '-'
}

fn value_of(character: char) -> Option<usize> {
    let upper = u8::try_from(character.to_ascii_uppercase()).ok()?;
    ALPHABET.iter().position(|&a| a == upper)
}

/// Σ weight_i · value_i over the first `values.len()` positions.
fn weighted_sum(values: &[usize]) -> usize {
    values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum()
}

/// The check value that makes the full weighted sum ≡ 0 (mod 23), given the random values.
fn check_value(random_values: &[usize]) -> usize {
    (MODULUS - weighted_sum(random_values) % MODULUS) % MODULUS
}

/// A maximal run of letters and digits in a memo.
struct Run<'a> {
    text: &'a str,
    char_count: usize,
    /// Whether only separators (at least one) stand between this run and the next one.
    joined_to_next: bool,
}

fn alphanumeric_runs(memo: &str) -> Vec<Run<'_>> {
    let mut runs: Vec<Run<'_>> = Vec::new();
    let mut run_start: Option<usize> = None;
    let mut gap_is_separators = true;
    for (index, c) in memo.char_indices().chain([(memo.len(), ' ')]) {
        let inside_run = index < memo.len() && c.is_alphanumeric();
        match (run_start, inside_run) {
            (None, true) => {
                if let Some(previous) = runs.last_mut() {
                    previous.joined_to_next = gap_is_separators;
                }
                run_start = Some(index);
            }
            (Some(start), false) => {
                let text = &memo[start..index];
                runs.push(Run {
                    text,
                    char_count: text.chars().count(),
                    joined_to_next: false,
                });
                run_start = None;
                gap_is_separators = is_separator(c);
            }
            (None, false) => gap_is_separators &= is_separator(c),
            (Some(_), true) => {}
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const SAMPLE: &str = "8K2H9QX4";

    fn reference(text: &str) -> PaymentReference {
        PaymentReference::parse(text).expect("test reference is valid")
    }

    fn found(memo: &str) -> Vec<String> {
        PaymentReference::find_in_memo(memo)
            .into_iter()
            .map(|r| r.as_str().to_owned())
            .collect()
    }

    #[test]
    fn alphabet_is_prime_sized_unambiguous_and_distinct() {
        assert_eq!(MODULUS, 23);
        assert!((2..MODULUS).all(|d| !MODULUS.is_multiple_of(d)));
        for confusable in b"0O1ILBSGZUFJW" {
            assert!(!ALPHABET.contains(confusable), "{}", *confusable as char);
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALPHABET.len());
        assert!(WEIGHTS.iter().all(|&w| w % MODULUS != 0));
    }

    #[test]
    fn generated_references_are_valid_and_vary() {
        let mut rng = StdRng::seed_from_u64(7);
        let references: Vec<PaymentReference> = (0..1000)
            .map(|_| PaymentReference::generate(&mut rng))
            .collect();
        for reference in &references {
            assert_eq!(reference.as_str().len(), REFERENCE_LEN);
            assert!(reference.as_str().bytes().all(|b| ALPHABET.contains(&b)));
            assert_eq!(
                &PaymentReference::parse(reference.as_str()).unwrap(),
                reference
            );
        }
        let mut distinct = references.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), references.len());
    }

    #[test]
    fn references_are_valid_vietqr_purposes() {
        let mut rng = StdRng::seed_from_u64(11);
        let reference = PaymentReference::generate(&mut rng);
        assert_eq!(
            crate::domain::text::purpose_text(reference.as_str()),
            reference.as_str()
        );
    }

    #[test]
    fn parse_is_case_insensitive_and_ignores_separators() {
        for typed in [
            "8K2H9QX4",
            "8k2h9qx4",
            "8K2H-9QX4",
            "8k2h.9qx4",
            " 8K2H 9QX4 ",
            "8 K 2 H 9 Q X 4",
            "8K2H - 9QX4",
        ] {
            assert_eq!(reference(typed).as_str(), SAMPLE, "{typed:?}");
        }
        assert_eq!(reference(SAMPLE).to_string(), SAMPLE);
    }

    #[test]
    fn parse_says_which_rule_broke() {
        let short = PaymentReference::parse("8K2H9QX").unwrap_err();
        assert_eq!(short, ReferenceError::WrongLength { length: 7 });
        assert_eq!(short.code(), "REFERENCE_WRONG_LENGTH");
        assert_eq!(
            PaymentReference::parse("8K2H9QX4A").unwrap_err(),
            ReferenceError::WrongLength { length: 9 }
        );
        assert_eq!(
            PaymentReference::parse("").unwrap_err(),
            ReferenceError::WrongLength { length: 0 }
        );

        let letter_o = PaymentReference::parse("8K2H9OX4").unwrap_err();
        assert_eq!(
            letter_o,
            ReferenceError::InvalidCharacter { character: 'O' }
        );
        assert_eq!(letter_o.code(), "REFERENCE_INVALID_CHARACTER");
        assert_eq!(
            PaymentReference::parse("8K2H9QXđ").unwrap_err(),
            ReferenceError::InvalidCharacter { character: 'đ' }
        );

        let mistyped = PaymentReference::parse("8K2H9QX5").unwrap_err();
        assert_eq!(mistyped, ReferenceError::CheckFailed);
        assert_eq!(mistyped.code(), "REFERENCE_CHECK_FAILED");
    }

    #[test]
    fn check_catches_every_single_substitution_of_a_sample() {
        let original: Vec<u8> = SAMPLE.bytes().collect();
        for position in 0..REFERENCE_LEN {
            for &replacement in ALPHABET.iter().filter(|&&a| a != original[position]) {
                let mut typo = original.clone();
                typo[position] = replacement;
                let typo = String::from_utf8(typo).unwrap();
                assert_eq!(
                    PaymentReference::parse(&typo),
                    Err(ReferenceError::CheckFailed),
                    "{typo}"
                );
            }
        }
    }

    #[test]
    fn check_catches_every_transposition_of_a_sample() {
        let original: Vec<u8> = SAMPLE.bytes().collect();
        for first in 0..REFERENCE_LEN {
            for second in first + 1..REFERENCE_LEN {
                if original[first] == original[second] {
                    continue;
                }
                let mut typo = original.clone();
                typo.swap(first, second);
                let typo = String::from_utf8(typo).unwrap();
                assert_eq!(
                    PaymentReference::parse(&typo),
                    Err(ReferenceError::CheckFailed),
                    "{typo}"
                );
            }
        }
    }

    #[test]
    fn check_catches_substitutions_and_adjacent_transpositions_of_random_references() {
        let mut rng = StdRng::seed_from_u64(99);
        for _ in 0..200 {
            let original: Vec<u8> = PaymentReference::generate(&mut rng).0.into_bytes();
            for position in 0..REFERENCE_LEN {
                for &replacement in ALPHABET.iter().filter(|&&a| a != original[position]) {
                    let mut typo = original.clone();
                    typo[position] = replacement;
                    assert!(
                        PaymentReference::from_compact(&String::from_utf8(typo).unwrap()).is_err()
                    );
                }
                if position + 1 < REFERENCE_LEN && original[position] != original[position + 1] {
                    let mut typo = original.clone();
                    typo.swap(position, position + 1);
                    assert!(
                        PaymentReference::from_compact(&String::from_utf8(typo).unwrap()).is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn finds_a_reference_wrapped_by_bank_text() {
        assert_eq!(
            found("ND:CT DEN:123456 MBVCB.123.8K2H9QX4.CT tu 0123 NGUYEN VAN A"),
            [SAMPLE]
        );
        assert_eq!(found("8K2H9QX4"), [SAMPLE]);
        assert_eq!(found("TT 8K2H9QX4"), [SAMPLE]);
        assert_eq!(found("ND:8K2H9QX4/CT_tu"), [SAMPLE]);
        assert_eq!(found("(8K2H9QX4)"), [SAMPLE]);
    }

    #[test]
    fn finds_a_lowercase_reference() {
        assert_eq!(found("thanh toan 8k2h9qx4 cho sap 7"), [SAMPLE]);
    }

    #[test]
    fn finds_a_reference_with_separators_inside() {
        for memo in [
            "MBVCB.123.8K2H.9QX4.CT",
            "CT DEN 8k2h 9qx4 tu NGUYEN VAN A",
            "REF 8K2H-9QX4",
            "8-K-2-H-9-Q-X-4",
            "ma 8K2H - 9QX4.",
        ] {
            assert_eq!(found(memo), [SAMPLE], "{memo:?}");
        }
    }

    #[test]
    fn ignores_references_glued_to_longer_runs() {
        // "TT8K2H9QX4" contains the valid "8K2H9QX4", and "TT8K2H93" is itself valid, but
        // neither is a whole token: the memo's token is the 10-character "TT8K2H9QX4".
        assert!(PaymentReference::parse("TT8K2H93").is_ok());
        for memo in [
            "MBVCB.123.TT8K2H9QX4.CT",
            "8K2H9QX4123",
            "x8K2H9QX4",
            "đ8K2H9QX4",
            "8K2H9QX4ă",
            "8K2H.9QX4CT",
            "8K2H9QX 4X",
        ] {
            assert_eq!(found(memo), Vec::<String>::new(), "{memo:?}");
        }
    }

    #[test]
    fn separators_do_not_join_across_other_punctuation() {
        assert_eq!(found("8K2H/9QX4"), Vec::<String>::new());
        assert_eq!(found("8K2H:9QX4"), Vec::<String>::new());
        assert_eq!(found("8K2H . 9QX4"), [SAMPLE]);
    }

    #[test]
    fn finds_every_reference_once_in_order() {
        assert_eq!(
            found("TT 3MPR7VC3 va 8K2H-9QX4, lai 3mpr7vc3"),
            ["3MPR7VC3", SAMPLE]
        );
    }

    #[test]
    fn ignores_invalid_candidates() {
        assert_eq!(found("8K2H9QX5 12345678 ABCDEFGH"), Vec::<String>::new());
        assert_eq!(found(""), Vec::<String>::new());
        assert_eq!(found("... - ..."), Vec::<String>::new());
    }
}
