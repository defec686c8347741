//! Black-box tests against the real server, on SQLite and (with TEST_DATABASE_URL) PostgreSQL.

mod common;

mod accounts;
mod audit;
mod auth;
mod backup;
mod browser;
mod concurrency;
mod contract;
mod events;
mod feed_secrets;
mod http;
mod idempotency;
mod imports;
mod instances;
mod intents;
mod payees;
mod payers;
mod process;
mod qr;
mod registry;
mod school_corrections;
mod school_files;
mod school_roster;
mod schools;
mod simulation;
mod statements;
mod statistics;
mod transactions;
mod users;
mod verify;
mod web;
mod webhook_groups;
mod webhooks;
