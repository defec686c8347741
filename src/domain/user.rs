//! Users and roles.

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Staff,
    /// Read-only access to the ledger, for audits.
    Auditor,
    /// A market vendor, bound to one payee.
    Vendor,
    /// A school accountant, bound to one payee.
    School,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Staff,
        Role::Auditor,
        Role::Vendor,
        Role::School,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Auditor => "auditor",
            Role::Vendor => "vendor",
            Role::School => "school",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Vendor and school users act for exactly one payee.
    pub fn is_payee_bound(self) -> bool {
        matches!(self, Role::Vendor | Role::School)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("username must be 3 to 64 characters of lowercase letters, digits, '.', '_' or '-'")]
pub struct InvalidUsername;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Self, InvalidUsername> {
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if (3..=64).contains(&text.len()) && text.chars().all(allowed) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub payee_id: Option<Uuid>,
    /// A disabled user cannot log in, and tokens already issued to them are refused.
    pub disabled: bool,
    /// Set when an admin resets the password: the user may do nothing but change it.
    pub must_change_password: bool,
    /// Raised whenever the password changes; a token carries the value it was issued under,
    /// so tokens issued before a reset stop working.
    pub credentials_version: i64,
    /// Microseconds.
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

impl User {
    pub fn standing(&self) -> Standing {
        Standing {
            role: self.role,
            payee_id: self.payee_id,
            disabled: self.disabled,
            must_change_password: self.must_change_password,
            credentials_version: self.credentials_version,
        }
    }
}

/// What every request checks about its caller now, rather than what their token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: Role,
    pub payee_id: Option<Uuid>,
    pub disabled: bool,
    pub must_change_password: bool,
    pub credentials_version: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("role {0:?} must be bound to a payee")]
    PayeeRequired(&'static str),
    #[error("only vendor and school users are bound to a payee")]
    PayeeNotAllowed,
}

/// Vendor and school users act for exactly one payee; no other role acts for one.
pub fn check_binding(role: Role, payee_id: Option<Uuid>) -> Result<(), BindingError> {
    match (role.is_payee_bound(), payee_id) {
        (true, None) => Err(BindingError::PayeeRequired(role.as_str())),
        (false, Some(_)) => Err(BindingError::PayeeNotAllowed),
        _ => Ok(()),
    }
}
