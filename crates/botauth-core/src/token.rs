//! [`AccessToken`] and [`TokenRequest`].

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::Secret;

/// An access token and when it stops being usable.
///
/// Cloning is cheap (the token itself is reference counted). `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token; send it as `Authorization: {token_type} {token}`.
    pub token: Secret,
    /// The token type, normally `Bearer`.
    pub token_type: Cow<'static, str>,
    /// When the token expires.
    pub expires_on: SystemTime,
    /// When the issuer suggests refreshing it (Entra's `refresh_in`), if it said.
    pub refresh_on: Option<SystemTime>,
}

impl AccessToken {
    /// A bearer token expiring at `expires_on`.
    pub fn bearer(token: impl Into<Secret>, expires_on: SystemTime) -> Self {
        AccessToken {
            token: token.into(),
            token_type: Cow::Borrowed("Bearer"),
            expires_on,
            refresh_on: None,
        }
    }

    /// Time left until expiry, measured at `now`; zero when already expired.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_on.duration_since(now).unwrap_or_default()
    }

    /// The `Authorization` header value (`Bearer eyJ…`). Treat the result as a secret.
    pub fn authorization_header(&self) -> Secret {
        Secret::new(format!(
            "{} {}",
            self.token_type,
            self.token.expose_secret()
        ))
    }

    /// Seconds since the Unix epoch of `expires_on`.
    pub fn expires_on_unix(&self) -> u64 {
        unix(self.expires_on)
    }

    /// Seconds since the Unix epoch of `refresh_on`.
    pub fn refresh_on_unix(&self) -> Option<u64> {
        self.refresh_on.map(unix)
    }
}

fn unix(t: SystemTime) -> u64 {
    u64::try_from(crate::date::unix_seconds(t)).unwrap_or(0)
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.token)
            .field("token_type", &self.token_type)
            .field("expires_on", &self.expires_on_unix())
            .field("refresh_on", &self.refresh_on_unix())
            .finish()
    }
}

/// What a caller asks a credential for: public fields over [`new`](Self::new) or
/// [`with_scopes`](Self::with_scopes).
///
/// ```
/// use botauth_core::TokenRequest;
///
/// // A token of another tenant (rarely needed: by default, the credential's own).
/// let request = TokenRequest {
///     tenant_id: Some("contoso.onmicrosoft.com".into()),
///     ..TokenRequest::new("https://graph.microsoft.com/.default")
/// };
/// # let _ = request;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TokenRequest {
    /// Scopes, e.g. `["https://api.botframework.com/.default"]`.
    pub scopes: Vec<String>,
    /// A tenant other than the credential's own (rarely needed; `None` means the credential's tenant).
    pub tenant_id: Option<String>,
}

impl TokenRequest {
    /// A request for one scope in the credential's own tenant.
    pub fn new(scope: impl Into<String>) -> Self {
        TokenRequest {
            scopes: vec![scope.into()],
            tenant_id: None,
        }
    }

    /// A request for several scopes.
    pub fn with_scopes<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        TokenRequest {
            scopes: scopes.into_iter().map(Into::into).collect(),
            tenant_id: None,
        }
    }

    /// Scopes sorted and de-duplicated: the form used in cache keys and requests (docs/protocol.md §5).
    pub fn normalized_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self.scopes.iter().map(|s| s.trim().to_owned()).collect();
        scopes.sort();
        scopes.dedup();
        scopes.retain(|s| !s.is_empty());
        scopes
    }

    /// [`normalized_scopes`](Self::normalized_scopes), which must not be empty.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) naming `scope` when no scope was requested.
    pub fn required_scopes(&self) -> crate::Result<Vec<String>> {
        let scopes = self.normalized_scopes();
        if scopes.is_empty() {
            return Err(crate::Error::config(
                "scope",
                "no scope requested: the Bot Connector scope is https://api.botframework.com/.default",
            ));
        }
        Ok(scopes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let t = AccessToken::bearer(
            "eyJsecret",
            SystemTime::UNIX_EPOCH + Duration::from_secs(10),
        );
        let s = format!("{t:?}");
        assert!(!s.contains("eyJsecret"), "{s}");
        assert!(s.contains("[redacted]"));
        assert_eq!(t.expires_on_unix(), 10);
        assert_eq!(t.authorization_header().expose_secret(), "Bearer eyJsecret");
    }

    #[test]
    fn remaining_saturates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let t = AccessToken::bearer("x", SystemTime::UNIX_EPOCH + Duration::from_secs(90));
        assert_eq!(t.remaining(now), Duration::ZERO);
        let t = AccessToken::bearer("x", SystemTime::UNIX_EPOCH + Duration::from_secs(130));
        assert_eq!(t.remaining(now), Duration::from_secs(30));
    }

    #[test]
    fn scopes_normalize() {
        let r = TokenRequest::with_scopes(["b", " a", "b", ""]);
        assert_eq!(
            r.normalized_scopes(),
            vec!["a".to_string(), "b".to_string()]
        );
    }
}
