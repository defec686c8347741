//! Folding Vietnamese text to the plain ASCII that banks and VietQR accept.
//!
//! Bank account holder names are registered without diacritics ("NGUYEN THI HONG") and VietQR
//! purpose text (tag 62.08) is limited to ASCII letters, digits and spaces, so every name or memo
//! we hand to a bank goes through here first.

use std::fmt;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Folds Vietnamese (and other Latin) diacritics to ASCII: "Đặng Văn Đức" → "Dang Van Duc".
///
/// Text is decomposed (NFD) so that tone and vowel marks become separate combining marks, which
/// are dropped. "đ"/"Đ" do not decompose in Unicode, so they are mapped by hand. Whitespace of
/// any kind becomes a plain space so that words on either side of a tab or line break never
/// glue together; any other control or non-ASCII character is dropped.
pub fn fold_to_ascii(text: &str) -> String {
    text.nfd()
        .filter(|&c| !is_combining_mark(c))
        .filter_map(|c| match c {
            'đ' => Some('d'),
            'Đ' => Some('D'),
            c if c.is_whitespace() => Some(' '),
            c if c.is_ascii() && !c.is_ascii_control() => Some(c),
            _ => None,
        })
        .collect()
}

/// Longest purpose text VietQR allows in tag 62.08.
pub const PURPOSE_MAX_LEN: usize = 25;

/// Turns free text into a valid VietQR purpose (tag 62.08): folded to ASCII, every character
/// that is not a letter, digit or space replaced by a space, runs of spaces collapsed, trimmed,
/// and cut to [`PURPOSE_MAX_LEN`] characters. Letter case is kept. May return an empty string
/// when the text has no letters or digits at all.
pub fn purpose_text(text: &str) -> String {
    let letters_digits_spaces: String = fold_to_ascii(text)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let collapsed = collapse_spaces(&letters_digits_spaces);
    // The cut can land right after a space; trim again so the purpose never ends in one.
    let cut: String = collapsed.chars().take(PURPOSE_MAX_LEN).collect();
    cut.trim_end().to_owned()
}

/// Joins the whitespace-separated words of `text` with single spaces.
fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Longest account holder name we store, matching what Vietnamese banks register.
pub const HOLDER_NAME_MAX_LEN: usize = 50;

/// A bank account holder name as banks register it: uppercase ASCII letters, digits and single
/// spaces, 1 to [`HOLDER_NAME_MAX_LEN`] characters ("Nguyễn Thị Hồng" → "NGUYEN THI HONG").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HolderName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HolderNameError {
    #[error("holder name is empty")]
    Empty,
    #[error(
        "holder name is {length} characters long once folded; at most {HOLDER_NAME_MAX_LEN} allowed"
    )]
    TooLong { length: usize },
    #[error(
        "holder name contains {character:?}; only letters (Vietnamese diacritics are folded), \
         digits and spaces are allowed"
    )]
    InvalidCharacter { character: char },
}

impl HolderNameError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            HolderNameError::Empty => "HOLDER_NAME_EMPTY",
            HolderNameError::TooLong { .. } => "HOLDER_NAME_TOO_LONG",
            HolderNameError::InvalidCharacter { .. } => "HOLDER_NAME_INVALID_CHARACTER",
        }
    }
}

impl HolderName {
    /// Folds and uppercases a holder name, collapsing whitespace.
    ///
    /// Unlike [`fold_to_ascii`], which drops what it cannot fold, this rejects characters that
    /// have no ASCII letter or digit behind them (punctuation, CJK, emoji): silently dropping part
    /// of a name would store a name the bank does not know.
    pub fn parse(text: &str) -> Result<Self, HolderNameError> {
        let foldable = |c: char| {
            c.is_ascii_alphanumeric()
                || c.is_whitespace()
                || is_combining_mark(c)
                || matches!(c, 'đ' | 'Đ')
        };
        if let Some(character) = text.nfd().find(|&c| !foldable(c)) {
            return Err(HolderNameError::InvalidCharacter { character });
        }
        let name = collapse_spaces(&fold_to_ascii(text).to_ascii_uppercase());
        match name.len() {
            0 => Err(HolderNameError::Empty),
            length if length > HOLDER_NAME_MAX_LEN => Err(HolderNameError::TooLong { length }),
            _ => Ok(Self(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_vietnamese_names() {
        assert_eq!(fold_to_ascii("Nguyễn Thị Hồng"), "Nguyen Thi Hong");
        assert_eq!(fold_to_ascii("Đặng Văn Đức"), "Dang Van Duc");
        assert_eq!(fold_to_ascii("Trương Ngọc Ánh"), "Truong Ngoc Anh");
        assert_eq!(fold_to_ascii("ƯỚC MƠ ĐẸP"), "UOC MO DEP");
    }

    #[test]
    fn folds_precomposed_and_decomposed_input_alike() {
        let precomposed = "Hồng";
        let decomposed: String = precomposed.nfd().collect();
        assert_ne!(precomposed, decomposed);
        assert_eq!(fold_to_ascii(&decomposed), fold_to_ascii(precomposed));
    }

    #[test]
    fn fold_turns_whitespace_into_spaces_and_drops_other_characters() {
        assert_eq!(fold_to_ascii("Thị\tHồng\nMai"), "Thi Hong Mai");
        assert_eq!(fold_to_ascii("a\u{0}b\u{7f}c"), "abc");
        assert_eq!(fold_to_ascii("Chợ 李 🙂 Đông"), "Cho   Dong");
        assert_eq!(fold_to_ascii("a\u{a0}b"), "a b");
    }

    #[test]
    fn holder_name_is_folded_uppercase_and_collapsed() {
        let name = HolderName::parse("Nguyễn Thị Hồng").unwrap();
        assert_eq!(name.as_str(), "NGUYEN THI HONG");
        assert_eq!(
            HolderName::parse("  đặng   văn\tđức ").unwrap().as_str(),
            "DANG VAN DUC"
        );
        assert_eq!(
            HolderName::parse("Cửa hàng số 7").unwrap().to_string(),
            "CUA HANG SO 7"
        );
    }

    #[test]
    fn holder_name_length_limits() {
        assert_eq!(HolderName::parse("A").unwrap().as_str(), "A");
        let longest = "Ư".repeat(HOLDER_NAME_MAX_LEN);
        assert_eq!(HolderName::parse(&longest).unwrap().as_str().len(), 50);

        let too_long = HolderName::parse(&"Ư".repeat(HOLDER_NAME_MAX_LEN + 1)).unwrap_err();
        assert_eq!(too_long, HolderNameError::TooLong { length: 51 });
        assert_eq!(too_long.code(), "HOLDER_NAME_TOO_LONG");

        for blank in ["", "   ", "\t\n"] {
            let empty = HolderName::parse(blank).unwrap_err();
            assert_eq!(empty, HolderNameError::Empty);
            assert_eq!(empty.code(), "HOLDER_NAME_EMPTY");
        }
    }

    #[test]
    fn holder_name_rejects_what_cannot_be_folded() {
        for (text, character) in [
            ("Nguyễn Văn A.", '.'),
            ("Lê-Thị", '-'),
            ("Trần 李", '李'),
            ("Hồng 🙂", '🙂'),
        ] {
            let error = HolderName::parse(text).unwrap_err();
            assert_eq!(error, HolderNameError::InvalidCharacter { character });
            assert_eq!(error.code(), "HOLDER_NAME_INVALID_CHARACTER");
            assert!(error.to_string().contains(&format!("{character:?}")));
        }
    }

    #[test]
    fn purpose_text_keeps_letters_digits_and_single_spaces() {
        assert_eq!(
            purpose_text("Thanh toán đơn hàng #42!"),
            "Thanh toan don hang 42"
        );
        assert_eq!(purpose_text("  Tiền   chợ\t- sạp 7 "), "Tien cho sap 7");
        assert_eq!(purpose_text("8K2F-9QXT"), "8K2F 9QXT");
        assert_eq!(purpose_text("!!! 🙂 ..."), "");
    }

    #[test]
    fn purpose_text_is_cut_to_25_characters_without_trailing_space() {
        let cut = purpose_text("Ủng hộ quỹ vắc xin cho trẻ em toàn xã");
        assert_eq!(cut, "Ung ho quy vac xin cho tr");
        assert_eq!(cut.len(), PURPOSE_MAX_LEN);

        // The 25th character is a space here, so the cut must not end with it.
        let cut = purpose_text("aaaaaaaaaaaaaaaaaaaaaaaa bbbb");
        assert_eq!(cut, "aaaaaaaaaaaaaaaaaaaaaaaa");
    }
}
