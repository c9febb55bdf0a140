//! The verified-token cache: Bot Service sends the same token on many activities for up to an
//! hour, so a successful signature check is remembered, keyed by the token's SHA-256. What
//! depends on time (`exp`/`nbf`, the key still being published) is checked again on every hit;
//! what depends on the request (`serviceurl`, endorsements, the bot's claims checks) is not
//! part of the cached verification at all and runs on every request, hit or miss
//! ([`Validator::check_activity`](crate::Validator::check_activity)).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use crate::claims::BotClaims;
use crate::keys::{Jwk, KeyCache};
use crate::profile::ProfileKind;

/// What a successful validation leaves behind.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) claims: BotClaims,
    pub(crate) nbf: Option<i64>,
    pub(crate) exp: i64,
    pub(crate) kid: String,
    pub(crate) keys: Arc<KeyCache>,
    /// The key that verified the signature, and the generation of the key set it came from.
    pub(crate) key: Arc<Jwk>,
    pub(crate) generation: u64,
}

/// A token whose signature, `iss`, `aud`, `exp`/`nbf` and profile rules (tenant, caller) have
/// passed: everything that can be judged without the activity. It is the first half of
/// [`Validator::validate`](crate::Validator::validate), from
/// [`Validator::verify_token`](crate::Validator::verify_token) or
/// [`Validator::verify_header`](crate::Validator::verify_header); the second half,
/// [`Validator::check_activity`](crate::Validator::check_activity), holds it against the activity
/// (`serviceurl`, endorsements, the bot's claims checks) and only then hands out the
/// [`BotClaims`].
///
/// The split lets a server authenticate a request before it reads the body. The claims stay
/// inside on purpose: a token alone does not say which `serviceUrl` it may reply to, and claims
/// used without that check would let a token for one conversation service be replayed with an
/// activity that names another.
#[derive(Clone)]
pub struct VerifiedToken {
    pub(crate) verified: Arc<Verified>,
    /// The signing key as published now, when the keys were refetched since the verification
    /// was cached (its endorsements may have changed); `None`: the key that verified it.
    pub(crate) refetched_key: Option<Arc<Jwk>>,
    /// The validator that verified it: only that one may check it against an activity.
    pub(crate) validator: u64,
}

impl VerifiedToken {
    /// The signing key as currently published.
    pub(crate) fn key(&self) -> &Jwk {
        self.refetched_key.as_deref().unwrap_or(&self.verified.key)
    }

    /// The trust profile that accepted the token.
    pub fn profile(&self) -> ProfileKind {
        self.verified.claims.profile()
    }

    /// `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> i64 {
        self.verified.exp
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("profile", &self.profile())
            .field("issuer", &self.verified.claims.issuer())
            .field("expires_at", &self.verified.exp)
            .finish_non_exhaustive()
    }
}

pub(crate) type Digest = [u8; 32];

pub(crate) fn digest(token: &str) -> Digest {
    openssl::sha::sha256(token.as_bytes())
}

/// The key is already a SHA-256 digest: its first eight bytes are as good a hash as any, and
/// cheaper than hashing it again.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

type Map = HashMap<Digest, Arc<Verified>, BuildHasherDefault<DigestHasher>>;
type Shard = Mutex<Map>;

/// Shards keep concurrent requests on different tokens off each other's lock.
const SHARDS: usize = 16;

/// A bounded map from token digest to its verification.
#[derive(Debug)]
pub(crate) struct VerifiedCache {
    /// Capacity per shard.
    capacity: usize,
    shards: Box<[Shard]>,
}

impl VerifiedCache {
    pub(crate) fn new(capacity: usize) -> Self {
        VerifiedCache {
            capacity: capacity.div_ceil(SHARDS),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    fn shard(&self, key: &Digest) -> std::sync::MutexGuard<'_, Map> {
        // The last byte picks the shard; the first eight feed the map's hash.
        self.shards[usize::from(key[31]) % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry for `key`. The lock is held only for the lookup: the rules that run on a hit,
    /// the bot's own claims checks among them, run outside it.
    pub(crate) fn get(&self, key: &Digest) -> Option<Arc<Verified>> {
        if self.capacity == 0 {
            return None;
        }
        self.shard(key).get(key).cloned()
    }

    pub(crate) fn insert(&self, key: Digest, value: Arc<Verified>, now_unix: i64, skew: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.shard(&key);
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
        self.shard(key).remove(key);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Parts;
    use crate::profile::ProfileKind;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jwk() -> Arc<Jwk> {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let doc = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k",
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()), "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec())}]});
        crate::keys::parse_jwks(&doc, "http://127.0.0.1/k")
            .unwrap()
            .remove("k")
            .unwrap()
    }

    fn entry(keys: &Arc<KeyCache>, key: &Arc<Jwk>, exp: i64) -> Arc<Verified> {
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
            key: Arc::clone(key),
            generation: 0,
        })
    }

    /// Tokens whose digests fall in shard 0.
    fn shard0(n: usize) -> Vec<Digest> {
        (0u32..)
            .map(|i| digest(&i.to_string()))
            .filter(|d| usize::from(d[31]) % SHARDS == 0)
            .take(n)
            .collect()
    }

    #[test]
    fn bounded_and_expired_first() {
        let keys = Arc::new(KeyCache::fixed(
            "fixed".into(),
            HashMap::new(),
            Arc::new(botauth_core::SystemClock),
        ));
        let key = jwk();
        // Ten per shard.
        let cache = VerifiedCache::new(10 * SHARDS);
        let digests = shard0(12);
        for d in &digests[..10] {
            cache.insert(*d, entry(&keys, &key, 0), 1_000, 300);
        }
        assert_eq!(cache.len(), 10);
        // The shard is full of expired entries: they all go, the new one stays.
        cache.insert(digests[10], entry(&keys, &key, 10_000), 1_000, 300);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&digests[10]).is_some());
        assert!(cache.get(&digests[0]).is_none());
        // All live: room is made, never more than the capacity kept, the newest always present.
        for i in 0..2_000u32 {
            let d = digest(&format!("live-{i}"));
            cache.insert(d, entry(&keys, &key, 10_000), 1_000, 300);
            assert!(cache.get(&d).is_some());
            assert!(cache.len() <= 10 * SHARDS);
        }
        cache.remove(&digests[10]);
        assert!(cache.get(&digests[10]).is_none());
        let off = VerifiedCache::new(0);
        off.insert(digests[11], entry(&keys, &key, 10_000), 0, 0);
        assert!(off.get(&digests[11]).is_none());
    }
}
