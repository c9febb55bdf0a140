//! The crate's error type: what failed, the Token Service's own error body, and what to do.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// The largest part of a Token Service error body kept in an error (the rest is dropped).
const MAX_KEPT_BODY: usize = 1024;

/// The Token Service's error body, `{"error":{"code","message","innerHttpError":{…}}}`, as far as
/// it could be read. Control characters are replaced and the text is bounded. It never holds a
/// token: the service does not echo them in errors, and success bodies are never kept here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServiceErrorBody {
    code: Option<String>,
    message: Option<String>,
    inner_status: Option<u16>,
}

impl ServiceErrorBody {
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        let Ok(json) = serde_json::from_slice::<Value>(bytes) else {
            return Self::default();
        };
        let field = |name: &str| {
            json.pointer(&format!("/error/{name}"))
                .and_then(Value::as_str)
                .map(clean)
        };
        ServiceErrorBody {
            code: field("code"),
            message: field("message"),
            inner_status: json
                .pointer("/error/innerHttpError/statusCode")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
        }
    }

    /// `error.code`, e.g. `ServiceError`.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// `error.message`, e.g. `Could not find Connection Setting with name 'graph'`.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// `error.innerHttpError.statusCode`: the identity provider's status, when the service
    /// relayed it.
    pub fn inner_status(&self) -> Option<u16> {
        self.inner_status
    }

    /// Whether the service said the connection name is not configured on the bot registration.
    pub(crate) fn is_connection_not_found(&self) -> bool {
        self.message
            .as_deref()
            .is_some_and(|m| m.contains("Could not find Connection Setting"))
    }
}

impl fmt::Display for ServiceErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => write!(f, "{code}: {message}"),
            (Some(code), None) => f.write_str(code),
            (None, Some(message)) => f.write_str(message),
            (None, None) => f.write_str("(no error body)"),
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
pub enum UserTokenErrorKind {
    /// An argument (connection name, the activity's user or channel, a code) cannot be sent:
    /// nothing was sent.
    InvalidArgument,
    /// The bot's own token for the Token Service could not be had.
    Token,
    /// The OAuth connection is not configured on the bot registration.
    ConnectionNotFound,
    /// Token exchange: the service answered 400, the user must consent (Teams SSO shows the
    /// consent prompt) or the SSO token is not for this connection.
    ConsentRequired,
    /// Token exchange: the service answered 500, the connection's settings are wrong.
    ConnectionMisconfigured,
    /// HTTP 401 or 403: the bot's token was refused.
    Unauthorized,
    /// HTTP 429 or 503 after the allowed retries.
    Throttled,
    /// Any other non-success status.
    Status,
    /// A success status with a body that is not what the operation answers.
    InvalidResponse,
    /// The service could not be reached, did not answer in time, or sent an oversized body.
    Unavailable,
    /// The de-duplication store could not answer.
    Store,
}

/// An error of a [`UserTokenClient`](crate::UserTokenClient) call or of the sign-in flow. It never
/// holds a user token, a magic code, a `state` or a sign-in link.
///
/// Branch on [`kind`](Self::kind); the message names the host, the operation and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
#[non_exhaustive]
pub struct UserTokenError(Box<Repr>);

/// What each kind of error holds (private: read it through [`UserTokenError`]'s accessors).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Repr {
    /// An argument cannot be sent; nothing was sent.
    #[error("{what}: {message}")]
    InvalidArgument {
        /// The argument at fault.
        what: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No bot token could be obtained for the Token Service.
    #[error("could not get the bot's token for the Token Service (scope {scope})")]
    Token {
        /// The scope asked for.
        scope: String,
        /// The credential's error.
        #[source]
        source: botauth_core::Error,
    },
    /// The connection name is unknown to the bot registration.
    #[error(
        "the Token Service at {host} has no OAuth connection named '{connection}': add it under \
         the Azure Bot's Configuration → OAuth Connection Settings, or fix the name the bot uses \
         (names are case-sensitive); the service said: {body}"
    )]
    ConnectionNotFound {
        /// The Token Service host.
        host: String,
        /// The connection name sent.
        connection: String,
        /// The service's error body.
        body: ServiceErrorBody,
    },
    /// Token exchange answered 400.
    #[error(
        "the Token Service at {host} would not exchange the SSO token for connection \
         '{connection}' (HTTP 400): the user has not consented, or the token's audience is not \
         the connection's Token Exchange URL (api://botid-{{appId}} for Teams); the service said: {body}"
    )]
    ConsentRequired {
        /// The Token Service host.
        host: String,
        /// The connection name sent.
        connection: String,
        /// The service's error body.
        body: ServiceErrorBody,
    },
    /// Token exchange answered 500.
    #[error(
        "the Token Service at {host} failed to exchange for connection '{connection}' (HTTP 500): \
         check the connection's client id, secret, scopes and Token Exchange URL, and for a \
         regional bot use the regional Token Service URL; the service said: {body}"
    )]
    ConnectionMisconfigured {
        /// The Token Service host.
        host: String,
        /// The connection name sent.
        connection: String,
        /// The service's error body.
        body: ServiceErrorBody,
    },
    /// 401 or 403.
    #[error(
        "the Token Service at {host} refused the bot's token (HTTP {status}): check the app id is \
         the Azure Bot's Microsoft App ID and the cloud matches (the token is for {scope}); the \
         service said: {body}"
    )]
    Rejected {
        /// 401 or 403.
        status: u16,
        /// The Token Service host.
        host: String,
        /// The scope of the bot's token.
        scope: String,
        /// The service's error body.
        body: ServiceErrorBody,
    },
    /// 429 or 503 after the allowed retries.
    #[error(
        "the Token Service at {host} is throttling or unavailable (HTTP {status}) after {retries} \
         retries; the service said: {body}"
    )]
    Throttled {
        /// 429 or 503.
        status: u16,
        /// The Token Service host.
        host: String,
        /// Retries made.
        retries: u32,
        /// The last `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// The service's error body.
        body: ServiceErrorBody,
    },
    /// Any other non-success status.
    #[error("the Token Service at {host} answered HTTP {status} to {operation}{}; the service said: {body}", status_hint(*status))]
    Status {
        /// The operation (`GetToken`, `exchange`, …).
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// The Token Service host.
        host: String,
        /// The service's error body.
        body: ServiceErrorBody,
    },
    /// A success status with an unreadable body.
    #[error("the Token Service at {host} answered {operation} with a body that is not {expected}")]
    InvalidResponse {
        /// The operation.
        operation: &'static str,
        /// The Token Service host.
        host: String,
        /// What was expected.
        expected: &'static str,
    },
    /// Transport failure, timeout or oversized body (the source says which).
    #[error("the Token Service at {host} could not be reached")]
    Unavailable {
        /// The Token Service host.
        host: String,
        /// The transport error.
        #[source]
        source: botauth_core::Error,
    },
    /// The Teams SSO de-duplication store failed.
    #[error(
        "the SSO de-duplication store failed: {message}; the exchange was answered 500 so that Teams resends it"
    )]
    Store {
        /// What failed (never a key's value or the store's URL).
        message: String,
    },
}

fn status_hint(status: u16) -> &'static str {
    match status {
        400 => {
            " (a parameter was refused: an exchange body must be flat {\"token\":…}, not wrapped)"
        }
        500..=599 => {
            " (a Token Service failure; a regional bot calling the global service gets these: set \
             the regional Token Service URL)"
        }
        _ => "",
    }
}

impl From<Repr> for UserTokenError {
    fn from(repr: Repr) -> Self {
        UserTokenError(Box::new(repr))
    }
}

impl UserTokenError {
    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        Repr::InvalidArgument {
            what,
            message: message.into(),
        }
        .into()
    }

    /// The error an [`ExchangeStore`](crate::ExchangeStore) returns when it cannot answer (kind
    /// [`Store`](UserTokenErrorKind::Store)): `message` says what failed, and must never hold a
    /// key's value or the store's URL or password.
    pub fn store(message: impl Into<String>) -> Self {
        Repr::Store {
            message: message.into(),
        }
        .into()
    }

    /// The coarse kind of this error.
    pub fn kind(&self) -> UserTokenErrorKind {
        match &*self.0 {
            Repr::InvalidArgument { .. } => UserTokenErrorKind::InvalidArgument,
            Repr::Token { .. } => UserTokenErrorKind::Token,
            Repr::ConnectionNotFound { .. } => UserTokenErrorKind::ConnectionNotFound,
            Repr::ConsentRequired { .. } => UserTokenErrorKind::ConsentRequired,
            Repr::ConnectionMisconfigured { .. } => UserTokenErrorKind::ConnectionMisconfigured,
            Repr::Rejected { .. } => UserTokenErrorKind::Unauthorized,
            Repr::Throttled { .. } => UserTokenErrorKind::Throttled,
            Repr::Status { .. } => UserTokenErrorKind::Status,
            Repr::InvalidResponse { .. } => UserTokenErrorKind::InvalidResponse,
            Repr::Unavailable { .. } => UserTokenErrorKind::Unavailable,
            Repr::Store { .. } => UserTokenErrorKind::Store,
        }
    }

    /// The service's HTTP status, when it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match &*self.0 {
            Repr::ConnectionNotFound { .. } => None,
            Repr::ConsentRequired { .. } => Some(400),
            Repr::ConnectionMisconfigured { .. } => Some(500),
            Repr::Rejected { status, .. }
            | Repr::Throttled { status, .. }
            | Repr::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's error body, when it answered with an error.
    pub fn body(&self) -> Option<&ServiceErrorBody> {
        match &*self.0 {
            Repr::ConnectionNotFound { body, .. }
            | Repr::ConsentRequired { body, .. }
            | Repr::ConnectionMisconfigured { body, .. }
            | Repr::Rejected { body, .. }
            | Repr::Throttled { body, .. }
            | Repr::Status { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The last `Retry-After` the service sent, when it throttled.
    pub fn retry_after(&self) -> Option<Duration> {
        match &*self.0 {
            Repr::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the same call later may succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        match &*self.0 {
            Repr::Throttled { .. } | Repr::Store { .. } => true,
            Repr::Token { source, .. } | Repr::Unavailable { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_body_shapes() {
        let body = ServiceErrorBody::parse(
            br#"{"error":{"code":"ServiceError","message":"Could not find Connection Setting with name 'x'\n","innerHttpError":{"statusCode":404,"body":{}}}}"#,
        );
        assert_eq!(body.code.as_deref(), Some("ServiceError"));
        assert!(body.is_connection_not_found());
        assert_eq!(body.inner_status, Some(404));
        assert!(!body.to_string().contains('\n'));
        assert_eq!(ServiceErrorBody::parse(b"").to_string(), "(no error body)");
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(5000));
        let body = ServiceErrorBody::parse(long.as_bytes());
        assert_eq!(
            body.message.map(|m| m.chars().count()),
            Some(MAX_KEPT_BODY + 1)
        );
    }

    #[test]
    fn kinds_statuses_and_hints() {
        let body = ServiceErrorBody::default();
        let e: UserTokenError = Repr::ConnectionNotFound {
            host: "h".into(),
            connection: "graph".into(),
            body: body.clone(),
        }
        .into();
        assert_eq!(e.kind(), UserTokenErrorKind::ConnectionNotFound);
        assert!(e.to_string().contains("OAuth Connection Settings"), "{e}");
        let e: UserTokenError = Repr::ConsentRequired {
            host: "h".into(),
            connection: "graph".into(),
            body: body.clone(),
        }
        .into();
        assert_eq!(e.status(), Some(400));
        assert!(e.to_string().contains("api://botid-{appId}"), "{e}");
        let e: UserTokenError = Repr::Throttled {
            status: 429,
            host: "h".into(),
            retries: 3,
            retry_after: None,
            body,
        }
        .into();
        assert!(e.is_retryable());
        assert_eq!(e.kind(), UserTokenErrorKind::Throttled);
    }
}
