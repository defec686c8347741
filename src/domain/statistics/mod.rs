//! Adoption statistics: who paid online, as shares of the commune's residents, and the
//! suppression that keeps published figures from pointing at anyone.

pub mod indicators;
pub mod period;
pub mod suppression;
