//! Every Token Service operation and status over real HTTP against the sandbox's Token Service.

mod common;

use std::time::Duration;

use base64::Engine as _;
use botauth_core::{Clock as _, Secret};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_USER_ID};
use botauth_usertoken::{SignInContext, UserTokenErrorKind};
use common::{CONNECTION, Harness};
use serde_json::Value;

#[tokio::test]
async fn context_and_state_come_from_the_verified_activity() {
    let h = Harness::start().await;
    let message = h.message("hi").await;
    let ctx = SignInContext::from_verified(&message).unwrap();
    assert_eq!(ctx.user_id(), DEMO_USER_ID);
    assert_eq!(ctx.channel_id(), "msteams");
    assert_eq!(ctx.app_id(), DEMO_CLIENT_ID);
    let state = ctx.sign_in_state(CONNECTION);
    let json: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&state)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["connectionName"], CONNECTION);
    assert_eq!(json["msAppId"], DEMO_CLIENT_ID);
    assert_eq!(json["conversation"]["user"]["id"], DEMO_USER_ID);
    assert_eq!(
        json["conversation"]["bot"]["id"],
        format!("28:{DEMO_CLIENT_ID}")
    );
    assert_eq!(json["conversation"]["channelId"], "msteams");
    assert_eq!(json["conversation"]["activityId"], message.activity()["id"]);
    assert_eq!(
        json["conversation"]["serviceUrl"],
        h.sandbox.connector_url()
    );
    assert!(!format!("{ctx:?}").contains(DEMO_USER_ID));
}

#[tokio::test]
async fn magic_code_sign_in_cache_status_aad_tokens_and_sign_out() {
    let h = Harness::start().await;
    let client = h.client_with_clock();
    let message = h.message("hi").await;
    let ctx = SignInContext::from_verified(&message).unwrap();

    // Not signed in: 404 → None.
    assert!(
        client
            .get_user_token(&ctx, CONNECTION, None)
            .await
            .unwrap()
            .is_none()
    );

    // The sign-in resource: a link to the sandbox, the Teams SSO resource for this bot.
    let resource = client
        .get_sign_in_resource(&ctx, CONNECTION, None)
        .await
        .unwrap();
    let exchange = resource.token_exchange_resource.clone().unwrap();
    assert_eq!(
        exchange.uri.as_deref(),
        Some(format!("api://botid-{DEMO_CLIENT_ID}").as_str())
    );
    assert!(exchange.id.is_some());
    assert!(resource.token_post_sas_url.is_some());
    assert!(!format!("{resource:?}").contains("signin?id"));

    // The user follows the link and gets a code; a wrong code is refused (404 → None).
    let code = h
        .sandbox
        .follow_sign_in_link(resource.sign_in_link.expose_secret())
        .await
        .unwrap();
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(
        client
            .get_user_token(&ctx, CONNECTION, Some(wrong))
            .await
            .unwrap()
            .is_none()
    );
    // The link works once.
    assert!(
        h.sandbox
            .follow_sign_in_link(resource.sign_in_link.expose_secret())
            .await
            .is_err()
    );

    let token = client
        .get_user_token(&ctx, CONNECTION, Some(&code))
        .await
        .unwrap()
        .expect("the code releases the token");
    assert_eq!(token.connection_name, CONNECTION);
    assert_eq!(token.channel_id.as_deref(), Some("msteams"));
    assert!(token.expires_at_unix().is_some());
    // The code is used up.
    assert!(
        h.sandbox
            .has_user_token(DEMO_USER_ID, CONNECTION, "msteams")
    );

    // Cached: no request while ≥ 5 min remain.
    let before = h.sandbox.requests().len();
    let again = client
        .get_user_token(&ctx, CONNECTION, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.token, token.token);
    assert_eq!(h.sandbox.requests().len(), before, "served from the cache");
    // 56 minutes later under 5 minutes remain: asked again.
    h.clock.advance(Duration::from_secs(56 * 60));
    client
        .get_user_token(&ctx, CONNECTION, None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        h.sandbox.requests().len() > before,
        "asked the service again"
    );

    // Status.
    h.sandbox.register_oauth_connection("other");
    let status = client.get_token_status(&ctx, None).await.unwrap();
    assert_eq!(status.len(), 2);
    assert!(
        status
            .iter()
            .any(|s| s.connection_name == CONNECTION && s.has_token)
    );
    assert!(
        status
            .iter()
            .any(|s| s.connection_name == "other" && !s.has_token)
    );
    let only = client.get_token_status(&ctx, Some("other")).await.unwrap();
    assert_eq!(only.len(), 1);

    // AAD tokens.
    let aad = client
        .get_aad_tokens(&ctx, CONNECTION, &["https://graph.microsoft.com"])
        .await
        .unwrap();
    assert!(
        aad["https://graph.microsoft.com"]
            .token
            .expose_secret()
            .contains('.')
    );

    // Sign out: the service forgets, the cache is evicted.
    client.sign_out(&ctx, Some(CONNECTION)).await.unwrap();
    assert!(
        !h.sandbox
            .has_user_token(DEMO_USER_ID, CONNECTION, "msteams")
    );
    assert!(
        client
            .get_user_token(&ctx, CONNECTION, None)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn unknown_connections_are_named_with_the_hint() {
    let h = Harness::start().await;
    let ctx = SignInContext::from_verified(&h.message("hi").await).unwrap();
    let e = h
        .client
        .get_user_token(&ctx, "Graph ", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::ConnectionNotFound);
    assert!(e.to_string().contains("OAuth Connection Settings"), "{e}");
    let e = h
        .client
        .get_sign_in_resource(&ctx, "nope", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::ConnectionNotFound);
    let e = h
        .client
        .exchange_token(&ctx, "nope", &Secret::new("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::ConnectionNotFound);
    let e = h.client.get_user_token(&ctx, "", None).await.unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::InvalidArgument);
}

#[tokio::test]
async fn sign_in_url_is_the_link_as_text() {
    let h = Harness::start().await;
    let ctx = SignInContext::from_verified(&h.message("hi").await).unwrap();
    let link = h
        .client
        .get_sign_in_url(&ctx, CONNECTION, None)
        .await
        .unwrap();
    let code = h
        .sandbox
        .follow_sign_in_link(link.expose_secret())
        .await
        .unwrap();
    assert_eq!(code.len(), 6);
}

#[tokio::test]
async fn exchange_answers_token_consent_none_and_misconfigured() {
    let h = Harness::start().await;
    let ctx = SignInContext::from_verified(&h.message("hi").await).unwrap();
    let sso = Secret::new(h.sandbox.mint_teams_sso_token(DEMO_CLIENT_ID));

    // 200: the user's token.
    let token = h
        .client
        .exchange_token(&ctx, CONNECTION, &sso)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.connection_name, CONNECTION);
    assert_eq!(h.sandbox.token_exchanges(), 1);

    // 400: consent required.
    h.sandbox.set_consent_required(true);
    let e = h
        .client
        .exchange_token(&ctx, CONNECTION, &sso)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::ConsentRequired);
    assert_eq!(e.status(), Some(400));
    h.sandbox.set_consent_required(false);

    // 400 too for an SSO token whose audience is not this bot's Token Exchange URL.
    let other = Secret::new(h.sandbox.mint_teams_sso_token("someone-else"));
    let e = h
        .client
        .exchange_token(&ctx, CONNECTION, &other)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::ConsentRequired);

    // 404: none.
    h.sandbox.inject_token_service_status(404, None, 1);
    assert!(
        h.client
            .exchange_token(&ctx, CONNECTION, &sso)
            .await
            .unwrap()
            .is_none()
    );

    // 500: the connection is misconfigured.
    h.sandbox.inject_token_service_status(500, None, 1);
    let e = h
        .client
        .exchange_token(&ctx, CONNECTION, &sso)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::ConnectionMisconfigured);
    assert!(e.to_string().contains("Token Exchange URL"), "{e}");

    // An empty SSO token is not sent.
    let e = h
        .client
        .exchange_token(&ctx, CONNECTION, &Secret::new(""))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::InvalidArgument);
}

#[tokio::test]
async fn retries_refresh_and_gives_up_as_the_connector_does() {
    let h = Harness::start().await;
    let client = h.client_with_clock();
    let ctx = SignInContext::from_verified(&h.message("hi").await).unwrap();

    // 503 twice with Retry-After: retried, then answered.
    h.sandbox.inject_token_service_status(503, Some(2), 2);
    let t0 = h.clock.now();
    assert!(
        client
            .get_user_token(&ctx, CONNECTION, None)
            .await
            .unwrap()
            .is_none()
    );
    let waited = h.clock.now().duration_since(t0).unwrap();
    assert!(waited >= Duration::from_secs(4), "{waited:?}");

    // 429 past the retries: Throttled.
    h.sandbox.inject_token_service_status(429, None, 4);
    let e = client
        .get_user_token(&ctx, CONNECTION, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::Throttled);
    assert!(e.is_retryable());

    // A Retry-After longer than the client waits: returned at once.
    h.sandbox.inject_token_service_status(429, Some(3600), 1);
    let e = client
        .get_user_token(&ctx, CONNECTION, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::Throttled);

    // 401 once: one forced refresh, then answered.
    h.sandbox.inject_token_service_status(401, None, 1);
    assert!(
        client
            .get_user_token(&ctx, CONNECTION, None)
            .await
            .unwrap()
            .is_none()
    );
    // 401 twice: Unauthorized with the hint.
    h.sandbox.inject_token_service_status(401, None, 2);
    let e = client
        .get_user_token(&ctx, CONNECTION, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::Unauthorized);
    assert!(e.to_string().contains("Microsoft App ID"), "{e}");

    // 404 with an error body is "no token" too.
    h.sandbox.inject_token_service_status(404, None, 1);
    assert!(
        client
            .get_user_token(&ctx, CONNECTION, None)
            .await
            .expect("404 with a body")
            .is_none()
    );

    // Another status: Status, with the operation named.
    h.sandbox.inject_token_service_status(502, None, 1);
    let e = client
        .get_user_token(&ctx, CONNECTION, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::Status);
    assert!(e.to_string().contains("GetToken"), "{e}");
}

#[tokio::test]
async fn an_unreachable_service_is_unavailable() {
    let h = Harness::start().await;
    let ctx = SignInContext::from_verified(&h.message("hi").await).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = botauth_usertoken::UserTokenClient::builder(h.tokens.clone())
        .token_service_url(dead)
        .build()
        .unwrap();
    let e = client
        .get_user_token(&ctx, CONNECTION, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), UserTokenErrorKind::Unavailable);
}
