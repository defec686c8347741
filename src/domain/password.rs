//! What a password must be: long enough, and not one people commonly choose.
//!
//! `common_passwords.txt` is Django's list of common passwords (20,000 from Royce Williams'
//! analysis of leaked password sets), lower-cased, with Vietnamese ones added ("matkhau",
//! "anhyeuem", "123456789abc", common names and place names), keeping only entries that can
//! decide a password of the minimum length: entries of that length, and words a padded
//! password can be built around.

use std::collections::HashSet;
use std::sync::LazyLock;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// A core shorter than this is not a word people pick; "x" in "8374#928!x72" is not one.
const MIN_CORE_CHARS: usize = 4;

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common_passwords.txt").lines().collect());

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("this password is one people commonly choose (or one padded with digits and symbols); choose another")]
    Common,
}

/// A password that met the rules when it was chosen.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(text: String) -> Result<Self, WeakPassword> {
        if text.chars().count() < MIN_PASSWORD_CHARS {
            return Err(WeakPassword::TooShort);
        }
        if is_common(&text) {
            return Err(WeakPassword::Common);
        }
        Ok(Self(text))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

/// The password itself, or the word inside it once digits, symbols and spaces padding it are
/// taken off ("matkhau123456", "!!sunshine2024"), is on the list.
fn is_common(text: &str) -> bool {
    let lowered = text.to_lowercase();
    let core =
        lowered.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ');
    COMMON.contains(lowered.as_str())
        || (core.chars().count() >= MIN_CORE_CHARS && COMMON.contains(core))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Option<WeakPassword> {
        NewPassword::parse(text.to_owned()).err()
    }

    #[test]
    fn short_passwords_are_refused() {
        assert_eq!(refused("ngắn quá"), Some(WeakPassword::TooShort));
        // Counted in characters, not bytes: eleven characters with diacritics are too short.
        assert_eq!(refused("đồng bằng ơi"), None);
        assert_eq!(refused("đồngbằngơi!"), Some(WeakPassword::TooShort));
    }

    #[test]
    fn common_passwords_and_padded_common_words_are_refused() {
        for text in [
            "123456789abc",
            "matkhau123456",
            "MatKhau123456",
            "anhyeuem2024!",
            "!!sunshine2024",
            "qwerty123456",
            "password1234",
            "1234567890123",
        ] {
            assert_eq!(refused(text), Some(WeakPassword::Common), "{text}");
        }
    }

    #[test]
    fn uncommon_passwords_are_accepted() {
        for text in [
            "chè Tân Cương xanh",
            "8374#928!x72",
            "a long test password",
            "matkhau của bà Hoa",
        ] {
            assert_eq!(refused(text), None, "{text}");
        }
    }
}
