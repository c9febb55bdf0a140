#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// docs.rs builds with `--cfg docsrs` on nightly: feature badges on the gated modules below.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod build;

// The root README's Rust examples, compiled and run as doctests. They use the conformance suite
// (`testkit`), the validator with its axum extractor (`axum`), the connector client
// (`connector`) and the Azure SDK bridge (`azure-identity`); without those features they are not
// collected.
#[cfg(all(
    doctest,
    feature = "testkit",
    feature = "axum",
    feature = "connector",
    feature = "azure-identity"
))]
#[doc = include_str!("../../../README.md")]
mod readme_doctests {}

pub use build::{BotAuth, CredentialBuilder, CustomFactory};

// The provider crates are re-exported as modules of this crate and rendered inline (`doc(inline)`),
// so `botauth::connector::reply_activity`, `botauth::validator::BotServiceProfile` and the rest
// have pages under `botauth::` instead of a bare `pub use` line pointing at another crate. On
// docs.rs (`--cfg docsrs`) each feature-gated module carries a badge naming its feature.

/// The core types: the trait, tokens, secrets, errors and configuration.
#[doc(inline)]
pub use botauth_core as core;
pub use botauth_core::{
    AccessToken, BotAuthConfig, ClientAssertionSource, Cloud, CredentialConfig, CredentialInfo,
    CredentialProvider, Dialect, Error, ErrorKind, Report, Result, Secret, TokenRequest,
    async_trait,
};
/// The settings every client builder takes ([`ClientSettings`](http::ClientSettings),
/// [`HttpOptions`](http::HttpOptions)) and the HTTP client builder.
#[doc(inline)]
pub use botauth_http as http;
/// Outbound tokens: the client-credentials client and the token manager.
#[doc(inline)]
pub use botauth_token as token;
pub use botauth_token::{TokenManager, TokenSource};

/// The client-secret credential (feature `secret`).
#[cfg(feature = "secret")]
#[cfg_attr(docsrs, doc(cfg(feature = "secret")))]
#[doc(inline)]
pub use botauth_secret as secret;

/// The certificate credential (feature `certificate`).
#[cfg(feature = "certificate")]
#[cfg_attr(docsrs, doc(cfg(feature = "certificate")))]
#[doc(inline)]
pub use botauth_certificate as certificate;

/// Certificates from Azure Key Vault, rotation followed (feature `key-vault`).
#[cfg(feature = "key-vault")]
#[cfg_attr(docsrs, doc(cfg(feature = "key-vault")))]
#[doc(inline)]
pub use botauth_keyvault as keyvault;

/// The Bot Connector client (feature `connector`).
#[cfg(feature = "connector")]
#[cfg_attr(docsrs, doc(cfg(feature = "connector")))]
#[doc(inline)]
pub use botauth_connector as connector;
#[cfg(feature = "connector")]
#[cfg_attr(docsrs, doc(cfg(feature = "connector")))]
pub use botauth_connector::{ConnectorClient, ConnectorError};

/// Managed identity, federated managed identity and workload identity credentials (feature
/// `managed-identity`).
#[cfg(feature = "managed-identity")]
#[cfg_attr(docsrs, doc(cfg(feature = "managed-identity")))]
#[doc(inline)]
pub use botauth_managed_identity as managed_identity;

/// User sign-in: the Token Service client, OAuth cards, sign-in invokes and Teams SSO (feature
/// `user-token`).
#[cfg(feature = "user-token")]
#[cfg_attr(docsrs, doc(cfg(feature = "user-token")))]
#[doc(inline)]
pub use botauth_usertoken as usertoken;
#[cfg(feature = "user-token")]
#[cfg_attr(docsrs, doc(cfg(feature = "user-token")))]
pub use botauth_usertoken::{UserTokenClient, UserTokenError};

#[cfg(feature = "user-token")]
impl BotAuth {
    /// A Token Service client (user sign-in) that shares this token manager: the bot's channel
    /// token, the configured cloud's Token Service or the `token_service_url` override (feature
    /// `user-token`).
    ///
    /// # Errors
    ///
    /// A configuration error naming `token_service_url` for an unusable override.
    pub fn user_token_client(&self) -> Result<botauth_usertoken::UserTokenClient> {
        botauth_usertoken::UserTokenClient::from_config(self.config(), self.tokens().clone())
    }
}

/// The Azure SDK bridge (feature `azure-identity`): an `azure_core` `TokenCredential` as a
/// credential ([`AzureCredential`](botauth_azure_identity::AzureCredential)), and the bot's token
/// manager as a `TokenCredential` ([`BotTokenCredential`](botauth_azure_identity::BotTokenCredential)).
#[cfg(feature = "azure-identity")]
#[cfg_attr(docsrs, doc(cfg(feature = "azure-identity")))]
#[doc(inline)]
pub use botauth_azure_identity as azure_identity;

#[cfg(feature = "azure-identity")]
impl BotAuth {
    /// The bot's identity as an Azure SDK `TokenCredential` (feature `azure-identity`): Azure SDK
    /// clients built with it (Key Vault, Storage, Graph through the Azure SDK) take their tokens
    /// from this token manager, the one cache, so many clients cost one token request per scope.
    /// It is the top-level connection's; for another connection, wrap
    /// [`tokens_for`](Self::tokens_for) in `BotTokenCredential::new`.
    pub fn token_credential(&self) -> std::sync::Arc<botauth_azure_identity::BotTokenCredential> {
        botauth_azure_identity::BotTokenCredential::new(self.tokens().clone())
    }
}

/// Inbound JWT validation (feature `validator`; axum extractors with feature `axum`).
#[cfg(feature = "validator")]
#[cfg_attr(docsrs, doc(cfg(feature = "validator")))]
#[doc(inline)]
pub use botauth_validator as validator;
#[cfg(feature = "validator")]
#[cfg_attr(docsrs, doc(cfg(feature = "validator")))]
pub use botauth_validator::{BotAuthLayer, BotClaims, Validator, VerifiedActivity};
