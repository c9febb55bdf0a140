//! Not part of botauth's public API: shared between botauth's own crates; no stability promise.
//!
//! The response handling (bounded bodies, `Retry-After`, transport errors, cleaned server text),
//! the check of a parsed `access_token`, the client with an injected proxy environment and the
//! way builders read their [`ClientSettings`]. Applications use [`ClientSettings`],
//! [`HttpOptions`] and [`build_client`](crate::build_client).

use std::sync::Arc;

use botauth_core::{Clock, Result};

use crate::{ClientSettings, HttpOptions};

mod bearer;
mod response;

pub use bearer::{UNSENDABLE_TOKEN, check_access_token, is_sendable_token, is_sendable_token_type};
pub use response::{clean_text, display_endpoint, read_body, retry_after, transport_error};

/// The `x-client-SKU` botauth sends.
pub const CLIENT_SKU: &str = "botauth.rust";
/// The `x-client-Ver` botauth sends.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// [`build_client`](crate::build_client) with the proxy variables read through `env` (tests
/// inject them; managed identity passes an empty environment, so that its endpoints are never
/// proxied).
///
/// # Errors
///
/// As [`build_client`](crate::build_client).
pub fn build_client_with_env(
    options: &HttpOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<reqwest::Client> {
    crate::client::build_client_with_env(options, env)
}

/// How a builder reads the [`ClientSettings`] it was given: the settings made, each over the
/// builder's own default. Not part of botauth's public API.
pub trait ResolveSettings {
    /// These settings with every setting made in `later` laid over them.
    fn merge(self, later: ClientSettings) -> ClientSettings;
    /// The clock set, or the system clock.
    fn clock_or_system(&self) -> Arc<dyn Clock>;
    /// The HTTP limits set, or `default`, with the timeout laid over them.
    fn http_options_or(&self, default: HttpOptions) -> HttpOptions;
    /// The HTTP client set, or one built by [`build_client`](crate::build_client) with `options`.
    ///
    /// # Errors
    ///
    /// As [`build_client`](crate::build_client).
    fn client_or_build(&self, options: &HttpOptions) -> Result<reqwest::Client>;
    /// The authority host set, or `default`.
    fn authority_host_or<'a>(&'a self, default: &'a str) -> &'a str;
    /// Refuses an authority host for a client that does not talk to Entra (`client` names it in
    /// the error), so that a setting cannot be silently ignored.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](botauth_core::Error::Config) naming `authority_host` when one was set.
    fn refuse_authority_host(&self, client: &str) -> Result<()>;
    /// What a client that requests no token of its own builds with (the Connector, the Token
    /// Service client): refuses an authority host naming `client`, then returns the limits (the
    /// ones set, or `defaults`) and the HTTP client (the one given, or one built for them).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](botauth_core::Error::Config) naming `authority_host` when one was set; as [`build_client`](crate::build_client).
    fn http_for(
        &self,
        client: &str,
        defaults: HttpOptions,
    ) -> Result<(HttpOptions, reqwest::Client)>;
    /// The HTTP client given, if any (then botauth builds none).
    fn given_http_client(&self) -> Option<&reqwest::Client>;
}
