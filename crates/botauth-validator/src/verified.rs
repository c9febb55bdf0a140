//! The verified-token cache: Bot Service sends the same token on many activities for up to an
//! hour, so a successful signature check is remembered, keyed by the token's SHA-256. What
//! depends on the request or on time (`exp`/`nbf`, `serviceurl`, endorsements, the key still being
//! published) is checked again on every hit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::claims::BotClaims;
use crate::keys::KeyCache;

/// What a successful validation leaves behind.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) claims: BotClaims,
    pub(crate) nbf: Option<i64>,
    pub(crate) exp: i64,
    pub(crate) kid: String,
    pub(crate) keys: Arc<KeyCache>,
}

pub(crate) type Digest = [u8; 32];

pub(crate) fn digest(token: &str) -> Digest {
    openssl::sha::sha256(token.as_bytes())
}

/// A bounded map from token digest to its verification.
#[derive(Debug)]
pub(crate) struct VerifiedCache {
    capacity: usize,
    map: Mutex<HashMap<Digest, Arc<Verified>>>,
}

impl VerifiedCache {
    pub(crate) fn new(capacity: usize) -> Self {
        VerifiedCache {
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(&self, key: &Digest) -> Option<Arc<Verified>> {
        if self.capacity == 0 {
            return None;
        }
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    pub(crate) fn insert(&self, key: Digest, value: Arc<Verified>, now_unix: i64, skew: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(&key) {
            // Expired entries go first; if the cache is still full (a flood of distinct valid
            // tokens), an arbitrary eighth makes room, which keeps insertion O(1) amortised.
            map.retain(|_, v| v.exp.saturating_add(skew) > now_unix);
            if map.len() >= self.capacity {
                let drop: Vec<Digest> = map
                    .keys()
                    .take(self.capacity.div_ceil(8))
                    .copied()
                    .collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, value);
    }

    pub(crate) fn remove(&self, key: &Digest) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Parts;
    use crate::profile::ProfileKind;

    fn entry(keys: &Arc<KeyCache>, exp: i64) -> Arc<Verified> {
        Arc::new(Verified {
            claims: BotClaims::from(Parts {
                profile: ProfileKind::BotService,
                app_id: None,
                issuer: "i".into(),
                audience: "a".into(),
                service_url: None,
                caller_id: None,
                tenant_id: None,
                expires_at: exp,
                claims: serde_json::Map::new(),
            }),
            nbf: None,
            exp,
            kid: "k".into(),
            keys: Arc::clone(keys),
        })
    }

    #[test]
    fn bounded_and_expired_first() {
        let keys = Arc::new(KeyCache::fixed(
            "fixed".into(),
            HashMap::new(),
            Arc::new(botauth_core::SystemClock),
        ));
        let cache = VerifiedCache::new(16);
        // Eight expired entries (exp 0) and eight live ones fill it.
        for i in 0..16u8 {
            let exp = if i < 8 { 0 } else { 10_000 };
            cache.insert(digest(&i.to_string()), entry(&keys, exp), 1_000, 300);
        }
        assert_eq!(cache.len(), 16);
        cache.insert(digest("new"), entry(&keys, 10_000), 1_000, 300);
        assert_eq!(cache.len(), 9, "the expired eight went first");
        assert!(cache.get(&digest("new")).is_some());
        assert!(cache.get(&digest("15")).is_some());
        assert!(cache.get(&digest("0")).is_none());
        // All live: an eighth is dropped to make room, never more than the capacity kept.
        for i in 100..200u32 {
            cache.insert(digest(&i.to_string()), entry(&keys, 10_000), 1_000, 300);
            assert!(cache.len() <= 16);
        }
        cache.remove(&digest("199"));
        assert!(cache.get(&digest("199")).is_none());
        let off = VerifiedCache::new(0);
        off.insert(digest("x"), entry(&keys, 10_000), 0, 0);
        assert!(off.get(&digest("x")).is_none());
    }
}
