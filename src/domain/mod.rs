//! Pure types and rules: no I/O here.

pub mod account;
pub mod money;
pub mod transaction;
pub mod user;
