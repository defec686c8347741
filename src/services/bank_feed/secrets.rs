//! Feed secrets sealed at rest: sealed when staff set them, opened to verify a delivery, and
//! sealed again under the current key when the service starts (rows written before secrets
//! were sealed, or under a key since rotated out).

use uuid::Uuid;

use crate::domain::sealing::{SealingError, SealingKeys};
use crate::store::bank_feed::{Feed, StoredSecrets};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(
        "the webhook feed secrets of collection account {account} cannot be opened: {error}. \
         Start with the key they were sealed with in MARKET_LEDGER_SECRET_KEY or \
         MARKET_LEDGER_PREVIOUS_SECRET_KEYS"
    )]
    Key { account: Uuid, error: SealingError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `secrets` sealed under the current key for the collection account.
pub fn seal(keys: &SealingKeys, collection_account_id: Uuid, secrets: &[String]) -> StoredSecrets {
    StoredSecrets {
        key_id: Some(keys.current_id().to_owned()),
        values: secrets
            .iter()
            .map(|secret| keys.seal(secret, collection_account_id.as_bytes()))
            .collect(),
    }
}

/// The secrets readable, as stored before sealing.
pub fn open(
    keys: &SealingKeys,
    collection_account_id: Uuid,
    stored: &StoredSecrets,
) -> Result<Vec<String>, SealingError> {
    let Some(key_id) = &stored.key_id else {
        return Ok(stored.values.clone());
    };
    stored
        .values
        .iter()
        .map(|sealed| keys.open(key_id, sealed, collection_account_id.as_bytes()))
        .collect()
}

/// The feeds with their secrets readable (no key id). A feed whose secrets do not open is left
/// out, logged: start-up opened them all, so only a row changed behind the service's back can.
pub fn opened(keys: &SealingKeys, feeds: Vec<Feed>) -> Vec<Feed> {
    feeds
        .into_iter()
        .filter_map(
            |mut feed| match open(keys, feed.collection_account_id, &feed.secrets) {
                Ok(values) => {
                    feed.secrets = StoredSecrets {
                        key_id: None,
                        values,
                    };
                    Some(feed)
                }
                Err(error) => {
                    tracing::error!(collection_account = %feed.collection_account_id, %error,
                    "feed secrets do not open; deliveries for this account are refused");
                    None
                }
            },
        )
        .collect()
}

/// Seals every feed's secrets that are readable or under a previous key under the current key,
/// in one transaction; how many feeds it changed. Fails, changing nothing, when some do not
/// open with the configured keys.
pub async fn reseal_all(store: &dyn Store, keys: &SealingKeys) -> Result<usize, ResealError> {
    let mut unit = store.begin().await?;
    let stale = unit.feed_secrets_not_under(keys.current_id()).await?;
    for (account, stored) in &stale {
        let secrets = open(keys, *account, stored).map_err(|error| ResealError::Key {
            account: *account,
            error,
        })?;
        unit.reseal_feed_secrets(*account, &seal(keys, *account, &secrets))
            .await?;
    }
    unit.commit().await?;
    Ok(stale.len())
}
