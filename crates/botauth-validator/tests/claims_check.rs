//! Issue 13 §2: the bot's own claims check runs after the built-in rules, sees the claims and the
//! activity, refuses with a reason (401 from the layer, the handler never runs), and runs on the
//! verified-token cache path too.
#![cfg(feature = "axum")]
// Helpers outside `#[test]` functions unwrap too: a failure there is a broken test set-up.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::post;
use botauth_sandbox::{DEMO_TENANT_ID, Route};
use botauth_validator::{
    ActivityInfo, BotAuthLayer, BotClaims, ClaimsRejection, ErrorKind, Validator, VerifiedActivity,
};
use common::*;
use serde_json::{Value, json};

const OTHER_TENANT: &str = "99999999-0000-4000-8000-000000000bad";

/// Admits only activities from `tenant` (the README's example), counting its calls.
fn one_tenant(
    tenant: &'static str,
    calls: Arc<AtomicUsize>,
) -> impl Fn(&BotClaims, &ActivityInfo<'_>) -> Result<(), ClaimsRejection> + Send + Sync + 'static {
    move |_claims, activity| {
        calls.fetch_add(1, Ordering::SeqCst);
        let from = activity
            .activity()
            .and_then(|a| a.pointer("/conversation/tenantId"))
            .and_then(Value::as_str);
        if from == Some(tenant) {
            Ok(())
        } else {
            Err(ClaimsRejection::new(
                "the activity is not from the bot's tenant",
            ))
        }
    }
}

struct Bot {
    url: String,
    handled: Arc<AtomicUsize>,
    client: reqwest::Client,
}

async fn bot(validator: Validator) -> Bot {
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&handled);
    let router = Router::new()
        .route(
            "/api/messages",
            post(move |_: VerifiedActivity| {
                let counter = Arc::clone(&counter);
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    "handled"
                }
            }),
        )
        .layer(BotAuthLayer::new(validator));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Bot {
        url: format!("http://{addr}/api/messages"),
        handled,
        client: reqwest::Client::new(),
    }
}

async fn post_activity(bot: &Bot, token: &str, activity: &Value) -> (u16, String) {
    let response = bot
        .client
        .post(&bot.url)
        .header("authorization", format!("Bearer {token}"))
        .body(activity.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn from_tenant(env: &Env, tenant: &str) -> Value {
    let mut activity = env.sandbox.channel_activity(APP, "hi");
    activity["conversation"]["tenantId"] = json!(tenant);
    activity
}

const UNAUTHORIZED: &str =
    r#"{"error":"unauthorized","message":"the request is not authenticated"}"#;

#[tokio::test]
async fn a_rejecting_claims_check_is_401_and_the_handler_never_runs() {
    let env = Env::start().await;
    let checked = Arc::new(AtomicUsize::new(0));
    let validator = env
        .builder()
        .claims_check(one_tenant(DEMO_TENANT_ID, Arc::clone(&checked)))
        .build()
        .unwrap();
    let bot = bot(validator).await;
    let activity = from_tenant(&env, OTHER_TENANT);
    let token = env.sandbox.channel_token(APP, &activity);
    let (status, body) = post_activity(&bot, &token, &activity).await;
    assert_eq!(status, 401);
    assert_eq!(body, UNAUTHORIZED);
    assert_eq!(checked.load(Ordering::SeqCst), 1);
    assert_eq!(bot.handled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_accepting_claims_check_lets_the_handler_run() {
    let env = Env::start().await;
    let checked = Arc::new(AtomicUsize::new(0));
    let validator = env
        .builder()
        .claims_check(one_tenant(DEMO_TENANT_ID, Arc::clone(&checked)))
        .build()
        .unwrap();
    let bot = bot(validator).await;
    let activity = from_tenant(&env, DEMO_TENANT_ID);
    let token = env.sandbox.channel_token(APP, &activity);
    let (status, body) = post_activity(&bot, &token, &activity).await;
    assert_eq!((status, body.as_str()), (200, "handled"));
    assert_eq!(checked.load(Ordering::SeqCst), 1);
    assert_eq!(bot.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_claims_check_runs_on_the_verified_token_cache_path() {
    let env = Env::start().await;
    let checked = Arc::new(AtomicUsize::new(0));
    let validator = env
        .builder()
        .claims_check(one_tenant(DEMO_TENANT_ID, Arc::clone(&checked)))
        .build()
        .unwrap();
    let bot = bot(validator).await;
    let ours = from_tenant(&env, DEMO_TENANT_ID);
    let token = env.sandbox.channel_token(APP, &ours);
    // Twice: the cache keeps a token from its second verification on.
    assert_eq!(post_activity(&bot, &token, &ours).await.0, 200);
    assert_eq!(post_activity(&bot, &token, &ours).await.0, 200);
    let fetches = env.sandbox.count(Route::BotServiceJwks);
    // The same token (a cache hit) on another tenant's activity: refused by the check.
    let theirs = from_tenant(&env, OTHER_TENANT);
    let (status, body) = post_activity(&bot, &token, &theirs).await;
    assert_eq!((status, body.as_str()), (401, UNAUTHORIZED));
    assert_eq!(post_activity(&bot, &token, &ours).await.0, 200);
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), fetches);
    assert_eq!(checked.load(Ordering::SeqCst), 4);
    assert_eq!(bot.handled.load(Ordering::SeqCst), 3);
}

/// What a check saw: the claims' `serviceurl` and the activity's `channelId`.
type Seen = (Option<String>, Option<String>);

#[tokio::test]
async fn the_check_runs_after_the_built_in_rules_and_sees_the_claims() {
    let env = Env::start().await;
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = Arc::clone(&seen);
    let v = env
        .builder()
        .claims_check(move |claims: &BotClaims, activity: &ActivityInfo<'_>| {
            log.lock().unwrap().push((
                claims.service_url().map(str::to_owned),
                activity.channel_id().map(str::to_owned),
            ));
            Ok(())
        })
        .build()
        .unwrap();
    let token = env.token();
    assert!(v.validate(&token, teams()).await.is_ok());
    // Built-in failures never reach the check.
    assert_eq!(
        kind_for(
            &v,
            &token,
            ActivityInfo::new("https://evil.example/", "msteams")
        )
        .await,
        ErrorKind::ServiceUrl
    );
    assert_eq!(
        kind_for(&v, &token, ActivityInfo::new(TEAMS, "telegram")).await,
        ErrorKind::Endorsement
    );
    assert_eq!(kind(&v, "garbage").await, ErrorKind::Malformed);
    assert!(v.validate(&token, teams()).await.is_ok());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (Some(TEAMS.to_owned()), Some("msteams".to_owned())),
            (Some(TEAMS.to_owned()), Some("msteams".to_owned())),
        ]
    );
}

#[tokio::test]
async fn the_rejection_is_typed_and_carries_the_reason() {
    let env = Env::start().await;
    let v = env
        .builder()
        .claims_check(one_tenant(DEMO_TENANT_ID, Arc::default()))
        .build()
        .unwrap();
    let token = env.token();
    // Without the whole activity (ActivityInfo::new), a tenant check has nothing to admit.
    let error = v.validate(&token, teams()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ClaimsCheck);
    assert!(error.is_rejection());
    assert_eq!(
        error.reason(),
        Some("the activity is not from the bot's tenant")
    );
    assert!(error.to_string().contains("claims check"), "{error}");
    // With it, the check admits this tenant.
    let activity = json!({"serviceUrl": TEAMS, "channelId": "msteams",
        "conversation": {"tenantId": DEMO_TENANT_ID}});
    assert!(
        v.validate(&token, ActivityInfo::from_activity(&activity))
            .await
            .is_ok()
    );
}

/// A named check type, captured by a closure.
#[derive(Debug)]
struct AllowedChannels(&'static [&'static str]);

impl AllowedChannels {
    fn check(&self, _: &BotClaims, activity: &ActivityInfo<'_>) -> Result<(), ClaimsRejection> {
        match activity.channel_id() {
            Some(channel) if self.0.contains(&channel) => Ok(()),
            _ => Err(ClaimsRejection::new("channel not served by this bot")),
        }
    }
}

#[tokio::test]
async fn several_checks_run_in_order_and_the_first_refusal_wins() {
    let env = Env::start().await;
    let order = Arc::new(AtomicUsize::new(0));
    let second = Arc::clone(&order);
    let v = env
        .builder()
        .claims_check({
            let allowed = AllowedChannels(&["msteams"]);
            move |claims: &BotClaims, activity: &ActivityInfo<'_>| allowed.check(claims, activity)
        })
        .claims_check(move |_: &BotClaims, _: &ActivityInfo<'_>| {
            second.fetch_add(1, Ordering::SeqCst);
            Err(ClaimsRejection::new("second"))
        })
        .build()
        .unwrap();
    assert!(format!("{v:?}").contains("claims_checks: 2"), "{v:?}");
    let token = env.token();
    let error = v
        .validate(&token, ActivityInfo::new(TEAMS, "webchat"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ClaimsCheck, "{error:?}");
    assert_eq!(error.reason(), Some("channel not served by this bot"));
    assert_eq!(order.load(Ordering::SeqCst), 0);
    let error = v.validate(&token, teams()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ClaimsCheck, "{error:?}");
    assert_eq!(error.reason(), Some("second"));
    assert_eq!(order.load(Ordering::SeqCst), 1);
}
