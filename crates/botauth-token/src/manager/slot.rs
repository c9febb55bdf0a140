//! One cache slot per token key: its published snapshot, the state behind its single flight, and
//! the hold a `Retry-After` puts on it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use botauth_core::{AccessToken, Error, Result, TokenRequest};
use tokio::sync::watch;

pub(super) type Outcome = Option<Result<AccessToken>>;

pub(super) struct State {
    pub(super) token: Option<AccessToken>,
    /// When `token` was stored.
    pub(super) obtained_at: SystemTime,
    pub(super) refresh_at: SystemTime,
    pub(super) flight: Option<watch::Receiver<Outcome>>,
    pub(super) failure: Option<(Error, SystemTime)>,
    pub(super) next_background: SystemTime,
    pub(super) hold: Option<Hold>,
}

/// A `Retry-After` the token endpoint sent for this key: no request of any kind before `until`
/// (docs/protocol.md §5). Kept apart from the negative cache, which only answers callers that have
/// no usable token and which `force_refresh` bypasses.
pub(super) struct Hold {
    pub(super) until: SystemTime,
    pub(super) endpoint: String,
    pub(super) status: Option<u16>,
}

impl State {
    /// The time left of a `Retry-After`, if one is still running at `now`.
    pub(super) fn held(&self, now: SystemTime) -> Option<(&Hold, Duration)> {
        let hold = self.hold.as_ref()?;
        let left = hold.until.duration_since(now).ok()?;
        (!left.is_zero()).then_some((hold, left))
    }
}

/// What a cache hit needs, published as one immutable value: the token, and the instant until
/// which it is handed out without a look at the slot's state (its refresh time, or the moment
/// it stops being usable if that comes first).
pub(super) struct Snapshot {
    pub(super) token: AccessToken,
    pub(super) serve_until: SystemTime,
    /// When the token was stored: its age at each use is a metric.
    pub(super) obtained_at: SystemTime,
}

pub(super) struct Slot {
    pub(super) tenant: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) state: Mutex<State>,
    /// The state's token, for the hit path: one atomic load, no lock. Written only with the
    /// state's lock held, whenever the state's token or refresh time changes, so it never
    /// serves a token the state has dropped (invalidated, forced out, cleared).
    pub(super) snapshot: ArcSwapOption<Snapshot>,
}

impl Slot {
    /// Whether `request` names this slot's key. Compares scopes as sets without allocating, so the
    /// cache-hit path stays allocation-free.
    pub(super) fn matches(&self, request: &TokenRequest) -> bool {
        if self.tenant.as_deref() != request.tenant_id.as_deref() {
            return false;
        }
        // The usual request names the slot's scopes exactly as stored (trimmed, sorted, unique):
        // a plain comparison answers it.
        if request.scopes == self.scopes {
            return true;
        }
        let requested = || {
            request
                .scopes
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        requested().all(|s| self.scopes.iter().any(|k| k == s))
            && self.scopes.iter().all(|k| requested().any(|s| s == k))
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State inconsistent (every update is a
        // single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the state's token and refresh time, and publishes them to the hit path. `state` is
    /// this slot's, locked.
    pub(super) fn set_token(
        &self,
        state: &mut State,
        token: Option<AccessToken>,
        now: SystemTime,
        refresh_at: SystemTime,
        expiry_margin: Duration,
    ) {
        let snapshot = token.as_ref().map(|token| {
            let unusable_at = token
                .expires_on
                .checked_sub(expiry_margin)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            Arc::new(Snapshot {
                token: token.clone(),
                serve_until: refresh_at.min(unusable_at),
                obtained_at: now,
            })
        });
        state.token = token;
        state.obtained_at = now;
        state.refresh_at = refresh_at;
        self.snapshot.store(snapshot);
    }

    /// Drops the state's token (and its snapshot). `state` is this slot's, locked.
    pub(super) fn drop_token(&self, state: &mut State) {
        state.token = None;
        self.snapshot.store(None);
    }

    /// The published token, when it may be served at `now` without the state's lock, and when
    /// it was stored.
    pub(super) fn hit(&self, now: SystemTime) -> Option<(AccessToken, SystemTime)> {
        let snapshot = self.snapshot.load();
        let snapshot = snapshot.as_ref()?;
        (now < snapshot.serve_until).then(|| (snapshot.token.clone(), snapshot.obtained_at))
    }
}
