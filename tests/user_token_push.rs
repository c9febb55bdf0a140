//! The sandbox as a channel after a sign-in link is followed (issue #15 §3): it sends the bot
//! `signin/verifyState` (Teams, `value.state` = the page's magic code) or `tokens/response`
//! (other channels, `value` = the TokenResponse), with a genuine channel token, over real HTTP.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::post;
use botauth::validator::Validator;
use botauth::{BotAuthLayer, VerifiedActivity};
use botauth_sandbox::{
    ChatTarget, DEMO_CLIENT_ID, DEMO_CONVERSATION_ID, DEMO_TENANT_ID, DEMO_USER_ID, Delivery,
    Sandbox,
};
use botauth_sso_bot::{MESSAGES_PATH, SsoBot};
use serde_json::{Value, json};

#[path = "support/sign_in.rs"]
mod sign_in;
use sign_in::{CONNECTION, config, reference, sign_in_link};

type Received = Arc<Mutex<Vec<Value>>>;

/// A bot that keeps every activity that passed botauth's validator (so each carried a valid
/// channel token for the demo app) and answers 200.
async fn recording_bot(sandbox: &Sandbox) -> (String, Received) {
    let validator = Validator::from_config(&config(sandbox)).expect("set-up");
    let received = Received::default();
    async fn keep(
        State(received): State<Received>,
        Extension(activity): Extension<VerifiedActivity>,
    ) -> StatusCode {
        received
            .lock()
            .expect("lock")
            .push(activity.activity().clone());
        StatusCode::OK
    }
    let app = Router::new()
        .route(MESSAGES_PATH, post(keep))
        .route_layer(BotAuthLayer::new(validator))
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("set-up");
    let addr = listener.local_addr().expect("set-up");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}{MESSAGES_PATH}"), received)
}

#[tokio::test]
async fn following_the_link_sends_verify_state_to_teams_bots_and_tokens_response_to_others() {
    let sandbox = Sandbox::start().await.expect("set-up");
    sandbox.register_oauth_connection(CONNECTION);
    let (bot, received) = recording_bot(&sandbox).await;

    // Without a bot to push to, following a link sends nothing.
    let link = sign_in_link(
        &sandbox,
        reference("msteams", DEMO_USER_ID, DEMO_CONVERSATION_ID, &sandbox),
    )
    .await;
    assert_eq!(sandbox.follow_sign_in_link(&link).await.unwrap().len(), 6);
    assert!(sandbox.sign_in_pushes().is_empty());
    assert!(received.lock().unwrap().is_empty());

    // A non-loopback bot is refused.
    let refused = sandbox
        .push_sign_ins_to(Some(ChatTarget::new(
            "http://example.com/api/messages",
            DEMO_CLIENT_ID,
        )))
        .unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    sandbox
        .push_sign_ins_to(Some(ChatTarget::new(bot.as_str(), DEMO_CLIENT_ID)))
        .expect("loopback bot");

    // Teams: exactly one signin/verifyState whose value.state is the page's code.
    let link = sign_in_link(
        &sandbox,
        reference("msteams", DEMO_USER_ID, DEMO_CONVERSATION_ID, &sandbox),
    )
    .await;
    let code = sandbox.follow_sign_in_link(&link).await.unwrap();
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_digit()));
    {
        let got = received.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        let invoke = &got[0];
        assert_eq!(invoke["type"], "invoke");
        assert_eq!(invoke["name"], "signin/verifyState");
        assert_eq!(invoke["value"], json!({ "state": code }));
        assert_eq!(invoke["channelId"], "msteams");
        assert_eq!(invoke["from"]["id"], DEMO_USER_ID);
        assert_eq!(invoke["conversation"]["id"], DEMO_CONVERSATION_ID);
        assert_eq!(invoke["recipient"]["id"], format!("28:{DEMO_CLIENT_ID}"));
        assert_eq!(invoke["serviceUrl"], sandbox.connector_url());
        assert_eq!(invoke["channelData"]["tenant"]["id"], DEMO_TENANT_ID);
    }
    let pushes = sandbox.sign_in_pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].name, "signin/verifyState");
    assert_eq!(pushes[0].channel_id, "msteams");
    assert_eq!(pushes[0].outcome.as_ref().map(|d| d.status), Ok(200));
    // The code is still good for the bot to redeem (the push released nothing on its own).
    assert!(!sandbox.has_user_token(DEMO_USER_ID, CONNECTION, "msteams"));

    // Web Chat: one tokens/response event carrying the token, which the service now holds.
    let mut watch = sandbox.watch_sign_in_pushes();
    let link = sign_in_link(
        &sandbox,
        reference("webchat", "dl_user-1", "webchat-conversation-1", &sandbox),
    )
    .await;
    let code = sandbox.follow_sign_in_link(&link).await.unwrap();
    assert_eq!(code.len(), 6);
    let event = {
        let got = received.lock().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        got[1].clone()
    };
    assert_eq!(event["type"], "event");
    assert_eq!(event["name"], "tokens/response");
    assert_eq!(event["channelId"], "webchat");
    assert_eq!(event["from"]["id"], "dl_user-1");
    assert_eq!(event["conversation"]["id"], "webchat-conversation-1");
    assert_eq!(event["value"]["connectionName"], CONNECTION);
    assert_eq!(event["value"]["channelId"], "webchat");
    let token = event["value"]["token"].as_str().unwrap();
    assert_eq!(
        sandbox.issued_user_tokens().last().map(String::as_str),
        Some(token)
    );
    assert!(event.get("channelData").is_none());
    assert!(sandbox.has_user_token("dl_user-1", CONNECTION, "webchat"));
    let push = watch.recv().await.unwrap();
    assert_eq!(push.name, "tokens/response");
    assert_eq!(push.channel_id, "webchat");
    assert_eq!(push.outcome.map(|d| d.status), Ok(200));
}

#[tokio::test]
async fn a_bot_that_refuses_the_channel_token_is_reported() {
    let sandbox = Sandbox::start().await.expect("set-up");
    sandbox.register_oauth_connection(CONNECTION);
    let (bot, received) = recording_bot(&sandbox).await;
    // The channel token is minted for another app id: botauth's validator answers 401.
    sandbox
        .push_sign_ins_to(Some(ChatTarget::new(
            bot.as_str(),
            "99999999-0000-4000-8000-00000000f04e",
        )))
        .unwrap();
    let link = sign_in_link(
        &sandbox,
        reference("msteams", DEMO_USER_ID, DEMO_CONVERSATION_ID, &sandbox),
    )
    .await;
    sandbox.follow_sign_in_link(&link).await.unwrap();
    assert!(received.lock().unwrap().is_empty());
    let pushes = sandbox.sign_in_pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].outcome.as_ref().map(|d| d.status), Ok(401));
}

#[tokio::test]
async fn following_the_link_alone_signs_the_sso_bot_user_in() {
    let sandbox = Sandbox::start().await.expect("set-up");
    sandbox.register_oauth_connection(CONNECTION);
    let bot = SsoBot::from_config(config(&sandbox), CONNECTION, None).expect("set-up");
    let addr = bot
        .spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("set-up");
    let url = format!("http://{addr}{MESSAGES_PATH}");
    let say = async |text: &str| -> Value {
        let activity = sandbox.channel_activity(DEMO_CLIENT_ID, text);
        let token = sandbox.channel_token(DEMO_CLIENT_ID, &activity);
        let before = sandbox.connector_posts().len();
        let delivery: Delivery = sandbox
            .deliver_activity(&url, &activity, Some(&token))
            .await
            .expect("set-up");
        assert_eq!(delivery.status, 200, "{}", delivery.body);
        let posts = sandbox.connector_posts();
        assert_eq!(posts.len(), before + 1, "one reply to {text:?}");
        posts[before].activity.clone()
    };

    let card = say("whoami").await;
    let attachment = &card["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.oauth"
    );
    let link = attachment["content"]["buttons"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();

    sandbox
        .push_sign_ins_to(Some(ChatTarget::new(url.as_str(), DEMO_CLIENT_ID)))
        .unwrap();
    let before = sandbox.connector_posts().len();
    let code = sandbox.follow_sign_in_link(&link).await.unwrap();
    assert_eq!(code.len(), 6);
    let pushes = sandbox.sign_in_pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].name, "signin/verifyState");
    assert_eq!(
        pushes[0]
            .outcome
            .as_ref()
            .map(|d| (d.status, d.body.as_str())),
        Ok((200, ""))
    );
    let posts = sandbox.connector_posts();
    assert_eq!(posts.len(), before + 1);
    assert_eq!(posts[before].activity["text"], "signed in as Sandbox User");
    assert!(sandbox.has_user_token(DEMO_USER_ID, CONNECTION, "msteams"));

    assert_eq!(say("whoami").await["text"], "you are Sandbox User");
    // The code, typed after the invoke redeemed it, is an ordinary message: no second sign-in.
    let reply = say(&code).await;
    assert_ne!(reply["text"], "signed in as Sandbox User");
}
