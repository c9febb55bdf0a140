//! `botauth thumbprint`: what to register on the app, and what Entra will look up.

use std::path::PathBuf;
use std::process::ExitCode;

use botauth::Secret;
use botauth::certificate::{CertificateSummary, rfc3339};
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct ThumbprintArgs {
    /// A PEM certificate (a key in the file is ignored) or a PFX/PKCS#12 file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The environment variable holding the PFX password (never on the command line, where other
    /// users of the machine can read it).
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

pub(crate) fn run(args: ThumbprintArgs) -> ExitCode {
    let password = match &args.password_env {
        Some(var) => match std::env::var(var) {
            Ok(p) => Some(Secret::new(p)),
            Err(_) => {
                return crate::fail(&botauth::Error::config(
                    "--password-env",
                    format!("the environment variable {var} is not set (or not UTF-8)"),
                ));
            }
        },
        None => None,
    };
    match CertificateSummary::from_file(&args.file, password.as_ref()) {
        Ok(summary) => {
            println!("{}", to_json(&summary));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("botauth: error: {}", crate::error_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The fields in the order the issue documents them (serde_json would sort them).
fn to_json(s: &CertificateSummary) -> String {
    let field = |v: Option<String>| match v {
        Some(v) => serde_json::Value::String(v).to_string(),
        None => "null".to_owned(),
    };
    format!(
        r#"{{"sha1": {}, "x5t": {}, "x5t#S256": {}, "subject": {}, "not_after": {}}}"#,
        field(Some(s.thumbprints.sha1_hex())),
        field(Some(s.thumbprints.x5t())),
        field(s.thumbprints.x5t_s256()),
        field(Some(s.subject.clone())),
        field(s.not_after.map(rfc3339)),
    )
}
