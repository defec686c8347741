//! The feeds of each provider with their secrets opened, kept for a moment so a webhook
//! delivery does not read `bank_feeds` and open (decrypt) every secret again. Staff changing a
//! feed on this instance clears it at once; another instance serving the same database reads
//! the change within [`FEED_CACHE_LIFETIME`] (until then it still verifies with the secrets it
//! read before: a delivery signed only with the new secret is refused with a 401, which the
//! provider retries).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::bank_feed::Provider;
use crate::store::bank_feed::Feed;

/// How long opened feeds are used before they are read again. Monotonic time, not the service
/// clock: this bounds how stale a cache may be, it decides nothing about money.
pub const FEED_CACHE_LIFETIME: Duration = Duration::from_secs(2);

#[derive(Default)]
pub(super) struct FeedCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Counts the clears, so feeds read before a clear are not stored after it.
    generation: u64,
    entries: HashMap<Provider, (Instant, Arc<[Feed]>)>,
}

impl FeedCache {
    /// The provider's feeds if read less than [`FEED_CACHE_LIFETIME`] ago; otherwise the
    /// generation to hand back to [`Self::put`] with the feeds read now.
    pub(super) fn get(&self, provider: Provider) -> Result<Arc<[Feed]>, u64> {
        let state = self.state.lock().expect("feed cache lock");
        match state.entries.get(&provider) {
            Some((read_at, feeds)) if read_at.elapsed() < FEED_CACHE_LIFETIME => Ok(feeds.clone()),
            _ => Err(state.generation),
        }
    }

    /// Keeps `feeds`, read when the cache was at `generation`, unless it was cleared since.
    pub(super) fn put(&self, provider: Provider, generation: u64, feeds: Arc<[Feed]>) {
        let mut state = self.state.lock().expect("feed cache lock");
        if state.generation == generation {
            state.entries.insert(provider, (Instant::now(), feeds));
        }
    }

    /// Forgets every provider's feeds: a feed changed.
    pub(super) fn clear(&self) {
        let mut state = self.state.lock().expect("feed cache lock");
        state.generation += 1;
        state.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_read_before_a_clear_are_not_kept_after_it() {
        let cache = FeedCache::default();
        let generation = cache.get(Provider::Standard).unwrap_err();
        cache.clear();
        cache.put(Provider::Standard, generation, Arc::from(Vec::new()));
        assert!(cache.get(Provider::Standard).is_err());
    }

    #[test]
    fn feeds_are_kept_until_cleared() {
        let cache = FeedCache::default();
        let generation = cache.get(Provider::Standard).unwrap_err();
        cache.put(Provider::Standard, generation, Arc::from(Vec::new()));
        assert!(cache.get(Provider::Standard).is_ok());
        assert!(cache.get(Provider::SePay).is_err());
        cache.clear();
        assert!(cache.get(Provider::Standard).is_err());
    }
}
