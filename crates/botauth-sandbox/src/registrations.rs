//! A registration file: the apps, credentials and managed identities a sandbox knows, for
//! `botauth sandbox --registrations FILE` (format in docs/sandbox.md).

use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{AppRegistration, FederatedCredential, ManagedIdentity, Sandbox};

/// What a registration file declares; [`Sandbox::register`] applies it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let file = dir.path().join("sandbox.toml");
/// std::fs::write(&file, r#"
///     [[app]]
///     client_id = "6b1c7e6e-0000-4000-8000-00000000a001"
///     tenant_id = "contoso.example"
///     secrets = ["test-only~secret"]
///     federated = [{ issuer = "https://token.actions.githubusercontent.com",
///                    subject = "repo:contoso/bot:ref:refs/heads/main",
///                    audience = "api://AzureADTokenExchange" }]
///
///     [[managed_identity]]
///     client_id = "6b1c7e6e-0000-4000-8000-00000000b001"
///     object_id = "6b1c7e6e-0000-4000-8000-00000000c001"
/// "#)?;
/// let registrations = botauth_sandbox::Registrations::from_file(&file)?;
/// let sandbox = botauth_sandbox::Sandbox::start().await?;
/// sandbox.register(&registrations);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Registrations {
    apps: Vec<AppRegistration>,
    user_assigned: Vec<ManagedIdentity>,
    system_assigned: Option<ManagedIdentity>,
    resources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    app: Vec<AppEntry>,
    #[serde(default)]
    managed_identity: Vec<IdentityEntry>,
    #[serde(default)]
    resources: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEntry {
    client_id: String,
    tenant_id: String,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    certificates: Vec<PathBuf>,
    #[serde(default)]
    federated: Vec<FederatedEntry>,
    #[serde(default)]
    trusted_subjects: Vec<TrustedSubjectEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FederatedEntry {
    issuer: String,
    subject: String,
    #[serde(default = "exchange_audience")]
    audience: String,
}

fn exchange_audience() -> String {
    "api://AzureADTokenExchange".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedSubjectEntry {
    subject: String,
    issuer_certificate: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityEntry {
    client_id: String,
    object_id: String,
    #[serde(default)]
    resource_id: String,
    #[serde(default)]
    system_assigned: bool,
}

impl Registrations {
    /// Reads a registration file. Certificate paths in it are relative to the file's directory.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidData`] naming the file and the line and column of a TOML error or
    /// an unknown key (never quoting the file's text, which holds secrets), or naming a
    /// certificate file that cannot be read or is not a certificate.
    pub fn from_file(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_toml(&text, base)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Reads registrations from TOML text; relative certificate paths are taken from `base`.
    ///
    /// # Errors
    ///
    /// As [`Registrations::from_file`].
    pub(crate) fn from_toml(text: &str, base: &Path) -> io::Result<Self> {
        let file: File = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map_or((0, 0), |span| line_and_column(text, span.start));
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {line}, column {column}: {}",
                    first_line(error.message())
                ),
            )
        })?;
        let mut registrations = Self {
            resources: file.resources,
            ..Self::default()
        };
        for entry in file.app {
            let mut app = AppRegistration::new(entry.client_id, entry.tenant_id);
            for secret in entry.secrets {
                app = app.with_secret(secret);
            }
            for certificate in entry.certificates {
                app = app.with_certificate_der(read_certificate(&base.join(certificate))?);
            }
            for federated in entry.federated {
                app = app.with_federated(FederatedCredential::new(
                    federated.issuer,
                    federated.subject,
                    federated.audience,
                ));
            }
            for trusted in entry.trusted_subjects {
                let ca = read_certificate(&base.join(trusted.issuer_certificate))?;
                app = app.with_trusted_subject(trusted.subject, ca);
            }
            registrations.apps.push(app);
        }
        for entry in file.managed_identity {
            let identity =
                ManagedIdentity::new(entry.client_id, entry.object_id, entry.resource_id);
            if entry.system_assigned {
                registrations.system_assigned = Some(identity);
            } else {
                registrations.user_assigned.push(identity);
            }
        }
        Ok(registrations)
    }

    /// The app registrations, in file order.
    #[cfg(test)]
    fn apps(&self) -> &[AppRegistration] {
        &self.apps
    }
}

impl Sandbox {
    /// Registers everything `registrations` declares: its apps (replacing apps with the same
    /// client id), its managed identities (a system-assigned one replaces the host's) and its
    /// extra resources.
    pub fn register(&self, registrations: &Registrations) {
        for app in &registrations.apps {
            self.register_app(app.clone());
        }
        for identity in &registrations.user_assigned {
            self.add_user_assigned_identity(identity.clone());
        }
        if let Some(identity) = &registrations.system_assigned {
            self.set_system_identity(Some(identity.clone()));
        }
        for resource in &registrations.resources {
            self.accept_resource(resource.clone());
        }
    }
}

/// The DER of the first certificate in a PEM file (other blocks, such as a private key, are
/// skipped), or of a DER file.
///
/// # Errors
///
/// The read error, or [`io::ErrorKind::InvalidData`] naming the file when it holds no
/// certificate.
pub fn read_certificate(path: &Path) -> io::Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let not_a_certificate = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not an X.509 certificate (PEM with a CERTIFICATE block, or DER)",
                path.display()
            ),
        )
    };
    let certificate = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        openssl::x509::X509::stack_from_pem(&bytes)
            .ok()
            .and_then(|certs| certs.into_iter().next())
    } else {
        openssl::x509::X509::from_der(&bytes).ok()
    };
    certificate
        .and_then(|cert| cert.to_der().ok())
        .ok_or_else(not_a_certificate)
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// toml's messages name the problem on their first line (later lines may quote the input).
fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_give_line_and_column_and_never_the_text() {
        let text = "[[app]]\nclient_id = \"a\"\ntenant_id = \"t\"\nsecrets = [\"hunter2-secret\"]\nsecret = \"hunter2-secret\"\n";
        let error = Registrations::from_toml(text, Path::new(".")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        let message = error.to_string();
        assert!(
            message.starts_with("line 5, column 1: unknown field `secret`"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
        let error =
            Registrations::from_toml("[[app]]\nclient_id = \"a\"\n", Path::new(".")).unwrap_err();
        assert!(
            error.to_string().contains("missing field `tenant_id`"),
            "{error}"
        );
        let error = Registrations::from_toml("[[app]\n", Path::new(".")).unwrap_err();
        assert!(error.to_string().starts_with("line 1, column"), "{error}");
    }

    #[test]
    fn certificates_are_read_as_pem_or_der_and_refused_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let generated =
            crate::certificate::GeneratedCertificate::generate("registration test").unwrap();
        // A combined PEM: the key first, then the certificate.
        let mut combined = generated.private_key_pem().to_vec();
        combined.extend_from_slice(generated.certificate_pem());
        std::fs::write(dir.path().join("combined.pem"), &combined).unwrap();
        std::fs::write(dir.path().join("bot.der"), generated.der()).unwrap();
        std::fs::write(dir.path().join("key.pem"), generated.private_key_pem()).unwrap();
        for name in ["combined.pem", "bot.der"] {
            assert_eq!(
                read_certificate(&dir.path().join(name)).unwrap(),
                generated.der()
            );
        }
        let error = read_certificate(&dir.path().join("key.pem")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error
                .to_string()
                .contains("key.pem is not an X.509 certificate"),
            "{error}"
        );
        let error = read_certificate(&dir.path().join("missing.pem")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);

        let text = "[[app]]\nclient_id = \"a\"\ntenant_id = \"t\"\ncertificates = [\"bot.der\"]\n";
        let registrations = Registrations::from_toml(text, dir.path()).unwrap();
        assert_eq!(
            registrations.apps()[0].certificates,
            [generated.der().to_vec()]
        );
        let text = "[[app]]\nclient_id = \"a\"\ntenant_id = \"t\"\ncertificates = [\"key.pem\"]\n";
        let error = Registrations::from_toml(text, dir.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("key.pem is not an X.509 certificate"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_registered_file_works_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sandbox.toml");
        std::fs::write(
            &file,
            "resources = [\"api://contoso-api\"]\n\
             [[app]]\nclient_id = \"a1\"\ntenant_id = \"contoso.example\"\nsecrets = [\"s1\", \"s2\"]\n\
             [[managed_identity]]\nclient_id = \"mi-client\"\nobject_id = \"mi-object\"\n",
        )
        .unwrap();
        let registrations = Registrations::from_file(&file).unwrap();
        let sandbox = Sandbox::start().await.unwrap();
        sandbox.register(&registrations);
        for secret in ["s1", "s2"] {
            let reply = crate::testkit::post_form(
                &sandbox.token_endpoint("contoso.example"),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", "a1"),
                    ("client_secret", secret),
                    ("scope", "api://contoso-api/.default"),
                ],
                &[],
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
        let url = format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://api.botframework.com&client_id=mi-client",
            sandbox.imds_host()
        );
        let reply = reqwest::Client::new()
            .get(url)
            .header("Metadata", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let error = Registrations::from_file(&dir.path().join("nope.toml")).unwrap_err();
        assert!(error.to_string().contains("nope.toml"), "{error}");
    }
}
