//! `echo-bot`: reads its configuration from the environment (any dialect botauth reads) and
//! serves `POST /api/messages` on `0.0.0.0:$PORT` (default 3978).
#![allow(clippy::print_stderr)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use botauth::{BotAuthConfig, CredentialBuilder};
use botauth_echo_bot::{EchoBot, MESSAGES_PATH};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let port = match std::env::var("PORT") {
        Ok(p) => match p.trim().parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("echo-bot: PORT must be a port number, e.g. 3978");
                return ExitCode::from(2);
            }
        },
        Err(_) => 3978,
    };
    let bot = match BotAuthConfig::from_env()
        .map_err(botauth_echo_bot::SetupError::Outbound)
        .and_then(|config| EchoBot::from_config(config, &CredentialBuilder::new()))
    {
        Ok(bot) => bot,
        Err(error) => {
            eprintln!("echo-bot: {error}");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(error) => {
            eprintln!("echo-bot: cannot listen on {addr}: {error}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(
        credential = %bot.auth().tokens().credential(),
        "echo bot listening on http://{addr}{MESSAGES_PATH}"
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match axum::serve(listener, bot.router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("echo-bot: server error: {error}");
            ExitCode::from(1)
        }
    }
}
