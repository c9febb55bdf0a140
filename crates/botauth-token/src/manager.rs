//! [`TokenManager`]: botauth's one token cache (docs/protocol.md §5).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use async_trait::async_trait;
use botauth_core::telemetry;
use botauth_core::{
    AccessToken, Clock, CredentialInfo, CredentialProvider, Error, Result, SystemClock,
    TokenRequest,
};
use tokio::sync::watch;
use tracing::Instrument as _;

use botauth_http as http;

/// Tuning of a [`TokenManager`]. The defaults follow docs/protocol.md §5.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerOptions {
    /// A token with less than this left is treated as expired (default 300 s).
    pub expiry_margin: Duration,
    /// Lifetimes at least this long refresh at half-life (default 2 h); shorter ones refresh at
    /// expiry minus `expiry_margin`.
    pub half_life_threshold: Duration,
    /// A background refresh starts at least this long before a token counts as expired (default
    /// 60 s). Without it "refresh at expiry − 5 min" and "expired at 5 min left" would coincide and
    /// callers would wait for every routine refresh of a one-hour token.
    pub refresh_window: Duration,
    /// The largest random amount taken off a refresh time, so that many processes started together
    /// do not refresh together (default 60 s; never more than a tenth of the time to refresh).
    pub max_jitter: Duration,
    /// Retries after a retryable failure (default 1; none for a credential that
    /// [retries internally](botauth_core::CredentialInfo::retries_internally)).
    pub max_retries: u32,
    /// The wait before a retry when the server gave no `Retry-After` (default 1 s); also the
    /// shortest wait before a retry when it did (`Retry-After: 0` is not "hammer me").
    pub retry_delay: Duration,
    /// The longest `Retry-After` a caller waits for in line; a longer one fails the request at once.
    /// Whatever its length, no request for that token is sent before a `Retry-After` has passed:
    /// not a background refresh, not a caller's, not [`force_refresh`](TokenManager::force_refresh)
    /// (default 30 s).
    pub max_inline_retry_after: Duration,
    /// `Retry-After` values are capped at this (default 1 h, docs/protocol.md §5).
    pub retry_after_cap: Duration,
    /// After a failed acquisition with no usable token, callers get the same error for this long
    /// without a new request (default 2 s).
    pub negative_ttl: Duration,
    /// After a failed background refresh, the next one waits this long, or the server's
    /// `Retry-After` when that is longer; the cached token is served meanwhile (default 30 s).
    pub background_retry: Duration,
    /// The most cache keys kept; expired entries are evicted beyond it (default 1024).
    pub max_entries: usize,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            expiry_margin: Duration::from_secs(300),
            half_life_threshold: Duration::from_secs(2 * 3600),
            refresh_window: Duration::from_secs(60),
            max_jitter: Duration::from_secs(60),
            max_retries: 1,
            retry_delay: Duration::from_secs(1),
            max_inline_retry_after: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(3600),
            negative_ttl: Duration::from_secs(2),
            background_retry: Duration::from_secs(30),
            max_entries: 1024,
        }
    }
}

/// Where a token handed out by [`TokenManager::get_token_with_source`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// A cached token, no refresh due.
    Cache,
    /// A cached token; a background refresh is running (or was just started by this call).
    CacheRefreshing,
    /// The caller waited for a token request (its own, or one already in flight).
    Fetched,
}

impl TokenSource {
    /// `cache`, `cache_refreshing` or `fetched`: the `source` field of the `botauth.token.get`
    /// span.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Cache => "cache",
            TokenSource::CacheRefreshing => "cache_refreshing",
            TokenSource::Fetched => "fetched",
        }
    }
}

type Outcome = Option<Result<AccessToken>>;

struct State {
    token: Option<AccessToken>,
    /// When `token` was stored.
    obtained_at: SystemTime,
    refresh_at: SystemTime,
    flight: Option<watch::Receiver<Outcome>>,
    failure: Option<(Error, SystemTime)>,
    next_background: SystemTime,
    hold: Option<Hold>,
}

/// A `Retry-After` the token endpoint sent for this key: no request of any kind before `until`
/// (docs/protocol.md §5). Kept apart from the negative cache, which only answers callers that have
/// no usable token and which `force_refresh` bypasses.
struct Hold {
    until: SystemTime,
    endpoint: String,
    status: Option<u16>,
}

impl State {
    /// The time left of a `Retry-After`, if one is still running at `now`.
    fn held(&self, now: SystemTime) -> Option<(&Hold, Duration)> {
        let hold = self.hold.as_ref()?;
        let left = hold.until.duration_since(now).ok()?;
        (!left.is_zero()).then_some((hold, left))
    }
}

/// What a cache hit needs, published as one immutable value: the token, and the instant until
/// which it is handed out without a look at the slot's state (its refresh time, or the moment
/// it stops being usable if that comes first).
struct Snapshot {
    token: AccessToken,
    serve_until: SystemTime,
    /// When the token was stored: its age at each use is a metric.
    obtained_at: SystemTime,
}

struct Slot {
    tenant: Option<String>,
    scopes: Vec<String>,
    state: Mutex<State>,
    /// The state's token, for the hit path: one atomic load, no lock. Written only with the
    /// state's lock held, whenever the state's token or refresh time changes, so it never
    /// serves a token the state has dropped (invalidated, forced out, cleared).
    snapshot: ArcSwapOption<Snapshot>,
}

impl Slot {
    /// Whether `request` names this slot's key. Compares scopes as sets without allocating, so the
    /// cache-hit path stays allocation-free.
    fn matches(&self, request: &TokenRequest) -> bool {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State inconsistent (every update is a
        // single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the state's token and refresh time, and publishes them to the hit path. `state` is
    /// this slot's, locked.
    fn set_token(
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
    fn drop_token(&self, state: &mut State) {
        state.token = None;
        self.snapshot.store(None);
    }

    /// The published token, when it may be served at `now` without the state's lock, and when
    /// it was stored.
    fn hit(&self, now: SystemTime) -> Option<(AccessToken, SystemTime)> {
        let snapshot = self.snapshot.load();
        let snapshot = snapshot.as_ref()?;
        (now < snapshot.serve_until).then(|| (snapshot.token.clone(), snapshot.obtained_at))
    }
}

struct Inner {
    provider: Arc<dyn CredentialProvider>,
    info: CredentialInfo,
    clock: Arc<dyn Clock>,
    options: ManagerOptions,
    /// The slots, replaced whole when one is added or dropped (rare), so that finding one is a
    /// lock-free load. Writers take `slots_write` first.
    slots: ArcSwap<Vec<Arc<Slot>>>,
    slots_write: Mutex<()>,
    /// `botauth.token.age` and `botauth.token.refresh.lead_time` for this credential, registered
    /// when the manager is built (docs/observability.md).
    age: telemetry::Histogram,
    lead_time: telemetry::Histogram,
}

/// The outbound token cache: wraps any [`CredentialProvider`] and gives callers a valid token,
/// fast.
///
/// - **One cache**, keyed by authority + tenant + client id + sorted, de-duplicated scopes
///   (docs/protocol.md §5); providers never cache.
/// - **Single flight**: however many callers ask for a key with no usable token, exactly one
///   token request is in flight; the others wait for its result. The request runs in its own task,
///   so a caller that gives up does not cancel it for the others.
/// - **Refresh ahead**: after the refresh time (`refresh_in` when Entra sends it, else half-life
///   for tokens of 2 h or more, else expiry − 5 min; always at least a minute before the token
///   counts as expired, minus jitter) callers keep getting the cached token at once while one
///   background refresh runs. A failed refresh keeps the valid token.
/// - **Retries**: one retry after 1 s on 5xx and timeouts; `Retry-After` honoured (short waits in
///   line, long ones by refusing to call before it passes: until then every request for the key,
///   background, foreground or forced, gets [`Error::RetryAfterPending`] with the time left, and
///   none reaches the endpoint); a short negative cache so a failing endpoint is not hammered.
/// - **Sendable tokens only**: a token that cannot go in an `Authorization` header (control
///   characters, spaces, non-ASCII, empty) is an [`InvalidResponse`](botauth_core::ErrorKind::InvalidResponse)
///   error and never cached, whichever credential produced it.
/// - [`force_refresh`](Self::force_refresh) for a token the Bot Connector rejected.
///
/// Cloning is cheap and clones share the cache.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("credential", &self.inner.info)
            .field("options", &self.inner.options)
            .field("entries", &self.inner.slots.load().len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenManager`].
#[derive(Debug)]
pub struct TokenManagerBuilder {
    provider: Arc<dyn CredentialProvider>,
    clock: Arc<dyn Clock>,
    options: ManagerOptions,
}

impl TokenManagerBuilder {
    /// Uses this clock (tests: `TokioClock` with paused time, or `ManualClock`).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces all options.
    pub fn options(mut self, options: ManagerOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the jitter bound (zero makes refresh times exact, for tests).
    pub fn max_jitter(mut self, d: Duration) -> Self {
        self.options.max_jitter = d;
        self
    }

    /// Sets the expiry margin.
    pub fn expiry_margin(mut self, d: Duration) -> Self {
        self.options.expiry_margin = d;
        self
    }

    /// Sets the negative-cache duration.
    pub fn negative_ttl(mut self, d: Duration) -> Self {
        self.options.negative_ttl = d;
        self
    }

    /// Builds the manager.
    pub fn build(self) -> TokenManager {
        let info = self.provider.describe();
        let credential = [("credential", info.kind.as_str())];
        TokenManager {
            inner: Arc::new(Inner {
                age: telemetry::histogram(telemetry::TOKEN_AGE, &credential),
                lead_time: telemetry::histogram(telemetry::TOKEN_REFRESH_LEAD_TIME, &credential),
                provider: self.provider,
                info,
                clock: self.clock,
                options: self.options,
                slots: ArcSwap::from_pointee(Vec::new()),
                slots_write: Mutex::new(()),
            }),
        }
    }
}

enum Plan {
    Ready(AccessToken, TokenSource),
    Wait(watch::Receiver<Outcome>),
}

impl TokenManager {
    /// A manager with default options around `provider`.
    pub fn new(provider: Arc<dyn CredentialProvider>) -> Self {
        Self::builder(provider).build()
    }

    /// A builder for a manager around `provider`.
    pub fn builder(provider: Arc<dyn CredentialProvider>) -> TokenManagerBuilder {
        TokenManagerBuilder {
            provider,
            clock: Arc::new(SystemClock),
            options: ManagerOptions::default(),
        }
    }

    /// The wrapped credential's description.
    pub fn credential(&self) -> &CredentialInfo {
        &self.inner.info
    }

    /// The cache key of `request`, as text (for logs): authority, tenant, client id, scopes.
    pub fn cache_key(&self, request: &TokenRequest) -> String {
        self.inner.cache_key(request)
    }

    /// A valid token for `request`, from the cache when possible.
    ///
    /// Each call is a `botauth.token.get` span (DEBUG) with the cache key, the credential kind,
    /// the source (`cache`, `cache_refreshing`, `fetched`) and the outcome; a token request it
    /// starts is a `botauth.token.acquire` span (INFO) of its own (docs/observability.md).
    pub async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        // The hit path first, outside the slower function's future.
        if let Some(token) = self.inner.hit(request) {
            return Ok(token);
        }
        self.get_token_with_source(request).await.map(|(t, _)| t)
    }

    /// Like [`get_token`](Self::get_token), also saying where the token came from.
    pub async fn get_token_with_source(
        &self,
        request: &TokenRequest,
    ) -> Result<(AccessToken, TokenSource)> {
        // The hit path: two atomic loads, the key comparison, one clone; no lock.
        if let Some(token) = self.inner.hit(request) {
            return Ok((token, TokenSource::Cache));
        }
        let span = self.inner.span(request);
        let result = async {
            let slot = self.inner.slot(request)?;
            let plan = self.inner.plan(&slot, request, false)?;
            match plan {
                Plan::Ready(token, source) => Ok((token, source)),
                Plan::Wait(rx) => wait(rx).await.map(|t| {
                    self.inner.age.record_duration(Duration::ZERO);
                    (t, TokenSource::Fetched)
                }),
            }
        }
        .instrument(span.clone())
        .await;
        match &result {
            Ok((_, source)) => {
                span.record("source", source.as_str());
                span.record("outcome", "ok");
            }
            Err(e) => {
                span.record("outcome", "error");
                span.record("error", tracing::field::display(e.kind()));
            }
        }
        result
    }

    /// Discards the cached token for `request` and waits for a new one. Use it when a service
    /// rejects a token that looked valid (Bot Connector 401). Concurrent calls share one request.
    ///
    /// While a `Retry-After` from the token endpoint is running for the key, nothing is sent and
    /// the cached token is kept: the call fails with [`Error::RetryAfterPending`].
    pub async fn force_refresh(&self, request: &TokenRequest) -> Result<AccessToken> {
        let slot = self.inner.slot(request)?;
        match self.inner.plan(&slot, request, true)? {
            Plan::Ready(token, _) => Ok(token),
            Plan::Wait(rx) => wait(rx).await,
        }
    }

    /// Drops the cached token (and any remembered failure) for `request`; the next call fetches.
    /// A running `Retry-After` is kept: the endpoint asked for it, not the cache.
    pub fn invalidate(&self, request: &TokenRequest) {
        if let Some(slot) = self.inner.find(request) {
            let mut state = slot.lock();
            slot.drop_token(&mut state);
            state.failure = None;
        }
    }

    /// Drops every cached token. Keys under a running `Retry-After` keep it (see
    /// [`invalidate`](Self::invalidate)).
    pub fn clear(&self) {
        let now = self.inner.clock.now();
        let _writer = self.inner.write_slots();
        let mut slots = Vec::clone(&self.inner.slots.load());
        slots.retain(|slot| {
            let mut state = slot.lock();
            slot.drop_token(&mut state);
            state.failure = None;
            state.held(now).is_some()
        });
        self.inner.slots.store(Arc::new(slots));
    }
}

/// How long `token` has left at `now`.
fn lead(token: &AccessToken, now: SystemTime) -> Duration {
    token.expires_on.duration_since(now).unwrap_or_default()
}

async fn wait(mut rx: watch::Receiver<Outcome>) -> Result<AccessToken> {
    match rx.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or_else(|| Err(abandoned())),
        Err(_) => Err(abandoned()),
    }
}

fn abandoned() -> Error {
    Error::credential("the token request task ended without a result (was the runtime shut down?)")
}

impl Inner {
    fn write_slots(&self) -> std::sync::MutexGuard<'_, ()> {
        self.slots_write
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn find(&self, request: &TokenRequest) -> Option<Arc<Slot>> {
        self.slots
            .load()
            .iter()
            .find(|s| s.matches(request))
            .cloned()
    }

    /// A cached token for `request` that needs no refresh yet, from the published snapshot.
    fn hit(&self, request: &TokenRequest) -> Option<AccessToken> {
        let now = self.clock.now();
        let (token, obtained_at) = self
            .slots
            .load()
            .iter()
            .find(|s| s.matches(request))?
            .hit(now)?;
        self.used(now, obtained_at);
        // A span of no duration: a hit does no work worth timing, but says where the token came
        // from. Nothing at all unless a subscriber wants DEBUG spans (one atomic load).
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            let span = self.span(request);
            span.record("source", TokenSource::Cache.as_str());
            span.record("outcome", "ok");
        }
        Some(token)
    }

    /// The `botauth.token.get` span for `request` (docs/observability.md); the cache key is
    /// formatted only when a subscriber takes the span.
    fn span(&self, request: &TokenRequest) -> tracing::Span {
        let span = tracing::debug_span!(
            "botauth.token.get",
            key = tracing::field::Empty,
            credential = %self.info.kind,
            source = tracing::field::Empty,
            outcome = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        if !span.is_disabled() {
            span.record("key", self.cache_key(request));
        }
        span
    }

    /// Records a use of a token stored at `obtained_at` (`botauth.token.age`).
    fn used(&self, now: SystemTime, obtained_at: SystemTime) {
        if telemetry::ENABLED {
            self.age
                .record_duration(now.duration_since(obtained_at).unwrap_or_default());
        }
    }

    fn slot(&self, request: &TokenRequest) -> Result<Arc<Slot>> {
        if let Some(slot) = self.find(request) {
            return Ok(slot);
        }
        let scopes = request.required_scopes()?;
        let _writer = self.write_slots();
        let mut slots = Vec::clone(&self.slots.load());
        if let Some(slot) = slots.iter().find(|s| s.matches(request)) {
            return Ok(slot.clone());
        }
        if slots.len() >= self.options.max_entries {
            let now = self.clock.now();
            slots.retain(|s| {
                let st = s.lock();
                st.flight.is_some()
                    || st.token.as_ref().is_some_and(|t| t.expires_on > now)
                    || st.held(now).is_some()
            });
        }
        let slot = Arc::new(Slot {
            tenant: request.tenant_id.clone(),
            scopes,
            state: Mutex::new(State {
                token: None,
                obtained_at: SystemTime::UNIX_EPOCH,
                refresh_at: SystemTime::UNIX_EPOCH,
                flight: None,
                failure: None,
                next_background: SystemTime::UNIX_EPOCH,
                hold: None,
            }),
            snapshot: ArcSwapOption::empty(),
        });
        slots.push(slot.clone());
        self.slots.store(Arc::new(slots));
        Ok(slot)
    }

    fn usable(&self, token: &AccessToken, now: SystemTime) -> bool {
        token.remaining(now) >= self.options.expiry_margin
    }

    /// Decides, under the slot's lock, whether to answer from the cache or wait for a flight.
    fn plan(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        request: &TokenRequest,
        force: bool,
    ) -> Result<Plan> {
        let now = self.clock.now();
        let mut state = slot.lock();
        if !force {
            if let Some(token) = &state.token {
                if self.usable(token, now) {
                    let token = token.clone();
                    self.used(now, state.obtained_at);
                    if now < state.refresh_at {
                        return Ok(Plan::Ready(token, TokenSource::Cache));
                    }
                    if state.flight.is_none()
                        && now >= state.next_background
                        && state.held(now).is_none()
                    {
                        tracing::debug!(key = %self.cache_key(request), "refreshing token ahead of expiry");
                        self.start_flight(slot, &mut state, Some(lead(&token, now)));
                    }
                    return Ok(Plan::Ready(token, TokenSource::CacheRefreshing));
                }
            }
        }
        // Past this point a caller needs a request. A running flight can still be joined (it sends
        // nothing new), but while the endpoint's `Retry-After` runs no flight starts, not even a
        // forced one: the issue this closes had a request go out ~65 s after a background refresh
        // was told `Retry-After: 3600`, as soon as the cached token stopped being usable.
        if state.flight.is_none() {
            if let Some((hold, left)) = state.held(now) {
                return Err(Error::RetryAfterPending {
                    endpoint: hold.endpoint.clone(),
                    status: hold.status,
                    remaining: left,
                });
            }
        }
        if !force {
            if let Some((error, until)) = &state.failure {
                if now < *until {
                    return Err(error.clone());
                }
            }
        }
        // A token still held (forced out, or no longer usable) is being refreshed: how long it
        // had left.
        let lead = state.token.as_ref().map(|t| lead(t, now));
        if force {
            slot.drop_token(&mut state);
        }
        let rx = match &state.flight {
            Some(rx) => rx.clone(),
            None => self.start_flight(slot, &mut state, lead),
        };
        Ok(Plan::Wait(rx))
    }

    fn cache_key(&self, request: &TokenRequest) -> String {
        let info = &self.info;
        format!(
            "{}|{}|{}|{}",
            info.authority_host.as_deref().unwrap_or("-"),
            request
                .tenant_id
                .as_deref()
                .or(info.tenant_id.as_deref())
                .unwrap_or("-"),
            info.client_id.as_deref().unwrap_or("-"),
            request.normalized_scopes().join(" ")
        )
    }

    /// Starts the one token request for `slot`'s key; `lead` is the time the token it replaces
    /// had left, when it replaces one.
    fn start_flight(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        state: &mut State,
        lead: Option<Duration>,
    ) -> watch::Receiver<Outcome> {
        let (tx, rx) = watch::channel(None);
        state.flight = Some(rx.clone());
        let inner = Arc::clone(self);
        let slot = Arc::clone(slot);
        // The slot's key, not the caller's spelling of it, is what gets requested.
        let request = TokenRequest::with_scopes(slot.scopes.clone());
        let request = match &slot.tenant {
            Some(t) => request.tenant(t.clone()),
            None => request,
        };
        // A refresh: how long the old token had left (`botauth.token.refresh.lead_time`).
        if let Some(lead) = lead {
            self.lead_time.record_duration(lead);
        }
        let span = tracing::info_span!(
            "botauth.token.acquire",
            key = %self.cache_key(&request),
            credential = %self.info.kind,
            refresh = lead.is_some(),
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
            error = tracing::field::Empty,
            aadsts = tracing::field::Empty,
        );
        // The flight outlives the call that started it and serves every waiter: it follows
        // from that call's span rather than sitting inside it.
        span.follows_from(tracing::Span::current());
        let acquiring_span = span.clone();
        tokio::spawn(
            async move {
                // The provider runs in a task of its own so that a panic in it (a bug, or a
                // custom provider's) becomes an error for the waiters instead of a flight that
                // never lands and leaves every later caller waiting on a dead channel.
                let acquiring = Arc::clone(&inner);
                let result = tokio::spawn(
                    async move { acquiring.acquire(&request).await }.instrument(acquiring_span),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(Error::credential(
                        "the credential panicked while getting a token; the next call tries again",
                    ))
                });
                inner.settle(&slot, &result);
                // Receivers may all be gone (callers cancelled); the cache is updated regardless.
                let _ = tx.send(Some(result));
            }
            .instrument(span),
        );
        rx
    }

    /// One acquisition with the retry policy of docs/protocol.md §5.
    async fn acquire(&self, request: &TokenRequest) -> Result<AccessToken> {
        let result = self.attempts(request).await;
        let span = tracing::Span::current();
        match &result {
            Ok(_) => {
                span.record("outcome", "ok");
            }
            Err(e) => {
                span.record("outcome", "error");
                span.record("error", tracing::field::display(e.kind()));
                if let Some(code) = e.as_entra().and_then(|entra| entra.error_codes.first()) {
                    span.record(
                        "aadsts",
                        tracing::field::display(format_args!("AADSTS{code}")),
                    );
                }
            }
        }
        result
    }

    async fn attempts(&self, request: &TokenRequest) -> Result<AccessToken> {
        let mut attempt = 0;
        loop {
            tracing::Span::current().record("attempts", attempt + 1);
            let result = self
                .provider
                .get_token(request)
                .await
                .and_then(|token| self.check_sendable(&token).map(|()| token));
            telemetry::token_request(&self.info.kind, result.as_ref().map(|_| ()));
            let error = match result {
                Ok(token) => return Ok(token),
                Err(e) => e,
            };
            // A credential with its own retry schedule has already waited the outage out once.
            let max_retries = if self.info.retries_internally {
                0
            } else {
                self.options.max_retries
            };
            if attempt >= max_retries || !error.is_retryable() {
                return Err(error);
            }
            // `Retry-After` lengthens the wait but never shortens it: `0` or a date in the past
            // means "retry when you like", not "retry at once" (the connector client's rule too).
            let wait = match error.retry_after() {
                Some(ra) if ra > self.options.max_inline_retry_after => return Err(error),
                Some(ra) => ra.max(self.options.retry_delay),
                None => self.options.retry_delay,
            };
            attempt += 1;
            tracing::info!(error = %error, wait_ms = wait.as_millis() as u64, "token request failed; retrying");
            self.clock.sleep(wait).await;
        }
    }

    /// Refuses a token that cannot be sent: `Authorization: Bearer <token>` must be one header
    /// line. The client-credentials client already checks what it parses; this catches every
    /// other credential (managed identity, custom providers) before anything is cached.
    fn check_sendable(&self, token: &AccessToken) -> Result<()> {
        if http::is_sendable_token(token.token.expose_secret())
            && http::is_sendable_token_type(&token.token_type)
        {
            return Ok(());
        }
        Err(Error::InvalidResponse {
            endpoint: self.endpoint_name(),
            status: 200,
            message: http::UNSENDABLE_TOKEN.into(),
        })
    }

    /// Stores the outcome of a flight in the slot.
    fn settle(&self, slot: &Slot, result: &Result<AccessToken>) {
        let now = self.clock.now();
        let mut state = slot.lock();
        state.flight = None;
        match result {
            Ok(token) => {
                let refresh_at = self.refresh_at(token, now);
                slot.set_token(
                    &mut state,
                    Some(token.clone()),
                    now,
                    refresh_at,
                    self.options.expiry_margin,
                );
                state.failure = None;
                state.next_background = SystemTime::UNIX_EPOCH;
                state.hold = None;
            }
            Err(error) => {
                let retry_after = error
                    .retry_after()
                    .map(|ra| ra.min(self.options.retry_after_cap))
                    .filter(|ra| !ra.is_zero());
                if let Some(ra) = retry_after {
                    let (endpoint, status) = self.origin(error);
                    state.hold = Some(Hold {
                        until: now + ra,
                        endpoint,
                        status,
                    });
                }
                let still_valid = state.token.as_ref().is_some_and(|t| self.usable(t, now));
                if still_valid {
                    // Keep serving the valid token; try again later (docs/protocol.md §5), never
                    // sooner than the usual back-off, whatever `Retry-After` said.
                    let backoff = retry_after
                        .unwrap_or_default()
                        .max(self.options.background_retry);
                    state.next_background = now + backoff;
                    tracing::warn!(error = %error, retry_in_s = backoff.as_secs(), "background token refresh failed; keeping the cached token");
                } else {
                    let hold = retry_after
                        .unwrap_or(self.options.negative_ttl)
                        .max(self.options.negative_ttl);
                    state.failure = Some((error.clone(), now + hold));
                }
            }
        }
    }

    /// The endpoint and status of the answer that sent `Retry-After`, for the errors of later
    /// callers.
    fn origin(&self, error: &Error) -> (String, Option<u16>) {
        let fallback = || self.endpoint_name();
        match error {
            Error::Throttled { endpoint, .. } => (endpoint.clone(), Some(429)),
            Error::Unavailable {
                endpoint, status, ..
            } => (endpoint.clone(), *status),
            Error::RetryAfterPending {
                endpoint, status, ..
            } => (endpoint.clone(), *status),
            Error::Entra(e) => (fallback(), Some(e.status)),
            _ => (fallback(), None),
        }
    }

    /// What errors call the token endpoint when the provider's own error does not name it.
    fn endpoint_name(&self) -> String {
        self.info
            .authority_host
            .clone()
            .unwrap_or_else(|| format!("the `{}` credential", self.info.kind))
    }

    /// When to refresh `token` (docs/protocol.md §5), minus jitter.
    fn refresh_at(&self, token: &AccessToken, now: SystemTime) -> SystemTime {
        let lifetime = token.remaining(now);
        let latest = token
            .expires_on
            .checked_sub(self.options.expiry_margin + self.options.refresh_window)
            .unwrap_or(now)
            .max(now);
        let base = match token.refresh_on {
            Some(r) => r,
            None if lifetime >= self.options.half_life_threshold => now + lifetime / 2,
            None => latest,
        }
        .min(latest);
        let lead = base.duration_since(now).unwrap_or_default();
        let bound = self.options.max_jitter.min(lead / 10);
        if bound.is_zero() {
            return base;
        }
        // uuid's v4 generator is the process's CSPRNG; a jitter needs no more than that.
        let random = uuid::Uuid::new_v4().as_u128() as u64;
        let jitter = Duration::from_nanos(random % (bound.as_nanos() as u64).max(1));
        base - jitter
    }
}

#[async_trait]
impl CredentialProvider for TokenManager {
    /// Serves from the cache: a `TokenManager` can stand wherever a provider is expected.
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        TokenManager::get_token(self, request).await
    }

    fn describe(&self) -> CredentialInfo {
        self.inner.info.clone()
    }
}

#[cfg(test)]
mod sandbox_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::{EntraError, ErrorKind, TokioClock};
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::time::Instant;

    const SCOPE: &str = "https://api.botframework.com/.default";
    const HOUR: Duration = Duration::from_secs(3600);

    /// What the fake issuer answers next.
    enum Next {
        Token {
            lifetime: Duration,
            refresh_in: Option<Duration>,
        },
        Fail(Error),
        /// A one-hour token with exactly this text.
        Text(&'static str),
    }

    #[derive(Debug)]
    struct Fake {
        clock: TokioClock,
        calls: AtomicUsize,
        delay: Duration,
        script: Mutex<VecDeque<NextDebug>>,
        at: Mutex<Vec<Instant>>,
    }

    #[derive(Debug)]
    struct NextDebug(#[allow(dead_code)] String, NextBox);
    struct NextBox(Next);
    impl fmt::Debug for NextBox {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("next")
        }
    }

    impl Fake {
        fn new(delay: Duration) -> Arc<Self> {
            Arc::new(Fake {
                clock: TokioClock::new(),
                calls: AtomicUsize::new(0),
                delay,
                script: Mutex::new(VecDeque::new()),
                at: Mutex::new(Vec::new()),
            })
        }
        fn then(&self, next: Next) -> &Self {
            self.script
                .lock()
                .unwrap()
                .push_back(NextDebug(String::new(), NextBox(next)));
            self
        }
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
        fn call_times(&self) -> Vec<Instant> {
            self.at.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl CredentialProvider for Fake {
        async fn get_token(&self, _request: &TokenRequest) -> Result<AccessToken> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            self.at.lock().unwrap().push(Instant::now());
            tokio::time::sleep(self.delay).await;
            let next = self.script.lock().unwrap().pop_front().map(|n| n.1.0);
            let now = self.clock.now();
            match next.unwrap_or(Next::Token {
                lifetime: HOUR,
                refresh_in: None,
            }) {
                Next::Token {
                    lifetime,
                    refresh_in,
                } => Ok(AccessToken::bearer(format!("token-{n}"), now + lifetime)
                    .with_refresh_on(refresh_in.map(|r| now + r))),
                Next::Fail(e) => Err(e),
                Next::Text(text) => Ok(AccessToken::bearer(text, now + HOUR)),
            }
        }
        fn describe(&self) -> CredentialInfo {
            CredentialInfo::new("fake")
                .client_id("app")
                .tenant_id("tenant")
        }
    }

    fn manager(fake: &Arc<Fake>) -> TokenManager {
        TokenManager::builder(fake.clone())
            .clock(Arc::new(fake.clock))
            .max_jitter(Duration::ZERO)
            .build()
    }

    fn req() -> TokenRequest {
        TokenRequest::new(SCOPE)
    }

    fn token_text(t: &AccessToken) -> &str {
        t.token.expose_secret()
    }

    fn server_error() -> Error {
        Error::Unavailable {
            endpoint: "e".into(),
            status: Some(500),
            retry_after: None,
            source: None,
        }
    }

    fn throttled(secs: u64) -> Error {
        Error::Throttled {
            endpoint: "e".into(),
            retry_after: Some(Duration::from_secs(secs)),
        }
    }

    fn bad_secret() -> Error {
        EntraError::from_body(
            401,
            br#"{"error":"invalid_client","error_codes":[7000215]}"#,
            None,
        )
        .unwrap()
        .into()
    }

    /// Lets spawned tasks run (paused time advances only when every task is idle).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn thousand_cold_callers_make_one_request() {
        let fake = Fake::new(Duration::from_millis(200));
        let m = manager(&fake);
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let m = m.clone();
            tasks.push(tokio::spawn(async move { m.get_token(&req()).await }));
        }
        for t in tasks {
            assert_eq!(token_text(&t.await.unwrap().unwrap()), "token-1");
        }
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn second_call_is_a_cache_hit() {
        let fake = Fake::new(Duration::ZERO);
        let m = manager(&fake);
        let (_, s1) = m.get_token_with_source(&req()).await.unwrap();
        let (t2, s2) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!((s1, s2), (TokenSource::Fetched, TokenSource::Cache));
        assert_eq!(token_text(&t2), "token-1");
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn scopes_are_a_set() {
        let fake = Fake::new(Duration::ZERO);
        let m = manager(&fake);
        m.get_token(&TokenRequest::with_scopes(["b", "a"]))
            .await
            .unwrap();
        m.get_token(&TokenRequest::with_scopes(["a", " b", "a"]))
            .await
            .unwrap();
        assert_eq!(fake.calls(), 1);
        m.get_token(&TokenRequest::with_scopes(["a"]))
            .await
            .unwrap();
        m.get_token(&TokenRequest::with_scopes(["a", "b"]).tenant("other"))
            .await
            .unwrap();
        assert_eq!(fake.calls(), 3);
        assert!(
            m.get_token(&TokenRequest::with_scopes([" "]))
                .await
                .unwrap_err()
                .is_config()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_ahead_in_the_background() {
        let fake = Fake::new(Duration::from_millis(100));
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        // One hour token: refresh at expiry - 300 s - 60 s.
        tokio::time::advance(Duration::from_secs(3239)).await;
        assert_eq!(
            m.get_token_with_source(&req()).await.unwrap().1,
            TokenSource::Cache
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        let started = Instant::now();
        let (t, s) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "the caller must not wait"
        );
        assert_eq!(
            (token_text(&t), s),
            ("token-1", TokenSource::CacheRefreshing)
        );
        // Callers during the refresh are served at once and start nothing.
        let (t, s) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!(
            (token_text(&t), s),
            ("token-1", TokenSource::CacheRefreshing)
        );
        settle().await;
        assert_eq!(fake.calls(), 2);
        let (t, s) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!((token_text(&t), s), ("token-2", TokenSource::Cache));
    }

    #[tokio::test(start_paused = true)]
    async fn long_tokens_refresh_at_half_life_and_refresh_in_wins() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Token {
            lifetime: 4 * HOUR,
            refresh_in: None,
        })
        .then(Next::Token {
            lifetime: HOUR,
            refresh_in: Some(Duration::from_secs(600)),
        });
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        tokio::time::advance(2 * HOUR - Duration::from_secs(1)).await;
        assert_eq!(
            m.get_token_with_source(&req()).await.unwrap().1,
            TokenSource::Cache
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            m.get_token_with_source(&req()).await.unwrap().1,
            TokenSource::CacheRefreshing
        );
        settle().await;
        // The new token said refresh_in = 600 s.
        tokio::time::advance(Duration::from_secs(598)).await;
        assert_eq!(
            m.get_token_with_source(&req()).await.unwrap().1,
            TokenSource::Cache
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            m.get_token_with_source(&req()).await.unwrap().1,
            TokenSource::CacheRefreshing
        );
        settle().await;
        assert_eq!(fake.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refresh_keeps_the_valid_token() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Token {
            lifetime: HOUR,
            refresh_in: None,
        })
        .then(Next::Fail(bad_secret()));
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        tokio::time::advance(Duration::from_secs(3241)).await;
        let (t, _) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!(token_text(&t), "token-1");
        settle().await;
        assert_eq!(fake.calls(), 2);
        // Still served, and no new attempt until the background back-off (30 s) has passed.
        for _ in 0..10 {
            assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-1");
        }
        assert_eq!(fake.calls(), 2);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-1");
        settle().await;
        assert_eq!(fake.calls(), 3);
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-3");
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_with_less_than_five_minutes_left_is_expired() {
        let fake = Fake::new(Duration::ZERO);
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        tokio::time::advance(Duration::from_secs(3241)).await;
        // Background refresh starts here; make it fail so the token ages further.
        fake.then(Next::Fail(server_error()))
            .then(Next::Fail(server_error()));
        assert_eq!(
            m.get_token_with_source(&req()).await.unwrap().1,
            TokenSource::CacheRefreshing
        );
        // The background refresh fails, waits 1 s, fails again.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(fake.calls(), 3);
        tokio::time::advance(Duration::from_secs(60)).await;
        // Under 300 s left: expired for callers; they wait for a fresh token.
        let (t, s) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!(s, TokenSource::Fetched);
        assert_eq!(token_text(&t), "token-4");
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_retry_once_after_one_second() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Fail(server_error()));
        let m = manager(&fake);
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
        let at = fake.call_times();
        assert_eq!(at.len(), 2);
        assert_eq!(at[1] - at[0], Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn two_server_errors_fail_with_the_last_one() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Fail(server_error()))
            .then(Next::Fail(server_error()));
        let m = manager(&fake);
        let e = m.get_token(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(fake.calls(), 2);
    }

    /// A credential with its own retry schedule (managed identity) is not retried a second time.
    #[derive(Debug)]
    struct SelfRetrying(Arc<Fake>);

    #[async_trait]
    impl CredentialProvider for SelfRetrying {
        async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
            self.0.get_token(request).await
        }
        fn describe(&self) -> CredentialInfo {
            self.0.describe().retries_internally()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn credentials_that_retry_internally_are_not_retried_again() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Fail(server_error()));
        let m = TokenManager::new(Arc::new(SelfRetrying(fake.clone())));
        let e = m.get_token(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(fake.calls(), 1);
    }

    /// A provider that panics on its first call.
    #[derive(Debug)]
    struct PanicsOnce(Arc<Fake>, AtomicUsize);

    #[async_trait]
    impl CredentialProvider for PanicsOnce {
        async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
            if self.1.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a provider bug");
            }
            self.0.get_token(request).await
        }
        fn describe(&self) -> CredentialInfo {
            self.0.describe()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_provider_is_an_error_and_the_next_call_recovers() {
        let fake = Fake::new(Duration::ZERO);
        let m = TokenManager::builder(Arc::new(PanicsOnce(fake.clone(), AtomicUsize::new(0))))
            .clock(Arc::new(fake.clock))
            .build();
        let e = m.get_token(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Credential);
        assert!(e.to_string().contains("panicked"), "{e}");
        // After the short negative cache, the next call reaches the provider again.
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-1");
    }

    #[tokio::test(start_paused = true)]
    async fn short_retry_after_is_waited_for() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Fail(throttled(7)));
        let m = manager(&fake);
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
        let at = fake.call_times();
        assert_eq!(at[1] - at[0], Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn long_retry_after_fails_fast_and_holds_off_requests() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Fail(throttled(120)));
        let m = manager(&fake);
        let e = m.get_token(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
        tokio::time::advance(Duration::from_secs(119)).await;
        assert_eq!(
            m.get_token(&req()).await.unwrap_err().kind(),
            ErrorKind::Throttled
        );
        assert_eq!(fake.calls(), 1, "no request before Retry-After has passed");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    }

    /// Issue 13: a `Retry-After` answer to a background refresh held off only the next background
    /// refresh; once the token stopped being usable, a caller's request went out at once.
    #[tokio::test(start_paused = true)]
    async fn a_background_retry_after_holds_callers_and_forced_refreshes() {
        let fake = Fake::new(Duration::ZERO);
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        tokio::time::advance(Duration::from_secs(3241)).await;
        fake.then(Next::Fail(Error::Unavailable {
            endpoint: "e".into(),
            status: Some(503),
            retry_after: Some(HOUR),
            source: None,
        }));
        assert_eq!(
            m.get_token_with_source(&req()).await.unwrap().1,
            TokenSource::CacheRefreshing
        );
        settle().await;
        assert_eq!(fake.calls(), 2);
        // 65 s after the 503 the token has under 300 s left: callers need a new one, but none is
        // requested.
        tokio::time::advance(Duration::from_secs(64)).await;
        let e = m.get_token(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Throttled);
        let left = HOUR - Duration::from_millis(64_500);
        assert_eq!(e.retry_after(), Some(left));
        assert!(matches!(
            e,
            Error::RetryAfterPending { status: Some(503), ref endpoint, .. } if endpoint == "e"
        ));
        let e = m.force_refresh(&req()).await.unwrap_err();
        assert_eq!(e.retry_after(), Some(left));
        assert_eq!(fake.calls(), 2, "no request before Retry-After has passed");
        // Neither invalidate nor clear lets a request out early.
        m.invalidate(&req());
        m.clear();
        assert_eq!(
            m.get_token(&req()).await.unwrap_err().kind(),
            ErrorKind::Throttled
        );
        assert_eq!(fake.calls(), 2);
        tokio::time::advance(left).await;
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-3");
    }

    /// `Retry-After: 0` is not "retry at once": a failed background refresh still waits the
    /// background back-off (30 s) before the next one.
    #[tokio::test(start_paused = true)]
    async fn a_zero_retry_after_keeps_the_background_backoff() {
        let fake = Fake::new(Duration::ZERO);
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        tokio::time::advance(Duration::from_secs(3241)).await;
        fake.then(Next::Fail(throttled(0)))
            .then(Next::Fail(throttled(0)));
        m.get_token(&req()).await.unwrap();
        // The refresh and its one retry (after the 1 s floor, not at once) both fail.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(fake.calls(), 3);
        let at = fake.call_times();
        assert_eq!(at[2] - at[1], Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(27)).await;
        m.get_token(&req()).await.unwrap();
        settle().await;
        assert_eq!(fake.calls(), 3, "no refresh before the 30 s back-off");
        tokio::time::advance(Duration::from_secs(2)).await;
        m.get_token(&req()).await.unwrap();
        settle().await;
        assert_eq!(fake.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_retry_after_waits_the_retry_delay() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Fail(throttled(0)));
        let m = manager(&fake);
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
        let at = fake.call_times();
        assert_eq!(at[1] - at[0], Duration::from_secs(1));
    }

    /// Issue 13: a token that cannot go in a header was cached and failed every reply for its
    /// lifetime. The manager refuses it whichever provider produced it.
    #[tokio::test(start_paused = true)]
    async fn tokens_that_cannot_be_sent_are_refused_from_any_provider() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Text("tok\r\nX-Evil: 1"));
        let m = manager(&fake);
        let e = m.get_token(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse);
        assert!(!e.to_string().contains("X-Evil"), "{e}");
        assert!(e.to_string().contains("the `fake` credential"), "{e}");
        // Not cached; the negative cache answers for 2 s, then a new request is made.
        assert_eq!(
            m.get_token(&req()).await.unwrap_err().kind(),
            ErrorKind::InvalidResponse
        );
        assert_eq!(fake.calls(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
        // A background refresh that gets one keeps the valid token.
        tokio::time::advance(Duration::from_secs(3241)).await;
        fake.then(Next::Text("t\u{7f}k"));
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
        settle().await;
        assert_eq!(fake.calls(), 3);
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_are_not_retried_and_are_briefly_remembered() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Fail(bad_secret()));
        let m = manager(&fake);
        let e = m.get_token(&req()).await.unwrap_err();
        assert_eq!(e.as_entra().and_then(EntraError::code), Some(7000215));
        let e = m.get_token(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Rejected);
        assert_eq!(fake.calls(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn force_refresh_replaces_the_token_once_for_all_callers() {
        let fake = Fake::new(Duration::from_millis(50));
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let m = m.clone();
            tasks.push(tokio::spawn(async move { m.force_refresh(&req()).await }));
        }
        for t in tasks {
            assert_eq!(token_text(&t.await.unwrap().unwrap()), "token-2");
        }
        assert_eq!(fake.calls(), 2);
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    }

    #[tokio::test(start_paused = true)]
    async fn force_refresh_bypasses_the_negative_cache() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Fail(bad_secret()));
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap_err();
        assert_eq!(
            token_text(&m.force_refresh(&req()).await.unwrap()),
            "token-2"
        );
    }

    /// The lock-free hit path serves the published snapshot only: never past the refresh time
    /// (the slow path then starts the background refresh), and never a token that was dropped,
    /// forced out or cleared.
    #[tokio::test(start_paused = true)]
    async fn the_hit_path_follows_every_change_of_the_token() {
        let fake = Fake::new(Duration::ZERO);
        fake.then(Next::Token {
            lifetime: Duration::from_secs(3600),
            refresh_in: Some(Duration::from_secs(600)),
        });
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        for _ in 0..3 {
            let (t, source) = m.get_token_with_source(&req()).await.unwrap();
            assert_eq!((token_text(&t), source), ("token-1", TokenSource::Cache));
        }
        // One second before the refresh time: still a plain hit. At it: the slow path.
        tokio::time::advance(Duration::from_secs(599)).await;
        let (_, source) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!(source, TokenSource::Cache);
        tokio::time::advance(Duration::from_secs(1)).await;
        let (t, source) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!(
            (token_text(&t), source),
            ("token-1", TokenSource::CacheRefreshing)
        );
        settle().await;
        let (t, source) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!((token_text(&t), source), ("token-2", TokenSource::Cache));
        // Forced out, invalidated, cleared: each time the next caller gets a new token.
        assert_eq!(
            token_text(&m.force_refresh(&req()).await.unwrap()),
            "token-3"
        );
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-3");
        m.invalidate(&req());
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-4");
        m.clear();
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-5");
        assert_eq!(fake.calls(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_drops_the_token() {
        let fake = Fake::new(Duration::ZERO);
        let m = manager(&fake);
        m.get_token(&req()).await.unwrap();
        m.invalidate(&req());
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
        m.clear();
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-3");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_caller_does_not_cancel_the_request() {
        let fake = Fake::new(Duration::from_secs(1));
        let m = manager(&fake);
        let first = {
            let m = m.clone();
            tokio::spawn(async move { m.get_token(&req()).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        first.abort();
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-1");
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_its_bounds() {
        let fake = Fake::new(Duration::ZERO);
        let m = TokenManager::builder(fake.clone())
            .clock(Arc::new(fake.clock))
            .build();
        let now = fake.clock.now();
        let token = AccessToken::bearer("t", now + HOUR);
        let base = now + HOUR - Duration::from_secs(360);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let at = m.inner.refresh_at(&token, now);
            assert!(at <= base && at >= base - Duration::from_secs(60), "{at:?}");
            seen.insert(at);
        }
        assert!(seen.len() > 100, "jitter should vary");
        // Never more than a tenth of the lead time.
        let short = AccessToken::bearer("t", now + Duration::from_secs(460));
        let at = m.inner.refresh_at(&short, now);
        assert!(at >= now + Duration::from_secs(90) && at <= now + Duration::from_secs(100));
    }

    #[tokio::test(start_paused = true)]
    async fn the_manager_is_itself_a_provider() {
        let fake = Fake::new(Duration::ZERO);
        let m: Arc<dyn CredentialProvider> = Arc::new(manager(&fake));
        m.get_token(&req()).await.unwrap();
        m.get_token(&req()).await.unwrap();
        assert_eq!(fake.calls(), 1);
        assert_eq!(m.describe().kind, "fake");
    }

    #[test]
    fn cache_key_names_all_parts() {
        let fake = Fake::new(Duration::ZERO);
        let m = TokenManager::new(fake);
        assert_eq!(
            m.cache_key(&TokenRequest::with_scopes(["b", "a", "a"])),
            "-|tenant|app|a b"
        );
    }
}
