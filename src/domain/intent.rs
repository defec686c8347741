//! Payment intents: one expected payment to a payee, for an amount, named by a reference that
//! is the purpose text of its dynamic VietQR code.

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntentStatus {
    /// Waiting for the transfer.
    Pending,
    Paid,
    /// Less than the amount arrived; staff settle the rest.
    PartiallyPaid,
    /// Its time ran out before any money arrived.
    Expired,
    Cancelled,
}

impl IntentStatus {
    pub const ALL: [IntentStatus; 5] = [
        IntentStatus::Pending,
        IntentStatus::Paid,
        IntentStatus::PartiallyPaid,
        IntentStatus::Expired,
        IntentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IntentStatus::Pending => "pending",
            IntentStatus::Paid => "paid",
            IntentStatus::PartiallyPaid => "partially_paid",
            IntentStatus::Expired => "expired",
            IntentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        IntentStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Shortest and longest life a new intent may be given: a stall sale needs minutes, a school
/// fee notice weeks.
pub const MIN_EXPIRES_IN_SECONDS: u32 = 60;
pub const MAX_EXPIRES_IN_SECONDS: u32 = 90 * 24 * 3600;
pub const DEFAULT_EXPIRES_IN_SECONDS: u32 = 15 * 60;

/// A payment intent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntent {
    pub id: Uuid,
    pub payee_id: Uuid,
    pub collection_account_id: Uuid,
    pub reference: String,
    /// Đồng.
    pub amount: i64,
    pub description: Option<String>,
    /// The status as last written; read [`PaymentIntent::status`] instead.
    pub stored_status: IntentStatus,
    pub qr_payload: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub created_by: Uuid,
    pub cancelled_at: Option<i64>,
    /// Đồng received for it so far; a partial payment leaves it below `amount`.
    pub paid_amount: i64,
    /// Who pays it, when the issuer named them (a pupil's household): at most one of these.
    pub payer_resident_id: Option<Uuid>,
    pub payer_household_id: Option<Uuid>,
}

impl PaymentIntent {
    /// The status at `now`. A pending intent past its expiry is expired whether or not the
    /// background sweep has written that yet, so no reader ever sees a stale "pending".
    pub fn status(&self, now: i64) -> IntentStatus {
        match self.stored_status {
            IntentStatus::Pending if self.expires_at <= now => IntentStatus::Expired,
            status => status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(stored_status: IntentStatus, expires_at: i64) -> PaymentIntent {
        PaymentIntent {
            id: Uuid::nil(),
            payee_id: Uuid::nil(),
            collection_account_id: Uuid::nil(),
            reference: "8K2H9QX4".into(),
            amount: 1,
            description: None,
            stored_status,
            qr_payload: String::new(),
            expires_at,
            created_at: 0,
            created_by: Uuid::nil(),
            cancelled_at: None,
            paid_amount: 0,
            payer_resident_id: None,
            payer_household_id: None,
        }
    }

    #[test]
    fn a_pending_intent_reads_expired_from_its_expiry_on() {
        let pending = intent(IntentStatus::Pending, 1_000);
        assert_eq!(pending.status(999), IntentStatus::Pending);
        assert_eq!(pending.status(1_000), IntentStatus::Expired);
        assert_eq!(
            intent(IntentStatus::Paid, 1_000).status(5_000),
            IntentStatus::Paid
        );
        assert_eq!(
            intent(IntentStatus::Cancelled, 1_000).status(5_000),
            IntentStatus::Cancelled
        );
    }

    #[test]
    fn statuses_round_trip() {
        for status in IntentStatus::ALL {
            assert_eq!(IntentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(IntentStatus::parse("PENDING"), None);
    }
}
