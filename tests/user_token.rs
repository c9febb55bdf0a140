//! User sign-in end to end over real HTTP: the sandbox plays Teams, the Bot Service, the Bot
//! Connector and the Token Service; the SSO bot (examples/sso-bot) uses the facade's
//! `user-token` client. Unauthenticated sign-in activities never reach the Token Service.

use std::net::{Ipv4Addr, SocketAddr};

use botauth::{BotAuth, BotAuthConfig};
use botauth_e2e::{sandbox_env, sign_in_config};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_USER_ID, Delivery, Sandbox};
use botauth_sso_bot::{MESSAGES_PATH, SsoBot};
use serde_json::Value;

const CONNECTION: &str = "graph";

#[derive(Debug)]
struct Running {
    sandbox: Sandbox,
    url: String,
}

impl Running {
    async fn start() -> Running {
        let sandbox = Sandbox::start().await.expect("set-up");
        sandbox.register_oauth_connection(CONNECTION);
        let config = sign_in_config(&sandbox);
        let bot = SsoBot::from_config(config, CONNECTION, None).expect("set-up");
        let addr = bot
            .spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("set-up");
        Running {
            sandbox,
            url: format!("http://{addr}{MESSAGES_PATH}"),
        }
    }

    async fn deliver(&self, activity: &Value) -> Delivery {
        let token = self.sandbox.channel_token(DEMO_CLIENT_ID, activity);
        self.sandbox
            .deliver_activity(&self.url, activity, Some(&token))
            .await
            .expect("set-up")
    }

    async fn say(&self, text: &str) -> Value {
        let before = self.sandbox.connector_posts().len();
        let delivery = self
            .deliver(&self.sandbox.channel_activity(DEMO_CLIENT_ID, text))
            .await;
        assert_eq!(delivery.status, 200, "{}", delivery.body);
        let posts = self.sandbox.connector_posts();
        assert_eq!(posts.len(), before + 1, "one reply to {text:?}");
        posts[before].activity.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_signs_in_with_the_magic_code_and_with_teams_sso() {
    let bot = Running::start().await;
    let card = bot.say("whoami").await;
    let content = &card["attachments"][0]["content"];
    assert_eq!(
        card["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.oauth"
    );
    let link = content["buttons"][0]["value"].as_str().expect("set-up");
    let code = bot.sandbox.follow_sign_in_link(link).await.expect("set-up");
    assert_eq!(bot.say(&code).await["text"], "signed in as Sandbox User");
    assert_eq!(bot.say("whoami").await["text"], "you are Sandbox User");
    assert!(
        bot.sandbox
            .has_user_token(DEMO_USER_ID, CONNECTION, "msteams")
    );
    assert_eq!(bot.say("logout").await["text"], "signed out");
    assert!(
        !bot.sandbox
            .has_user_token(DEMO_USER_ID, CONNECTION, "msteams")
    );

    // Teams SSO via the invoke, answered in the HTTP response.
    let card = bot.say("whoami").await;
    let id = card["attachments"][0]["content"]["tokenExchangeResource"]["id"]
        .as_str()
        .expect("set-up")
        .to_owned();
    let invoke = bot
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
    let answer = bot.deliver(&invoke).await;
    assert_eq!(answer.status, 200);
    let body: Value = serde_json::from_str(&answer.body).expect("set-up");
    assert_eq!(
        body,
        serde_json::json!({"id": id, "connectionName": CONNECTION})
    );
    // The duplicate (a second Teams client): 200, empty body.
    let again = bot
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
    let answer = bot.deliver(&again).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    // verifyState with CancelledByUser: 200; an unknown invoke: 501.
    let cancel = bot
        .sandbox
        .verify_state_invoke(DEMO_CLIENT_ID, "CancelledByUser");
    assert_eq!(bot.deliver(&cancel).await.status, 200);
    let other = bot
        .sandbox
        .sign_in_invoke(DEMO_CLIENT_ID, "task/fetch", serde_json::json!({}));
    assert_eq!(bot.deliver(&other).await.status, 501);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_sign_in_activities_never_reach_the_token_service() {
    let bot = Running::start().await;
    let invoke = bot
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, "forged");
    let before = bot.sandbox.requests().len();
    let no_token = bot
        .sandbox
        .deliver_activity(&bot.url, &invoke, None)
        .await
        .expect("set-up");
    assert_eq!(no_token.status, 401);
    // A channel token for another bot.
    let other = bot
        .sandbox
        .channel_token("99999999-0000-0000-0000-00000000f0f0", &invoke);
    let forged = bot
        .sandbox
        .deliver_activity(&bot.url, &invoke, Some(&other))
        .await
        .expect("set-up");
    assert_eq!(forged.status, 401);
    let token_service = bot
        .sandbox
        .requests()
        .into_iter()
        .skip(before)
        .filter(|r| r.path.starts_with("/api/"))
        .count();
    assert_eq!(token_service, 0, "nothing was asked of the Token Service");
    assert_eq!(bot.sandbox.token_exchanges(), 0);
}

#[tokio::test]
async fn the_facade_client_follows_the_token_service_override_only() {
    let sandbox = Sandbox::start().await.expect("set-up");
    let mut config = BotAuthConfig::from_vars(sandbox_env(&sandbox)).expect("set-up");
    let auth = BotAuth::from_config(config.clone()).expect("set-up");
    assert_eq!(
        auth.user_token_client().expect("set-up").base_url(),
        "https://api.botframework.com"
    );
    config.token_service_url = Some("https://europe.token.botframework.com/".into());
    let auth = BotAuth::from_config(config.clone()).expect("set-up");
    assert_eq!(
        auth.user_token_client().expect("set-up").base_url(),
        "https://europe.token.botframework.com"
    );
    // The cloud's channel scope stays: the override changes nothing else.
    assert_eq!(
        auth.connector_request().scopes,
        vec!["https://api.botframework.com/.default".to_owned()]
    );
    config.token_service_url = Some("http://token.example".into());
    let auth = BotAuth::from_config(config).expect("set-up");
    let e = auth.user_token_client().unwrap_err();
    assert!(e.to_string().contains("token_service_url"), "{e}");
}
