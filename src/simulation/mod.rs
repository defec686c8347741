//! `market-ledger simulate`: a commune like Tức Tranh played through the real pipeline, with
//! a ground truth of what happened to check the adoption statistics against.

pub mod feeds;
pub mod plan;
pub mod truth;
