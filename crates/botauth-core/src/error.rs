//! The error type shared by every credential provider and the token manager.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::entra::EntraError;

/// A boxed, shareable error source. Errors are `Clone` (single-flight waiters all receive the same
/// failure), so their sources are reference counted.
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, coarsely: branch on this rather than on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is missing a key or has a bad value.
    Config,
    /// The configuration names a credential whose crate is not compiled in.
    FeatureMissing,
    /// A credential could not be loaded or used locally (empty secret, unreadable file, bad key).
    Credential,
    /// The identity provider rejected the request (an Entra `AADSTS…` error).
    Rejected,
    /// The endpoint asked us to slow down (HTTP 429, `Retry-After`).
    Throttled,
    /// The endpoint could not be reached or failed (connection refused, HTTP 5xx).
    Unavailable,
    /// The endpoint did not answer in time.
    Timeout,
    /// The endpoint answered something that is not a valid token response.
    InvalidResponse,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Config => "config",
            ErrorKind::FeatureMissing => "feature_missing",
            ErrorKind::Credential => "credential",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidResponse => "invalid_response",
        })
    }
}

/// The error of every botauth credential operation.
///
/// `Display` says what failed and what to do next; the `source()` chain carries the underlying cause.
/// No variant ever holds a secret, a token or an assertion.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// A configuration key is missing or has a bad value.
    Config {
        /// The configuration key at fault (as the user wrote it, e.g. `MicrosoftAppPassword`).
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The configuration names a credential type whose provider crate is not compiled in.
    FeatureMissing {
        /// The credential type the configuration asked for.
        credential: String,
        /// The cargo feature of the `botauth` crate that provides it.
        feature: String,
    },
    /// A credential could not be loaded or used locally.
    Credential {
        /// What is wrong and how to fix it.
        message: String,
        /// The underlying cause, if any.
        source: Option<ErrorSource>,
    },
    /// Entra ID (or another token issuer) rejected the request.
    Entra(Box<EntraError>),
    /// The endpoint is throttling us.
    Throttled {
        /// The endpoint (URL without query) that answered.
        endpoint: String,
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    /// No request was sent: the token endpoint answered an earlier request with a `Retry-After`
    /// that has not passed yet, and botauth holds every request for that token until it has
    /// (docs/protocol.md §5). Its [`kind`](Error::kind) is [`ErrorKind::Throttled`];
    /// [`retry_after`](Error::retry_after) is the time left.
    RetryAfterPending {
        /// The endpoint (URL without query) that asked for the wait.
        endpoint: String,
        /// The HTTP status of the answer that carried `Retry-After` (429, 503, …), when known.
        status: Option<u16>,
        /// How much of the wait is left.
        remaining: Duration,
    },
    /// The endpoint could not be reached or failed with a server error.
    Unavailable {
        /// The endpoint (URL without query) we tried.
        endpoint: String,
        /// The HTTP status, when the server answered at all.
        status: Option<u16>,
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
        /// The transport error, if any.
        source: Option<ErrorSource>,
    },
    /// The endpoint did not answer in time.
    Timeout {
        /// The endpoint (URL without query) we tried.
        endpoint: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The endpoint answered with something that is not a usable token response.
    InvalidResponse {
        /// The endpoint (URL without query) that answered.
        endpoint: String,
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong with it.
        message: String,
    },
}

// Written by hand rather than derived: the sources are `Arc`s (errors are `Clone`), and a derived
// `source()` would return the `Arc` itself, so `downcast_ref::<CertificateError>()` and the like on
// the chain would fail. Here `source()` hands out the error inside the `Arc`.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { key, message } => write!(f, "configuration `{key}`: {message}"),
            Error::FeatureMissing {
                credential,
                feature,
            } => write!(
                f,
                "credential type `{credential}` needs botauth's `{feature}` feature: add it to the botauth \
                 dependency in Cargo.toml (features = [\"{feature}\"])"
            ),
            Error::Credential { message, .. } => f.write_str(message),
            Error::Entra(e) => fmt::Display::fmt(e, f),
            Error::Throttled {
                endpoint,
                retry_after,
            } => write!(
                f,
                "{endpoint} is throttling token requests (HTTP 429){}",
                retry_hint(*retry_after)
            ),
            Error::RetryAfterPending {
                endpoint,
                status,
                remaining,
            } => write!(
                f,
                "no token request sent: {endpoint} {} and {}s of that wait remain; the next request \
                 goes out once it has passed (a cached token that is still valid keeps being served)",
                match status {
                    Some(s) => format!("answered HTTP {s} with Retry-After"),
                    None => "asked to wait (Retry-After)".to_owned(),
                },
                ceil_secs(*remaining)
            ),
            Error::Unavailable {
                endpoint,
                status,
                retry_after,
                ..
            } => write!(
                f,
                "{endpoint} is unavailable{}{}",
                status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                retry_hint(*retry_after)
            ),
            Error::Timeout { endpoint, after } => write!(
                f,
                "{endpoint} did not answer within {}: check network access to it, or raise the \
                 timeout with BOTAUTH_HTTP_TIMEOUT (seconds, or e.g. `90s`; `http_timeout` in a \
                 botauth file)",
                seconds(*after)
            ),
            Error::InvalidResponse {
                endpoint,
                status,
                message,
            } => write!(
                f,
                "unusable response from {endpoint} (HTTP {status}): {message}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Credential { source, .. } | Error::Unavailable { source, .. } => source
                .as_deref()
                .map(|s| s as &(dyn std::error::Error + 'static)),
            // `Entra` is transparent: its source is the Entra error's own.
            Error::Entra(e) => std::error::Error::source(&**e),
            _ => None,
        }
    }
}

/// Whole seconds, rounded up: "0s remain" must not be said while part of a second is left.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A duration as people write it: `30 s`, `1.5 s`, `250 ms`.
pub(crate) fn seconds(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; the server asked to retry after {}s", d.as_secs()),
        None => String::new(),
    }
}

impl Error {
    /// A configuration error naming `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A feature-missing error for credential type `credential`, provided by botauth feature `feature`.
    pub fn feature_missing(credential: impl Into<String>, feature: impl Into<String>) -> Self {
        Error::FeatureMissing {
            credential: credential.into(),
            feature: feature.into(),
        }
    }

    /// A local credential error.
    pub fn credential(message: impl Into<String>) -> Self {
        Error::Credential {
            message: message.into(),
            source: None,
        }
    }

    /// A local credential error with a cause.
    pub fn credential_with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Credential {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } => ErrorKind::Config,
            Error::FeatureMissing { .. } => ErrorKind::FeatureMissing,
            Error::Credential { .. } => ErrorKind::Credential,
            Error::Entra(_) => ErrorKind::Rejected,
            Error::Throttled { .. } | Error::RetryAfterPending { .. } => ErrorKind::Throttled,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::InvalidResponse { .. } => ErrorKind::InvalidResponse,
        }
    }

    /// Whether trying again later may succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Throttled { .. }
            | Error::RetryAfterPending { .. }
            | Error::Unavailable { .. }
            | Error::Timeout { .. } => true,
            Error::Entra(e) => e.is_retryable(),
            Error::InvalidResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// How long the server asked us to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after, .. } | Error::Unavailable { retry_after, .. } => {
                *retry_after
            }
            Error::RetryAfterPending { remaining, .. } => Some(*remaining),
            Error::Entra(e) => e.retry_after(),
            _ => None,
        }
    }

    /// The Entra error, when this is a rejection by Entra ID.
    pub fn as_entra(&self) -> Option<&EntraError> {
        match self {
            Error::Entra(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is a configuration error (including a missing feature).
    pub fn is_config(&self) -> bool {
        matches!(self.kind(), ErrorKind::Config | ErrorKind::FeatureMissing)
    }
}

impl From<EntraError> for Error {
    fn from(e: EntraError) -> Self {
        Error::Entra(Box::new(e))
    }
}

/// `Result` with botauth's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    #[test]
    fn a_timeout_names_the_setting_that_raises_it() {
        let e = Error::Timeout {
            endpoint: "https://login.microsoftonline.com/t/oauth2/v2.0/token".into(),
            after: std::time::Duration::from_secs(30),
        };
        assert_eq!(
            e.to_string(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token did not answer within 30 s: check \
             network access to it, or raise the timeout with BOTAUTH_HTTP_TIMEOUT (seconds, or e.g. \
             `90s`; `http_timeout` in a botauth file)"
        );
        assert_eq!(seconds(std::time::Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(std::time::Duration::from_millis(250)), "250 ms");
    }

    use super::*;

    #[test]
    fn kinds_and_retryability() {
        let t = Error::Throttled {
            endpoint: "e".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(t.kind(), ErrorKind::Throttled);
        assert!(t.is_retryable());
        assert_eq!(t.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(
            t.to_string(),
            "e is throttling token requests (HTTP 429); the server asked to retry after 3s"
        );
        let c = Error::config("CLIENT_ID", "is missing");
        assert!(c.is_config());
        assert!(!c.is_retryable());
        assert_eq!(c.to_string(), "configuration `CLIENT_ID`: is missing");
        let f = Error::feature_missing("certificate", "certificate");
        assert_eq!(f.kind(), ErrorKind::FeatureMissing);
        assert!(f.to_string().contains("features = [\"certificate\"]"));
    }

    #[test]
    fn a_pending_retry_after_is_throttled_with_the_time_left() {
        let e = Error::RetryAfterPending {
            endpoint: "https://login.example/t/oauth2/v2.0/token".into(),
            status: Some(503),
            remaining: Duration::from_millis(3_534_200),
        };
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_millis(3_534_200)));
        let text = e.to_string();
        assert!(text.starts_with("no token request sent: "), "{text}");
        assert!(
            text.contains("answered HTTP 503 with Retry-After"),
            "{text}"
        );
        assert!(text.contains("3535s"), "{text}");
    }

    #[test]
    fn errors_are_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Error>();
    }

    #[test]
    fn unavailable_carries_its_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::Unavailable {
            endpoint: "http://127.0.0.1:1/t".into(),
            status: None,
            retry_after: None,
            source: Some(Arc::new(io)),
        };
        assert_eq!(e.to_string(), "http://127.0.0.1:1/t is unavailable");
        assert_eq!(
            std::error::Error::source(&e).map(|s| s.to_string()),
            Some("refused".to_string())
        );
    }

    #[test]
    fn the_source_chain_downcasts_to_the_original_error() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::credential_with_source("cannot read the key file", io);
        let source = std::error::Error::source(&e).expect("a source");
        assert_eq!(
            source.downcast_ref::<std::io::Error>().map(|io| io.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        let config = Error::config("ClientId", "missing");
        assert!(std::error::Error::source(&config).is_none());
    }
}

/// Any error with its whole cause chain on one line: `what failed: why: the root cause`.
///
/// botauth's errors say what failed and what to do in `Display`, and leave the cause to
/// [`std::error::Error::source`] (so a message never repeats its source). Where only one line
/// reaches the user — a log line, a handler's answer, a command's stderr — print the chain with
/// this, or the AADSTS hint behind "could not get a token for the Bot Connector" is lost.
///
/// ```
/// use botauth_core::{Error, Report};
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "bot.pem: no such file");
/// let error = Error::credential_with_source("cannot read the certificate", io);
/// let line = Report::new(&error).to_string();
/// assert!(line.ends_with("cannot read the certificate: bot.pem: no such file"), "{line}");
/// ```
#[derive(Clone, Copy)]
pub struct Report<'a>(&'a (dyn std::error::Error + 'a));

impl<'a> Report<'a> {
    /// Wraps `error` for printing.
    pub fn new(error: &'a (dyn std::error::Error + 'a)) -> Self {
        Self(error)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // A wrapper that already quotes its cause (or a cause chain that repeats itself)
            // would otherwise print the same words twice.
            if !text.is_empty() && !line.ends_with(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        // One line: causes from other libraries may carry line breaks (Entra's descriptions do).
        f.write_str(&line.replace(['\r', '\n'], " "))
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
