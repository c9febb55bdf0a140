//! The tuning of a [`TokenManager`](crate::TokenManager) and where a token came from.

use std::time::Duration;

/// Tuning of a [`TokenManager`](crate::TokenManager): public fields over a [`Default`], given to
/// [`TokenManagerBuilder::options`](crate::TokenManagerBuilder::options). The defaults follow
/// docs/protocol.md §5.
///
/// ```
/// use std::time::Duration;
/// use botauth_token::ManagerOptions;
///
/// // Exact refresh times (no jitter), as a test wants them.
/// let options = ManagerOptions { max_jitter: Duration::ZERO, ..ManagerOptions::default() };
/// assert_eq!(options.expiry_margin, Duration::from_secs(300));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// not a background refresh, not a caller's, not [`force_refresh`](crate::TokenManager::force_refresh)
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

/// Where a token handed out by [`TokenManager::get_token_with_source`](crate::TokenManager::get_token_with_source) came from.
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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenSource::Cache => "cache",
            TokenSource::CacheRefreshing => "cache_refreshing",
            TokenSource::Fetched => "fetched",
        }
    }
}
