//! [`TokenManager`]: botauth's one token cache (docs/protocol.md §5).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use async_trait::async_trait;
use botauth_core::internal::telemetry;
use botauth_core::{
    AccessToken, Clock, CredentialInfo, CredentialProvider, Error, Result, SystemClock,
    TokenRequest,
};
use tokio::sync::watch;
use tracing::Instrument as _;

use botauth_http::internal as http;

mod options;
mod slot;

pub use options::{ManagerOptions, TokenSource};
use slot::{Hold, Outcome, Slot, State};

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
        let mut request = TokenRequest::with_scopes(slot.scopes.clone());
        request.tenant_id.clone_from(&slot.tenant);
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
                if let Some(code) = e.as_entra().and_then(|entra| entra.error_codes().first()) {
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
            Error::Entra(e) => (fallback(), Some(e.status())),
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
mod tests;
