//! `botauth token`.

use std::path::PathBuf;
use std::process::ExitCode;

use botauth::{BotAuthConfig, TokenManager, TokenRequest, build_credential};
use clap::Args;

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
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e),
    }
}

async fn acquire(args: TokenArgs) -> botauth::Result<serde_json::Value> {
    let config = match &args.config {
        Some(path) => BotAuthConfig::from_file(path)?,
        None => BotAuthConfig::from_env()?,
    };
    let scope = args
        .scope
        .unwrap_or_else(|| config.cloud.bot_connector_scope().to_owned());
    let provider = build_credential(&config)?;
    let info = provider.describe();
    let tokens = TokenManager::new(provider);
    let token = tokens.get_token(&TokenRequest::new(scope.clone())).await?;
    Ok(serde_json::json!({
        "credential": info.kind,
        "client_id": info.client_id,
        "tenant_id": info.tenant_id,
        "scope": scope,
        "token_type": token.token_type,
        "expires_on": token.expires_on_unix(),
        "refresh_on": token.refresh_on_unix(),
        "access_token": token.token.expose_secret(),
    }))
}
