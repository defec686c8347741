//! Pure types and rules: no I/O here.

pub mod account;
pub mod audit;
pub mod bank_feed;
pub mod banks;
pub(crate) mod csv_lines;
pub mod intent;
pub mod money;
pub mod number_words;
pub mod password;
pub mod payee;
pub mod payer;
pub mod reference;
pub mod registry;
pub mod schools;
pub mod sealing;
pub mod settlement;
pub mod statement;
pub mod statistics;
pub mod takings;
pub mod text;
pub mod transaction;
pub mod user;
pub mod vietqr;
