//! Captures every `tracing` event (all crates, TRACE) while the sandbox sends the sign-in
//! activities of a followed link (`signin/verifyState`, `tokens/response`) to a bot: no magic
//! code, user token, sign-in link or `state` may appear.

use std::net::{Ipv4Addr, SocketAddr};

use base64::Engine as _;
use botauth::BotAuthConfig;
use botauth_e2e::{CapturedLogs, assert_absent, jwt_and_parts, sandbox_env};
use botauth_sandbox::{
    ChatTarget, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_CONVERSATION_ID, DEMO_TENANT_ID,
    DEMO_USER_ID, Sandbox,
};
use botauth_sso_bot::{MESSAGES_PATH, SsoBot};
use serde_json::{Value, json};

const CONNECTION: &str = "graph";

fn config(sandbox: &Sandbox) -> BotAuthConfig {
    let mut vars = sandbox_env(sandbox);
    vars.push((
        "BOTAUTH_METADATA_URL".into(),
        sandbox.bot_service_metadata_url(),
    ));
    vars.push((
        "BOTAUTH_ALLOWED_SERVICE_URLS".into(),
        sandbox.connector_url(),
    ));
    let mut config = BotAuthConfig::from_vars(vars).expect("set-up");
    config.token_service_url = Some(sandbox.token_service_url());
    config
}

/// The sign-in link the Token Service gives the bot for a conversation reference (the bot's
/// own channel token as bearer, `state` as the SDKs encode it).
async fn sign_in_link(sandbox: &Sandbox, conversation: Value) -> String {
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
            sandbox.token_service_url(),
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
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn reference(channel: &str, user: &str, conversation: &str, sandbox: &Sandbox) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_token_link_or_state_of_a_pushed_sign_in_reaches_the_logs() {
    let logs = CapturedLogs::install();
    let sandbox = Sandbox::start().await.expect("log-leak run");
    sandbox.register_oauth_connection(CONNECTION);
    let bot = SsoBot::from_config(config(&sandbox), CONNECTION, None).expect("log-leak run");
    let addr = bot
        .spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("log-leak run");
    let url = format!("http://{addr}{MESSAGES_PATH}");
    sandbox
        .push_sign_ins_to(Some(ChatTarget::new(url.as_str(), DEMO_CLIENT_ID)))
        .expect("log-leak run");

    let mut forbidden = Vec::new();
    for (channel, user, conversation) in [
        ("msteams", DEMO_USER_ID, DEMO_CONVERSATION_ID),
        ("webchat", "dl_user-1", "webchat-conversation-1"),
    ] {
        let link = sign_in_link(&sandbox, reference(channel, user, conversation, &sandbox)).await;
        let code = sandbox
            .follow_sign_in_link(&link)
            .await
            .expect("log-leak run");
        assert_eq!(code.len(), 6);
        forbidden.push(link.split_once('?').expect("log-leak run").1.to_owned());
        forbidden.push(link);
        forbidden.push(format!("\"state\":\"{code}\""));
        forbidden.push(format!("state={code}"));
        forbidden.push(format!("code={code}"));
    }
    let pushes = sandbox.sign_in_pushes();
    assert_eq!(
        pushes
            .iter()
            .map(|p| (p.name, p.outcome.as_ref().map(|d| d.status)))
            .collect::<Vec<_>>(),
        [
            ("signin/verifyState", Ok(200)),
            ("tokens/response", Ok(200))
        ]
    );
    for token in sandbox.issued_user_tokens() {
        forbidden.extend(jwt_and_parts(&token));
    }
    forbidden.extend(sandbox.received_sign_in_states());
    let text = logs.text();
    assert!(
        text.contains("botauth sandbox sent a sign-in activity to the bot"),
        "the push is logged (without its secrets)"
    );
    assert_absent(&text, &forbidden);
}
