//! The echo bot with botauth's metrics on `/metrics`, in the Prometheus text format (feature
//! `metrics`; the names and labels are in docs/observability.md).
//!
//! Runs on its own: an embedded sandbox plays Entra ID, Bot Service and the Bot Connector on
//! 127.0.0.1, sends the bot three channel messages, and the example prints what a Prometheus
//! scrape of the bot would read.
//!
//! ```sh
//! cargo run -p botauth-examples --example prometheus
//! ```
#![allow(clippy::print_stdout)]

use std::net::{Ipv4Addr, SocketAddr};

use axum::routing::get;
use botauth::{BotAuthConfig, CredentialBuilder};
use botauth_echo_bot::{EchoBot, MESSAGES_PATH};
use botauth_sandbox::{DemoCredential, Sandbox};
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The recorder first: botauth registers its metric handles when a validator or a token
    // manager is built, with the recorder installed then.
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    // The bot, configured as a deployment would be, against the embedded sandbox.
    let sandbox = Sandbox::start().await?;
    let env = sandbox.demo_environment(DemoCredential::Secret)?;
    let config = BotAuthConfig::from_vars(env.bot_vars().iter().cloned())?;
    let app_id = config.client_id.clone().unwrap_or_default();
    let credentials = CredentialBuilder::new().env(env.bot_vars().iter().cloned().collect());
    let bot = EchoBot::from_config(config, &credentials)?;

    // Its messaging route, and `/metrics` beside it (outside the validator layer: a scraper
    // has no Bot Service token).
    let app = bot.router().route(
        "/metrics",
        get(move || std::future::ready(prometheus.render())),
    );
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Three channel messages, as Bot Service would send them.
    let url = format!("http://{addr}{MESSAGES_PATH}");
    for text in ["hello", "again", "and again"] {
        let activity = sandbox.channel_activity(&app_id, text);
        let token = sandbox.channel_token(&app_id, &activity);
        let delivery = sandbox
            .deliver_activity(&url, &activity, Some(&token))
            .await?;
        println!("{text:?}: the bot answered {}", delivery.status);
    }

    // What a scrape reads.
    let scraped = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    println!("\nGET /metrics\n");
    for line in scraped.lines().filter(|l| !l.starts_with('#')) {
        println!("{line}");
    }
    Ok(())
}
