#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod connections;
mod error;
mod target;

pub use botauth_core::service_url::{
    DEFAULT_ALLOWED_HOSTS, ServiceUrl, ServiceUrlAllowList, ServiceUrlError, ServiceUrlErrorKind,
};
pub use client::{ConnectorClient, ConnectorClientBuilder};
pub use connections::{Connection, ConnectionMap, DEFAULT_CONNECTION_NAME};
pub use error::{ConnectorError, ConnectorErrorBody, ConnectorErrorKind};
pub use target::{Audience, ResourceResponse, Target, reply_activity};

/// The audience a reply to a caller verified by the validator needs: the calling bot's app id for
/// a skill call (its `appid`/`azp` claim), the Bot Connector for everything else.
///
/// # Errors
///
/// [`ConnectorErrorKind::InvalidArgument`] for a skill token without an app id.
#[cfg(feature = "validator")]
pub fn audience_for(claims: &botauth_validator::BotClaims) -> Result<Audience, ConnectorError> {
    match claims.profile() {
        botauth_validator::ProfileKind::Skill => claims
            .app_id()
            .map(|id| Audience::Skill(id.to_owned()))
            .ok_or_else(|| {
                error::Repr::InvalidArgument {
                    what: "skill app id",
                    message: "the skill token names no calling app (appid/azp)".into(),
                }
                .into()
            }),
        _ => Ok(Audience::BotConnector),
    }
}

/// The audience `ConnectionsMap` rules compare for a reply to a caller verified by the validator:
/// the token's `aud` (the audience that matched), or its `appid`/`azp` when it has no `aud`.
#[cfg(feature = "validator")]
pub fn inbound_audience_of(claims: &botauth_validator::BotClaims) -> Option<&str> {
    Some(claims.audience())
        .filter(|a| !a.is_empty())
        .or_else(|| claims.app_id())
}
