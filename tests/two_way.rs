//! The two-way flow end to end, over real HTTP on loopback: the sandbox plays the Bot Service
//! (delivers a signed channel activity), the echo bot (templates/echo-bot) verifies it and replies
//! through the Bot Connector client with its own token, and the sandbox's Bot Connector verifies
//! that token. Then every way an activity must be refused, and the outages a bot must ride out.

use botauth_e2e::RunningBot;
use botauth_sandbox::{ChannelTokenClaims, ConnectorPost, DemoCredential, Fault, Route, Sandbox};
use serde_json::{Value, json};

/// `aud` of the forged token: some other bot's app id.
const OTHER_BOT: &str = "99999999-0000-0000-0000-00000000f0f0";

/// A service URL the bot's allow-list does not hold.
const EVIL: &str = "https://evil.example/";

/// The Bot Connector resource of the public cloud: the `aud` of every reply's token.
const BOT_CONNECTOR: &str = "https://api.botframework.com";

/// Token requests any bot made, from the token endpoint or the managed identity endpoint.
fn token_requests(sandbox: &Sandbox) -> usize {
    sandbox.count(Route::Token) + sandbox.count(Route::Imds)
}

/// Asserts that `post` is the echo of `activity` sent by `app_id` with a Bot Connector token.
fn assert_echo(post: &ConnectorPost, activity: &Value, app_id: &str, what: &str) {
    let field = |pointer: &str| {
        activity
            .pointer(pointer)
            .and_then(Value::as_str)
            .expect("the sandbox's activities have it")
    };
    assert_eq!(
        post.activity["text"],
        format!("echo: {}", field("/text")),
        "{what}"
    );
    assert_eq!(post.reply_to_id.as_deref(), Some(field("/id")), "{what}");
    assert_eq!(post.conversation_id, field("/conversation/id"), "{what}");
    assert_eq!(post.app_id, app_id, "{what}");
    assert_eq!(post.audience, BOT_CONNECTOR, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_credential_answers_a_channel_message_through_the_connector() {
    let sandbox = Sandbox::start().await.unwrap();
    for credential in DemoCredential::ALL {
        let what = &credential.to_string();
        // Environments of every kind side by side on one sandbox: each adds its credential to
        // the demo app rather than replacing the others.
        let env = sandbox.demo_environment(credential).unwrap();
        let bot = RunningBot::start(&env).await;
        assert_eq!(bot.app_id, credential.app_id(), "{what}");
        let (posts, token, imds) = (
            sandbox.connector_posts().len(),
            sandbox.count(Route::Token),
            sandbox.count(Route::Imds),
        );

        let (activity, channel_token) = bot.message(&sandbox, &format!("hello, {what}"));
        let delivery = bot.deliver(&sandbox, &activity, Some(&channel_token)).await;
        assert_eq!(delivery.status, 200, "{what}: {}", delivery.body);

        let all = sandbox.connector_posts();
        assert_eq!(all.len(), posts + 1, "{what}: exactly one reply");
        assert_echo(&all[posts], &activity, credential.app_id(), what);
        // One token, from the place the credential gets it: IMDS for a managed identity that is
        // the bot; the token endpoint for the others, after IMDS for a federated one.
        let (token_delta, imds_delta) = match credential {
            DemoCredential::ManagedIdentity => (0, 1),
            // The vault is read with the managed identity, then Entra signs the bot's token.
            DemoCredential::Federated | DemoCredential::KeyVault => (1, 1),
            _ => (1, 0),
        };
        assert_eq!(
            (
                sandbox.count(Route::Token) - token,
                sandbox.count(Route::Imds) - imds
            ),
            (token_delta, imds_delta),
            "{what}: token requests (token endpoint, IMDS)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_activities_get_401_no_reply_and_no_token_request() {
    let sandbox = Sandbox::start().await.unwrap();
    let env = sandbox.demo_environment(DemoCredential::Secret).unwrap();
    let bot = RunningBot::start(&env).await;
    let app = bot.app_id.as_str();
    let connector = sandbox.connector_url();
    let (activity, _) = bot.message(&sandbox, "let me in");

    let forged = sandbox.mint_channel_token(ChannelTokenClaims::new(OTHER_BOT, &connector));
    // Issued 70 minutes ago; `exp` ten minutes past is beyond the 300 s of clock skew
    // (docs/protocol.md §6, rule 5), one minute past is within it.
    let expired_since = |secs: u64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let mut claims = ChannelTokenClaims::new(app, &connector);
        claims.extra.insert("iat".into(), json!(now - 4200));
        claims.extra.insert("nbf".into(), json!(now - 4200));
        claims.extra.insert("exp".into(), json!(now - secs));
        sandbox.mint_channel_token(claims)
    };
    let expired = expired_since(600);
    // Genuine, for this bot, but for activities from another service URL than this one's.
    let other_service = sandbox.mint_channel_token(ChannelTokenClaims::new(
        app,
        "https://smba.trafficmanager.net/teams/",
    ));
    let cases: [(&str, Option<&str>); 4] = [
        ("forged audience", Some(&forged)),
        ("expired", Some(&expired)),
        ("serviceurl mismatch", Some(&other_service)),
        ("no Authorization header", None),
    ];
    for (what, bearer) in cases {
        let delivery = bot.deliver(&sandbox, &activity, bearer).await;
        assert_eq!(delivery.status, 401, "{what}: {}", delivery.body);
        assert_eq!(
            delivery.www_authenticate.as_deref(),
            Some("Bearer"),
            "{what}"
        );
        assert_eq!(sandbox.connector_posts().len(), 0, "{what}");
        assert_eq!(token_requests(&sandbox), 0, "{what}");
    }

    // The same bot answers a genuine activity, even one whose token expired within the skew:
    // the refusals above were about the tokens.
    let (good, _) = bot.message(&sandbox, "a real one");
    let token = expired_since(60);
    let delivery = bot.deliver(&sandbox, &good, Some(&token)).await;
    assert_eq!(delivery.status, 200, "{}", delivery.body);
    assert_eq!(sandbox.connector_posts().len(), 1);
    assert_eq!(token_requests(&sandbox), 1);

    // Signed by a key the JWKS does not list (rotated in, then withdrawn): the bot fetched the
    // keys moments ago, so the unknown kid is refused without another fetch.
    let jwks = sandbox.count(Route::BotServiceJwks);
    let kid = sandbox.rotate_bot_service_key();
    sandbox.remove_bot_service_key(&kid);
    let (activity, unknown_key) = bot.message(&sandbox, "signed by a stranger");
    let delivery = bot.deliver(&sandbox, &activity, Some(&unknown_key)).await;
    assert_eq!(delivery.status, 401, "{}", delivery.body);
    assert_eq!(delivery.www_authenticate.as_deref(), Some("Bearer"));
    assert_eq!(sandbox.connector_posts().len(), 1);
    assert_eq!(token_requests(&sandbox), 1);
    assert_eq!(sandbox.count(Route::BotServiceJwks), jwks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_and_a_service_url_outside_the_allow_list() {
    let sandbox = Sandbox::start().await.unwrap();
    let env = sandbox.demo_environment(DemoCredential::Secret).unwrap();

    // 1. The Bot Service key endpoint is down when a fresh bot gets its first activity: the
    //    signing keys are unavailable, which is 503 (the Bot Service retries), not 401.
    sandbox.inject_n(Route::BotServiceJwks, Fault::status(503), 3);
    let cold = RunningBot::start(&env).await;
    let (activity, token) = cold.message(&sandbox, "anyone there?");
    let delivery = cold.deliver(&sandbox, &activity, Some(&token)).await;
    assert_eq!(delivery.status, 503, "{}", delivery.body);
    assert_eq!(delivery.www_authenticate, None);
    assert_eq!(sandbox.connector_posts().len(), 0);
    assert_eq!(token_requests(&sandbox), 0);
    assert_eq!(
        (
            sandbox.count(Route::BotServiceMetadata),
            sandbox.count(Route::BotServiceJwks)
        ),
        (1, 1),
        "one key fetch, refused"
    );
    sandbox.clear_faults();

    // 2. A genuine activity whose serviceUrl (and the token's serviceurl) is a host the bot's
    //    allow-list does not hold: the validator accepts it, the connector refuses to send the
    //    bot's token there — not even asking for one — and the turn fails with 500.
    let bot = RunningBot::start(&env).await;
    let mut evil = sandbox.channel_activity(&bot.app_id, "reply to me over there");
    evil["serviceUrl"] = json!(EVIL);
    let token = sandbox.mint_channel_token(ChannelTokenClaims::new(&bot.app_id, EVIL));
    let delivery = bot.deliver(&sandbox, &evil, Some(&token)).await;
    assert_eq!(delivery.status, 500, "{}", delivery.body);
    assert_eq!(delivery.www_authenticate, None);
    assert_eq!(sandbox.connector_posts().len(), 0);
    assert_eq!(token_requests(&sandbox), 0);

    // 3. The token endpoint goes down while the bot holds a valid token: replies go on with the
    //    cached one, and the token endpoint is not asked again.
    let (first, token) = bot.message(&sandbox, "first");
    let delivery = bot.deliver(&sandbox, &first, Some(&token)).await;
    assert_eq!(delivery.status, 200, "{}", delivery.body);
    assert_eq!(sandbox.count(Route::Token), 1);
    sandbox.inject_n(Route::Token, Fault::status(500), 4);
    let (second, token) = bot.message(&sandbox, "second");
    let delivery = bot.deliver(&sandbox, &second, Some(&token)).await;
    assert_eq!(delivery.status, 200, "{}", delivery.body);
    let posts = sandbox.connector_posts();
    assert_eq!(posts.len(), 2);
    assert_echo(&posts[0], &first, &bot.app_id, "first");
    assert_echo(&posts[1], &second, &bot.app_id, "second");
    assert_eq!(sandbox.count(Route::Token), 1);
    // The injected failures are all still queued: nobody asked.
    let fresh = bot
        .auth
        .tokens()
        .force_refresh(bot.auth.connector_request())
        .await;
    assert!(fresh.is_err(), "the token endpoint is down");
    assert_eq!(sandbox.count(Route::Token), 3, "two attempts, both refused");
}
