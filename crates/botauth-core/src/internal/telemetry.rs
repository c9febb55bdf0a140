//! What botauth tells an observer: the names of its `tracing` spans and of its metrics, and the
//! recording of the metrics (docs/observability.md).
//!
//! Metrics go through the [`metrics`](https://docs.rs/metrics) facade when the `metrics` feature
//! is on, to whatever recorder the application installed (a Prometheus exporter, an
//! OpenTelemetry bridge, …); without the feature every handle here is empty and every call
//! compiles to nothing. Names follow the OpenTelemetry conventions (dot-separated, lower case,
//! seconds for durations; a Prometheus exporter turns the dots into underscores:
//! `botauth_token_requests` for [`TOKEN_REQUESTS`]); where a semantic convention exists it is
//! used ([`HTTP_CLIENT_REQUEST_DURATION`]).
//!
//! No label or span field ever holds a secret, a token, an assertion or a conversation path:
//! labels are credential kinds, outcomes, error kinds, `AADSTS` codes, host names and status
//! codes.

use std::time::Duration;

/// Token requests a credential made (counter). Labels: `credential` (kind, e.g.
/// `client_secret`), `outcome` (`success` or `failure`), `error` (the [`ErrorKind`](crate::ErrorKind)
/// of a failure, empty on success) and `aadsts` (the first `AADSTS` code of an Entra refusal, else
/// empty).
pub const TOKEN_REQUESTS: &str = "botauth.token.requests";
/// Age of the outbound token handed to a caller, in seconds, at each use (histogram). Label:
/// `credential`.
pub const TOKEN_AGE: &str = "botauth.token.age";
/// Time left before a cached token's expiry when its refresh starts, in seconds (histogram).
/// Label: `credential`.
pub const TOKEN_REFRESH_LEAD_TIME: &str = "botauth.token.refresh.lead_time";
/// Inbound validations (counter). Labels: `outcome` (`accepted`, `rejected` — a 401 — or
/// `unavailable` — a 503, the keys could not be had) and `reason` (the validator's error kind,
/// `none` when accepted).
pub const VALIDATIONS: &str = "botauth.validations";
/// Verified-token cache look-ups of inbound tokens (counter). Label: `result` (`memo`: the
/// thread's own copy answered; `hit`: the shared cache did; `miss`: the token was verified).
/// The hit ratio is `(memo + hit) / all`.
pub const VERIFIED_CACHE_LOOKUPS: &str = "botauth.validation.cache.lookups";
/// Signing-key set fetches (counter). Labels: `server.address` (the metadata host) and
/// `outcome` (`success` or `failure`).
pub const KEY_FETCHES: &str = "botauth.keys.fetches";
/// Activities sent to the Bot Connector, one per HTTP attempt (counter). Labels:
/// `server.address` (the service URL's host) and `http.response.status_code` (`error` when no
/// answer came).
pub const CONNECTOR_SENDS: &str = "botauth.connector.sends";
/// Duration of the Bot Connector's HTTP requests, in seconds (histogram; OpenTelemetry's
/// semantic convention for HTTP clients). Labels: `http.request.method`, `server.address`,
/// `http.response.status_code`.
pub const HTTP_CLIENT_REQUEST_DURATION: &str = "http.client.request.duration";

/// A counter handle: registered once, cheap to bump (an atomic add in most recorders).
#[derive(Clone)]
pub struct Counter(#[cfg(feature = "metrics")] metrics::Counter);

impl Default for Counter {
    /// A handle that records nothing.
    fn default() -> Self {
        Counter(
            #[cfg(feature = "metrics")]
            metrics::Counter::noop(),
        )
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counter")
    }
}

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn increment(&self, n: u64) {
        #[cfg(feature = "metrics")]
        self.0.increment(n);
        #[cfg(not(feature = "metrics"))]
        let _ = n;
    }
}

/// A histogram handle.
#[derive(Clone)]
pub struct Histogram(#[cfg(feature = "metrics")] metrics::Histogram);

impl Default for Histogram {
    /// A handle that records nothing.
    fn default() -> Self {
        Histogram(
            #[cfg(feature = "metrics")]
            metrics::Histogram::noop(),
        )
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Histogram")
    }
}

impl Histogram {
    /// Records a duration, in seconds.
    #[inline]
    pub fn record_duration(&self, d: Duration) {
        #[cfg(feature = "metrics")]
        self.0.record(d.as_secs_f64());
        #[cfg(not(feature = "metrics"))]
        let _ = d;
    }
}

/// The counter `name` with `labels`, from the recorder installed now (a handle made before the
/// application installs its recorder stays empty: botauth makes its long-lived handles when a
/// validator or token manager is built).
#[inline]
pub fn counter(name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
    #[cfg(feature = "metrics")]
    {
        Counter(metrics::counter!(name, to_labels(labels)))
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = (name, labels);
        Counter()
    }
}

/// The histogram `name` with `labels` (see [`counter`]).
#[inline]
pub fn histogram(name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
    #[cfg(feature = "metrics")]
    {
        Histogram(metrics::histogram!(name, to_labels(labels)))
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = (name, labels);
        Histogram()
    }
}

#[cfg(feature = "metrics")]
fn to_labels(labels: &[(&'static str, &str)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|&(key, value)| metrics::Label::new(key, value.to_owned()))
        .collect()
}

/// Counts one token request of a `credential` kind that ended with `result`.
pub fn token_request(credential: &str, result: Result<(), &crate::Error>) {
    let (outcome, error, aadsts) = match result {
        Ok(()) => ("success", String::new(), String::new()),
        Err(e) => (
            "failure",
            e.kind().to_string(),
            e.as_entra()
                .and_then(|entra| entra.error_codes().first())
                .map(|code| format!("AADSTS{code}"))
                .unwrap_or_default(),
        ),
    };
    counter(
        TOKEN_REQUESTS,
        &[
            ("credential", credential),
            ("outcome", outcome),
            ("error", &error),
            ("aadsts", &aadsts),
        ],
    )
    .increment(1);
}

/// The host of `url` (no scheme, user, port or path): the `server.address` label.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match host.strip_prefix('[') {
        // An IPv6 literal: up to its closing bracket.
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    }
}

/// Whether metrics are recorded in this build (the `metrics` feature).
pub const ENABLED: bool = cfg!(feature = "metrics");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_takes_the_host_alone() {
        for (url, host) in [
            (
                "https://login.botframework.com/v1/.well-known/keys",
                "login.botframework.com",
            ),
            ("http://127.0.0.1:8080/path?q=1", "127.0.0.1"),
            ("https://user:pw@example.com:443/", "example.com"),
            ("http://[::1]:3978/api", "::1"),
            (
                "https://smba.trafficmanager.net#frag",
                "smba.trafficmanager.net",
            ),
            ("no-scheme.example/x", "no-scheme.example"),
            ("", ""),
        ] {
            assert_eq!(host_of(url), host, "{url}");
        }
    }

    /// Without the feature the handles are empty and recording is a no-op; with it and no
    /// recorder installed, the same.
    #[test]
    fn recording_without_a_recorder_is_harmless() {
        counter(TOKEN_REQUESTS, &[("credential", "x")]).increment(1);
        histogram(TOKEN_AGE, &[]).record_duration(Duration::from_secs(1));
        Counter::default().increment(1);
        Histogram::default().record_duration(Duration::ZERO);
        token_request("client_secret", Ok(()));
        assert_eq!(ENABLED, cfg!(feature = "metrics"));
    }
}
