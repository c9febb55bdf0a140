//! The result of a successful validation.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::profile::ProfileKind;

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
    issuer: String,
    audience: String,
    service_url: Option<String>,
    caller_id: Option<String>,
    tenant_id: Option<String>,
    expires_at: i64,
    claims: LazyClaims,
}

/// All claims of the token, kept as the JSON text they came in and parsed into a map the first
/// time a handler asks: validation itself reads only the claims its rules need, from the same
/// text, with the same refusal of duplicate members (docs/protocol.md §6). The text passed that
/// strict parse, so the map cannot fail to build.
struct LazyClaims {
    /// As decoded (a `String`: making it a `Box<str>` would copy it to trim the decoder's
    /// spare byte or two, once per token never seen before).
    json: String,
    map: OnceLock<Map<String, Value>>,
}

impl LazyClaims {
    fn get(&self) -> &Map<String, Value> {
        self.map
            .get_or_init(|| serde_json::from_str(&self.json).unwrap_or_default())
    }
}

impl fmt::Debug for LazyClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl PartialEq for LazyClaims {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json || self.get() == other.get()
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
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) service_url: Option<String>,
    pub(crate) caller_id: Option<String>,
    pub(crate) tenant_id: Option<String>,
    pub(crate) expires_at: i64,
    /// The payload's JSON text (a strictly parsed object).
    pub(crate) claims_json: String,
}

impl From<Parts> for BotClaims {
    fn from(p: Parts) -> Self {
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
                json: p.claims_json,
                map: OnceLock::new(),
            },
        }))
    }
}

impl BotClaims {
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
                json: i.claims.json.clone(),
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

    /// One claim, as sent.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.0.claims.get().get(name)
    }
}
