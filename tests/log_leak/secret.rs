//! Captures every `tracing` event of a full run (all crates, TRACE level) and fails if a secret,
//! an access token or a form-encoded secret appears in it.

use std::time::Duration;

use botauth::{BotAuth, BotAuthConfig, ErrorKind};
use botauth_e2e::{CapturedLogs, form_encoded, jwt_and_parts, sandbox_auth, sandbox_env};
use botauth_sandbox::{DEMO_CLIENT_SECRET, Fault, Route, Sandbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_reaches_the_logs() {
    let logs = CapturedLogs::scenario().await;
    let sandbox = Sandbox::start().await.unwrap();

    // Configuration read and printed the way an application would.
    let config = BotAuthConfig::from_vars(sandbox_env(&sandbox)).unwrap();
    tracing::info!(?config, "configuration loaded");

    // Success, cache hit, forced refresh, background failures, and a rejected secret.
    let auth = sandbox_auth(&sandbox);
    tracing::info!(?auth, "auth built");
    let mut tokens = Vec::new();
    let t = auth.connector_token().await.unwrap();
    tracing::info!(token = ?t, header = %t.authorization_header(), "token acquired");
    tokens.push(t);
    tokens.push(auth.connector_token().await.unwrap());
    tokens.push(
        auth.tokens()
            .force_refresh(auth.connector_request())
            .await
            .unwrap(),
    );
    sandbox.inject(Route::Token, Fault::status(500));
    tokens.push(
        auth.tokens()
            .force_refresh(auth.connector_request())
            .await
            .unwrap(),
    );

    let mut bad = sandbox_env(&sandbox);
    let wrong = "wrong+secret/value=~x";
    for (k, v) in &mut bad {
        if k == "CLIENT_SECRET" {
            *v = wrong.into();
        }
    }
    let bad = BotAuth::from_config(BotAuthConfig::from_vars(bad).unwrap()).unwrap();
    let e = bad.connector_token().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    tracing::error!(error = %e, debug = ?e, "as an application would log it");
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(sandbox);

    let mut forbidden: Vec<String> = vec![
        DEMO_CLIENT_SECRET.into(),
        form_encoded(DEMO_CLIENT_SECRET),
        wrong.into(),
        form_encoded(wrong),
    ];
    for t in &tokens {
        forbidden.extend(jwt_and_parts(t.token.expose_secret()));
    }
    logs.assert_clean(&["requesting token", "AADSTS7000215"], &forbidden);
}
