//! The Bot Service's OpenID metadata and JWKS endpoints.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::keys::BOT_SERVICE_ISSUER;
use crate::error::json_response;
use crate::origin::Origin;
use crate::state::Shared;

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
    use serde_json::Value;

    use super::*;
    use crate::ChannelTokenClaims;
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
