//! Where Teams SSO de-duplication claims live (docs/protocol.md §8, de-duplication).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::UserTokenError;

/// An insert-if-absent store with a TTL: the first caller to claim a key within its TTL wins.
/// Every replica of a bot must share one (a [`RedisExchangeStore`](crate::RedisExchangeStore),
/// feature `redis`), or duplicates arriving at different replicas are all processed.
#[async_trait]
pub trait ExchangeStore: Send + Sync + Debug {
    /// Claims `key` for `ttl`. `Ok(true)`: this caller won; `Ok(false)`: someone else holds it.
    ///
    /// # Errors
    ///
    /// [`UserTokenError::store`] when the store cannot answer (the exchange is then answered 500,
    /// and Teams resends it).
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, UserTokenError>;
}

/// The in-memory [`ExchangeStore`] (`MemoryExchangeStore::default()`): right for one process only.
#[derive(Debug, Default)]
pub struct MemoryExchangeStore {
    map: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl ExchangeStore for MemoryExchangeStore {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, UserTokenError> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, until| *until > now);
        if map.contains_key(key) {
            return Ok(false);
        }
        map.insert(key.to_owned(), now + ttl);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_claim_wins_until_the_ttl_passes() {
        let store = MemoryExchangeStore::default();
        let ttl = Duration::from_millis(50);
        assert!(store.claim("msteams/c/1", ttl).await.unwrap());
        assert!(!store.claim("msteams/c/1", ttl).await.unwrap());
        assert!(store.claim("msteams/c/2", ttl).await.unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(store.claim("msteams/c/1", ttl).await.unwrap());
    }
}
