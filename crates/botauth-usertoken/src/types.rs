//! The Token Service's answers: token responses, token status, sign-in resources.

use std::fmt;

use botauth_core::Secret;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A user token from the Token Service (`TokenResponse`): `{channelId, connectionName, token,
/// expiration}`. The token is a [`Secret`]; unknown fields (e.g. `tokenPollingSettings`) are kept.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TokenResponse {
    /// The channel the token was issued for.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// The OAuth connection.
    #[serde(default)]
    pub connection_name: String,
    /// The user's access token for the connection's identity provider.
    pub token: Secret,
    /// When it expires (ISO 8601), when the service says.
    #[serde(default)]
    pub expiration: Option<String>,
    /// Fields this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("channel_id", &self.channel_id)
            .field("connection_name", &self.connection_name)
            .field("token", &self.token)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    #[cfg(test)]
    pub(crate) fn new(connection_name: impl Into<String>, token: Secret) -> Self {
        TokenResponse {
            channel_id: None,
            connection_name: connection_name.into(),
            token,
            expiration: None,
            extra: Map::new(),
        }
    }

    /// `expiration` as seconds since the Unix epoch, when it is present and readable.
    pub fn expires_at_unix(&self) -> Option<i64> {
        self.expiration
            .as_deref()
            .and_then(botauth_core::internal::date::parse_rfc3339)
            .map(botauth_core::internal::date::unix_seconds)
    }

    /// Parses a body as a token response: `None` when it has no usable `token` (the service's
    /// 404 bodies, and 200 bodies of some versions, are empty or without `token`).
    pub(crate) fn from_body(bytes: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        let token = value.get("token").and_then(Value::as_str)?;
        if token.is_empty() {
            return None;
        }
        serde_json::from_value(value).ok()
    }
}

/// One entry of `GetTokenStatus`: whether the user has a token for a connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TokenStatus {
    /// The channel.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// The connection.
    #[serde(default)]
    pub connection_name: String,
    /// Whether a token is stored.
    #[serde(default)]
    pub has_token: bool,
    /// The identity provider's display name.
    #[serde(default)]
    pub service_provider_display_name: Option<String>,
}

/// `tokenExchangeResource` of a sign-in resource: what Teams needs for SSO.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TokenExchangeResource {
    /// The id Teams sends back in `signin/tokenExchange` (`value.id`).
    #[serde(default)]
    pub id: Option<String>,
    /// The Token Exchange URL (`api://botid-{appId}` for Teams): the SSO token's audience.
    #[serde(default)]
    pub uri: Option<String>,
    /// The identity provider id.
    #[serde(default)]
    pub provider_id: Option<String>,
}

/// The answer of `GetSignInResource`. The sign-in link and the SAS URL are [`Secret`]s: each lets
/// whoever holds it sign in as the user or post a token for them.
#[derive(Clone)]
#[non_exhaustive]
pub struct SignInResource {
    /// The link the user follows to sign in.
    pub sign_in_link: Secret,
    /// For SSO-capable channels.
    pub token_exchange_resource: Option<TokenExchangeResource>,
    /// `tokenPostResource.sasUrl`: where a channel may post the token directly.
    pub token_post_sas_url: Option<Secret>,
}

impl fmt::Debug for SignInResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInResource")
            .field("sign_in_link", &self.sign_in_link)
            .field("token_exchange_resource", &self.token_exchange_resource)
            .field("token_post_sas_url", &self.token_post_sas_url)
            .finish_non_exhaustive()
    }
}

impl SignInResource {
    pub(crate) fn from_body(bytes: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        let link = value.get("signInLink").and_then(Value::as_str)?;
        Some(SignInResource {
            sign_in_link: Secret::new(link),
            token_exchange_resource: value
                .get("tokenExchangeResource")
                .filter(|v| v.is_object())
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
            token_post_sas_url: value
                .pointer("/tokenPostResource/sasUrl")
                .and_then(Value::as_str)
                .map(Secret::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_as_unix_time() {
        let mut r = TokenResponse::new("graph", Secret::new("t"));
        assert_eq!(r.expires_at_unix(), None);
        r.expiration = Some("2000-02-29T13:01:01+01:00".into());
        assert_eq!(r.expires_at_unix(), Some(951_825_661));
        r.expiration = Some("2000-02-29T12:01:01.123".into());
        assert_eq!(r.expires_at_unix(), Some(951_825_661));
        r.expiration = Some("yesterday".into());
        assert_eq!(r.expires_at_unix(), None);
    }

    #[test]
    fn token_bodies() {
        assert!(TokenResponse::from_body(b"").is_none());
        assert!(TokenResponse::from_body(br#"{"connectionName":"g"}"#).is_none());
        assert!(TokenResponse::from_body(br#"{"connectionName":"g","token":""}"#).is_none());
        let t = TokenResponse::from_body(
            br#"{"channelId":"msteams","connectionName":"g","token":"tok","expiration":"2030-01-01T00:00:00Z","tokenPollingSettings":{"timeout":1}}"#,
        )
        .unwrap();
        assert_eq!(t.token.expose_secret(), "tok");
        assert!(t.extra.contains_key("tokenPollingSettings"));
        assert!(!format!("{t:?}").contains("tok\""));
    }
}
