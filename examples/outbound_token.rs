//! Acquire Bot Connector tokens with whatever credential the environment configures, in any
//! dialect, and show the cache at work.
//!
//! Against the local sandbox (no Azure account needed):
//!
//! ```sh
//! cargo run -p botauth-cli -- sandbox --port 8765        # prints `export …` lines: run them
//! cargo run -p botauth-examples --example outbound_token
//! ```
#![allow(clippy::print_stdout)]

use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), botauth::Error> {
    let auth = botauth::BotAuth::from_env()?;
    println!(
        "configuration: {} dialect; credential: {}",
        auth.config().dialect,
        auth.tokens().credential()
    );
    for attempt in 1..=3 {
        let started = Instant::now();
        let (token, source) = auth
            .tokens()
            .get_token_with_source(auth.connector_request())
            .await?;
        println!(
            "call {attempt}: {source:?} in {:?}, expires at {} (unix), token {}",
            started.elapsed(),
            token.expires_on_unix(),
            token.token, // prints [redacted]
        );
    }
    Ok(())
}
