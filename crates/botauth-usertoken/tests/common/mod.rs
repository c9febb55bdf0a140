//! Shared set-up: a sandbox with an OAuth connection, the bot's token manager, and verified
//! activities made the only way there is, through the validator's layer.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::http::Request;
use axum::routing::post;
use botauth_core::{BotAuthConfig, Clock, ManualClock};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};
use botauth_secret::ClientSecretCredential;
use botauth_token::TokenManager;
use botauth_usertoken::UserTokenClient;
use botauth_validator::{BotAuthLayer, Validator, VerifiedActivity};
use serde_json::Value;
use tower::ServiceExt as _;

pub const CONNECTION: &str = "graph";

pub struct Harness {
    pub sandbox: Sandbox,
    pub config: BotAuthConfig,
    pub tokens: TokenManager,
    pub validator: Validator,
    pub clock: Arc<ManualClock>,
    pub client: UserTokenClient,
}

impl Harness {
    pub async fn start() -> Harness {
        let sandbox = Sandbox::start().await.expect("harness");
        sandbox.register_oauth_connection(CONNECTION);
        let vars = vec![
            ("CLIENT_ID".to_owned(), DEMO_CLIENT_ID.to_owned()),
            ("CLIENT_SECRET".to_owned(), DEMO_CLIENT_SECRET.to_owned()),
            ("TENANT_ID".to_owned(), DEMO_TENANT_ID.to_owned()),
            ("BOTAUTH_AUTHORITY_HOST".to_owned(), sandbox.url()),
            (
                "BOTAUTH_METADATA_URL".to_owned(),
                sandbox.bot_service_metadata_url(),
            ),
        ];
        let mut config = BotAuthConfig::from_vars(vars).expect("harness");
        config.token_service_url = Some(sandbox.url());
        let tokens = TokenManager::new(Arc::new(
            ClientSecretCredential::from_entry(&config, &config.credentials[0]).expect("harness"),
        ));
        let validator = Validator::from_config(&config).expect("harness");
        let clock = Arc::new(ManualClock::new());
        let client = UserTokenClient::from_config(&config, tokens.clone()).expect("harness");
        Harness {
            sandbox,
            config,
            tokens,
            validator,
            clock,
            client,
        }
    }

    /// A client whose waits and cache expiry follow the manual clock.
    pub fn client_with_clock(&self) -> UserTokenClient {
        UserTokenClient::builder(self.tokens.clone())
            .token_service_url(self.sandbox.url())
            .settings(
                botauth_http::ClientSettings::new()
                    .clock(Arc::clone(&self.clock) as Arc<dyn Clock>),
            )
            .build()
            .expect("harness")
    }

    /// `activity` delivered with a channel token and passed through [`BotAuthLayer`].
    pub async fn verified(&self, activity: &Value) -> VerifiedActivity {
        let token = self.sandbox.channel_token(DEMO_CLIENT_ID, activity);
        let seen: Arc<Mutex<Option<VerifiedActivity>>> = Arc::default();
        let keep = Arc::clone(&seen);
        let app = Router::new()
            .route(
                "/api/messages",
                post(move |Extension(v): Extension<VerifiedActivity>| {
                    let keep = Arc::clone(&keep);
                    async move {
                        *keep.lock().expect("harness") = Some(v);
                        "ok"
                    }
                }),
            )
            .route_layer(BotAuthLayer::new(self.validator.clone()));
        let request = Request::post("/api/messages")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(activity.to_string()))
            .expect("harness");
        let response = app.oneshot(request).await.expect("harness");
        assert_eq!(response.status(), 200, "the activity must verify");
        seen.lock()
            .expect("harness")
            .take()
            .expect("the handler ran")
    }

    pub async fn message(&self, text: &str) -> VerifiedActivity {
        self.verified(&self.sandbox.channel_activity(DEMO_CLIENT_ID, text))
            .await
    }

    /// Signs the sandbox user in through the sign-in link; returns the magic code.
    pub async fn sign_in_code(&self, client: &UserTokenClient) -> String {
        let message = self.message("sign me in").await;
        let ctx = botauth_usertoken::SignInContext::from_verified(&message).expect("harness");
        let resource = client
            .get_sign_in_resource(&ctx, CONNECTION, None)
            .await
            .expect("harness");
        self.sandbox
            .follow_sign_in_link(resource.sign_in_link.expose_secret())
            .await
            .expect("harness")
    }
}
