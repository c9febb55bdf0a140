//! The Bot Service side (docs/protocol.md §6): OpenID metadata, JWKS with endorsements, and channel tokens.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;

use crate::origin::Origin;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::clock;
use crate::error::json_response;
use crate::jwt::SigningKey;
use crate::state::Shared;

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
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelTokenClaims {
    /// `aud`: the bot's app id.
    pub audience: String,
    /// `serviceurl`: must match the activity's `serviceUrl`.
    pub service_url: String,
    /// `iss`; `None` means the Bot Service issuer `https://api.botframework.com`.
    pub issuer: Option<String>,
    /// `exp - iat`; default one hour.
    pub lifetime: Duration,
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

    fn jwks(&self) -> Value {
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

pub(crate) fn metadata_url(base: &str) -> String {
    format!("{base}/botservice/v1/.well-known/openidconfiguration")
}

/// `GET /botservice/v1/.well-known/openidconfiguration`.
pub(crate) async fn metadata(Origin(base): Origin) -> Response {
    let body = json!({
        "issuer": BOT_SERVICE_ISSUER,
        "authorization_endpoint": "https://invalid.botframework.com",
        // On the origin the client used, as Entra's metadata (docs/sandbox.md).
        "jwks_uri": format!("{base}/botservice/v1/.well-known/keys"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /botservice/v1/.well-known/keys`.
pub(crate) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.lock().bot.jwks();
    json_response(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{get, verify_with_jwks};
    use crate::{Fault, Route, Sandbox};
    use base64::Engine as _;

    const TEAMS: &str = "https://smba.trafficmanager.net/teams/";

    async fn jwks(sandbox: &Sandbox) -> Value {
        let metadata = get(&sandbox.bot_service_metadata_url()).await.json();
        get(metadata["jwks_uri"].as_str().unwrap()).await.json()
    }

    #[tokio::test]
    async fn metadata_document_matches_bot_service() {
        let sandbox = Sandbox::start().await.unwrap();
        assert_eq!(
            sandbox.bot_service_metadata_url(),
            format!(
                "{}/botservice/v1/.well-known/openidconfiguration",
                sandbox.url()
            )
        );
        let metadata = get(&sandbox.bot_service_metadata_url()).await.json();
        assert_eq!(metadata["issuer"], sandbox.bot_service_issuer());
        assert_eq!(
            metadata["jwks_uri"],
            format!("{}/botservice/v1/.well-known/keys", sandbox.url())
        );
        assert_eq!(
            metadata["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
        assert_eq!(
            metadata["token_endpoint_auth_methods_supported"],
            json!(["private_key_jwt"])
        );
    }

    #[tokio::test]
    async fn channel_token_verifies_against_served_jwks() {
        let sandbox = Sandbox::start().await.unwrap();
        let mut claims = ChannelTokenClaims::new("bot-app-id", TEAMS);
        claims.extra.insert("channelId".into(), json!("msteams"));
        let token = sandbox.mint_channel_token(claims);
        let (claims, jwk) = verify_with_jwks(&token, &jwks(&sandbox).await).unwrap();
        assert_eq!(claims["iss"], "https://api.botframework.com");
        assert_eq!(claims["aud"], "bot-app-id");
        assert_eq!(claims["serviceurl"], TEAMS);
        assert_eq!(claims["channelId"], "msteams");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            3600
        );
        assert_eq!(jwk["kid"], sandbox.bot_service_kid());

        assert_eq!(
            (jwk["kty"].as_str(), jwk["use"].as_str()),
            (Some("RSA"), Some("sig"))
        );
        assert_eq!(jwk["x5t"], jwk["kid"]);
        assert!(
            jwk["endorsements"]
                .as_array()
                .unwrap()
                .contains(&json!("msteams"))
        );
        // kid is base64url(SHA-1(DER)) of the x5c certificate, like Microsoft's keys.
        let der = base64::engine::general_purpose::STANDARD
            .decode(jwk["x5c"][0].as_str().unwrap())
            .unwrap();
        assert_eq!(jwk["kid"], crate::jwt::x5t(&der));
        let cert = openssl::x509::X509::from_der(&der).unwrap();
        assert_eq!(cert.public_key().unwrap().bits(), 2048);
    }

    #[tokio::test]
    async fn rotation_removal_and_endorsements() {
        let sandbox = Sandbox::start().await.unwrap();
        let old_kid = sandbox.bot_service_kid();
        let old_token = sandbox.mint_channel_token(ChannelTokenClaims::new("bot", TEAMS));
        let new_kid = sandbox.rotate_bot_service_key();
        assert_ne!(new_kid, old_kid);
        assert_eq!(sandbox.bot_service_kid(), new_kid);

        let new_token = sandbox.mint_channel_token(ChannelTokenClaims::new("bot", TEAMS));
        let keys = jwks(&sandbox).await;
        assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
        assert_eq!(
            verify_with_jwks(&new_token, &keys).unwrap().1["kid"],
            new_kid.as_str()
        );
        assert_eq!(
            verify_with_jwks(&old_token, &keys).unwrap().1["kid"],
            old_kid.as_str()
        );

        sandbox.remove_bot_service_key(&old_kid);
        let keys = jwks(&sandbox).await;
        assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
        assert_eq!(
            verify_with_jwks(&old_token, &keys),
            Err("kid not in JWKS".into())
        );

        sandbox.set_bot_service_endorsements(&new_kid, None);
        assert!(
            jwks(&sandbox).await["keys"][0]
                .get("endorsements")
                .is_none()
        );
        sandbox.set_bot_service_endorsements(&new_kid, Some(vec!["webchat".into()]));
        assert_eq!(
            jwks(&sandbox).await["keys"][0]["endorsements"],
            json!(["webchat"])
        );

        // The removed current signer keeps signing: its tokens name a kid the JWKS lacks.
        sandbox.remove_bot_service_key(&new_kid);
        let orphan = sandbox.mint_channel_token(ChannelTokenClaims::new("bot", TEAMS));
        assert_eq!(
            verify_with_jwks(&orphan, &jwks(&sandbox).await),
            Err("kid not in JWKS".into())
        );
    }

    #[tokio::test]
    async fn jwks_faults() {
        let sandbox = Sandbox::start().await.unwrap();
        let url = format!("{}/botservice/v1/.well-known/keys", sandbox.url());
        sandbox.inject(Route::BotServiceJwks, Fault::MalformedJson);
        let reply = get(&url).await;
        assert_eq!(reply.status, 200);
        assert!(serde_json::from_str::<Value>(&reply.text).is_err());
        sandbox.inject(Route::BotServiceJwks, Fault::status(503));
        assert_eq!(get(&url).await.status, 503);
        assert_eq!(get(&url).await.status, 200);
        assert_eq!(sandbox.count(Route::BotServiceJwks), 3);
    }

    #[test]
    fn extra_claims_override_standard_ones() {
        let mut claims = ChannelTokenClaims::new("bot", "https://smba.trafficmanager.net/teams/");
        claims.extra.insert("exp".into(), json!(1));
        claims.extra.insert("channelId".into(), json!("msteams"));
        let value = claims.into_claims();
        assert_eq!(value["exp"], json!(1));
        assert_eq!(value["channelId"], json!("msteams"));
        assert_eq!(value["iss"], json!(BOT_SERVICE_ISSUER));
        assert_eq!(
            value["serviceurl"],
            json!("https://smba.trafficmanager.net/teams/")
        );
    }
}
