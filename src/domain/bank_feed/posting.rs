//! How the ledger transactions the bank feed posts are worded: a recorded transfer, and a
//! suspense resolution. Text from the bank is cut to the ledger's limits rather than refused:
//! the money moved whatever the memo says.

use uuid::Uuid;

use super::matching::Leg;
use super::resolution::ResolutionAction;
use super::BankTransaction;
use crate::domain::money::{Amount, AmountError, Currency};
use crate::domain::transaction::{
    NewTransaction, Posting, TransactionDraft, TransactionError, MAX_DESCRIPTION_CHARS,
    MAX_REFERENCE_CHARS,
};

/// A bank-feed posting that cannot be built: the plan it came from is wrong (a bug, never bad
/// input: the transfer was validated when it was parsed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedPostingError {
    #[error("bank-feed posting amount: {0}")]
    Amount(#[from] AmountError),
    #[error("bank-feed posting: {0}")]
    Transaction(#[from] TransactionError),
}

/// The ledger transaction a bank transaction posts.
pub fn transfer_transaction(
    id: Uuid,
    bank: &BankTransaction,
    bank_transaction_id: Uuid,
    intent_reference: Option<&str>,
    legs: &[Leg],
    now: i64,
) -> Result<NewTransaction, FeedPostingError> {
    let description = format!(
        "Bank transfer {}: {}",
        bank.direction.as_str(),
        bank.description.trim()
    );
    let reference = intent_reference
        .map(str::to_owned)
        .or_else(|| bank.reference.clone());
    let metadata = serde_json::json!({
        "bank_transaction_id": bank_transaction_id,
        "provider": bank.provider.as_str(),
        "provider_transaction_id": bank.provider_transaction_id,
    });
    let effective_at = bank.occurred_at.timestamp_micros().min(now);
    feed_transaction(
        id,
        (description, reference, metadata),
        (effective_at, now),
        legs,
    )
}

/// The ledger transaction a suspense resolution posts.
pub fn resolution_transaction(
    id: Uuid,
    bank_transaction_id: Uuid,
    action: ResolutionAction,
    note: &str,
    legs: &[Leg],
    now: i64,
) -> Result<NewTransaction, FeedPostingError> {
    let description = format!("Suspense resolved ({}): {}", action.as_str(), note.trim());
    let metadata = serde_json::json!({ "bank_transaction_id": bank_transaction_id });
    feed_transaction(id, (description, None, metadata), (now, now), legs)
}

/// Builds a VND transaction from legs with this (description, reference, metadata) and
/// (effective at, created at), cutting bank text to the ledger's limits.
fn feed_transaction(
    id: Uuid,
    (description, reference, metadata): (String, Option<String>, serde_json::Value),
    (effective_at, created_at): (i64, i64),
    legs: &[Leg],
) -> Result<NewTransaction, FeedPostingError> {
    let mut draft = TransactionDraft {
        id,
        id_from_client: false,
        description,
        reference,
        metadata: Some(metadata.to_string()),
        effective_at,
        created_at,
        reversal_of: None,
    };
    let postings = legs
        .iter()
        .map(|&(debit, credit, amount)| {
            Ok(Posting {
                debit,
                credit,
                amount: Amount::from_minor(amount)?,
                currency: Currency::Vnd,
            })
        })
        .collect::<Result<Vec<_>, FeedPostingError>>()?;
    if let Some((cut, _)) = draft.description.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        draft.description.truncate(cut);
    }
    draft.reference = draft
        .reference
        .filter(|r| (1..=MAX_REFERENCE_CHARS).contains(&r.chars().count()));
    Ok(NewTransaction::new(draft, postings)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bank_feed::{Direction, Provider};
    use chrono::{TimeZone, Utc};

    #[test]
    fn long_memos_are_cut_and_the_intent_reference_wins() {
        let bank = BankTransaction {
            provider: Provider::Casso,
            provider_transaction_id: "1".into(),
            account_number: "1".into(),
            direction: Direction::In,
            amount: 5,
            description: "x".repeat(5000),
            occurred_at: Utc.timestamp_micros(2_000).unwrap(),
            running_balance: None,
            reference: Some("FT1".into()),
            payer: None,
        };
        let legs = [(Uuid::from_u128(1), Uuid::from_u128(2), 5)];
        let t = transfer_transaction(
            Uuid::from_u128(9),
            &bank,
            Uuid::nil(),
            Some("TT1"),
            &legs,
            1_000,
        )
        .unwrap();
        assert_eq!(t.description.chars().count(), MAX_DESCRIPTION_CHARS);
        assert_eq!(t.reference.as_deref(), Some("TT1"));
        // Never effective after it was recorded.
        assert_eq!(t.effective_at, 1_000);
    }
}
