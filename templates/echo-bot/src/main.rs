//! `echo-bot`: reads its configuration from the environment (any dialect botauth reads) and
//! serves `POST /api/messages` on `$BIND_ADDRESS:$PORT` (default `0.0.0.0:3978`), closing
//! connections that do not send their request headers within `$HEADER_READ_TIMEOUT_SECS`
//! (default 10) and keeping at most `$MAX_CONNECTIONS` (default 256) open at once. Before it
//! listens it gets its token and the signing keys once (`$STARTUP_CHECK`, default on) and exits 1
//! with the reason when it cannot. Ctrl-C or SIGTERM stops it gracefully.
#![allow(clippy::print_stderr)]

use std::process::ExitCode;

use botauth::{BotAuthConfig, CredentialBuilder};
use botauth_echo_bot::{EchoBot, ListenConfig, MESSAGES_PATH};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let listen = match ListenConfig::from_env() {
        Ok(listen) => listen,
        Err(error) => {
            eprintln!("echo-bot: {error}");
            return ExitCode::from(2);
        }
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
    match startup_check_enabled() {
        Err(message) => {
            eprintln!("echo-bot: {message}");
            return ExitCode::from(2);
        }
        Ok(false) => tracing::warn!(
            "STARTUP_CHECK is off: credentials and keys are first used by the first activity"
        ),
        Ok(true) => {
            if let Err(error) = bot.check().await {
                eprintln!(
                    "echo-bot: start-up check failed: {}",
                    botauth::Report::new(&error)
                );
                return ExitCode::from(1);
            }
        }
    }
    let addr = listen.addr();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(error) => {
            eprintln!("echo-bot: cannot listen on {addr}: {error}");
            return ExitCode::from(1);
        }
    };
    // With PORT=0 the system picks the port: log the one actually bound.
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        credential = %bot.auth().tokens().credential(),
        header_read_timeout = ?listen.options().header_read_timeout(),
        max_connections = listen.options().max_connections(),
        "echo bot listening on http://{bound}{MESSAGES_PATH}"
    );
    match botauth_echo_bot::serve(listener, bot.router(), listen.options(), shutdown_signal()).await
    {
        Ok(()) => {
            tracing::info!("echo bot stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("echo-bot: server error: {error}");
            ExitCode::from(1)
        }
    }
}

/// `STARTUP_CHECK` (default on): whether to get the token and fetch the signing keys before
/// listening ([`EchoBot::check`]).
fn startup_check_enabled() -> Result<bool, String> {
    match std::env::var("STARTUP_CHECK") {
        Err(_) => Ok(true),
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "" | "1" | "true" | "on" | "yes" => Ok(true),
            "0" | "false" | "off" | "no" => Ok(false),
            _ => Err(format!(
                "STARTUP_CHECK must be true or false, not {:?}",
                value.chars().take(16).collect::<String>()
            )),
        },
    }
}

/// Completes on Ctrl-C, or on SIGTERM: what App Service, containers and systemd send to stop
/// a process before they kill it.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; finishing open requests"),
        () = terminate => tracing::info!("SIGTERM received; finishing open requests"),
    }
}
