#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use botauth::connector::{ConnectorClient, reply_activity};
use botauth::usertoken::{Begin, ExchangeStore, SignInFlow, SignInOutcome, TokenResponse};
use botauth::validator::Validator;
use botauth::{BotAuth, BotAuthConfig, BotAuthLayer, VerifiedActivity};
use serde_json::Value;

/// The messaging endpoint path.
pub const MESSAGES_PATH: &str = "/api/messages";

/// The SSO bot: sign-in activities go to the [`SignInFlow`] first; "whoami" starts a sign-in
/// (or answers with the user token's `name`), "logout" signs out.
#[derive(Debug, Clone)]
pub struct SsoBot {
    validator: Validator,
    connector: ConnectorClient,
    flow: SignInFlow,
}

impl SsoBot {
    /// Builds the bot from configuration for OAuth connection `connection`; `store` shares Teams
    /// SSO de-duplication between replicas (`None`: in memory).
    ///
    /// # Errors
    ///
    /// The configuration error (validator, credential, allow-list or Token Service URL), as text.
    pub fn from_config(
        config: BotAuthConfig,
        connection: &str,
        store: Option<Arc<dyn ExchangeStore>>,
    ) -> Result<Self, String> {
        let validator = Validator::from_config(&config).map_err(|e| format!("inbound: {e}"))?;
        let auth = BotAuth::from_config(config).map_err(|e| format!("outbound: {e}"))?;
        let connector = auth.connector().map_err(|e| format!("connector: {e}"))?;
        let client = auth
            .user_token_client()
            .map_err(|e| format!("token service: {e}"))?;
        let mut flow = SignInFlow::builder(client, connection);
        if let Some(store) = store {
            flow = flow.exchange_store(store);
        }
        Ok(SsoBot {
            validator,
            connector,
            flow: flow.build(),
        })
    }

    /// The sign-in flow.
    pub fn flow(&self) -> &SignInFlow {
        &self.flow
    }

    /// `POST /api/messages` behind the validator layer.
    pub fn router(&self) -> Router {
        Router::new()
            .route(MESSAGES_PATH, post(on_activity))
            .route_layer(BotAuthLayer::new(self.validator.clone()))
            .with_state(self.clone())
    }

    /// Binds `addr` and serves in a background task; returns the bound address.
    ///
    /// # Errors
    ///
    /// The bind error.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = self.router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "sso bot server stopped");
            }
        });
        Ok(bound)
    }
}

/// The user token's `name` claim (the sandbox issues JWTs; a real provider's token may be
/// opaque, and a real bot would call the provider's API with it instead).
pub fn user_name(token: &TokenResponse) -> String {
    token
        .token
        .expose_secret()
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "someone (opaque token)".into())
}

async fn say(bot: &SsoBot, activity: &VerifiedActivity, reply: Value) -> Response {
    match bot.connector.reply_to_verified(activity, reply).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(error) => {
            tracing::error!(kind = ?error.kind(), %error, "the reply could not be sent");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn on_activity(
    State(bot): State<SsoBot>,
    Extension(activity): Extension<VerifiedActivity>,
) -> Response {
    let step = bot.flow.handle(&activity).await;
    let text = |t: &str| reply_activity(activity.activity(), t);
    let note = match &step.outcome {
        SignInOutcome::SignedIn(token) => Some(format!("signed in as {}", user_name(token))),
        SignInOutcome::CodeRefused if step.response.is_none() => {
            Some("that code did not work; try again".into())
        }
        SignInOutcome::TimedOut if step.response.is_none() => {
            Some("the sign-in timed out; say whoami again".into())
        }
        SignInOutcome::Error(error) => {
            tracing::warn!(kind = ?error.kind(), %error, "a sign-in activity failed");
            None
        }
        _ => None,
    };
    if let Some(note) = note {
        let sent = say(&bot, &activity, text(&note)).await;
        if step.response.is_none() {
            return sent;
        }
    }
    if let Some(response) = step.response {
        let status =
            StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return match response.body {
            Some(body) => (status, axum::Json(body)).into_response(),
            None => status.into_response(),
        };
    }
    match activity.activity_type() {
        // An invoke nobody handles: 501, as the SDKs answer.
        Some("invoke") => return StatusCode::NOT_IMPLEMENTED.into_response(),
        Some("message") => {}
        _ => return StatusCode::OK.into_response(),
    }
    let words = activity
        .activity()
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match words.as_str() {
        "logout" => match bot.flow.sign_out(&activity).await {
            Ok(()) => say(&bot, &activity, text("signed out")).await,
            Err(error) => {
                tracing::error!(kind = ?error.kind(), %error, "sign-out failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        "whoami" => match bot.flow.begin(&activity).await {
            Ok(Begin::SignedIn(token)) => {
                say(
                    &bot,
                    &activity,
                    text(&format!("you are {}", user_name(&token))),
                )
                .await
            }
            Ok(Begin::Card(card)) => say(&bot, &activity, card).await,
            Ok(_) => StatusCode::OK.into_response(),
            Err(error) => {
                tracing::error!(kind = ?error.kind(), %error, "sign-in could not start");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        _ => say(&bot, &activity, text("say whoami or logout")).await,
    }
}
