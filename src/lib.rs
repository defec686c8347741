//! market-ledger: a payment ledger for a commune's cashless market.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod services;
pub mod simulation;
pub mod startup;
pub mod store;
pub mod telemetry;
