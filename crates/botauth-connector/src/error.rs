//! The connector's error type: what failed, the Bot Connector's own error body, and what to do.

use std::fmt;
use std::time::Duration;

use botauth_core::service_url::ServiceUrlError;
use serde_json::Value;

/// The largest part of a Connector error body kept in an error (the rest is dropped).
const MAX_KEPT_BODY: usize = 1024;

/// The Bot Connector's error body, `{"error":{"code":"…","message":"…"}}`, as far as it could be
/// read. Control characters are replaced and the text is bounded, so it is safe to log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectorErrorBody {
    /// `error.code`, e.g. `BadArgument`, `ConversationNotFound`, `Unauthorized`.
    pub code: Option<String>,
    /// `error.message`.
    pub message: Option<String>,
    /// The body as text (bounded), for bodies that are not in the Connector's shape.
    pub raw: String,
}

impl ConnectorErrorBody {
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let field = |v: &Value, name: &str| {
            v.pointer(&format!("/error/{name}"))
                .and_then(Value::as_str)
                .map(clean)
        };
        let json: Option<Value> = serde_json::from_slice(bytes).ok();
        ConnectorErrorBody {
            code: json.as_ref().and_then(|v| field(v, "code")),
            message: json.as_ref().and_then(|v| field(v, "message")),
            raw: clean(&text),
        }
    }
}

impl fmt::Display for ConnectorErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => write!(f, "{code}: {message}"),
            (Some(code), None) => f.write_str(code),
            (None, Some(message)) => f.write_str(message),
            (None, None) if self.raw.is_empty() => f.write_str("(empty body)"),
            (None, None) => f.write_str(&self.raw),
        }
    }
}

/// Bounded, with control characters replaced so that a hostile body cannot forge log lines.
fn clean(text: &str) -> String {
    botauth_http::internal::clean_text(text, MAX_KEPT_BODY)
}

/// What went wrong, coarsely: branch on this rather than on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectorErrorKind {
    /// The service URL is malformed or not in the allow-list: nothing was sent.
    ServiceUrl,
    /// A conversation or activity id, or the activity, cannot be sent as given: nothing was sent.
    InvalidArgument,
    /// No token could be obtained (the credential's error is the source).
    Token,
    /// HTTP 401, also after one forced token refresh.
    Unauthorized,
    /// HTTP 403.
    Forbidden,
    /// HTTP 429 or 503 after the allowed retries, or with a `Retry-After` longer than the
    /// client waits in line.
    Throttled,
    /// Any other non-success status.
    Status,
    /// The Connector could not be reached, did not answer in time, or sent an oversized body.
    Unavailable,
    /// No `ConnectionsMap` rule matches the call: nothing was sent, no token was requested.
    NoConnection,
}

/// An error of a [`ConnectorClient`](crate::ConnectorClient) call. It never holds a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The service URL was refused by the allow-list; nothing was sent.
    #[error(
        "refusing to send the bot's token: the service URL is not allowed (add the host to \
         ALLOWED_SERVICE_URLS / BOTAUTH_ALLOWED_SERVICE_URLS only if it is a Bot Connector you trust)"
    )]
    ServiceUrl(#[source] ServiceUrlError),
    /// An argument cannot be sent; nothing was sent.
    #[error("{what}: {message}")]
    InvalidArgument {
        /// The argument at fault (`conversation id`, `activity id`, `activity`).
        what: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No `ConnectionsMap` rule matches the call's service URL (and inbound audience), so no
    /// identity may send it; nothing was sent, no token was requested.
    #[error(
        "no ConnectionsMap rule matches the service URL {service_url}{}: add a ConnectionsMap entry \
         whose ServiceUrl (a regular expression) matches it, or a `*` entry for every other URL",
        audience_hint(audience.as_deref())
    )]
    NoConnection {
        /// The service URL of the call.
        service_url: String,
        /// The inbound token's audience the rules were compared with, if the call had one.
        audience: Option<String>,
    },
    /// No token could be obtained for the Connector.
    #[error("could not get a token for the Bot Connector (scope {scope})")]
    Token {
        /// The scope that was asked for.
        scope: String,
        /// The credential's error.
        #[source]
        source: botauth_core::Error,
    },
    /// The Connector answered 401 (after one forced refresh) or 403.
    #[error("{}", rejected_message(*.status, host, scope, body))]
    Rejected {
        /// 401 or 403.
        status: u16,
        /// The Connector host.
        host: String,
        /// The scope the token was for.
        scope: String,
        /// The Connector's error body.
        body: ConnectorErrorBody,
    },
    /// 429 or 503 after the allowed retries.
    #[error(
        "the Bot Connector at {host} is throttling or unavailable (HTTP {status}) after {retries} \
         retries{}; the Connector said: {body}",
        retry_hint(*retry_after)
    )]
    Throttled {
        /// 429 or 503.
        status: u16,
        /// The Connector host.
        host: String,
        /// Retries made before giving up.
        retries: u32,
        /// The last `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// The Connector's error body.
        body: ConnectorErrorBody,
    },
    /// Any other non-success status.
    #[error("the Bot Connector at {host} answered HTTP {status}{}; the Connector said: {body}", status_hint(*status))]
    Status {
        /// The HTTP status.
        status: u16,
        /// The Connector host.
        host: String,
        /// The Connector's error body.
        body: ConnectorErrorBody,
    },
    /// Transport failure, timeout or oversized body (the source says which).
    #[error("the Bot Connector at {host} could not be reached")]
    Unavailable {
        /// The Connector host.
        host: String,
        /// The transport error.
        #[source]
        source: botauth_core::Error,
    },
}

fn rejected_message(status: u16, host: &str, scope: &str, body: &ConnectorErrorBody) -> String {
    let hint = if status == 401 {
        format!(
            "the token was refused even after a forced refresh: check that the app id is the Azure \
             Bot's Microsoft App ID, that the cloud matches the channel (the token is for {scope}), \
             and, for a skill reply, that the audience is the calling bot's app id"
        )
    } else {
        "the bot is not allowed to post here: it may not be a member of the conversation, or the \
         Azure Bot registration belongs to another app or tenant"
            .to_owned()
    };
    format!(
        "the Bot Connector at {host} answered HTTP {status}: {hint}; the Connector said: {body}"
    )
}

fn audience_hint(audience: Option<&str>) -> String {
    match audience {
        Some(a) => format!(" and the inbound audience {a}"),
        None => {
            " (the call has no inbound audience, so rules with an Audience do not apply)".to_owned()
        }
    }
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (it asked to retry after {}s)", d.as_secs()),
        None => String::new(),
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        400 => " (the activity or an id was refused as malformed)",
        404 => " (the conversation or the activity replied to is unknown to this Connector)",
        413 => " (the activity is too large)",
        500..=599 => " (a Connector failure; the activity was not retried, to avoid a duplicate)",
        _ => "",
    }
}

impl ConnectorError {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ConnectorErrorKind {
        match self {
            ConnectorError::ServiceUrl(_) => ConnectorErrorKind::ServiceUrl,
            ConnectorError::InvalidArgument { .. } => ConnectorErrorKind::InvalidArgument,
            ConnectorError::Token { .. } => ConnectorErrorKind::Token,
            ConnectorError::Rejected { status: 401, .. } => ConnectorErrorKind::Unauthorized,
            ConnectorError::Rejected { .. } => ConnectorErrorKind::Forbidden,
            ConnectorError::Throttled { .. } => ConnectorErrorKind::Throttled,
            ConnectorError::Status { .. } => ConnectorErrorKind::Status,
            ConnectorError::Unavailable { .. } => ConnectorErrorKind::Unavailable,
            ConnectorError::NoConnection { .. } => ConnectorErrorKind::NoConnection,
        }
    }

    /// The Connector's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConnectorError::Rejected { status, .. }
            | ConnectorError::Throttled { status, .. }
            | ConnectorError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Connector's error body, when it answered with an error.
    pub fn body(&self) -> Option<&ConnectorErrorBody> {
        match self {
            ConnectorError::Rejected { body, .. }
            | ConnectorError::Throttled { body, .. }
            | ConnectorError::Status { body, .. } => Some(body),
            _ => None,
        }
    }

    /// How long the Connector asked to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectorError::Throttled { retry_after, .. } => *retry_after,
            ConnectorError::Token { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// Whether sending the same activity later may succeed without changing anything. A 5xx other
    /// than 503 is not: the Connector may have delivered the activity already.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectorError::Throttled { .. } => true,
            ConnectorError::Token { source, .. } => source.is_retryable(),
            ConnectorError::Unavailable { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_body_shapes() {
        let body = ConnectorErrorBody::parse(
            br#"{"error":{"code":"BadArgument","message":"Invalid\nactivity"}}"#,
        );
        assert_eq!(body.code.as_deref(), Some("BadArgument"));
        assert_eq!(body.message.as_deref(), Some("Invalid activity"));
        assert_eq!(body.to_string(), "BadArgument: Invalid activity");
        let body = ConnectorErrorBody::parse(b"upstream\r\nfake: line");
        assert_eq!(body.code, None);
        assert_eq!(body.to_string(), "upstream  fake: line");
        assert_eq!(ConnectorErrorBody::parse(b"").to_string(), "(empty body)");
        let long = "x".repeat(5000);
        let body = ConnectorErrorBody::parse(long.as_bytes());
        assert_eq!(body.raw.chars().count(), MAX_KEPT_BODY + 1);
        assert!(body.raw.ends_with('…'));
    }

    #[test]
    fn kinds_and_predicates() {
        let body = ConnectorErrorBody::default();
        let rejected = |status| ConnectorError::Rejected {
            status,
            host: "h".into(),
            scope: "s".into(),
            body: body.clone(),
        };
        assert_eq!(rejected(401).kind(), ConnectorErrorKind::Unauthorized);
        assert_eq!(rejected(403).kind(), ConnectorErrorKind::Forbidden);
        assert!(rejected(401).to_string().contains("forced refresh"));
        assert_eq!(rejected(403).status(), Some(403));
        let throttled = ConnectorError::Throttled {
            status: 429,
            host: "h".into(),
            retries: 3,
            retry_after: Some(Duration::from_secs(7)),
            body: body.clone(),
        };
        assert!(throttled.is_retryable());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));
        assert!(
            throttled.to_string().contains("retry after 7s"),
            "{throttled}"
        );
        let status = ConnectorError::Status {
            status: 500,
            host: "h".into(),
            body,
        };
        assert!(!status.is_retryable());
        assert!(status.to_string().contains("not retried"), "{status}");
    }
}
