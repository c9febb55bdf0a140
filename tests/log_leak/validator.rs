//! The inbound side of the log-leak check: a bot behind `BotAuthLayer` accepts and rejects
//! requests with every `tracing` event captured (all crates, TRACE level); no token, nor any part
//! of one, may appear, while the rejection reasons must.

use axum::Router;
use axum::routing::post;
use botauth::validator::{BotAuthLayer, BotServiceProfile, Validator, VerifiedActivity};
use botauth_e2e::{CapturedLogs, jwt_and_parts};
use botauth_sandbox::{ChannelTokenClaims, Fault, Route, Sandbox};
use serde_json::json;

const APP: &str = "leak-check-bot";
const TEAMS: &str = "https://smba.trafficmanager.net/teams/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_inbound_token_reaches_the_logs() {
    let logs = CapturedLogs::scenario().await;
    let sandbox = Sandbox::start().await.unwrap();
    let validator = Validator::builder(APP)
        .profile(BotServiceProfile::custom(
            sandbox.bot_service_metadata_url(),
            sandbox.bot_service_issuer(),
        ))
        .build()
        .unwrap();
    tracing::info!(?validator, "validator built");
    let router = Router::new()
        .route(
            "/api/messages",
            post(|activity: VerifiedActivity| async move {
                tracing::info!(claims = ?activity.claims(), "handler ran");
                "ok"
            }),
        )
        .layer(BotAuthLayer::new(validator.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/messages", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let good = sandbox.mint_channel_token(ChannelTokenClaims::new(APP, TEAMS));
    let mut expired = ChannelTokenClaims::new(APP, TEAMS);
    expired.extra.insert("exp".into(), json!(1));
    let expired = sandbox.mint_channel_token(expired);
    let other_bot = sandbox.mint_channel_token(ChannelTokenClaims::new("another-bot", TEAMS));
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let flipped = if parts[2].starts_with('A') { "B" } else { "A" };
        parts[2].replace_range(..1, flipped);
        parts.join(".")
    };
    let body = json!({"type": "message", "serviceUrl": TEAMS, "channelId": "msteams"}).to_string();
    let client = reqwest::Client::new();
    let post = |token: &str| {
        client
            .post(&url)
            .header("authorization", format!("Bearer {token}"))
            .body(body.clone())
            .send()
    };
    assert_eq!(post(&good).await.unwrap().status(), 200);
    assert_eq!(post(&good).await.unwrap().status(), 200);
    for bad in [&expired, &other_bot, &tampered] {
        assert_eq!(post(bad).await.unwrap().status(), 401);
    }
    // Keys unavailable, on a fresh validator.
    let cold = Validator::builder(APP)
        .profile(BotServiceProfile::custom(
            sandbox.bot_service_metadata_url(),
            sandbox.bot_service_issuer(),
        ))
        .build()
        .unwrap();
    sandbox.inject(Route::BotServiceMetadata, Fault::status(503));
    let e = cold
        .validate(
            &good,
            botauth::validator::ActivityInfo::new(TEAMS, "msteams"),
        )
        .await
        .unwrap_err();
    tracing::error!(error = %e, debug = ?e, "as an application would log it");
    drop(sandbox);

    let mut forbidden = Vec::new();
    for token in [&good, &expired, &other_bot, &tampered] {
        forbidden.extend(jwt_and_parts(token));
    }
    logs.assert_clean(
        &[
            "reason=expired",
            "reason=audience",
            "reason=bad_signature",
            "handler ran",
        ],
        &forbidden,
    );
}
