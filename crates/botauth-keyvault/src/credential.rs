//! [`KeyVaultCertificateCredential`]: the client-credentials grant with a client assertion signed
//! by a certificate kept in Azure Key Vault.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use botauth_core::config::{AssertionAlgorithm, CredentialConfig, EnvVars, ManagedIdentityId};
use botauth_core::internal::endpoint::check_key_vault_url;
use botauth_core::{
    AccessToken, BotAuthConfig, Cloud, CredentialInfo, CredentialProvider, Result, TokenRequest,
};
use botauth_http::internal::ResolveSettings;
use botauth_http::{ClientSettings, HttpOptions};
use botauth_managed_identity::ManagedIdentityCredential;
use botauth_token::{ClientAuth, ClientCredentialsClient, TokenManager};

use crate::error::KeyVaultError;
use crate::source::{KeyVaultCertificateSource, RotationOutcome, Settings};
use crate::vault::Vault;

/// How often the vault is checked for a newer version unless configured otherwise.
pub(crate) const DEFAULT_ROTATION_CHECK: Duration = Duration::from_secs(3600);

/// A certificate credential whose certificate lives in Azure Key Vault (docs/protocol.md §11).
///
/// Token requests go to Entra ID as for [`botauth_certificate::CertificateCredential`]; the
/// assertion is signed with the certificate read from the vault on first use (the newest enabled
/// version valid now, or the pinned one). Unless a version is pinned, the vault is then asked for
/// a newer version every check interval (jittered by ±10 %), in the background, one check at a
/// time, and at once when Entra rejects an assertion with a code a new certificate may cure
/// (AADSTS700027, 700024, 7000214, 1000502, 7000274, 7000277). A newer version is used only once
/// its validity has started. A vault that cannot be reached never costs the working certificate:
/// the failure is logged, the current one kept, and the check retried after 30 s, 1 min, 2 min, …
/// (at most the interval, at least what a 429 `Retry-After` asks).
#[derive(Debug)]
pub struct KeyVaultCertificateCredential {
    client: ClientCredentialsClient,
    source: KeyVaultCertificateSource,
}

/// Builds a [`KeyVaultCertificateCredential`].
#[derive(Debug)]
pub struct KeyVaultCertificateCredentialBuilder {
    tenant_id: String,
    client_id: String,
    vault_url: String,
    vault_url_key: String,
    certificate_name: String,
    version: Option<String>,
    identity: ManagedIdentityId,
    vault_credential: Option<Arc<dyn CredentialProvider>>,
    env: Option<EnvVars>,
    algorithm: AssertionAlgorithm,
    send_x5c: bool,
    rotation_check: Option<Duration>,
    cloud: Cloud,
    settings: ClientSettings,
}

impl KeyVaultCertificateCredentialBuilder {
    /// A pinned version: never switched by the schedule (default: the newest enabled version).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The managed identity that reads the vault (default: the system-assigned one).
    pub fn identity(mut self, id: ManagedIdentityId) -> Self {
        self.identity = id;
        self
    }

    /// Reads the vault with this credential instead of a managed identity (a workload identity,
    /// a developer's credential, a custom provider). Its tokens are requested for the vault's
    /// resource (`https://vault.azure.net/.default` in the public cloud) and cached.
    pub fn vault_credential(mut self, credential: Arc<dyn CredentialProvider>) -> Self {
        self.vault_credential = Some(credential);
        self
    }

    /// Detects the managed identity endpoint from these variables instead of the process
    /// environment (tests, the sandbox).
    pub fn env(mut self, env: EnvVars) -> Self {
        self.env = Some(env);
        self
    }

    /// RS256 + `x5t` (default) or PS256 + `x5t#S256`.
    pub fn algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Whether to send the chain in `x5c` (default: yes for Key Vault certificates).
    pub fn send_x5c(mut self, send: bool) -> Self {
        self.send_x5c = send;
        self
    }

    /// How often the vault is asked for a newer version (default one hour; jittered by ±10 %).
    /// `None` turns the schedule off (reloads after AADSTS certificate errors still happen).
    pub fn rotation_check(mut self, every: Option<Duration>) -> Self {
        self.rotation_check = every;
        self
    }

    /// The cloud: its authority host for tokens and its vault suffix and resource.
    pub fn cloud(mut self, cloud: &Cloud) -> Self {
        self.cloud = cloud.clone();
        self
    }

    /// The shared settings ([`ClientSettings`]): the HTTP client and limits for Entra and the
    /// vault, the clock for assertion times, validity and the rotation schedule (tests), and an
    /// authority host replacing the cloud's (the vault suffix stays the cloud's).
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.settings = self.settings.merge(settings);
        self
    }

    /// Checks the vault URL against the cloud and builds the credential. Nothing is fetched yet:
    /// the certificate is loaded by the first token request (or by
    /// [`KeyVaultCertificateCredential::load`]).
    pub fn build(self) -> Result<KeyVaultCertificateCredential> {
        let clock = self.settings.clock_or_system();
        let http_options = self.settings.http_options_or(HttpOptions::default());
        let vault_url = check_key_vault_url(&self.vault_url_key, &self.vault_url, &self.cloud)?;
        let vault_credential = match self.vault_credential {
            Some(c) => c,
            None => {
                let mut mi = ManagedIdentityCredential::builder()
                    .id(self.identity.clone())
                    .settings(ClientSettings::new().clock(clock.clone()));
                if let Some(env) = &self.env {
                    mi = mi.env(env.clone());
                }
                Arc::new(mi.build()?) as Arc<dyn CredentialProvider>
            }
        };
        let vault = Vault {
            base: vault_url.url,
            scope: TokenRequest::new(format!("{}/.default", vault_url.resource)),
            tokens: TokenManager::builder(vault_credential)
                .clock(clock.clone())
                .build(),
            http: self.settings.client_or_build(&http_options)?,
            options: http_options,
            clock: clock.clone(),
        };
        let settings = Settings {
            name: self.certificate_name,
            check_every: if self.version.is_some() {
                None
            } else {
                self.rotation_check
            },
            pinned: self.version,
            algorithm: self.algorithm,
            send_x5c: self.send_x5c,
        };
        let source = KeyVaultCertificateSource::new(vault, settings, clock);
        let client = ClientCredentialsClient::builder(
            self.cloud.authority_host(),
            self.tenant_id,
            self.client_id,
            ClientAuth::Assertion(Arc::new(source.clone())),
        )
        .settings(self.settings)
        .build()?;
        Ok(KeyVaultCertificateCredential { client, source })
    }
}

impl KeyVaultCertificateCredential {
    /// A builder for app `client_id` in `tenant_id`, signing with certificate `certificate_name`
    /// of the vault at `vault_url`, on the public cloud.
    pub fn builder(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        vault_url: impl Into<String>,
        certificate_name: impl Into<String>,
    ) -> KeyVaultCertificateCredentialBuilder {
        KeyVaultCertificateCredentialBuilder {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            vault_url: vault_url.into(),
            vault_url_key: "vault_url".into(),
            certificate_name: certificate_name.into(),
            version: None,
            identity: ManagedIdentityId::System,
            vault_credential: None,
            env: None,
            algorithm: AssertionAlgorithm::default(),
            send_x5c: true,
            rotation_check: Some(DEFAULT_ROTATION_CHECK),
            cloud: Cloud::Public,
            settings: ClientSettings::default(),
        }
    }

    /// The credential a `key_vault_certificate` entry of `config` describes, with `config`'s
    /// client id, tenant, cloud and HTTP timeout; the managed identity endpoint is detected from
    /// `env` (default: the process environment). The one way configuration becomes this
    /// credential.
    ///
    /// # Errors
    ///
    /// A configuration error when `entry` is of another type, the client id or tenant is missing,
    /// or the vault URL does not belong to the cloud.
    pub fn from_entry(
        config: &BotAuthConfig,
        entry: &CredentialConfig,
        env: Option<EnvVars>,
    ) -> Result<Self> {
        let CredentialConfig::KeyVaultCertificate(vault) = entry else {
            return Err(entry.not_an_entry_for("a Key Vault certificate credential"));
        };
        let client_id = config.require_client_id("client_id")?;
        let tenant_id = config.require_tenant_id("tenant_id")?;
        let mut builder = Self::builder(
            tenant_id,
            client_id,
            &vault.vault_url,
            &vault.certificate_name,
        )
        .identity(vault.identity.clone())
        .algorithm(vault.algorithm)
        .send_x5c(vault.send_x5c)
        .rotation_check(Some(vault.rotation_check.unwrap_or(DEFAULT_ROTATION_CHECK)))
        .cloud(&config.cloud);
        builder.vault_url_key = vault.keys.vault_url().to_owned();
        if let Some(v) = &vault.version {
            builder = builder.version(v);
        }
        if let Some(env) = env {
            builder = builder.env(env);
        }
        if let Some(timeout) = config.http_timeout {
            builder = builder.settings(ClientSettings::new().timeout(timeout));
        }
        builder.build()
    }

    /// Loads the certificate from the vault now (instead of at the first token request).
    pub async fn load(&self) -> std::result::Result<String, KeyVaultError> {
        self.source.load().await
    }

    /// Asks the vault for a newer certificate version now.
    pub async fn check_rotation(&self) -> std::result::Result<RotationOutcome, KeyVaultError> {
        self.source.check_now().await
    }

    /// The certificate version in use and its SHA-1 thumbprint (upper-case hex), once loaded.
    pub fn current(&self) -> Option<(String, String)> {
        self.source.current()
    }
}

#[async_trait]
impl CredentialProvider for KeyVaultCertificateCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        self.client.request_token(request).await
    }

    fn describe(&self) -> CredentialInfo {
        self.client.describe()
    }
}

/// A Key Vault certificate followed by the next credentials of a `ClientCredentials` list
/// (Microsoft.Identity.Web semantics): when the certificate cannot be loaded from the vault on
/// first use (not found, not exportable, expired, vault unreachable, …), the cause is logged and
/// the next credential is used from then on. Once the certificate has loaded, later vault
/// failures never switch credentials: the working certificate is kept.
#[derive(Debug)]
pub struct KeyVaultWithFallback {
    vault: KeyVaultCertificateCredential,
    next: std::result::Result<Arc<dyn CredentialProvider>, botauth_core::Error>,
    use_vault: tokio::sync::OnceCell<bool>,
}

impl KeyVaultCertificateCredential {
    /// Falls back to `next` (the rest of the list, or why it failed to build) when the
    /// certificate cannot be loaded from the vault on first use.
    pub fn with_fallback(
        self,
        next: std::result::Result<Arc<dyn CredentialProvider>, botauth_core::Error>,
    ) -> KeyVaultWithFallback {
        KeyVaultWithFallback {
            vault: self,
            next,
            use_vault: tokio::sync::OnceCell::new(),
        }
    }
}

impl KeyVaultWithFallback {
    async fn decide(&self) -> Result<bool> {
        let decided = self
            .use_vault
            .get_or_try_init(|| async {
                match self.vault.load().await {
                    Ok(_) => Ok(true),
                    Err(e) => match &self.next {
                        Ok(next) => {
                            tracing::warn!(
                                credential = "key_vault_certificate",
                                kind = %e.kind(),
                                error = %botauth_core::Report::new(&e),
                                next = %next.describe().kind,
                                "credential could not be loaded; trying the next one"
                            );
                            Ok(false)
                        }
                        Err(next_error) => {
                            tracing::warn!(
                                credential = "key_vault_certificate",
                                error = %botauth_core::Report::new(&e),
                                next_error = %botauth_core::Report::new(next_error),
                                "credential could not be loaded, nor could the next ones"
                            );
                            Err(botauth_core::Error::from(e))
                        }
                    },
                }
            })
            .await?;
        Ok(*decided)
    }
}

#[async_trait]
impl CredentialProvider for KeyVaultWithFallback {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        if self.decide().await? {
            return self.vault.get_token(request).await;
        }
        match &self.next {
            Ok(next) => next.get_token(request).await,
            Err(e) => Err(e.clone()),
        }
    }

    fn describe(&self) -> CredentialInfo {
        match (self.use_vault.get(), &self.next) {
            (Some(false), Ok(next)) => next.describe(),
            _ => self.vault.describe(),
        }
    }
}
