//! The result of a successful validation.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::profile::ProfileKind;
use crate::verified_cache::TokenBytes;

/// The verified claims of a request: who sent it, for which bot, from where.
///
/// Cheap to clone (one reference count): the verified-token cache hands out the same claims for
/// every request that carries the same token.
#[derive(Debug, Clone, PartialEq)]
pub struct BotClaims(Arc<Inner>);

impl Serialize for BotClaims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[derive(Debug, PartialEq, Serialize)]
struct Inner {
    profile: ProfileKind,
    app_id: Option<String>,
    // Shared with the validator's configuration: a token never seen before costs no copy of
    // them.
    issuer: Arc<str>,
    audience: Arc<str>,
    service_url: Option<String>,
    caller_id: Option<Arc<str>>,
    tenant_id: Option<Arc<str>>,
    expires_at: i64,
    claims: LazyClaims,
}

/// All claims of the token, kept as the token they came in and decoded and parsed into a map
/// the first time a handler asks: validation itself reads only the claims its rules need, from
/// the same text, with the same refusal of duplicate members (docs/protocol.md §6). The text
/// passed that strict parse, so the map cannot fail to build.
///
/// The token is the verified-token cache's copy too (its entries compare a request's token with
/// it), so a token never seen before is copied once, and its decoded payload, read once during
/// validation, is not kept. It is zeroed when dropped, and never printed: `Debug` and
/// `Serialize` show the claims.
struct LazyClaims {
    token: TokenBytes,
    /// Where the payload segment is in `token`.
    payload: Range<usize>,
    map: OnceLock<Map<String, Value>>,
}

impl LazyClaims {
    fn get(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            self.token
                .bytes()
                .get(self.payload.clone())
                .and_then(|segment| URL_SAFE_NO_PAD.decode(segment).ok())
                .and_then(|json| serde_json::from_slice(&json).ok())
                .unwrap_or_default()
        })
    }
}

impl fmt::Debug for LazyClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl PartialEq for LazyClaims {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Serialize for LazyClaims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

/// Builds [`BotClaims`] inside the crate.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) profile: ProfileKind,
    pub(crate) app_id: Option<String>,
    pub(crate) issuer: Arc<str>,
    pub(crate) audience: Arc<str>,
    pub(crate) service_url: Option<String>,
    pub(crate) caller_id: Option<Arc<str>>,
    pub(crate) tenant_id: Option<Arc<str>>,
    pub(crate) expires_at: i64,
    /// Where the payload segment is in the token (whose JSON a strict parse accepted).
    pub(crate) payload: Range<usize>,
}

impl BotClaims {
    /// The claims of `token`, verified.
    pub(crate) fn new(p: Parts, token: &str) -> Self {
        BotClaims(Arc::new(Inner {
            profile: p.profile,
            app_id: p.app_id,
            issuer: p.issuer,
            audience: p.audience,
            service_url: p.service_url,
            caller_id: p.caller_id,
            tenant_id: p.tenant_id,
            expires_at: p.expires_at,
            claims: LazyClaims {
                token: TokenBytes::new(token),
                payload: p.payload,
                map: OnceLock::new(),
            },
        }))
    }

    /// Whether these are the claims of `token`, every byte of it.
    pub(crate) fn is_of(&self, token: &str) -> bool {
        self.0.claims.token.matches(token)
    }

    /// Whether these and `other` are one verification's claims (not only equal ones).
    #[cfg(test)]
    pub(crate) fn same_as(&self, other: &BotClaims) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The length of the token these are the claims of.
    pub(crate) fn token_len(&self) -> usize {
        self.0.claims.token.bytes().len()
    }

    /// Equal claims behind a reference count of their own, for a thread's memo of the
    /// verified-token cache (see `memo.rs`): clones of it never touch this one's count.
    pub(crate) fn own_copy(&self) -> BotClaims {
        let i = &*self.0;
        BotClaims(Arc::new(Inner {
            profile: i.profile,
            app_id: i.app_id.clone(),
            issuer: i.issuer.clone(),
            audience: i.audience.clone(),
            service_url: i.service_url.clone(),
            caller_id: i.caller_id.clone(),
            tenant_id: i.tenant_id.clone(),
            expires_at: i.expires_at,
            claims: LazyClaims {
                token: i.claims.token.clone(),
                payload: i.claims.payload.clone(),
                map: OnceLock::new(),
            },
        }))
    }

    /// The trust profile that accepted the token.
    pub fn profile(&self) -> ProfileKind {
        self.0.profile
    }

    /// The calling app's id (`appid` or `azp`), when the token names one. Bot Service channel
    /// tokens usually do not.
    pub fn app_id(&self) -> Option<&str> {
        self.0.app_id.as_deref()
    }

    /// `iss`.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The audience that matched (this bot's app id, or a configured audience).
    pub fn audience(&self) -> &str {
        &self.0.audience
    }

    /// The `serviceurl` claim (Bot Service tokens): where replies go.
    pub fn service_url(&self) -> Option<&str> {
        self.0.service_url.as_deref()
    }

    /// The Bot Framework caller id: `urn:botframework:azure`, `urn:botframework:azureusgov`, or
    /// `urn:botframework:aadappid:{app id}` for calls from other apps.
    pub fn caller_id(&self) -> Option<&str> {
        self.0.caller_id.as_deref()
    }

    /// `tid`, for Entra-issued tokens.
    pub fn tenant_id(&self) -> Option<&str> {
        self.0.tenant_id.as_deref()
    }

    /// `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> i64 {
        self.0.expires_at
    }

    /// All claims of the token, as sent.
    pub fn claims(&self) -> &Map<String, Value> {
        self.0.claims.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims_of(token: &str, payload: Range<usize>) -> BotClaims {
        BotClaims::new(
            Parts {
                profile: ProfileKind::BotService,
                app_id: None,
                issuer: "https://api.botframework.com".into(),
                audience: "app".into(),
                service_url: Some("https://smba.trafficmanager.net/amer/".into()),
                caller_id: None,
                tenant_id: None,
                expires_at: 2_000_000_000,
                payload,
            },
            token,
        )
    }

    /// The claims keep their token to compare and to parse from, and never show it.
    #[test]
    fn the_token_is_kept_but_never_shown() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"aud":"app","jti":"j1","n":[1,2]}"#);
        let signature = "c2lnbmF0dXJlLXNlY3JldA";
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.{signature}");
        let start = token.find('.').unwrap() + 1;
        let claims = claims_of(&token, start..start + payload.len());
        assert!(claims.is_of(&token));
        assert!(!claims.is_of(&token[..token.len() - 1]));
        assert_eq!(claims.token_len(), token.len());
        assert_eq!(claims.claims().get("jti"), Some(&json!("j1")));
        assert_eq!(claims.claims().len(), 3);
        for shown in [
            format!("{claims:?}"),
            serde_json::to_string(&claims).unwrap(),
        ] {
            assert!(!shown.contains(signature), "{shown}");
            assert!(!shown.contains(&payload), "{shown}");
            assert!(shown.contains("j1"), "{shown}");
        }
        // Equal claims compare equal whatever token carried them; a memo's copy is equal too.
        assert_eq!(claims, claims.own_copy());
    }
}
