//! The `botauth` command. See the crate README.
#![allow(clippy::print_stdout)]

mod demo;
mod sandbox;
mod thumbprint;
mod token;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Authentication for Microsoft Bot Framework / Teams bots.
#[derive(Debug, Parser)]
#[command(name = "botauth", version, about)]
struct Cli {
    /// Log detail on stderr (also settable with RUST_LOG, e.g. RUST_LOG=botauth_token=debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Acquire a token with the configured credential and print it as JSON.
    Token(token::TokenArgs),
    /// Run the local sandbox (Entra ID and Bot Service stand-in) on 127.0.0.1.
    Sandbox(sandbox::SandboxArgs),
    /// Show the outbound flow end to end against an in-process sandbox.
    Demo(demo::DemoArgs),
    /// Print a certificate's thumbprints (SHA-1, x5t, x5t#S256), subject and expiry as JSON.
    Thumbprint(thumbprint::ThumbprintArgs),
    /// Validate an inbound Bot Service token: exit 0 valid, 1 rejected, 2 usage, 3 keys unavailable.
    Validate(validate::ValidateArgs),
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // The command prints its own one-line error; library logs are opt-in.
    let default = match verbose {
        0 => "off",
        1 => "info,botauth_token=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// One line: the error and its causes.
pub(crate) fn error_line(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line.replace(['\r', '\n'], " ")
}

/// Exit codes: 1 when the operation failed, 2 for usage and configuration errors.
pub(crate) fn fail(error: &botauth::Error) -> ExitCode {
    eprintln!("botauth: error: {}", error_line(error));
    if error.is_config() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("botauth: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Token(args) => token::run(args).await,
            Command::Sandbox(args) => sandbox::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Thumbprint(args) => thumbprint::run(args),
            Command::Validate(args) => validate::run(args).await,
        }
    })
}
