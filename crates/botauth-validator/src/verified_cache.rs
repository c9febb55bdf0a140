//! The verified-token cache: Bot Service sends the same token on many activities for up to an
//! hour, so a successful signature check is remembered, with the token itself. What
//! depends on time (`exp`/`nbf`, the key still being published) is checked again on every hit;
//! what depends on the request (`serviceurl`, endorsements, the bot's claims checks) is not
//! part of the cached verification at all and runs on every request, hit or miss
//! ([`Validator::check_activity`](crate::Validator::check_activity)).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::claims::BotClaims;
use crate::jwk::Jwk;
use crate::keys::KeyCache;
use crate::memo::{KeyCheck, Memos};
use crate::profile::ProfileKind;

/// What a successful validation leaves behind.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) claims: BotClaims,
    pub(crate) nbf: Option<i64>,
    pub(crate) exp: i64,
    pub(crate) kid: Arc<str>,
    pub(crate) keys: Arc<KeyCache>,
    /// The key that verified the signature, and the generation of the key set it came from.
    pub(crate) key: Arc<Jwk>,
    pub(crate) generation: u64,
}

impl Verified {
    /// A copy with claims of its own (their reference count not shared with this one's), for
    /// a thread's memo.
    pub(crate) fn own_copy(&self) -> Verified {
        Verified {
            claims: self.claims.own_copy(),
            nbf: self.nbf,
            exp: self.exp,
            kid: Arc::clone(&self.kid),
            keys: Arc::clone(&self.keys),
            key: Arc::clone(&self.key),
            generation: self.generation,
        }
    }
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

/// How many of a token's last bytes pick its bucket (see [`TokenHasher`]).
const HASHED_TAIL: usize = 64;

/// Shards keep concurrent requests on different tokens off each other's lock.
const SHARDS: usize = 16;

/// What an entry is charged against the byte bound besides twice its token (the token, and its
/// claims once a handler has them parsed into a map: about its size again): the verification and
/// the map's own bookkeeping.
const ENTRY_OVERHEAD: usize = 256;

/// The cache's hash of a token: a folded-multiply hash of the token's end (below), keyed with a
/// secret random seed per cache, so nobody outside can aim tokens at one bucket. It only picks the
/// bucket: a hit also compares every byte of the token, so a collision, crafted or not, can
/// never answer for another token (it only costs that token a full verification).
///
/// The slot hashes only the token's last [`HASHED_TAIL`] bytes: the end of its signature.
/// Entries are made only for tokens whose signature verified, and the signatures of two
/// different messages share their last 48 bytes by chance alone (about 2⁻³⁸⁴); a token made up
/// to share a cached token's tail lands in its bucket and is told apart by the full comparison.
/// Hashing the whole token cost 0.8 % of a new token's verification.
#[derive(Clone, Copy)]
struct TokenHasher {
    seed: [u64; 4],
}

impl TokenHasher {
    fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // std's `RandomState` carries per-process random keys; four hashes of it are the seed.
        let state = std::collections::hash_map::RandomState::new();
        let mut seed = [0u64; 4];
        for (i, s) in (0u64..).zip(seed.iter_mut()) {
            let mut h = state.build_hasher();
            h.write_u64(i);
            // An all-zero lane would weaken the mixing; the odds are nil, the cost is one `|`.
            *s = h.finish() | 1;
        }
        TokenHasher { seed }
    }

    fn hash(&self, bytes: &[u8]) -> u64 {
        let [k0, k1, k2, k3] = self.seed;
        let (mut a, mut b) = (k0 ^ bytes.len() as u64, k1);
        let mut chunks = bytes.chunks_exact(32);
        // Two independent lanes, so that the multiplications overlap.
        for c in &mut chunks {
            a = fold(a ^ word(c, 0), k2 ^ word(c, 8));
            b = fold(b ^ word(c, 16), k3 ^ word(c, 24));
        }
        let rest = chunks.remainder();
        let mut tail = [0u8; 32];
        tail[..rest.len()].copy_from_slice(rest);
        a = fold(a ^ word(&tail, 0), k2 ^ word(&tail, 8));
        b = fold(b ^ word(&tail, 16), k3 ^ word(&tail, 24));
        fold(a ^ k3, b ^ k0)
    }
}

/// The eight bytes at `at` (the caller guarantees `at + 8 <= bytes.len()`).
fn word(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<8>)
        .map_or(0, |w| u64::from_le_bytes(*w))
}

fn fold(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

/// One remembered verification, with the token it is for. The token is a bearer credential:
/// it is wiped when the entry leaves the cache (evicted, replaced, removed or dropped).
struct Entry {
    /// Holds the token too: see [`Entry::matches`].
    verified: Arc<Verified>,
}

/// A token's bytes, zeroed when dropped.
#[derive(Clone)]
pub(crate) struct TokenBytes(Box<[u8]>);

impl TokenBytes {
    pub(crate) fn new(token: &str) -> Self {
        TokenBytes(Box::from(token.as_bytes()))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is `token`, every byte of it. The last bytes (the signature's, which differ
    /// between any two tokens) are compared first, so that another token of the same issuer,
    /// whose first hundreds of bytes are often the same, is told apart at once.
    pub(crate) fn matches(&self, token: &str) -> bool {
        let (mine, theirs) = (&*self.0, token.as_bytes());
        mine.len() == theirs.len()
            && mine.last_chunk::<8>() == theirs.last_chunk::<8>()
            && mine == theirs
    }
}

impl Drop for TokenBytes {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.0);
        #[cfg(test)]
        tests::WIPED.with(|w| w.set(w.get() + 1));
    }
}

impl Entry {
    /// Whether this is the entry of `token`: its claims keep the token, compared in full.
    fn matches(&self, token: &str) -> bool {
        self.verified.claims.is_of(token)
    }

    fn cost(&self) -> usize {
        self.verified
            .claims
            .token_len()
            .saturating_mul(2)
            .saturating_add(ENTRY_OVERHEAD)
    }
}

/// The hash is already mixed: the map uses it as it is.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Default)]
struct Shard {
    map: HashMap<u64, Entry, BuildHasherDefault<Prehashed>>,
    bytes: usize,
}

impl Shard {
    /// Whether there was an entry to remove.
    fn remove(&mut self, key: u64) -> bool {
        match self.map.remove(&key) {
            Some(old) => {
                self.bytes = self.bytes.saturating_sub(old.cost());
                true
            }
            None => false,
        }
    }
}

/// Counts the entries that left the cache, on a cache line of its own: it is read on every
/// memo hit of every thread, and must not share a line with anything written.
#[repr(align(128))]
#[derive(Default)]
struct Epoch(AtomicU64);

/// A bounded map from token to its verification, bounded both by entries and by bytes.
pub(crate) struct VerifiedCache {
    /// Entries per shard.
    capacity: usize,
    /// Bytes per shard (tokens and their verifications, approximately).
    max_bytes: usize,
    hasher: TokenHasher,
    shards: Box<[RwLock<Shard>]>,
    /// Advanced, under the shard's write lock, whenever entries leave the cache (evicted,
    /// replaced, removed): a memo entry made at an older epoch may be for a token the cache
    /// no longer vouches for, and is not used.
    epoch: Epoch,
    memos: Memos,
    doorkeeper: Doorkeeper,
}

/// The verified-token cache's admission rule: a token becomes an entry the second time it
/// verifies, not the first (a "doorkeeper", as in TinyLFU). Bot Service sends the same token
/// on every activity of a channel for up to an hour, so the token that pays twice for its
/// signature is then served from the cache for the rest of its life; a token used once (a
/// stream of distinct tokens) costs no copy kept, no entry, no eviction and no wipe, and keeps
/// no other token out. What it remembers of a token is its slot (a keyed hash of its end,
/// eight bytes) in a table of its own: a slot that matches by chance only admits a token one
/// sighting early, and an overwritten one only delays it.
struct Doorkeeper {
    seen: Box<[AtomicU64]>,
}

impl Doorkeeper {
    /// Slots remembered at most: 32 KiB, small enough to stay in the CPU's cache (at 128 KiB a
    /// new token's look-up here missed it, 1 % of the token's cost). A token seen once is
    /// remembered until a few thousand other tokens have been; Bot Service's comes back far
    /// sooner.
    const MAX: usize = 1 << 12;

    fn new(capacity: usize) -> Self {
        let len = capacity.clamp(1, Self::MAX).next_power_of_two();
        Doorkeeper {
            seen: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether `slot` was offered before (and, when not, remembers it).
    fn admit(&self, slot: Slot) -> bool {
        // `len` is a power of two; the low bits of the hash pick the place.
        let place = &self.seen[(slot.0 as usize) & (self.seen.len() - 1)];
        // A plain load first: the common case of a repeated token writes nothing shared.
        if place.load(Ordering::Relaxed) == slot.0 {
            return true;
        }
        place.swap(slot.0, Ordering::Relaxed) == slot.0
    }
}

impl fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("capacity", &(self.capacity * SHARDS))
            .field("max_bytes", &(self.max_bytes * SHARDS))
            .finish_non_exhaustive()
    }
}

/// Where a token lives in the cache: its hash. Computed once per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot(u64);

/// A shared-cache hit: the verification, and the cache's epoch when it was found.
pub(crate) struct Hit {
    pub(crate) verified: Arc<Verified>,
    epoch: u64,
}

impl VerifiedCache {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        VerifiedCache {
            capacity: capacity.div_ceil(SHARDS),
            max_bytes: max_bytes.div_ceil(SHARDS),
            hasher: TokenHasher::random(),
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            epoch: Epoch::default(),
            memos: Memos::new(capacity != 0 && max_bytes != 0),
            doorkeeper: Doorkeeper::new(capacity),
        }
    }

    fn off(&self) -> bool {
        self.capacity == 0 || self.max_bytes == 0
    }

    pub(crate) fn slot(&self, token: &str) -> Slot {
        if self.off() {
            return Slot(0);
        }
        let bytes = token.as_bytes();
        Slot(
            self.hasher
                .hash(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]),
        )
    }

    fn shard(&self, slot: Slot) -> &RwLock<Shard> {
        // The top bits pick the shard; the map buckets by the low ones.
        &self.shards[(slot.0 >> 60) as usize % SHARDS]
    }

    /// `token` in this thread's memo (see [`crate::memo`]), re-judged by `judge`; `None`: ask
    /// [`get`](Self::get).
    pub(crate) fn memo_get<R>(
        &self,
        token: &str,
        judge: impl FnOnce(&Arc<Verified>, &mut KeyCheck) -> Option<R>,
    ) -> Option<R> {
        if self.off() {
            return None;
        }
        let epoch = self.epoch.0.load(Ordering::Acquire);
        self.memos.lookup(epoch, token, judge)
    }

    /// Tells this thread's memo that `hit` passed its re-checks with `key`.
    pub(crate) fn memo_offer(&self, slot: Slot, token: &str, hit: &Hit, key: &KeyCheck) {
        self.memos
            .offer(slot.0, hit.epoch, token, &hit.verified, key);
    }

    /// The entry for `token`. The lock is held only for the lookup: the rules that run on a hit,
    /// the bot's own claims checks among them, run outside it.
    pub(crate) fn get(&self, slot: Slot, token: &str) -> Option<Hit> {
        if self.off() {
            return None;
        }
        let shard = self
            .shard(slot)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = shard.map.get(&slot.0)?;
        // Every byte: the hash only chose where to look.
        entry.matches(token).then(|| Hit {
            verified: Arc::clone(&entry.verified),
            // Read under the lock that removals take: a removal after this advances the epoch
            // past it, so a memo entry made from this hit is not used after the removal.
            epoch: self.epoch.0.load(Ordering::Acquire),
        })
    }

    /// Records that entries left the cache; called under the shard's write lock.
    fn lost_entries(&self) {
        self.epoch.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether a token that just verified, in `slot`, is to become an entry: the second time
    /// its slot is offered, not the first (see [`Doorkeeper`]).
    pub(crate) fn admit(&self, slot: Slot) -> bool {
        !self.off() && self.doorkeeper.admit(slot)
    }

    /// Whether two tokens share a place in the doorkeeper (then each pushes the other out).
    #[cfg(test)]
    pub(crate) fn share_a_doorkeeper_place(&self, a: &str, b: &str) -> bool {
        let mask = self.doorkeeper.seen.len() - 1;
        (self.slot(a).0 as usize) & mask == (self.slot(b).0 as usize) & mask
    }

    pub(crate) fn insert(&self, slot: Slot, value: Arc<Verified>, now_unix: i64, skew: i64) {
        if self.off() {
            return;
        }
        let entry = Entry { verified: value };
        let cost = entry.cost();
        if cost > self.max_bytes {
            return;
        }
        let mut shard = self
            .shard(slot)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let full = |s: &Shard| s.map.len() >= self.capacity || s.bytes + cost > self.max_bytes;
        let mut lost = false;
        if full(&shard) {
            // Another token under the same hash (a collision, or this token verified twice at
            // once) is replaced below anyway: it makes room first.
            lost |= shard.remove(slot.0);
        }
        if full(&shard) {
            // Expired entries go first; if the cache is still full (a flood of distinct valid
            // tokens), an arbitrary eighth makes room, which keeps insertion O(1) amortised.
            let mut freed = 0;
            shard.map.retain(|_, e| {
                let keep = e.verified.exp.saturating_add(skew) > now_unix;
                if !keep {
                    freed += e.cost();
                }
                keep
            });
            shard.bytes = shard.bytes.saturating_sub(freed);
            lost |= freed > 0;
            while full(&shard) {
                let room = shard.map.len().div_ceil(8).max(1);
                let drop: Vec<u64> = shard.map.keys().take(room).copied().collect();
                if drop.is_empty() {
                    break;
                }
                for k in drop {
                    lost |= shard.remove(k);
                }
            }
        }
        // One look-up for the common case: another token under the same hash is replaced (and
        // wiped), never shared.
        if let Some(old) = shard.map.insert(slot.0, entry) {
            shard.bytes = shard.bytes.saturating_sub(old.cost());
            lost = true;
        }
        shard.bytes += cost;
        if lost {
            self.lost_entries();
        }
    }

    /// Forgets `token` (its key was withdrawn). Another token under the same hash stays.
    pub(crate) fn remove(&self, slot: Slot, token: &str) {
        if self.off() {
            return;
        }
        let mut shard = self
            .shard(slot)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.map.get(&slot.0).is_some_and(|e| e.matches(token)) && shard.remove(slot.0) {
            self.lost_entries();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }

    #[cfg(test)]
    pub(crate) fn memo_entries(&self) -> usize {
        self.memos.held()
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).bytes)
            .sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::claims::Parts;
    use crate::profile::ProfileKind;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use std::cell::Cell;

    thread_local! {
        /// Tokens wiped on this thread (entries are dropped on the thread that evicts them).
        pub(crate) static WIPED: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn wiped() -> usize {
        WIPED.with(Cell::get)
    }

    pub(crate) fn jwk() -> Arc<Jwk> {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let doc = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k",
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()), "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec())}]});
        crate::jwk::parse_jwks(&doc, "http://127.0.0.1/k")
            .unwrap()
            .remove("k")
            .unwrap()
    }

    pub(crate) fn keys() -> Arc<KeyCache> {
        Arc::new(KeyCache::fixed(
            "fixed".into(),
            HashMap::new(),
            Arc::new(botauth_core::SystemClock),
        ))
    }

    /// A verification of `token` (any text: its payload is never read here).
    pub(crate) fn entry(
        keys: &Arc<KeyCache>,
        key: &Arc<Jwk>,
        exp: i64,
        issuer: &str,
        token: &str,
    ) -> Arc<Verified> {
        Arc::new(Verified {
            claims: BotClaims::new(
                Parts {
                    profile: ProfileKind::BotService,
                    app_id: None,
                    issuer: issuer.into(),
                    audience: "a".into(),
                    service_url: None,
                    caller_id: None,
                    tenant_id: None,
                    expires_at: exp,
                    payload: 0..0,
                },
                token,
            ),
            nbf: None,
            exp,
            kid: "k".into(),
            keys: Arc::clone(keys),
            key: Arc::clone(key),
            generation: 0,
        })
    }

    /// Tokens that fall in shard 0 of `cache`.
    fn shard0(cache: &VerifiedCache, n: usize) -> Vec<String> {
        (0u32..)
            .map(|i| format!("token-{i}"))
            .filter(|t| (cache.slot(t).0 >> 60) as usize % SHARDS == 0)
            .take(n)
            .collect()
    }

    #[test]
    fn bounded_by_count_and_expired_first() {
        let (keys, key) = (keys(), jwk());
        // Ten per shard.
        let cache = VerifiedCache::new(10 * SHARDS, usize::MAX);
        let tokens = shard0(&cache, 12);
        for t in &tokens[..10] {
            cache.insert(cache.slot(t), entry(&keys, &key, 0, t, t), 1_000, 300);
        }
        assert_eq!(cache.len(), 10);
        // The shard is full of expired entries: they all go (wiped), the new one stays.
        let before = wiped();
        let t10 = &tokens[10];
        cache.insert(
            cache.slot(t10),
            entry(&keys, &key, 10_000, t10, t10),
            1_000,
            300,
        );
        assert_eq!(wiped() - before, 10);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(cache.slot(t10), t10).is_some());
        assert!(cache.get(cache.slot(&tokens[0]), &tokens[0]).is_none());
        // All live: room is made, never more than the capacity kept, the newest always present,
        // and every entry that left was wiped.
        let before = wiped();
        for i in 0..2_000u32 {
            let t = format!("live-{i}");
            cache.insert(
                cache.slot(&t),
                entry(&keys, &key, 10_000, &t, &t),
                1_000,
                300,
            );
            assert!(cache.get(cache.slot(&t), &t).is_some());
            assert!(cache.len() <= 10 * SHARDS);
        }
        assert_eq!(wiped() - before, 2_001 - cache.len());
        // (t10 may have made room by now: put it back, then remove it.)
        cache.insert(
            cache.slot(t10),
            entry(&keys, &key, 10_000, t10, t10),
            1_000,
            300,
        );
        let before = wiped();
        cache.remove(cache.slot(t10), t10);
        assert!(cache.get(cache.slot(t10), t10).is_none());
        assert_eq!(wiped() - before, 1);
        // Dropping the cache wipes what it held.
        let held = cache.len();
        let before = wiped();
        drop(cache);
        assert_eq!(wiped() - before, held);
        for off in [VerifiedCache::new(0, 1 << 20), VerifiedCache::new(100, 0)] {
            let t = &tokens[11];
            off.insert(off.slot(t), entry(&keys, &key, 10_000, t, t), 0, 0);
            assert!(off.get(off.slot(t), t).is_none());
        }
    }

    #[test]
    fn bounded_by_bytes() {
        let (keys, key) = (keys(), jwk());
        // 16 KiB per shard, room for entries by the thousand.
        let cache = VerifiedCache::new(100_000, 16 * 1024 * SHARDS);
        let big = "x".repeat(4_000);
        for i in 0..500u32 {
            let t = format!("{big}-{i}");
            cache.insert(
                cache.slot(&t),
                entry(&keys, &key, 10_000, "i", &t),
                1_000,
                300,
            );
            assert!(cache.get(cache.slot(&t), &t).is_some(), "the newest stays");
            assert!(cache.bytes() <= 16 * 1024 * SHARDS);
            for shard in cache.shards.iter() {
                let shard = shard.read().unwrap();
                assert!(shard.bytes <= 16 * 1024);
                assert_eq!(
                    shard.bytes,
                    shard.map.values().map(Entry::cost).sum::<usize>()
                );
            }
        }
        // Each 4 KB token costs about 8 KB: at most two per shard.
        assert!(cache.len() <= 2 * SHARDS, "{}", cache.len());
        // A token that could never fit is not cached at all.
        let huge = "y".repeat(9_000);
        cache.insert(
            cache.slot(&huge),
            entry(&keys, &key, 10_000, "i", &huge),
            1_000,
            300,
        );
        assert!(cache.get(cache.slot(&huge), &huge).is_none());
    }

    /// Two different tokens under one hash: neither ever answers for the other; each is
    /// looked up, replaced and removed as itself.
    #[test]
    fn a_collision_never_hits() {
        let (keys, key) = (keys(), jwk());
        let cache = VerifiedCache::new(1_000, 1 << 20);
        let (a, b) = ("token-a", "token-b");
        // The same slot for both, as a crafted collision would give.
        let slot = cache.slot(a);
        cache.insert(slot, entry(&keys, &key, 10_000, "issuer-a", a), 1_000, 300);
        assert!(cache.get(slot, b).is_none());
        assert_eq!(
            cache.get(slot, a).unwrap().verified.claims.issuer(),
            "issuer-a"
        );
        // Removing b leaves a.
        cache.remove(slot, b);
        assert!(cache.get(slot, a).is_some());
        // b verified on its own replaces a (wiping it); a is then a miss, never b's entry.
        let before = wiped();
        cache.insert(slot, entry(&keys, &key, 10_000, "issuer-b", b), 1_000, 300);
        assert_eq!(wiped() - before, 1);
        assert!(cache.get(slot, a).is_none());
        assert_eq!(
            cache.get(slot, b).unwrap().verified.claims.issuer(),
            "issuer-b"
        );
        // A prefix, an extension and a one-byte change of a cached token are misses too.
        for other in ["token-", "token-bb", "token-c", "TOKEN-B", ""] {
            assert!(cache.get(slot, other).is_none(), "{other}");
        }
        assert_eq!(cache.len(), 1);
    }

    /// The epoch moves on whenever an entry leaves the cache, and only then: memo copies of
    /// tokens the cache still holds stay usable.
    #[test]
    fn the_epoch_counts_entries_that_left() {
        let (keys, key) = (keys(), jwk());
        let cache = VerifiedCache::new(2 * SHARDS, usize::MAX);
        let epoch = |c: &VerifiedCache| c.epoch.0.load(Ordering::Acquire);
        let tokens = shard0(&cache, 4);
        let put =
            |t: &str| cache.insert(cache.slot(t), entry(&keys, &key, 10_000, t, t), 1_000, 300);
        put(&tokens[0]);
        put(&tokens[1]);
        assert_eq!(epoch(&cache), 0);
        let hit = cache.get(cache.slot(&tokens[0]), &tokens[0]).unwrap();
        assert_eq!(hit.epoch, 0);
        // Removing a token the cache does not hold changes nothing.
        cache.remove(cache.slot(&tokens[2]), &tokens[2]);
        assert_eq!(epoch(&cache), 0);
        // Eviction (the shard holds two).
        put(&tokens[2]);
        assert_eq!(epoch(&cache), 1);
        // Removal.
        let held = tokens
            .iter()
            .find(|t| cache.get(cache.slot(t), t).is_some())
            .unwrap();
        cache.remove(cache.slot(held), held);
        assert_eq!(epoch(&cache), 2);
        // Replacement under the same hash.
        let slot = cache.slot(&tokens[3]);
        cache.insert(
            slot,
            entry(&keys, &key, 10_000, "a", &tokens[3]),
            1_000,
            300,
        );
        let e = epoch(&cache);
        cache.insert(slot, entry(&keys, &key, 10_000, "b", "other"), 1_000, 300);
        assert_eq!(epoch(&cache), e + 1);
        assert_eq!(cache.get(slot, "other").unwrap().epoch, e + 1);
    }

    #[test]
    fn the_slot_hashes_the_tail() {
        let (keys, key) = (keys(), jwk());
        let cache = VerifiedCache::new(10, 1 << 20);
        let tail = "s".repeat(HASHED_TAIL - 1);
        let (a, b) = (format!("a.b.{tail}x"), format!("other.payload.{tail}x"));
        assert_eq!(cache.slot(&a).0, cache.slot(&b).0);
        // A token made to end like a cached one shares its bucket, never its entry.
        cache.insert(
            cache.slot(&a),
            entry(&keys, &key, 10_000, "i", &a),
            1_000,
            300,
        );
        assert!(cache.get(cache.slot(&b), &b).is_none());
        assert!(cache.get(cache.slot(&a), &a).is_some());
        assert_ne!(cache.slot(&a).0, cache.slot(&format!("a.b.{tail}y")).0);
        // Shorter tokens are hashed whole.
        assert_ne!(cache.slot("a.b.c").0, cache.slot("a.b.d").0);
        assert_ne!(cache.slot("x.b.c").0, cache.slot("a.b.c").0);
    }

    #[test]
    fn the_hash_is_keyed_and_spreads() {
        let (one, two) = (TokenHasher::random(), TokenHasher::random());
        let t = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJpIn0.c2ln";
        assert_eq!(one.hash(t.as_bytes()), one.hash(t.as_bytes()));
        assert_ne!(one.hash(t.as_bytes()), two.hash(t.as_bytes()));
        // Every length up to a few blocks, and one flipped bit anywhere, gives another hash.
        let base: Vec<u8> = (0..200u8).collect();
        let mut seen = std::collections::HashSet::new();
        for len in 0..base.len() {
            assert!(seen.insert(one.hash(&base[..len])), "length {len}");
        }
        for i in 0..base.len() {
            let mut flipped = base.clone();
            flipped[i] ^= 1;
            assert!(seen.insert(one.hash(&flipped)), "byte {i}");
        }
        // Shards are all used.
        let mut shards = [0usize; SHARDS];
        for i in 0..1_600 {
            shards[(one.hash(format!("t{i}").as_bytes()) >> 60) as usize % SHARDS] += 1;
        }
        assert!(shards.iter().all(|&n| n > 50), "{shards:?}");
    }

    /// A slot is admitted the second time it is offered; a place holds one slot, so another
    /// slot there makes the first start over; a cache that is off admits nothing.
    #[test]
    fn the_doorkeeper_admits_a_token_on_its_second_verification() {
        let cache = VerifiedCache::new(100, 1 << 20);
        // 100 entries: 128 places.
        assert_eq!(cache.doorkeeper.seen.len(), 128);
        let (a, b, c) = (Slot(5), Slot(6), Slot(5 + 128));
        assert!(!cache.admit(a));
        assert!(!cache.admit(b));
        assert!(cache.admit(a));
        assert!(cache.admit(a), "and on every verification after");
        assert!(cache.admit(b));
        // `c` shares `a`'s place: each now pushes the other out.
        assert!(!cache.admit(c));
        assert!(!cache.admit(a));
        assert!(!cache.admit(c));
        assert!(cache.admit(c));
        // Bounded: a huge cache remembers at most `Doorkeeper::MAX` slots.
        assert_eq!(
            VerifiedCache::new(1 << 30, 1 << 40).doorkeeper.seen.len(),
            Doorkeeper::MAX
        );
        let off = VerifiedCache::new(0, 1 << 20);
        assert!(!off.admit(a) && !off.admit(a));
    }
}
