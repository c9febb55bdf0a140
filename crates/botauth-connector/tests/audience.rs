//! `audience_for`: the reply audience follows the verified caller (feature `validator`).
#![cfg(feature = "validator")]
#![allow(clippy::unwrap_used)]

use botauth_connector::{Audience, audience_for};
use botauth_core::BotAuthConfig;
use botauth_sandbox::{ChannelTokenClaims, Sandbox};
use botauth_validator::{ActivityInfo, Validator};
use serde_json::json;

const APP: &str = "00000000-0000-0000-0000-00000000b07a";
const TEAMS: &str = "https://smba.trafficmanager.net/teams/";
/// The Bot Framework tenant whose tokens skills present (docs/protocol.md §6).
const BOT_FRAMEWORK_TENANT: &str = "d6d49420-f39b-4df7-a1dc-d59a935871db";

#[tokio::test]
async fn skill_callers_get_their_own_audience_channels_the_connector() {
    let sandbox = Sandbox::start().await.unwrap();
    let url = sandbox.url();
    let config = BotAuthConfig::from_toml_str(&format!(
        "client_id = \"{APP}\"\ntenant_id = \"11111111-2222-3333-4444-555555555555\"\n{}\n\
         [[credentials]]\ntype = \"client_secret\"\nsecret = \"unused~secret\"\n\
         [inbound]\nskills = true\nallowed_callers = [\"parent-bot\"]\n",
        sandbox.cloud_toml()
    ))
    .unwrap();
    let validator = Validator::from_config(&config).unwrap();
    let teams = ActivityInfo::new(TEAMS, "msteams");

    let channel = sandbox.mint_channel_token(ChannelTokenClaims::new(APP, TEAMS));
    let claims = validator.validate(&channel, teams).await.unwrap();
    assert_eq!(audience_for(&claims).unwrap(), Audience::BotConnector);

    let bf = BOT_FRAMEWORK_TENANT;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "RS256", "kid": sandbox.entra_kid(), "typ": "JWT"});
    let skill = sandbox.sign_with_entra_key(
        &header,
        &json!({"iss": format!("{url}/{bf}/v2.0"), "aud": APP, "tid": bf, "ver": "2.0",
                "azp": "parent-bot", "nbf": now, "iat": now, "exp": now + 3600}),
    );
    let claims = validator.validate(&skill, teams).await.unwrap();
    assert_eq!(
        audience_for(&claims).unwrap(),
        Audience::Skill("parent-bot".into())
    );
}
