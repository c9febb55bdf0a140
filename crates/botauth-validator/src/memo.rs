//! The per-thread memo in front of the verified-token cache.
//!
//! Bot Service sends one token on every activity, so on a busy bot every server thread looks up
//! the same cache entry at once. A lookup in the shared cache writes to memory every thread
//! shares — the shard lock's reader count, the entry's reference count, and again for each clone
//! of the result — and those cache lines bounce between cores: two threads validating one token
//! ran at 1.2× one thread. The memo gives each thread (each slot, below) a few entries of its
//! own, holding the thread's *own copy* of the verification, so that a hit reads shared memory
//! but never writes it, and the reference counts it touches are the thread's own.
//!
//! The memo never answers differently from the shared cache:
//! - An entry serves only while the shared cache still holds the token: the cache counts every
//!   entry that leaves it (evicted, replaced, removed — a withdrawn key removes its tokens) in an
//!   epoch, and an entry made at an older epoch is dropped instead of used.
//! - A hit runs the same re-checks as a shared hit (`exp`/`nbf` against the clock, the key still
//!   published), and the caller runs the activity rules and claims checks on every request, hit
//!   or miss, exactly as before.
//! - The token is compared in full, never by its hash alone, and its bytes are wiped when the
//!   entry is replaced or dropped, as the shared cache's are.
//! - Each validator has its own memo (it lives in its cache), so one validator's entries can
//!   never answer for another, and dropping the validator wipes them.
//!
//! Threads are not given memos of their own, which would outlive the validator in thread-local
//! storage: the validator holds a fixed set of slots, each behind its own mutex on its own cache
//! line, and a thread uses the slot of its index (indices are handed out smallest-first and
//! given back when a thread exits, so the threads alive at once get distinct slots). Only that
//! thread locks the slot, so the lock stays uncontended; if another thread holds it (more
//! threads than slots), the lookup goes to the shared cache instead of waiting.
//!
//! A token is copied into a memo only the second time the thread finds it in the shared cache
//! since it last saw a few other tokens there, so that a thread cycling through more tokens
//! than the memo holds does not pay for a copy on every request. Tokens larger than
//! [`MAX_TOKEN_BYTES`] are left to the shared cache, which bounds the memo's memory at
//! slots × [`WAYS`] × about 2 × [`MAX_TOKEN_BYTES`] per validator.

use std::sync::{Arc, Mutex, PoisonError, TryLockError};

use crate::jwk::Jwk;
use crate::verified_cache::Verified;

/// Entries per slot: a bot sees a handful of tokens at a time (one per channel service and per
/// calling skill).
pub(crate) const WAYS: usize = 4;

/// Tokens a slot remembers having found in the shared cache, for admission.
const SEEN: usize = 8;

/// The largest token the memo copies (Bot Service and Entra tokens are 1–2.5 KB).
pub(crate) const MAX_TOKEN_BYTES: usize = 4096;

/// The key a memoised verification stands on: the generation of the key set it was last found
/// current in, and the signing key as published in it when that is not the key that verified
/// the token (`None`: that key).
#[derive(Debug, Clone)]
pub(crate) struct KeyCheck {
    pub(crate) generation: u64,
    pub(crate) refetched: Option<Arc<Jwk>>,
}

impl KeyCheck {
    /// The key that verified `v`, in the generation it was verified in.
    pub(crate) fn original(v: &Verified) -> Self {
        KeyCheck {
            generation: v.generation,
            refetched: None,
        }
    }
}

struct Entry {
    /// The shared cache's epoch when the token was found there.
    epoch: u64,
    /// This thread's own copy: its reference counts are touched by this thread alone. Its
    /// claims hold the token (its own copy too), which a lookup compares in full.
    verified: Arc<Verified>,
    key: KeyCheck,
}

#[derive(Default)]
struct Memo {
    entries: [Option<Entry>; WAYS],
    /// Where the next entry goes when none is free or stale.
    next_entry: usize,
    /// Hashes of tokens recently found in the shared cache and not (yet) memoised.
    seen: [u64; SEEN],
    next_seen: usize,
}

/// One slot, alone on its cache lines so that slots of different threads never share one.
#[repr(align(128))]
#[derive(Default)]
struct Slot(Mutex<Memo>);

/// The memos of one verified-token cache.
pub(crate) struct Memos {
    slots: Box<[Slot]>,
}

impl std::fmt::Debug for Memos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memos")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Memos {
    /// Memos for every thread the machine can run at once, twice over (for the blocking and
    /// helper threads beside a runtime's workers); none when `enabled` is false.
    pub(crate) fn new(enabled: bool) -> Self {
        let slots = if enabled {
            std::thread::available_parallelism()
                .map_or(4, usize::from)
                .saturating_mul(2)
                .clamp(4, 64)
        } else {
            0
        };
        Memos {
            slots: (0..slots).map(|_| Slot::default()).collect(),
        }
    }

    /// This thread's memo, unless another thread holds it.
    fn mine(&self) -> Option<std::sync::MutexGuard<'_, Memo>> {
        if self.slots.is_empty() {
            return None;
        }
        let index = thread_index()?;
        match self.slots[index % self.slots.len()].0.try_lock() {
            Ok(memo) => Some(memo),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Looks `token` up in this thread's memo and lets `judge` re-check the verification (it
    /// may update the key check). An entry made before the shared cache last lost an entry
    /// (`epoch`), or one `judge` refuses (`None`), is dropped, and the answer is `None`: ask the
    /// shared cache.
    ///
    /// The entries are few, so they are compared with the token directly (every byte of it),
    /// without hashing it: a hash of the whole token cost more than the rest of a hit.
    pub(crate) fn lookup<R>(
        &self,
        epoch: u64,
        token: &str,
        judge: impl FnOnce(&Arc<Verified>, &mut KeyCheck) -> Option<R>,
    ) -> Option<R> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let mut memo = self.mine()?;
        let way = memo
            .entries
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.verified.claims.is_of(token)))?;
        let entry = memo.entries[way].as_mut()?;
        let answer = if entry.epoch == epoch {
            judge(&entry.verified, &mut entry.key)
        } else {
            None
        };
        #[cfg(test)]
        if answer.is_some() {
            tests::HITS.with(|h| h.set(h.get() + 1));
        }
        if answer.is_none() {
            // Wiped as it goes.
            memo.entries[way] = None;
        }
        answer
    }

    /// Tells this thread's memo that `token` was found in the shared cache at `epoch` and
    /// passed its re-checks with `key`; the second time in a row of recent finds, the memo
    /// keeps a copy.
    pub(crate) fn offer(
        &self,
        hash: u64,
        epoch: u64,
        token: &str,
        verified: &Verified,
        key: &KeyCheck,
    ) {
        if token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let Some(mut memo) = self.mine() else {
            return;
        };
        let memo = &mut *memo;
        let Some(seen) = memo.seen.iter().position(|&h| h == hash) else {
            memo.seen[memo.next_seen] = hash;
            memo.next_seen = (memo.next_seen + 1) % SEEN;
            return;
        };
        memo.seen[seen] = 0;
        // A free way, or one whose entry the shared cache no longer vouches for; otherwise the
        // ways take turns.
        let way = memo
            .entries
            .iter()
            .position(|e| e.as_ref().is_none_or(|e| e.epoch != epoch))
            .unwrap_or_else(|| {
                let way = memo.next_entry;
                memo.next_entry = (way + 1) % WAYS;
                way
            });
        memo.entries[way] = Some(Entry {
            epoch,
            verified: Arc::new(verified.own_copy()),
            key: key.clone(),
        });
    }

    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.slots
            .iter()
            .map(|s| {
                s.0.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .iter()
                    .flatten()
                    .count()
            })
            .sum()
    }
}

/// Indices of the threads alive, smallest first, so that they fall in distinct slots.
struct Indices {
    next: usize,
    free: Vec<usize>,
}

static INDICES: Mutex<Indices> = Mutex::new(Indices {
    next: 0,
    free: Vec::new(),
});

/// A thread's index, given back when the thread exits.
struct ThreadIndex(usize);

impl ThreadIndex {
    fn take() -> Self {
        let mut indices = INDICES.lock().unwrap_or_else(PoisonError::into_inner);
        let smallest = indices
            .free
            .iter()
            .enumerate()
            .min_by_key(|&(_, &i)| i)
            .map(|(at, _)| at);
        match smallest {
            Some(at) => ThreadIndex(indices.free.swap_remove(at)),
            None => {
                let i = indices.next;
                indices.next += 1;
                ThreadIndex(i)
            }
        }
    }
}

impl Drop for ThreadIndex {
    fn drop(&mut self) {
        INDICES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .free
            .push(self.0);
    }
}

thread_local! {
    static THREAD_INDEX: ThreadIndex = ThreadIndex::take();
}

/// The calling thread's index; `None` while the thread is being torn down.
fn thread_index() -> Option<usize> {
    THREAD_INDEX.try_with(|i| i.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verified_cache::tests::{entry, jwk, keys, wiped};
    use crate::{ActivityInfo, BotServiceProfile, ErrorKind, Validator};
    use botauth_core::{Clock, ManualClock};
    use botauth_sandbox::Sandbox;
    use serde_json::json;
    use std::cell::Cell;
    use std::time::{Duration, UNIX_EPOCH};

    thread_local! {
        /// Memo hits on this thread.
        pub(super) static HITS: Cell<usize> = const { Cell::new(0) };
    }

    fn hits() -> usize {
        HITS.with(Cell::get)
    }

    /// Answers with the issuer of what the memo holds.
    fn issuer(v: &Arc<Verified>, _: &mut KeyCheck) -> Option<String> {
        Some(v.claims.issuer().to_owned())
    }

    #[test]
    fn admission_epochs_bounds_and_wipes() {
        let (keys, key) = (keys(), jwk());
        let memos = Memos::new(true);
        let v = |issuer: &str, token: &str| entry(&keys, &key, 10_000, issuer, token);
        let check = |v: &Arc<Verified>| KeyCheck::original(v);
        let a = "token-a.payload.signature-a";
        let va = v("issuer-a", a);

        // Found once in the shared cache: remembered, not copied; found again: copied.
        memos.offer(1, 0, a, &va, &check(&va));
        assert_eq!(memos.held(), 0);
        assert_eq!(memos.lookup(0, a, issuer), None);
        memos.offer(1, 0, a, &va, &check(&va));
        assert_eq!(memos.held(), 1);
        assert_eq!(memos.lookup(0, a, issuer).as_deref(), Some("issuer-a"));
        // The copy has its own reference counts.
        memos.lookup(0, a, |mine, _| {
            assert!(!Arc::ptr_eq(mine, &va));
            assert_eq!(Arc::strong_count(mine), 1);
            Some(())
        });

        // Tokens that differ anywhere, or are a prefix or an extension, never hit.
        for other in [
            "Token-a.payload.signature-a",
            "token-a.payload.signature-b",
            "token-a.paYload.signature-a",
            "token-a.payload.signature-",
            "token-a.payload.signature-aa",
            "",
        ] {
            assert_eq!(memos.lookup(0, other, issuer), None, "{other}");
        }
        assert_eq!(memos.held(), 1);

        // Once the shared cache has lost an entry (a newer epoch), the copy is dropped, wiped.
        let before = wiped();
        assert_eq!(memos.lookup(1, a, issuer), None);
        assert_eq!(wiped() - before, 1);
        assert_eq!(memos.held(), 0);
        assert_eq!(memos.lookup(0, a, issuer), None);

        // A copy its re-check refuses is dropped and wiped too.
        memos.offer(1, 1, a, &va, &check(&va));
        memos.offer(1, 1, a, &va, &check(&va));
        assert_eq!(memos.held(), 1);
        let before = wiped();
        assert_eq!(memos.lookup(1, a, |_, _| None::<()>), None);
        assert_eq!(wiped() - before, 1);
        assert_eq!(memos.held(), 0);

        // At most `WAYS` copies per thread; a copy replaced is wiped.
        let tokens: Vec<String> = (0..WAYS + 3).map(|i| format!("t-{i}")).collect();
        // The shared cache's verifications, alive throughout as the cache would keep them.
        let shared: Vec<Arc<Verified>> = tokens.iter().map(|t| v(t, t)).collect();
        let before = wiped();
        for ((i, t), vt) in (0u64..).zip(&tokens).zip(&shared) {
            memos.offer(100 + i, 1, t, vt, &check(vt));
            memos.offer(100 + i, 1, t, vt, &check(vt));
            assert_eq!(memos.lookup(1, t, issuer).as_deref(), Some(t.as_str()));
            assert!(memos.held() <= WAYS);
        }
        assert_eq!(memos.held(), WAYS);
        assert_eq!(wiped() - before, 3);

        // A token larger than the memo takes is left to the shared cache.
        let big = "b".repeat(MAX_TOKEN_BYTES + 1);
        let vb = v("issuer-b", &big);
        memos.offer(7, 1, &big, &vb, &check(&vb));
        memos.offer(7, 1, &big, &vb, &check(&vb));
        assert_eq!(memos.lookup(1, &big, issuer), None);

        // While another holds this thread's slot, the memo is skipped, never waited for.
        let slot = &memos.slots[thread_index().unwrap() % memos.slots.len()];
        let held = slot.0.lock().unwrap();
        assert_eq!(memos.lookup(1, &tokens[WAYS + 2], issuer), None);
        drop(held);
        assert!(memos.lookup(1, &tokens[WAYS + 2], issuer).is_some());

        // Dropping the memos (with their validator) wipes every copy.
        let before = wiped();
        drop(memos);
        assert_eq!(wiped() - before, WAYS);

        // A cache that is off has no memo.
        let off = Memos::new(false);
        off.offer(1, 0, a, &va, &check(&va));
        off.offer(1, 0, a, &va, &check(&va));
        assert_eq!(off.lookup(0, a, issuer), None);
    }

    #[test]
    fn threads_alive_at_once_have_distinct_indices() {
        let mine = thread_index().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let others: Vec<_> = (0..4)
            .map(|_| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    tx.send(thread_index().unwrap()).unwrap();
                    // Alive until all have reported.
                    std::thread::sleep(Duration::from_millis(200));
                })
            })
            .collect();
        let mut seen: Vec<usize> = (0..4).map(|_| rx.recv().unwrap()).collect();
        seen.push(mine);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 5);
        for t in others {
            t.join().unwrap();
        }
    }

    const APP: &str = "9e1f3c2a-0000-4000-8000-00000000b07a";
    const TEAMS: &str = "https://smba.trafficmanager.net/teams/";

    struct Env {
        sandbox: Sandbox,
        clock: Arc<ManualClock>,
    }

    impl Env {
        async fn start() -> Env {
            Env {
                sandbox: Sandbox::start().await.unwrap(),
                clock: Arc::new(ManualClock::new()),
            }
        }

        fn validator(&self, cache: usize) -> Validator {
            Validator::builder(APP)
                .profile(BotServiceProfile::custom(
                    self.sandbox.bot_service_metadata_url(),
                    self.sandbox.bot_service_issuer(),
                ))
                .settings(botauth_http::ClientSettings::new().clock(self.clock.clone()))
                .key_refresh_interval(Duration::from_secs(600))
                .verified_token_cache(cache)
                .build()
                .unwrap()
        }

        fn token(&self) -> String {
            let now = self
                .clock
                .now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let kid = self.sandbox.bot_service_kid();
            self.sandbox.sign_with_bot_service_key(
                &json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
                &json!({"iss": self.sandbox.bot_service_issuer(), "aud": APP,
                    "serviceurl": TEAMS, "nbf": now, "exp": now + 3600,
                    "jti": next_jti()}),
            )
        }
    }

    /// Makes each token distinct.
    fn next_jti() -> String {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        format!("jti-{}", N.fetch_add(1, Ordering::Relaxed))
    }

    fn teams() -> ActivityInfo<'static> {
        ActivityInfo::new(TEAMS, "msteams")
    }

    /// Validates `token` until this thread's memo answers for it: the first two validations
    /// verify it (the second puts it in the shared cache), the next two are shared hits, the
    /// fifth is the memo's.
    async fn until_memoised(v: &Validator, token: &str) {
        let before = hits();
        for _ in 0..5 {
            v.validate(token, teams()).await.unwrap();
        }
        assert_eq!(hits() - before, 1, "the fifth validation is a memo hit");
    }

    async fn kind(v: &Validator, token: &str, channel: &str) -> ErrorKind {
        v.validate(token, ActivityInfo::new(TEAMS, channel))
            .await
            .unwrap_err()
            .kind()
    }

    /// A memo hit re-reads the key as published now (endorsements included) once the keys were
    /// refetched, and stops answering once its key is withdrawn.
    #[tokio::test]
    async fn memo_hits_follow_the_published_keys() {
        let env = Env::start().await;
        let v = env.validator(10_000);
        let token = env.token();
        until_memoised(&v, &token).await;
        let claims = v.validate(&token, teams()).await.unwrap();
        assert_eq!(claims.service_url(), Some(TEAMS));
        let fresh = env.validator(10_000);
        assert_eq!(claims, fresh.validate(&token, teams()).await.unwrap());
        // Claims keep their token (zeroed when the last clone goes): let these go, so that the
        // wipes counted below are the validator's own.
        drop((claims, fresh));

        // The key now endorses webchat only; the refetch happens when the next new token
        // needs the keys after the refresh interval.
        let kid = env.sandbox.bot_service_kid();
        env.sandbox
            .set_bot_service_endorsements(&kid, Some(vec!["webchat".to_owned()]));
        env.clock.advance(Duration::from_secs(601));
        v.validate(&env.token(), ActivityInfo::new(TEAMS, "webchat"))
            .await
            .unwrap();
        let before = hits();
        assert_eq!(kind(&v, &token, "msteams").await, ErrorKind::Endorsement);
        assert!(
            v.validate(&token, ActivityInfo::new(TEAMS, "webchat"))
                .await
                .is_ok()
        );
        assert_eq!(
            hits() - before,
            2,
            "answered by the memo, with the refetched key"
        );

        // The key is withdrawn: once the keys are refetched, the memo no longer answers and
        // the token is judged afresh (refused), its copies wiped.
        env.sandbox.rotate_bot_service_key();
        env.sandbox.remove_bot_service_key(&kid);
        env.clock.advance(Duration::from_secs(601));
        v.validate(&env.token(), ActivityInfo::new(TEAMS, "webchat"))
            .await
            .unwrap();
        let (before, wiped_before) = (hits(), wiped());
        assert_eq!(kind(&v, &token, "webchat").await, ErrorKind::UnknownKeyId);
        assert_eq!(hits(), before);
        // The memo's copy and the shared cache's entry.
        assert_eq!(wiped() - wiped_before, 2);
        assert_eq!(v.memo_entries(), 0);
    }

    #[tokio::test]
    async fn memo_hits_expire_and_belong_to_one_validator() {
        let env = Env::start().await;
        let v = env.validator(10_000);
        let token = env.token();
        until_memoised(&v, &token).await;

        // Another validator judges the token itself, and a token verified by one is refused
        // by the other.
        let w = env.validator(10_000);
        assert_eq!(w.memo_entries(), 0);
        w.validate(&token, teams()).await.unwrap();
        let before = hits();
        let from_v = v.verify_token(&token).await.unwrap();
        assert_eq!(hits() - before, 1);
        assert_eq!(
            w.check_activity(&from_v, teams()).unwrap_err().kind(),
            ErrorKind::Config
        );
        assert!(v.check_activity(&from_v, teams()).is_ok());

        // The memo answers up to `exp` + skew, and refuses from then on.
        let before = hits();
        env.clock.advance(Duration::from_secs(3600 + 299));
        assert!(v.validate(&token, teams()).await.is_ok());
        env.clock.advance(Duration::from_secs(1));
        assert_eq!(kind(&v, &token, "msteams").await, ErrorKind::Expired);
        assert_eq!(hits() - before, 2);
    }

    /// A memo copy is used only while the shared cache still holds its token.
    #[tokio::test]
    async fn memo_hits_stop_when_the_shared_cache_lets_the_token_go() {
        let env = Env::start().await;
        // One entry per shard.
        let v = env.validator(16);
        let token = env.token();
        until_memoised(&v, &token).await;
        let before = hits();
        for _ in 0..40 {
            // Twice: the shared cache keeps a token from its second verification on.
            let other = env.token();
            v.validate(&other, teams()).await.unwrap();
            v.validate(&other, teams()).await.unwrap();
        }
        // 41 tokens in 16 one-entry shards: entries were evicted, so the epoch moved on.
        v.validate(&token, teams()).await.unwrap();
        assert_eq!(hits(), before);
    }
}
