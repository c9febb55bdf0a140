//! The start-up check: a bot that cannot authenticate fails when it starts, with the typed error
//! and its hint, instead of answering 500 to its first activity.

use botauth::{BotAuth, BotAuthConfig, ErrorKind, Report};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Route, Sandbox};

fn config(sandbox: &Sandbox, secret: &str) -> BotAuthConfig {
    BotAuthConfig::from_vars([
        ("CLIENT_ID", DEMO_CLIENT_ID),
        ("CLIENT_SECRET", secret),
        ("TENANT_ID", DEMO_TENANT_ID),
        ("BOTAUTH_AUTHORITY_HOST", sandbox.url().as_str()),
    ])
    .expect("a valid configuration")
}

#[tokio::test]
async fn check_gets_the_token_once_and_the_first_reply_uses_it() {
    let sandbox = Sandbox::start().await.expect("sandbox");
    let auth = BotAuth::from_config(config(&sandbox, DEMO_CLIENT_SECRET)).expect("botauth");
    auth.check().await.expect("the start-up check passes");
    assert_eq!(sandbox.count(Route::Token), 1);
    auth.connector_token().await.expect("a token");
    assert_eq!(
        sandbox.count(Route::Token),
        1,
        "the reply's token came from the cache"
    );
}

#[tokio::test]
async fn check_fails_with_the_aadsts_hint() {
    let sandbox = Sandbox::start().await.expect("sandbox");
    let auth = BotAuth::from_config(config(&sandbox, "wrong~secret~value")).expect("botauth");
    let error = auth
        .check()
        .await
        .expect_err("a wrong secret fails the check");
    assert_eq!(error.kind(), ErrorKind::Rejected);
    let line = Report::new(&error).to_string();
    assert!(line.contains("AADSTS7000215"), "{line}");
    assert!(line.contains("secret"), "{line}");
    assert!(!line.contains("wrong~secret~value"), "{line}");
}
