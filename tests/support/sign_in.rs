//! What both sign-in push tests need: the bot's configuration, a conversation reference, and the
//! sign-in link the sandbox's Token Service gives for it.

use base64::Engine as _;
use botauth::BotAuthConfig;
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};
use serde_json::{Value, json};

pub(crate) const CONNECTION: &str = "graph";

pub(crate) fn config(sandbox: &Sandbox) -> BotAuthConfig {
    botauth_e2e::sign_in_config(sandbox)
}

/// The sign-in link the Token Service gives the bot for a conversation reference (the bot's
/// own channel token as bearer, `state` as the SDKs encode it).
pub(crate) async fn sign_in_link(sandbox: &Sandbox, conversation: Value) -> String {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("set-up");
    let token: Value = http
        .post(sandbox.token_endpoint(DEMO_TENANT_ID))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={}&scope={}",
            encode(DEMO_CLIENT_SECRET),
            encode("https://api.botframework.com/.default"),
        ))
        .send()
        .await
        .expect("set-up")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).expect("JSON"))
        .expect("set-up");
    let state = base64::engine::general_purpose::STANDARD.encode(
        json!({
            "connectionName": CONNECTION,
            "conversation": conversation,
            "relatesTo": null,
            "msAppId": DEMO_CLIENT_ID,
        })
        .to_string(),
    );
    let resource: Value = http
        .get(format!(
            "{}/api/botsignin/GetSignInResource?state={}",
            sandbox.url(),
            encode(&state)
        ))
        .bearer_auth(token["access_token"].as_str().expect("set-up"))
        .send()
        .await
        .expect("set-up")
        .text()
        .await
        .map(|t| serde_json::from_str(&t).expect("JSON"))
        .expect("set-up");
    resource["signInLink"].as_str().expect("set-up").to_owned()
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn reference(channel: &str, user: &str, conversation: &str, sandbox: &Sandbox) -> Value {
    json!({
        "activityId": "activity-1",
        "user": { "id": user, "name": "Sandbox User" },
        "bot": { "id": format!("28:{DEMO_CLIENT_ID}"), "name": "Sandbox Bot" },
        "conversation": { "id": conversation, "tenantId": DEMO_TENANT_ID },
        "channelId": channel,
        "locale": "en-US",
        "serviceUrl": sandbox.connector_url(),
    })
}
