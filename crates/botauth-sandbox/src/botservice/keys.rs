//! The Bot Service's signing keys and the claims of the channel tokens they sign.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::clock;
use crate::jwt::SigningKey;

/// The issuer of public-cloud Bot Service channel tokens.
pub(crate) const BOT_SERVICE_ISSUER: &str = "https://api.botframework.com";

/// Channels a freshly published key endorses, like the real Bot Service keys.
const DEFAULT_ENDORSEMENTS: [&str; 6] = [
    "msteams",
    "webchat",
    "emulator",
    "directline",
    "skype",
    "slack",
];

/// Claims for [`Sandbox::mint_channel_token`](crate::Sandbox::mint_channel_token).
#[derive(Debug, Clone)]
pub struct ChannelTokenClaims {
    /// `aud`: the bot's app id.
    pub(crate) audience: String,
    /// `serviceurl`: must match the activity's `serviceUrl`.
    pub(crate) service_url: String,
    /// `iss`; `None` means the Bot Service issuer `https://api.botframework.com`.
    pub issuer: Option<String>,
    /// `exp - iat`; default one hour.
    pub(crate) lifetime: Duration,
    /// Extra claims, merged over the standard ones (so they can also replace them, e.g. a past `exp`).
    pub extra: Map<String, Value>,
}

impl Default for ChannelTokenClaims {
    fn default() -> Self {
        Self {
            audience: String::new(),
            service_url: String::new(),
            issuer: None,
            lifetime: Duration::from_secs(3600),
            extra: Map::new(),
        }
    }
}

impl ChannelTokenClaims {
    /// Claims for a token addressed to `audience` (the bot's app id) for activities from `service_url`.
    pub fn new(audience: impl Into<String>, service_url: impl Into<String>) -> Self {
        Self {
            audience: audience.into(),
            service_url: service_url.into(),
            ..Self::default()
        }
    }

    pub(crate) fn into_claims(self) -> Value {
        let now = clock::unix_now();
        let mut claims = json!({
            "iss": self.issuer.as_deref().unwrap_or(BOT_SERVICE_ISSUER),
            "aud": self.audience,
            "serviceurl": self.service_url,
            "nbf": now,
            "iat": now,
            "exp": now.saturating_add(clock::secs(self.lifetime)),
        });
        if let Value::Object(map) = &mut claims {
            map.extend(self.extra);
        }
        claims
    }
}

#[derive(Debug)]
struct PublishedKey {
    key: Arc<SigningKey>,
    endorsements: Option<Vec<String>>,
}

/// The Bot Service keys: the current signer plus the set published in the JWKS.
///
/// The signer stays usable after it is removed from the JWKS, so tests can produce tokens whose
/// `kid` the validator cannot find.
#[derive(Debug)]
pub(crate) struct BotKeys {
    current: Arc<SigningKey>,
    published: Vec<PublishedKey>,
}

impl BotKeys {
    pub(crate) fn new(key: SigningKey) -> Self {
        let mut keys = Self {
            current: Arc::new(key),
            published: Vec::new(),
        };
        keys.publish(Arc::clone(&keys.current));
        keys
    }

    fn publish(&mut self, key: Arc<SigningKey>) {
        self.published.push(PublishedKey {
            key,
            endorsements: Some(DEFAULT_ENDORSEMENTS.map(String::from).to_vec()),
        });
    }

    pub(crate) fn current(&self) -> Arc<SigningKey> {
        Arc::clone(&self.current)
    }

    /// Makes `key` the signer and publishes it next to the existing keys; returns its kid.
    pub(crate) fn rotate(&mut self, key: SigningKey) -> String {
        self.current = Arc::new(key);
        self.publish(Arc::clone(&self.current));
        self.current.kid().to_owned()
    }

    pub(crate) fn remove(&mut self, kid: &str) {
        self.published.retain(|p| p.key.kid() != kid);
    }

    pub(crate) fn set_endorsements(&mut self, kid: &str, endorsements: Option<Vec<String>>) {
        if let Some(published) = self.published.iter_mut().find(|p| p.key.kid() == kid) {
            published.endorsements = endorsements;
        }
    }

    /// The published `endorsements` of the key `kid` (`None`: not published, or none listed).
    pub(crate) fn endorsements(&self, kid: &str) -> Option<Vec<String>> {
        self.published
            .iter()
            .find(|p| p.key.kid() == kid)
            .and_then(|p| p.endorsements.clone())
    }

    pub(super) fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .published
            .iter()
            .map(|p| {
                let mut jwk = p.key.jwk();
                if let Some(endorsements) = &p.endorsements {
                    jwk.insert("endorsements".into(), json!(endorsements));
                }
                Value::Object(jwk)
            })
            .collect();
        json!({ "keys": keys })
    }
}
