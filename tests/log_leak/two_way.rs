//! The log-leak check of the whole two-way flow: the sandbox delivers channel activities to the
//! echo bot, which validates them and replies through the Bot Connector with its own token, with
//! every `tracing` event captured (all crates, TRACE level). Neither the channel tokens, nor the
//! bot's outbound token, nor the client secret — nor any part of a token — may appear.

use botauth::TokenSource;
use botauth_e2e::{CapturedLogs, RunningBot, form_encoded, jwt_and_parts};
use botauth_sandbox::{ChannelTokenClaims, DEMO_CLIENT_SECRET, DemoCredential, Route, Sandbox};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_secret_of_the_two_way_flow_reaches_the_logs() {
    let logs = CapturedLogs::scenario().await;
    let sandbox = Sandbox::start().await.unwrap();
    let env = sandbox.demo_environment(DemoCredential::Secret).unwrap();
    tracing::info!(?env, "demo environment");
    let bot = RunningBot::start(&env).await;
    tracing::info!(auth = ?bot.auth, "bot built");

    let mut channel_tokens = Vec::new();
    for text in ["hello", "again"] {
        let (activity, token) = bot.message(&sandbox, text);
        let delivery = bot.deliver(&sandbox, &activity, Some(&token)).await;
        assert_eq!(delivery.status, 200, "{}", delivery.body);
        channel_tokens.push(token);
    }
    // Refused: another bot's token.
    let (activity, _) = bot.message(&sandbox, "forged");
    let forged = sandbox.mint_channel_token(ChannelTokenClaims::new(
        "99999999-0000-0000-0000-00000000f0f0",
        sandbox.connector_url(),
    ));
    assert_eq!(
        bot.deliver(&sandbox, &activity, Some(&forged)).await.status,
        401
    );
    channel_tokens.push(forged);
    // Accepted, but the reply is refused by the allow-list (the error is logged by the bot).
    let mut evil = sandbox.channel_activity(&bot.app_id, "over there");
    evil["serviceUrl"] = json!("https://evil.example/");
    let evil_token = sandbox.mint_channel_token(ChannelTokenClaims::new(
        &bot.app_id,
        "https://evil.example/",
    ));
    assert_eq!(
        bot.deliver(&sandbox, &evil, Some(&evil_token)).await.status,
        500
    );
    channel_tokens.push(evil_token);
    assert_eq!(sandbox.connector_posts().len(), 2);
    assert_eq!(sandbox.count(Route::Token), 1);

    // The token both replies went out with: the one still cached (no new request).
    let (outbound, source) = bot
        .auth
        .tokens()
        .get_token_with_source(bot.auth.connector_request())
        .await
        .unwrap();
    assert_eq!(source, TokenSource::Cache);
    assert_eq!(sandbox.count(Route::Token), 1);
    let outbound = outbound.token.expose_secret().to_owned();
    assert_eq!(
        sandbox.verify_access_token(&outbound).unwrap()["aud"],
        "https://api.botframework.com"
    );
    drop(sandbox);

    let mut forbidden = jwt_and_parts(&outbound);
    for token in &channel_tokens {
        forbidden.extend(jwt_and_parts(token));
    }
    forbidden.push(DEMO_CLIENT_SECRET.to_owned());
    forbidden.push(form_encoded(DEMO_CLIENT_SECRET));
    logs.assert_clean(
        &[
            "reason=audience",
            "Bot Connector answered",
            "the reply could not be sent",
            "botauth sandbox delivered an activity",
        ],
        &forbidden,
    );
}
