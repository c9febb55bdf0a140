//! `botauth token`.

use std::path::PathBuf;
use std::process::ExitCode;

use botauth::{
    AccessToken, BotAuthConfig, CredentialInfo, TokenManager, TokenRequest, build_credential,
};
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// Read configuration from this file (botauth TOML/JSON, or a .NET appsettings.json) instead
    /// of the environment.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The scope to request (default: the Bot Connector scope of the configured cloud).
    #[arg(long, value_name = "SCOPE")]
    scope: Option<String>,
}

pub(crate) async fn run(args: TokenArgs) -> ExitCode {
    match acquire(args).await {
        Ok((info, scope, token)) => crate::print_json(&Printed {
            credential: &info.kind,
            client_id: info.client_id.as_deref(),
            tenant_id: info.tenant_id.as_deref(),
            scope: &scope,
            token_type: &token.token_type,
            expires_on: token.expires_on_unix(),
            refresh_on: token.refresh_on_unix(),
            access_token: token.token.expose_secret(),
        }),
        Err(Failure::SetUp(e)) => crate::fail_setup(&e),
        Err(Failure::Token(e)) => crate::fail(&e),
    }
}

/// Where `botauth token` failed: exit 2 when the configuration does not give a usable
/// credential (a missing key, a certificate file that is not there, a PFX password that does not
/// open it: fixed by changing the configuration), exit 1 when the token request failed.
enum Failure {
    SetUp(botauth::Error),
    Token(botauth::Error),
}

/// What `botauth token` prints, members in the documented order. No `Debug`: it holds the token.
#[derive(Serialize)]
struct Printed<'a> {
    credential: &'a str,
    client_id: Option<&'a str>,
    tenant_id: Option<&'a str>,
    scope: &'a str,
    token_type: &'a str,
    expires_on: u64,
    refresh_on: Option<u64>,
    access_token: &'a str,
}

async fn acquire(args: TokenArgs) -> Result<(CredentialInfo, String, AccessToken), Failure> {
    let config = match &args.config {
        Some(path) => BotAuthConfig::from_file(path),
        None => BotAuthConfig::from_env(),
    }
    .map_err(Failure::SetUp)?;
    let scope = args
        .scope
        .unwrap_or_else(|| config.cloud.bot_connector_scope().to_owned());
    let provider = build_credential(&config).map_err(Failure::SetUp)?;
    let info = provider.describe();
    let tokens = TokenManager::new(provider);
    let token = tokens
        .get_token(&TokenRequest::new(scope.clone()))
        .await
        .map_err(Failure::Token)?;
    Ok((info, scope, token))
}
