//! `sso-bot`: configuration from the environment, `POST /api/messages` on
//! `$BIND_ADDRESS:$PORT` (default `127.0.0.1:3978`).
#![allow(clippy::print_stderr)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use botauth::BotAuthConfig;
use botauth::usertoken::{ExchangeStore, RedisExchangeStore};
use botauth_sso_bot::{MESSAGES_PATH, SsoBot};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let connection = var("OAUTH_CONNECTION_NAME").unwrap_or_else(|| "graph".into());
    let port: u16 = match var("PORT").map(|p| p.parse()) {
        None => 3978,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("sso-bot: PORT must be a port number");
            return ExitCode::from(2);
        }
    };
    let ip: IpAddr = match var("BIND_ADDRESS").map(|a| a.parse()) {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(Ok(ip)) => ip,
        Some(Err(_)) => {
            eprintln!("sso-bot: BIND_ADDRESS must be an IP address");
            return ExitCode::from(2);
        }
    };
    let store: Option<Arc<dyn ExchangeStore>> = match var("REDIS_URL") {
        None => None,
        Some(url) => match RedisExchangeStore::connect(&url).await {
            Ok(store) => Some(Arc::new(store)),
            Err(error) => {
                eprintln!("sso-bot: REDIS_URL: {error}");
                return ExitCode::from(1);
            }
        },
    };
    let bot = match BotAuthConfig::from_env()
        .map_err(|e| e.to_string())
        .and_then(|config| SsoBot::from_config(config, &connection, store))
    {
        Ok(bot) => bot,
        Err(error) => {
            eprintln!("sso-bot: {error}");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::new(ip, port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(error) => {
            eprintln!("sso-bot: cannot listen on {addr}: {error}");
            return ExitCode::from(1);
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(connection = %connection, "sso bot listening on http://{bound}{MESSAGES_PATH}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, bot.router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sso-bot: server error: {error}");
            ExitCode::from(1)
        }
    }
}
