//! OpenID metadata + JWKS per metadata URL: fetched on first use with single flight, refreshed on
//! a schedule, refetched for an unknown `kid` at most once per cooldown, last-known-good kept
//! through outages up to a max-stale bound (docs/protocol.md §6, "Key cache").

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use botauth_core::Clock;
use botauth_core::internal::telemetry;
use botauth_http::internal::{display_endpoint, read_body, transport_error};
use botauth_http::{HttpOptions, build_client};
use serde_json::Value;
use tracing::Instrument as _;

use crate::error::{Error, Result};
use crate::jwk::{Jwk, parse_jwks};

/// Timing of the key cache. Every value is configurable on the
/// [`ValidatorBuilder`](crate::ValidatorBuilder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyTiming {
    /// Refresh metadata + JWKS when the keys are this old (botbuilder: 24 h).
    pub(crate) refresh_every: Duration,
    /// At most one refetch per this interval because of an unknown `kid`.
    pub(crate) unknown_kid_cooldown: Duration,
    /// After a failed fetch, wait this long before trying again.
    pub(crate) retry_after_failure: Duration,
    /// Serve keys fetched at most this long ago while the endpoint is failing.
    pub(crate) max_stale: Duration,
}

impl Default for KeyTiming {
    fn default() -> Self {
        KeyTiming {
            refresh_every: Duration::from_secs(24 * 3600),
            unknown_kid_cooldown: Duration::from_secs(300),
            retry_after_failure: Duration::from_secs(30),
            max_stale: Duration::from_secs(72 * 3600),
        }
    }
}

#[derive(Debug)]
struct KeySet {
    keys: HashMap<String, Arc<Jwk>>,
    fetched_at: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Arc<KeySet>>,
    /// When the last fetch (successful or not) finished.
    last_attempt: Option<SystemTime>,
    last_failed: bool,
    last_error: Option<botauth_core::Error>,
    /// Completed fetch attempts, so that a caller who waited for the single flight knows one ran.
    attempts: u64,
    /// Successful fetches: a verification made with generation `g` still stands while it is `g`.
    generation: u64,
}

#[derive(Debug)]
enum Source {
    Http {
        client: reqwest::Client,
        options: HttpOptions,
    },
    /// Keys given up front; never fetched (offline validation, the fuzz target).
    Fixed,
}

/// The keys behind one metadata URL.
#[derive(Debug)]
pub(crate) struct KeyCache {
    metadata_url: String,
    source: Source,
    timing: KeyTiming,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// Held by the one fetch in flight (an `Arc` so the fetch's own task can own the guard).
    fetch_lock: Arc<tokio::sync::Mutex<()>>,
    fetches: AtomicU64,
    /// Mirrors of `State::generation` and of the key set's fetch time (Unix seconds), so that the
    /// verified-token cache can check them without taking the lock.
    generation: AtomicU64,
    fetched_at: AtomicU64,
}

/// How [`KeyCache::fetch_if`] takes `fetch_lock`.
#[derive(Debug, Clone, Copy)]
enum Lock {
    /// Wait for the fetch in flight, then fetch if still due.
    Wait,
    /// Fetch only if no fetch is in flight.
    IfFree,
}

fn unix_secs(t: SystemTime) -> u64 {
    u64::try_from(botauth_core::internal::date::unix_seconds(t)).unwrap_or(0)
}

fn age(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

impl KeyCache {
    pub(crate) fn http(
        metadata_url: String,
        client: reqwest::Client,
        options: HttpOptions,
        timing: KeyTiming,
        clock: Arc<dyn Clock>,
    ) -> Self {
        KeyCache {
            metadata_url,
            source: Source::Http { client, options },
            timing,
            clock,
            state: RwLock::new(State::default()),
            fetch_lock: Arc::new(tokio::sync::Mutex::new(())),
            fetches: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            fetched_at: AtomicU64::new(0),
        }
    }

    pub(crate) fn fixed(
        name: String,
        keys: HashMap<String, Arc<Jwk>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let now = clock.now();
        let state = State {
            current: Some(Arc::new(KeySet {
                keys,
                fetched_at: now,
            })),
            ..State::default()
        };
        KeyCache {
            metadata_url: name,
            source: Source::Fixed,
            timing: KeyTiming::default(),
            clock,
            state: RwLock::new(state),
            fetch_lock: Arc::new(tokio::sync::Mutex::new(())),
            fetches: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            fetched_at: AtomicU64::new(unix_secs(now)),
        }
    }

    pub(crate) fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// How many metadata + JWKS fetches were started.
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.write().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether a key found in generation `generation` still stands at `now`: no fetch has
    /// replaced the key set since, and the set is not stale beyond the bound. Lock-free, for the
    /// verified-token cache's hit path.
    /// `now_unix` is the time in seconds since the Unix epoch (the caller has it already: a
    /// hit reads the clock once).
    pub(crate) fn still_current(&self, generation: u64, now_unix: i64) -> bool {
        // Before the epoch counts as the epoch, as `unix_secs` has it.
        let now = u64::try_from(now_unix).unwrap_or(0);
        self.generation.load(Ordering::Acquire) == generation
            && (self.is_fixed()
                || now.saturating_sub(self.fetched_at.load(Ordering::Acquire))
                    <= self.timing.max_stale.as_secs())
    }

    /// The key `kid` of the current set and its generation, without fetching, when the set is
    /// not stale beyond the bound.
    pub(crate) fn cached(&self, kid: &str) -> Option<(Arc<Jwk>, u64)> {
        let now = self.clock.now();
        self.read(|s| {
            let set = s.current.as_ref()?;
            if self.is_fixed() || age(now, set.fetched_at) <= self.timing.max_stale {
                set.keys.get(kid).map(|k| (Arc::clone(k), s.generation))
            } else {
                None
            }
        })
    }

    /// The common case of [`key`](Self::key), in one read and without awaiting: the key `kid`
    /// of a set that is not due for its refresh at `now` (a fixed set never is).
    pub(crate) fn fresh(&self, kid: &str, now: SystemTime) -> Option<(Arc<Jwk>, u64)> {
        self.read(|s| {
            let set = s.current.as_ref()?;
            if !self.is_fixed() && age(now, set.fetched_at) >= self.timing.refresh_every {
                return None;
            }
            Some((Arc::clone(set.keys.get(kid)?), s.generation))
        })
    }

    fn is_fixed(&self) -> bool {
        matches!(self.source, Source::Fixed)
    }

    /// The key named `kid` and the generation of the set it came from, fetching or refreshing as
    /// the rules allow.
    pub(crate) async fn key(self: &Arc<Self>, kid: &str) -> Result<(Arc<Jwk>, u64)> {
        if self.is_fixed() {
            // A fixed set is never stale and never fetched.
            return self.cached(kid).ok_or(Error::UnknownKeyId);
        }
        let now = self.clock.now();
        if let Some(hit) = self.fresh(kid, now) {
            return Ok(hit);
        }
        let (has_keys, refresh_due, attempts, may_retry) = self.read(|s| {
            let may_retry = s.last_attempt.is_none_or(|t| {
                let wait = if s.last_failed {
                    self.timing.retry_after_failure
                } else {
                    Duration::ZERO
                };
                age(now, t) >= wait
            });
            let refresh_due = s
                .current
                .as_ref()
                .is_some_and(|set| age(now, set.fetched_at) >= self.timing.refresh_every);
            (s.current.is_some(), refresh_due, s.attempts, may_retry)
        });

        if !has_keys {
            if may_retry {
                // First use: everyone waits for the one fetch.
                self.fetch_if(Lock::Wait, move |s, _| s.attempts == attempts)
                    .await;
            }
        } else if refresh_due && may_retry {
            // Scheduled refresh: one caller fetches; the others go on with the current keys
            // instead of queueing behind it.
            if self.fetch_lock.try_lock().is_ok() {
                self.fetch_if(Lock::IfFree, move |s, _| s.attempts == attempts)
                    .await;
            }
        }

        let (found, attempts, last_attempt) = self.lookup(kid)?;
        if let Some(key) = found {
            return Ok(key);
        }
        // Unknown kid: at most one refetch per cooldown, so a flood of random kids cannot make
        // us hammer the key endpoint.
        let now = self.clock.now();
        if last_attempt.is_some_and(|t| age(now, t) < self.timing.unknown_kid_cooldown) {
            return Err(Error::UnknownKeyId);
        }
        let cooldown = self.timing.unknown_kid_cooldown;
        self.fetch_if(Lock::Wait, move |s, now| {
            s.attempts == attempts && s.last_attempt.is_none_or(|t| age(now, t) >= cooldown)
        })
        .await;
        match self.lookup(kid)?.0 {
            Some(key) => Ok(key),
            // A kid we could not look for because the key endpoint is failing: the keys are
            // unavailable (503, so the Bot Service retries), not the token bad (401).
            None => Err(self.read(|s| {
                if s.last_failed {
                    self.unavailable(s.last_error.clone())
                } else {
                    Error::UnknownKeyId
                }
            })),
        }
    }

    /// Makes sure a key set is held, fetching it now if none has been (the start-up check); a
    /// set already held is not refetched.
    pub(crate) async fn ensure(self: &Arc<Self>) -> Result<()> {
        if self.is_fixed() {
            return Ok(());
        }
        if self.read(|s| s.current.is_none()) {
            self.fetch_if(Lock::Wait, |s, _| s.current.is_none()).await;
        }
        self.read(|s| match s.current {
            Some(_) => Ok(()),
            None => Err(self.unavailable(s.last_error.clone())),
        })
    }

    /// Runs one fetch under `fetch_lock` if `due` still holds once the lock is held, in a task of
    /// its own: a caller that goes away (hyper drops the request's future when the client hangs
    /// up) must not abort the fetch, or no attempt would be recorded and neither the unknown-`kid`
    /// cooldown nor single flight would hold.
    async fn fetch_if(
        self: &Arc<Self>,
        lock: Lock,
        due: impl FnOnce(&State, SystemTime) -> bool + Send + 'static,
    ) {
        let this = Arc::clone(self);
        // The fetch's span sits inside the caller's (a validation's), though it runs in a task.
        let caller = tracing::Span::current();
        let task = tokio::spawn(async move {
            let _guard = match lock {
                Lock::Wait => Arc::clone(&this.fetch_lock).lock_owned().await,
                Lock::IfFree => match Arc::clone(&this.fetch_lock).try_lock_owned() {
                    Ok(guard) => guard,
                    Err(_) => return,
                },
            };
            let now = this.clock.now();
            if this.read(|s| due(s, now)) {
                let span = tracing::info_span!(
                    parent: &caller,
                    "botauth.keys.fetch",
                    server.address = telemetry::host_of(&this.metadata_url),
                    outcome = tracing::field::Empty,
                    keys = tracing::field::Empty,
                );
                this.fetch_and_store().instrument(span).await;
            }
        });
        // The task stores its own result; a panic in it has already been reported by tokio.
        let _ = task.await;
    }

    /// Looks `kid` up in the current set; fails when there is no set or it is too stale.
    #[allow(clippy::type_complexity)]
    fn lookup(&self, kid: &str) -> Result<(Option<(Arc<Jwk>, u64)>, u64, Option<SystemTime>)> {
        let now = self.clock.now();
        self.read(|s| match &s.current {
            Some(set) if age(now, set.fetched_at) <= self.timing.max_stale => Ok((
                set.keys.get(kid).map(|k| (Arc::clone(k), s.generation)),
                s.attempts,
                s.last_attempt,
            )),
            _ => Err(self.unavailable(s.last_error.clone())),
        })
    }

    fn unavailable(&self, error: Option<botauth_core::Error>) -> Error {
        let source = error.unwrap_or_else(|| botauth_core::Error::Unavailable {
            endpoint: display_endpoint(&self.metadata_url),
            status: None,
            retry_after: None,
            source: None,
        });
        Error::KeysUnavailable {
            endpoint: display_endpoint(&self.metadata_url),
            source,
        }
    }

    /// Fetches and, on success, replaces the key set; on failure keeps the old one (a failed or
    /// partial fetch never drops good keys). Call with `fetch_lock` held.
    async fn fetch_and_store(&self) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let result = self.fetch().await;
        let span = tracing::Span::current();
        let outcome = if result.is_ok() { "success" } else { "failure" };
        span.record("outcome", outcome);
        if let Ok(keys) = &result {
            span.record("keys", keys.len());
        }
        telemetry::counter(
            telemetry::KEY_FETCHES,
            &[
                ("server.address", telemetry::host_of(&self.metadata_url)),
                ("outcome", outcome),
            ],
        )
        .increment(1);
        let now = self.clock.now();
        self.write(|s| {
            s.attempts += 1;
            s.last_attempt = Some(now);
            match result {
                Ok(keys) => {
                    tracing::debug!(metadata = %display_endpoint(&self.metadata_url), keys = keys.len(), "signing keys fetched");
                    s.current = Some(Arc::new(KeySet {
                        keys,
                        fetched_at: now,
                    }));
                    s.generation += 1;
                    self.generation.store(s.generation, Ordering::Release);
                    self.fetched_at.store(unix_secs(now), Ordering::Release);
                    s.last_failed = false;
                    s.last_error = None;
                }
                Err(error) => {
                    tracing::warn!(metadata = %display_endpoint(&self.metadata_url), %error, "fetching signing keys failed; keeping the last good keys");
                    s.last_failed = true;
                    s.last_error = Some(error);
                }
            }
        });
    }

    async fn fetch(&self) -> std::result::Result<HashMap<String, Arc<Jwk>>, botauth_core::Error> {
        let Source::Http { client, options } = &self.source else {
            return Err(botauth_core::Error::credential(
                "fixed key sets are never fetched",
            ));
        };
        let metadata = get_json(client, options, &self.metadata_url).await?;
        let jwks_uri = metadata
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| botauth_core::Error::InvalidResponse {
                endpoint: display_endpoint(&self.metadata_url),
                status: 200,
                message: "the OpenID metadata has no string `jwks_uri`".into(),
            })?;
        let jwks_uri =
            botauth_core::internal::endpoint::check_jwks_uri(&self.metadata_url, jwks_uri)?;
        let doc = get_json(client, options, &jwks_uri).await?;
        parse_jwks(&doc, &jwks_uri)
    }
}

async fn get_json(
    client: &reqwest::Client,
    options: &HttpOptions,
    url: &str,
) -> std::result::Result<Value, botauth_core::Error> {
    let response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| transport_error(url, e, options.timeout))?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(botauth_core::Error::Unavailable {
            endpoint: display_endpoint(url),
            status: Some(status),
            retry_after: None,
            source: None,
        });
    }
    let body = read_body(response, url, options.max_response_bytes, options.timeout).await?;
    serde_json::from_slice(&body).map_err(|_| botauth_core::Error::InvalidResponse {
        endpoint: display_endpoint(url),
        status,
        message: "the body is not JSON".into(),
    })
}

/// The HTTP client for key fetches: botauth's (timeouts, no redirects).
pub(crate) fn client(options: &HttpOptions) -> Result<reqwest::Client> {
    build_client(options).map_err(|e| Error::config("http", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::tests::rsa_jwk;
    use serde_json::json;

    #[test]
    fn jwks_without_a_usable_key_is_a_failed_fetch() {
        for doc in [
            json!({"keys": []}),
            json!({"keys": [rsa_jwk(1024, "weak")]}),
            json!({"nokeys": 1}),
            json!([]),
        ] {
            let e = parse_jwks(&doc, "http://127.0.0.1/keys").unwrap_err();
            assert_eq!(e.kind(), botauth_core::ErrorKind::InvalidResponse, "{doc}");
        }
    }
}
