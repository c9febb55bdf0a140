//! The `botauth` command. See the crate README.
#![allow(clippy::print_stdout)]

mod config_cmd;
mod dangerous;
mod decode;
mod demo;
mod demo_sso;
mod sandbox;
mod thumbprint;
mod token;
mod validate;
mod waiting;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};

/// The command line (its `about` is the package description, which lists the subcommands).
#[derive(Debug, Parser)]
#[command(name = "botauth", version, about)]
struct Cli {
    /// More log detail on stderr: -v info, -vv debug (default: warnings; RUST_LOG, e.g.
    /// RUST_LOG=botauth_token=debug, chooses precisely).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Acquire a token with the configured credential and print it as JSON (with --service-url,
    /// the connection the ConnectionsMap picks for that URL, and its token).
    Token(token::TokenArgs),
    /// Print the resolved configuration as JSON (secrets redacted), with where each value came
    /// from and the keys that were not used; `--keys` lists every key botauth reads.
    Config(config_cmd::ConfigArgs),
    /// Run the local sandbox (Entra ID and Bot Service stand-in) on 127.0.0.1.
    Sandbox(sandbox::SandboxArgs),
    /// Show the outbound flow end to end against an in-process sandbox.
    Demo(demo::DemoArgs),
    /// Print a certificate's thumbprints (SHA-1, x5t, x5t#S256), subject and expiry as JSON.
    Thumbprint(thumbprint::ThumbprintArgs),
    /// Validate an inbound Bot Service token: exit 0 valid, 1 rejected, 2 usage, 3 keys unavailable.
    Validate(validate::ValidateArgs),
    /// Show a token's header, claims, times and issuer as JSON, UNVERIFIED: exit 0 decoded, 1
    /// malformed, 2 usage.
    Decode(decode::DecodeArgs),
}

impl Command {
    /// Commands that do one thing and end with one result: their outcome line says what failed.
    fn is_one_shot(&self) -> bool {
        match self {
            Command::Token(_)
            | Command::Config(_)
            | Command::Thumbprint(_)
            | Command::Validate(_)
            | Command::Decode(_) => true,
            Command::Sandbox(_) | Command::Demo(_) => false,
        }
    }
}

/// Log lines held back until the command's outcome is known.
#[derive(Debug, Clone, Default)]
struct HeldLog(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for HeldLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HeldLog {
    fn release(&self) {
        let held = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let _ = std::io::stderr().write_all(&held);
    }
}

/// Library logs at WARN by default, so that e.g. "the client certificate expires within 30 days"
/// is seen. A one-shot command that fails prints one line saying what to fix, and the warnings
/// that led there (a token request that failed, keys that could not be fetched) would only say it
/// again in another form; so by default its warnings are held and shown only when it succeeds.
/// `-v` or `RUST_LOG` shows everything as it happens.
fn init_tracing(verbose: u8, one_shot: bool) -> Option<HeldLog> {
    use tracing_subscriber::EnvFilter;
    let explicit = verbose > 0 || std::env::var_os("RUST_LOG").is_some();
    let default = match verbose {
        0 => "warn",
        1 => "info,botauth_token=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if one_shot && !explicit {
        let held = HeldLog::default();
        let writer = held.clone();
        let _ = builder
            .without_time()
            .with_writer(move || writer.clone())
            .try_init();
        Some(held)
    } else {
        let _ = builder.with_writer(std::io::stderr).try_init();
        None
    }
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

/// Prints a command's result: one JSON object on stdout, pretty-printed with two-space indentation,
/// its members in the order the README documents (see "JSON output" there).
pub(crate) fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match to_json(value, true) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("botauth: error: cannot print the result as JSON: {e}");
            ExitCode::from(1)
        }
    }
}

/// JSON text that is safe to show on a terminal: on top of JSON's own escapes (which cover C0
/// controls such as ESC), the C1 controls, DEL and the bidirectional-text controls are written as
/// `\uXXXX`. `decode` prints what an untrusted token says; a claim must not be able to move the
/// cursor, recolour the screen, or reorder what the reader sees (Trojan Source). Parsers read the
/// same strings either way.
pub(crate) fn to_json(value: &impl serde::Serialize, pretty: bool) -> serde_json::Result<String> {
    let mut out = Vec::new();
    if pretty {
        let formatter = TerminalSafe(serde_json::ser::PrettyFormatter::new());
        value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, formatter,
        ))?;
    } else {
        let formatter = TerminalSafe(serde_json::ser::CompactFormatter);
        value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, formatter,
        ))?;
    }
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{7f}'..='\u{9f}'
        | '\u{061c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// A `serde_json` formatter that escapes what [`to_json`] describes, and otherwise is `F`.
struct TerminalSafe<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafe<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(needs_escape) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A failure to set up from the configuration (reading it, loading the credential it names):
/// always exit 2, since the fix is a change of configuration.
pub(crate) fn fail_setup(error: &botauth::Error) -> ExitCode {
    eprintln!("botauth: error: {}", error_line(error));
    ExitCode::from(2)
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
    let held = init_tracing(cli.verbose, cli.command.is_one_shot());
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
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Token(args) => token::run(args).await,
            Command::Config(args) => config_cmd::run(args),
            Command::Sandbox(args) => sandbox::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Thumbprint(args) => thumbprint::run(args),
            Command::Validate(args) => validate::run(args).await,
            Command::Decode(args) => decode::run(args),
        }
    });
    if let Some(held) = held {
        if code == ExitCode::SUCCESS {
            held.release();
        }
    }
    code
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_for_a_terminal_escapes_controls_and_bidi() {
        let value = serde_json::json!({
            "a\u{202e}b": ["\u{1b}[31mred", "x\u{9b}2Jy", "\u{2066}é\u{2069}", "ok €"],
        });
        let text = super::to_json(&value, false).unwrap();
        assert_eq!(
            text,
            r#"{"a\u202eb":["\u001b[31mred","x\u009b2Jy","\u2066é\u2069","ok €"]}"#
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
        let pretty = super::to_json(&value, true).unwrap();
        assert!(
            pretty.starts_with("{\n  \"a\\u202eb\": [\n    \""),
            "{pretty}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
            value
        );
    }
}
