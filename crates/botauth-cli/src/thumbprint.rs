//! `botauth thumbprint`: what to register on the app, and what Entra will look up.

use std::path::PathBuf;
use std::process::ExitCode;

use botauth::Secret;
use botauth::certificate::{CertificateErrorKind, CertificateSummary};
use botauth::core::internal::date::rfc3339;
use clap::Args;
use serde::Serialize;

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
        Ok(summary) => crate::print_json(&Printed::from(&summary)),
        // The library's advice ("configure its password") and OpenSSL's "mac verify failure" do
        // not say how to give this command a password.
        Err(e) if e.kind() == CertificateErrorKind::PasswordRequired => {
            eprintln!(
                "botauth: error: {} is protected by a password: put the password in an \
                 environment variable and pass --password-env VAR with its name (never the \
                 password itself: the command line is visible to other users)",
                args.file.display()
            );
            ExitCode::from(2)
        }
        // Every other failure is about the file or its password: fixed by the arguments.
        Err(e) => {
            eprintln!("botauth: error: {}", crate::error_line(&e));
            ExitCode::from(2)
        }
    }
}

/// What `botauth thumbprint` prints, members in the documented order.
#[derive(Debug, Serialize)]
struct Printed {
    sha1: String,
    x5t: String,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
    subject: String,
    not_after: Option<String>,
}

impl From<&CertificateSummary> for Printed {
    fn from(s: &CertificateSummary) -> Self {
        Printed {
            sha1: s.thumbprints.sha1_hex(),
            x5t: s.thumbprints.x5t(),
            x5t_s256: s.thumbprints.x5t_s256(),
            subject: s.subject.clone(),
            not_after: s.not_after.map(rfc3339),
        }
    }
}
