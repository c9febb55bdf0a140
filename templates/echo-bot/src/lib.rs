#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod listen;
mod serve;

use std::fmt;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use botauth::connector::{ConnectorClient, reply_activity};
use botauth::validator::Validator;
use botauth::{BotAuth, BotAuthConfig, BotAuthLayer, CredentialBuilder, VerifiedActivity};

pub use listen::{
    BIND_ADDRESS_VAR, DEFAULT_BIND_ADDRESS, DEFAULT_PORT, HEADER_READ_TIMEOUT_VAR, ListenConfig,
    ListenConfigError, MAX_CONNECTIONS_VAR, MAX_HEADER_READ_TIMEOUT_SECS, MAX_MAX_CONNECTIONS,
    PORT_VAR, parse_bind_address, parse_header_read_timeout, parse_max_connections, parse_port,
};
pub use serve::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ServeOptions, serve};

/// The messaging endpoint path the Azure Bot registration points at.
pub const MESSAGES_PATH: &str = "/api/messages";

/// Why the bot could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// The outbound side: configuration, credential or connector allow-list.
    Outbound(botauth::Error),
    /// The inbound side: the validator's configuration.
    Inbound(botauth::validator::Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Outbound(e) => write!(f, "outbound set-up failed: {e}"),
            SetupError::Inbound(e) => write!(f, "inbound set-up failed: {e}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Outbound(e) => e.source(),
            SetupError::Inbound(e) => e.source(),
        }
    }
}

/// The echo bot: every message activity is answered with `echo: <text>`.
///
/// Inbound, [`BotAuthLayer`] verifies each request before the handler runs (401/503 otherwise).
/// Outbound, the reply goes through [`ConnectorClient::reply_to_verified`] with the bot's token.
#[derive(Debug, Clone)]
pub struct EchoBot {
    auth: BotAuth,
    validator: Validator,
    connector: ConnectorClient,
}

impl EchoBot {
    /// Builds the bot from configuration in any dialect. `builder` chooses custom credentials
    /// and the environment managed-identity detection reads (use `CredentialBuilder::new()`).
    ///
    /// # Errors
    ///
    /// [`SetupError`] naming the side and the configuration key at fault.
    pub fn from_config(
        config: BotAuthConfig,
        builder: &CredentialBuilder,
    ) -> Result<Self, SetupError> {
        let validator = Validator::from_config(&config).map_err(SetupError::Inbound)?;
        let auth = BotAuth::with_builder(config, builder).map_err(SetupError::Outbound)?;
        Self::new(auth, validator)
    }

    /// Builds the bot from its parts (the connector shares `auth`'s token manager).
    ///
    /// # Errors
    ///
    /// [`SetupError::Outbound`] for an unusable service-URL allow-list entry.
    pub fn new(auth: BotAuth, validator: Validator) -> Result<Self, SetupError> {
        let connector = auth.connector().map_err(SetupError::Outbound)?;
        Ok(EchoBot {
            auth,
            validator,
            connector,
        })
    }

    /// The outbound side (token manager and configuration).
    pub fn auth(&self) -> &BotAuth {
        &self.auth
    }

    /// The start-up check: the Bot Connector token once ([`BotAuth::check`]) and the inbound
    /// signing keys once ([`Validator::check_keys`]), so a bot that cannot authenticate stops at
    /// start with the reason instead of answering 500 or 503 to its first activity. The token
    /// and keys stay cached for that activity.
    ///
    /// # Errors
    ///
    /// [`SetupError::Outbound`] with the token error (its AADSTS hint in the cause chain: print
    /// it with [`botauth::Report`]), or [`SetupError::Inbound`] naming the metadata endpoint.
    pub async fn check(&self) -> Result<(), SetupError> {
        self.auth.check().await.map_err(SetupError::Outbound)?;
        self.validator
            .check_keys()
            .await
            .map_err(SetupError::Inbound)
    }

    /// The axum app: `POST /api/messages` behind the validator layer.
    pub fn router(&self) -> Router {
        Router::new()
            .route(MESSAGES_PATH, post(on_activity))
            .route_layer(BotAuthLayer::new(self.validator.clone()))
            .with_state(self.connector.clone())
    }

    /// Serves the bot on `listener` with the default [`ServeOptions`] until the future is
    /// dropped. For a header-read timeout or connection limit of your choice and graceful
    /// shutdown, call [`serve()`] with [`EchoBot::router`].
    ///
    /// # Errors
    ///
    /// None at present (see [`serve()`]).
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        serve(
            listener,
            self.router(),
            ServeOptions::new(),
            std::future::pending(),
        )
        .await
    }

    /// Binds `addr` and serves there in a background task; returns the bound address.
    ///
    /// # Errors
    ///
    /// The bind error.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(error) = self.serve(listener).await {
                tracing::error!(%error, "echo bot server stopped");
            }
        });
        Ok(bound)
    }
}

/// Runs only for verified requests. A message gets `echo: <text>`; other activity types
/// (`conversationUpdate`, `typing`, …) are acknowledged without a reply.
async fn on_activity(
    State(connector): State<ConnectorClient>,
    activity: VerifiedActivity,
) -> StatusCode {
    if activity.activity_type() != Some("message") {
        return StatusCode::OK;
    }
    let text = activity
        .activity()
        .get("text")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let reply = reply_activity(activity.activity(), &format!("echo: {text}"));
    match connector.reply_to_verified(&activity, reply).await {
        Ok(_) => StatusCode::OK,
        Err(error) => {
            // The Bot Framework SDKs answer a failed turn with 500; the reason stays in the log.
            tracing::error!(kind = ?error.kind(), status = ?error.status(), %error, "the reply could not be sent");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}
