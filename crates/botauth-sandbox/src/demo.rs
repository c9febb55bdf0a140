//! Ready-made bot deployments against the sandbox, one per kind of credential: the environment
//! variables a bot would be given, the files they point at, and the app registration they need.
//! `botauth demo`, `botauth sandbox` and the end-to-end tests share them.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::app::{AppRegistration, FederatedCredential};
use crate::certificate::GeneratedCertificate;
use crate::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_TENANT_ID,
    Sandbox,
};

/// The Kubernetes service account of [`DemoCredential::WorkloadIdentity`]: the `sub` of its
/// projected token, trusted by the demo app through a federated identity credential.
pub(crate) const DEMO_SERVICE_ACCOUNT: &str = "system:serviceaccount:bots:botauth-demo";

/// The federation audience of the public cloud (docs/protocol.md §4).
const EXCHANGE: &str = "api://AzureADTokenExchange";

/// How long the workload identity's projected token is valid: longer than any demo or test.
const PROJECTED_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// The kinds of credential a demo bot can use, each configured by environment variables alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoCredential {
    /// The demo app's client secret (botas dialect: `CLIENT_ID`, `CLIENT_SECRET`, `TENANT_ID`).
    Secret,
    /// A certificate made on the spot and registered on the demo app (Agents SDK dialect:
    /// `AuthType=Certificate`, `CertPemFile`, `CertKeyFile`).
    Certificate,
    /// The user-assigned managed identity [`DEMO_MI_CLIENT_ID`] *is* the bot (botas:
    /// `MANAGED_IDENTITY_CLIENT_ID` = `CLIENT_ID`); its tokens come from IMDS.
    ManagedIdentity,
    /// The demo app trusts the managed identity through a federated identity credential (botas:
    /// `MANAGED_IDENTITY_CLIENT_ID` ≠ `CLIENT_ID`).
    Federated,
    /// AKS workload identity: a projected service-account token file the demo app trusts
    /// (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`).
    WorkloadIdentity,
    /// A certificate in the sandbox's Key Vault (`botauth-demo-bot`), registered on
    /// the demo app and read with the user-assigned managed identity (Microsoft.Identity.Web
    /// dialect: `SourceType=KeyVault`, `KeyVaultUrl`, `KeyVaultCertificateName`,
    /// `ManagedIdentityClientId`).
    KeyVault,
}

/// The name of [`DemoCredential::KeyVault`]'s certificate in the sandbox's Key Vault.
pub(crate) const DEMO_KEY_VAULT_CERTIFICATE: &str = "botauth-demo-bot";

impl DemoCredential {
    /// Every kind, in the order above.
    pub const ALL: [DemoCredential; 6] = [
        DemoCredential::Secret,
        DemoCredential::Certificate,
        DemoCredential::ManagedIdentity,
        DemoCredential::Federated,
        DemoCredential::WorkloadIdentity,
        DemoCredential::KeyVault,
    ];

    /// The bot's app id: the demo app's client id, or the managed identity's client id when the
    /// managed identity is the bot.
    pub fn app_id(self) -> &'static str {
        match self {
            DemoCredential::ManagedIdentity => DEMO_MI_CLIENT_ID,
            _ => DEMO_CLIENT_ID,
        }
    }

    /// The name `botauth demo --credential` takes: `secret`, `certificate`, `managed-identity`,
    /// `federated`, `workload-identity`, `key-vault`.
    fn name(self) -> &'static str {
        match self {
            DemoCredential::Secret => "secret",
            DemoCredential::Certificate => "certificate",
            DemoCredential::ManagedIdentity => "managed-identity",
            DemoCredential::Federated => "federated",
            DemoCredential::WorkloadIdentity => "workload-identity",
            DemoCredential::KeyVault => "key-vault",
        }
    }
}

impl fmt::Display for DemoCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A bot deployment against a sandbox, made by [`Sandbox::demo_environment`]: its environment
/// variables and the files they name (removed when this is dropped).
pub struct DemoEnvironment {
    credential: DemoCredential,
    /// The credential's variables, then what a bot also needs (see [`DemoEnvironment::bot_vars`]).
    bot_vars: Vec<(String, String)>,
    /// How many of `bot_vars` are the credential's own.
    #[cfg(test)]
    own_vars: usize,
    thumbprint: Option<String>,
    dir: Option<PrivateDir>,
}

impl DemoEnvironment {
    /// The credential's variables, exactly as a deployment sets them (botas for
    /// [`Secret`](DemoCredential::Secret), [`ManagedIdentity`](DemoCredential::ManagedIdentity) and
    /// [`Federated`](DemoCredential::Federated), the Agents SDK for
    /// [`Certificate`](DemoCredential::Certificate), `AZURE_*` for
    /// [`WorkloadIdentity`](DemoCredential::WorkloadIdentity), Microsoft.Identity.Web for
    /// [`KeyVault`](DemoCredential::KeyVault)), followed by what a bot also needs to receive
    /// activities from this sandbox and reply to it: `BOTAUTH_METADATA_URL` (the sandbox's Bot
    /// Service keys) and `BOTAUTH_ALLOWED_SERVICE_URLS` (its Bot Connector), each unless already
    /// set. A real deployment gets those two from the cloud defaults.
    pub fn bot_vars(&self) -> &[(String, String)] {
        &self.bot_vars
    }

    /// The credential's own variables: the first part of [`bot_vars`](Self::bot_vars).
    #[cfg(test)]
    fn vars(&self) -> &[(String, String)] {
        &self.bot_vars[..self.own_vars]
    }

    /// The SHA-1 thumbprint (40 upper-case hex digits) of the registered certificate, for
    /// [`DemoCredential::Certificate`] and [`DemoCredential::KeyVault`].
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.thumbprint.as_deref()
    }

    /// The private directory holding the certificate or the projected token file, if any.
    fn directory(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.0.as_path())
    }
}

impl fmt::Debug for DemoEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: the values include the client secret.
        let names: Vec<&str> = self.bot_vars.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("DemoEnvironment")
            .field("credential", &self.credential)
            .field("vars", &names)
            .field("thumbprint", &self.thumbprint)
            .field("directory", &self.directory())
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Sets up a bot deployment using `credential` against this sandbox: registers on the demo app
    /// what the credential needs (a certificate, a federated identity credential for the managed
    /// identity or the service account; added to the app's existing credentials, so environments
    /// of several kinds work side by side), writes the certificate and key or the projected token
    /// into a fresh private (0700) directory, and returns the variables that point a bot at them.
    ///
    /// # Errors
    ///
    /// The I/O error of generating the certificate or writing the files.
    pub fn demo_environment(&self, credential: DemoCredential) -> io::Result<DemoEnvironment> {
        let str_vars = |vars: Vec<(&str, String)>| -> Vec<(String, String)> {
            vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
        };
        let mut thumbprint = None;
        let mut dir = None;
        let vars = match credential {
            DemoCredential::Secret => {
                self.update_demo_app(|app| app);
                str_vars(vec![
                    ("BOTAUTH_AUTHORITY_HOST", self.url()),
                    ("BOTAUTH_METADATA_URL", self.bot_service_metadata_url()),
                    ("CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
                    ("CLIENT_SECRET", DEMO_CLIENT_SECRET.to_owned()),
                    ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
                ])
            }
            DemoCredential::Certificate => {
                // Made now rather than compiled in, so no key is checked in anywhere.
                let generated = GeneratedCertificate::generate("botauth demo bot")?;
                let private = PrivateDir::create()?;
                let cert_path = private.0.join("bot.pem");
                let key_path = private.0.join("bot.key");
                std::fs::write(&cert_path, generated.certificate_pem())?;
                std::fs::write(&key_path, generated.private_key_pem())?;
                let der = generated.der().to_vec();
                thumbprint = Some(hex_upper(&openssl::sha::sha1(&der)));
                self.update_demo_app(|app| app.with_certificate_der(der));
                dir = Some(private);
                let key = |k: &str| format!("Connections__ServiceConnection__Settings__{k}");
                vec![
                    (key("AuthType"), "Certificate".to_owned()),
                    (key("ClientId"), DEMO_CLIENT_ID.to_owned()),
                    (key("TenantId"), DEMO_TENANT_ID.to_owned()),
                    (key("CertPemFile"), cert_path.display().to_string()),
                    (key("CertKeyFile"), key_path.display().to_string()),
                    ("BOTAUTH_AUTHORITY_HOST".to_owned(), self.url()),
                ]
            }
            DemoCredential::ManagedIdentity => str_vars(vec![
                ("CLIENT_ID", DEMO_MI_CLIENT_ID.to_owned()),
                ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
                ("MANAGED_IDENTITY_CLIENT_ID", DEMO_MI_CLIENT_ID.to_owned()),
                ("AZURE_POD_IDENTITY_AUTHORITY_HOST", self.imds_host()),
            ]),
            DemoCredential::Federated => {
                self.trust_on_demo_app(DEMO_MI_OBJECT_ID);
                str_vars(vec![
                    ("CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
                    ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
                    ("MANAGED_IDENTITY_CLIENT_ID", DEMO_MI_CLIENT_ID.to_owned()),
                    ("BOTAUTH_AUTHORITY_HOST", self.url()),
                    ("AZURE_POD_IDENTITY_AUTHORITY_HOST", self.imds_host()),
                ])
            }
            DemoCredential::WorkloadIdentity => {
                self.trust_on_demo_app(DEMO_SERVICE_ACCOUNT);
                let private = PrivateDir::create()?;
                let file = private.0.join("azure-identity-token");
                let token = self.mint_managed_identity_token(
                    DEMO_SERVICE_ACCOUNT,
                    EXCHANGE,
                    PROJECTED_TOKEN_LIFETIME,
                );
                std::fs::write(&file, token)?;
                dir = Some(private);
                str_vars(vec![
                    ("AZURE_CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
                    ("AZURE_TENANT_ID", DEMO_TENANT_ID.to_owned()),
                    ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
                    ("AZURE_AUTHORITY_HOST", self.url()),
                ])
            }
            DemoCredential::KeyVault => {
                let version = self.create_key_vault_certificate(
                    DEMO_KEY_VAULT_CERTIFICATE,
                    crate::KeyVaultCertificateOptions::default(),
                );
                thumbprint = Some(version.sha1_thumbprint.clone());
                self.update_demo_app(|app| app.with_certificate_der(version.certificate_der));
                let key = |k: &str| format!("AzureAd__ClientCredentials__0__{k}");
                vec![
                    ("AzureAd__Instance".to_owned(), self.url()),
                    ("AzureAd__ClientId".to_owned(), DEMO_CLIENT_ID.to_owned()),
                    ("AzureAd__TenantId".to_owned(), DEMO_TENANT_ID.to_owned()),
                    (key("SourceType"), "KeyVault".to_owned()),
                    (key("KeyVaultUrl"), self.key_vault_url()),
                    (
                        key("KeyVaultCertificateName"),
                        DEMO_KEY_VAULT_CERTIFICATE.to_owned(),
                    ),
                    (key("ManagedIdentityClientId"), DEMO_MI_CLIENT_ID.to_owned()),
                    (
                        "AZURE_POD_IDENTITY_AUTHORITY_HOST".to_owned(),
                        self.imds_host(),
                    ),
                ]
            }
        };
        #[cfg(test)]
        let own_vars = vars.len();
        let mut bot_vars = vars;
        for (key, value) in [
            ("BOTAUTH_METADATA_URL", self.bot_service_metadata_url()),
            ("BOTAUTH_ALLOWED_SERVICE_URLS", self.connector_url()),
        ] {
            if !bot_vars.iter().any(|(k, _)| k == key) {
                bot_vars.push((key.to_owned(), value));
            }
        }
        Ok(DemoEnvironment {
            credential,
            bot_vars,
            #[cfg(test)]
            own_vars,
            thumbprint,
            dir,
        })
    }

    /// Registers `change(demo app)`: the demo app as registered now (with its secret, if the
    /// sandbox was started without it), with a credential added.
    fn update_demo_app(&self, change: impl FnOnce(AppRegistration) -> AppRegistration) {
        let mut inner = self.shared.lock();
        let app = inner
            .apps
            .get(&DEMO_CLIENT_ID.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| {
                AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID).with_secret(DEMO_CLIENT_SECRET)
            });
        inner.register_app(change(app));
    }

    /// Adds a federated identity credential for `subject` (issued by the sandbox's managed
    /// identity issuer, for the public cloud's exchange audience) to the demo app.
    fn trust_on_demo_app(&self, subject: &str) {
        let credential =
            FederatedCredential::new(self.managed_identity_issuer(), subject, EXCHANGE);
        self.update_demo_app(|app| {
            if app.federated.contains(&credential) {
                app
            } else {
                app.with_federated(credential)
            }
        });
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// A directory only its owner can enter, removed with its contents on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        // A name taken by someone else (another process, a stale run) is skipped, never reused:
        // `create` fails on an existing path, so nobody else's directory is trusted.
        let mut last = None;
        for _ in 0..16 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("botauth-demo-{}-{nanos}-{n}", std::process::id()));
            match create_private_dir(&dir) {
                Ok(()) => return Ok(PrivateDir(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary directory name")))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_cli() {
        let names: Vec<&str> = DemoCredential::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "secret",
                "certificate",
                "managed-identity",
                "federated",
                "workload-identity",
                "key-vault"
            ]
        );
        assert_eq!(DemoCredential::Federated.to_string(), "federated");
    }

    #[tokio::test]
    async fn each_environment_registers_what_it_needs_and_cleans_up() {
        let sandbox = Sandbox::start().await.unwrap();
        let certificate = sandbox
            .demo_environment(DemoCredential::Certificate)
            .unwrap();
        let workload = sandbox
            .demo_environment(DemoCredential::WorkloadIdentity)
            .unwrap();
        let federated = sandbox.demo_environment(DemoCredential::Federated).unwrap();
        let app = sandbox
            .shared
            .lock()
            .apps
            .get(&DEMO_CLIENT_ID.to_ascii_lowercase())
            .cloned()
            .unwrap();
        // Added side by side, the secret kept.
        assert_eq!(app.secrets, [DEMO_CLIENT_SECRET]);
        assert_eq!(app.certificates.len(), 1);
        let subjects: Vec<&str> = app.federated.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(subjects, [DEMO_SERVICE_ACCOUNT, DEMO_MI_OBJECT_ID]);
        // A second federated environment does not register the credential twice.
        drop(sandbox.demo_environment(DemoCredential::Federated).unwrap());
        assert_eq!(
            sandbox.shared.lock().apps[&DEMO_CLIENT_ID.to_ascii_lowercase()]
                .federated
                .len(),
            2
        );

        let thumbprint = certificate.certificate_thumbprint().unwrap();
        assert_eq!(
            thumbprint,
            hex_upper(&openssl::sha::sha1(&app.certificates[0]))
        );
        assert_eq!(thumbprint.len(), 40);
        assert_eq!(federated.certificate_thumbprint(), None);
        assert_eq!(federated.directory(), None);

        let cert_dir = certificate.directory().unwrap().to_owned();
        let token_dir = workload.directory().unwrap().to_owned();
        assert_ne!(cert_dir, token_dir);
        #[cfg(unix)]
        for dir in [&cert_dir, &token_dir] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
        }
        let var = |env: &DemoEnvironment, key: &str| {
            env.vars()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let token_file = var(&workload, "AZURE_FEDERATED_TOKEN_FILE");
        let projected = std::fs::read_to_string(&token_file).unwrap();
        assert_eq!(
            sandbox.verify_managed_identity_token(&projected).unwrap()["sub"],
            DEMO_SERVICE_ACCOUNT
        );
        let key_file = var(
            &certificate,
            "Connections__ServiceConnection__Settings__CertKeyFile",
        );
        assert!(
            std::fs::read_to_string(&key_file)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );

        let debug = format!("{certificate:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(debug.contains("CertKeyFile"), "{debug}");
        drop(certificate);
        drop(workload);
        assert!(!cert_dir.exists() && !token_dir.exists());
    }

    #[tokio::test]
    async fn secret_environment_and_bot_vars() {
        let sandbox = Sandbox::start().await.unwrap();
        let env = sandbox.demo_environment(DemoCredential::Secret).unwrap();
        let keys: Vec<&str> = env.vars().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "BOTAUTH_AUTHORITY_HOST",
                "BOTAUTH_METADATA_URL",
                "CLIENT_ID",
                "CLIENT_SECRET",
                "TENANT_ID"
            ]
        );
        // The metadata URL is already there; only the allow-list is added.
        assert_eq!(env.bot_vars().len(), 6);
        assert_eq!(
            env.bot_vars()[5],
            (
                "BOTAUTH_ALLOWED_SERVICE_URLS".to_owned(),
                sandbox.connector_url()
            )
        );
        let debug = format!("{env:?}");
        assert!(!debug.contains(DEMO_CLIENT_SECRET), "{debug}");

        let mi = sandbox
            .demo_environment(DemoCredential::ManagedIdentity)
            .unwrap();
        assert_eq!(mi.credential.app_id(), DEMO_MI_CLIENT_ID);
        let added: Vec<&str> = mi.bot_vars()[mi.vars().len()..]
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            added,
            ["BOTAUTH_METADATA_URL", "BOTAUTH_ALLOWED_SERVICE_URLS"]
        );
    }
}
