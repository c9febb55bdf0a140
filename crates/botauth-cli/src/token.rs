//! `botauth token`.

use std::path::PathBuf;
use std::process::ExitCode;

use botauth::{
    AccessToken, BotAuth, BotAuthConfig, ConnectorError, CredentialBuilder, CredentialInfo,
    TokenManager, TokenRequest,
};
use clap::Args;

use crate::waiting;
use serde::Serialize;

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// Read configuration from this file (botauth TOML/JSON, or a .NET appsettings.json) instead
    /// of the environment.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The scope to request (default: the Bot Connector scope of the configured cloud, or with
    /// --service-url the chosen connection's scopes).
    #[arg(long, value_name = "SCOPE")]
    scope: Option<String>,
    /// Pick the connection the Bot Connector client would use for a call to this service URL:
    /// the first ConnectionsMap rule that matches it (the top-level connection when there is no
    /// map), after the service-URL allow-list check. Prints `"connection": "<name>"` first, and
    /// that connection's token for its scopes (`{instance}` = the URL's scheme://host).
    #[arg(long, value_name = "URL")]
    service_url: Option<String>,
    /// With --service-url: the inbound token's audience (its `aud`, else `appid`) that
    /// ConnectionsMap rules with an Audience compare, case-insensitively.
    #[arg(long, value_name = "ID", requires = "service_url")]
    audience: Option<String>,
}

pub(crate) async fn run(args: TokenArgs) -> ExitCode {
    match acquire(args).await {
        Ok(Acquired {
            connection,
            info,
            scope,
            token,
        }) => crate::print_json(&Printed {
            connection: connection.as_deref(),
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
        Err(Failure::Route(e)) => {
            eprintln!("botauth: error: {}", crate::error_line(&e));
            ExitCode::from(2)
        }
    }
}

/// Where `botauth token` failed: exit 2 when the configuration does not give a usable
/// credential (a missing key, a certificate file that is not there, a PFX password that does not
/// open it: fixed by changing the configuration), exit 1 when the token request failed.
/// A service URL the allow-list refuses or no ConnectionsMap rule covers is exit 2 too: the fix
/// is the configuration (or the URL given).
enum Failure {
    SetUp(botauth::Error),
    Token(botauth::Error),
    Route(ConnectorError),
}

/// The token and where it came from.
struct Acquired {
    /// The connection chosen for `--service-url`.
    connection: Option<String>,
    info: CredentialInfo,
    scope: String,
    token: AccessToken,
}

/// What `botauth token` prints, members in the documented order. No `Debug`: it holds the token.
#[derive(Serialize)]
struct Printed<'a> {
    /// Only with `--service-url`: the output without it is unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<&'a str>,
    credential: &'a str,
    client_id: Option<&'a str>,
    tenant_id: Option<&'a str>,
    scope: &'a str,
    token_type: &'a str,
    expires_on: u64,
    refresh_on: Option<u64>,
    access_token: &'a str,
}

async fn acquire(args: TokenArgs) -> Result<Acquired, Failure> {
    let config = match &args.config {
        Some(path) => BotAuthConfig::from_file(path),
        None => BotAuthConfig::from_env(),
    }
    .map_err(Failure::SetUp)?;
    if let Some(service_url) = &args.service_url {
        return acquire_for(config, service_url, &args).await;
    }
    let scope = args
        .scope
        .unwrap_or_else(|| config.cloud.bot_connector_scope().to_owned());
    let provider = CredentialBuilder::new()
        .build(&config)
        .map_err(Failure::SetUp)?;
    let info = provider.describe();
    let tokens = TokenManager::new(provider);
    let timeout = config.http_timeout.unwrap_or(waiting::DEFAULT_HTTP_TIMEOUT);
    let request = TokenRequest::new(scope.clone());
    let token = waiting::announced(
        waiting::token_endpoint(&info),
        timeout,
        tokens.get_token(&request),
    )
    .await
    .map_err(Failure::Token)?;
    Ok(Acquired {
        connection: None,
        info,
        scope,
        token,
    })
}

/// `--service-url`: the connection and scopes the Bot Connector client would use, through the
/// client itself, so that what is printed is what a reply would send.
async fn acquire_for(
    config: BotAuthConfig,
    service_url: &str,
    args: &TokenArgs,
) -> Result<Acquired, Failure> {
    let timeout = config.http_timeout.unwrap_or(waiting::DEFAULT_HTTP_TIMEOUT);
    let bot = BotAuth::from_config(config).map_err(Failure::SetUp)?;
    let client = bot.connector().map_err(Failure::SetUp)?;
    let base = client
        .check_service_url(service_url)
        .map_err(Failure::Route)?;
    let connection = client
        .connection_for(service_url, args.audience.as_deref())
        .map_err(Failure::Route)?;
    let request = match &args.scope {
        Some(scope) => TokenRequest::new(scope.clone()),
        None => connection.token_request(&base),
    };
    let info = connection.tokens().credential().clone();
    let token = waiting::announced(
        waiting::token_endpoint(&info),
        timeout,
        connection.tokens().get_token(&request),
    )
    .await
    .map_err(Failure::Token)?;
    Ok(Acquired {
        connection: Some(connection.name().to_owned()),
        info,
        scope: request.scopes.join(" "),
        token,
    })
}
