//! Ledger accounts: what kind they are, how their balance reads, and the flags they enforce.

use uuid::Uuid;

use super::money::Currency;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    Asset,
    Liability,
    Equity,
    Revenue,
    Expense,
}

impl AccountKind {
    pub const ALL: [AccountKind; 5] = [
        AccountKind::Asset,
        AccountKind::Liability,
        AccountKind::Equity,
        AccountKind::Revenue,
        AccountKind::Expense,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Asset => "asset",
            AccountKind::Liability => "liability",
            AccountKind::Equity => "equity",
            AccountKind::Revenue => "revenue",
            AccountKind::Expense => "expense",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Assets and expenses grow with debits; the other kinds grow with credits.
    pub fn is_debit_normal(self) -> bool {
        matches!(self, AccountKind::Asset | AccountKind::Expense)
    }

    /// The balance as a person reads it: positive when the account holds its normal side.
    pub fn balance(self, debits_posted: i64, credits_posted: i64) -> i128 {
        let (debits, credits) = (i128::from(debits_posted), i128::from(credits_posted));
        if self.is_debit_normal() {
            debits - credits
        } else {
            credits - debits
        }
    }
}

/// Invariants the ledger refuses to break, checked inside the posting transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountFlags {
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
}

/// Which flag a set of posted totals would break, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagViolation {
    DebitsExceedCredits,
    CreditsExceedDebits,
}

impl AccountFlags {
    pub fn check(self, debits_posted: i64, credits_posted: i64) -> Result<(), FlagViolation> {
        if self.debits_must_not_exceed_credits && debits_posted > credits_posted {
            return Err(FlagViolation::DebitsExceedCredits);
        }
        if self.credits_must_not_exceed_debits && credits_posted > debits_posted {
            return Err(FlagViolation::CreditsExceedDebits);
        }
        Ok(())
    }
}

/// A unique, human-chosen account code such as `bank:970436:0123456789` or `payee:V042`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account code must be 1 to 64 characters of letters, digits and : _ - . (got {0:?})")]
pub struct InvalidAccountCode(pub String);

impl AccountCode {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Result<Self, InvalidAccountCode> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.');
        // A code that parses as a UUID would be ambiguous with account ids in paths.
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.chars().all(allowed)
            && Uuid::parse_str(text).is_err();
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidAccountCode(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account as the ledger stores it, without its balance.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: AccountKind,
    pub currency: Currency,
    pub flags: AccountFlags,
    pub created_at: i64,
}

/// Posted totals of an account. `entry_count` is the sequence number of its latest entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub entry_count: i64,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub code: AccountCode,
    pub name: String,
    pub kind: AccountKind,
    pub currency: Currency,
    pub flags: AccountFlags,
}

/// How a request names an account: by id or by code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccountRef {
    Id(Uuid),
    Code(String),
}

impl AccountRef {
    pub fn parse(text: &str) -> Self {
        match Uuid::parse_str(text) {
            Ok(id) => AccountRef::Id(id),
            Err(_) => AccountRef::Code(text.to_owned()),
        }
    }
}

impl std::fmt::Display for AccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountRef::Id(id) => write!(f, "{id}"),
            AccountRef::Code(code) => f.write_str(code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_follows_the_normal_side() {
        assert_eq!(AccountKind::Asset.balance(100, 30), 70);
        assert_eq!(AccountKind::Liability.balance(100, 30), -70);
        assert_eq!(AccountKind::Revenue.balance(0, 30), 30);
    }

    #[test]
    fn flags_catch_overdraft() {
        let flags = AccountFlags {
            debits_must_not_exceed_credits: true,
            credits_must_not_exceed_debits: false,
        };
        assert_eq!(flags.check(100, 100), Ok(()));
        assert_eq!(
            flags.check(101, 100),
            Err(FlagViolation::DebitsExceedCredits)
        );
    }

    #[test]
    fn account_codes() {
        assert!(AccountCode::parse("bank:970436:0123456789").is_ok());
        assert!(AccountCode::parse("payee:V042").is_ok());
        assert!(AccountCode::parse("").is_err());
        assert!(AccountCode::parse("has space").is_err());
        assert!(AccountCode::parse(&"x".repeat(65)).is_err());
        assert!(AccountCode::parse("0190a4c2-7b7e-7c4e-9d0e-2f0f0c9a1b2c").is_err());
    }
}
