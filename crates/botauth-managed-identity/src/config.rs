//! From a configuration entry to a credential: the three identity-based credential types.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use botauth_core::config::EnvVars;
use botauth_core::{
    BotAuthConfig, ClientAssertionSource, CredentialConfig, CredentialProvider, Error, Result,
};
use botauth_http::ClientSettings;
use botauth_http::internal::ResolveSettings;
use botauth_token::{ClientAuth, ClientCredentialsClient};

use crate::{
    ManagedIdentityAssertion, ManagedIdentityCredential, ManagedIdentityCredentialBuilder,
    RetryOptions, WorkloadIdentityAssertion, default_http_options,
};

/// Builds the `managed_identity`, `federated_managed_identity` and `workload_identity` entries of a
/// [`BotAuthConfig`]. The environment used to detect the managed identity endpoint, the clock and
/// the limits can be injected (tests, or a host that passes its environment explicitly).
#[derive(Clone, Default)]
pub struct IdentityCredentials {
    env: Option<EnvVars>,
    settings: ClientSettings,
    retry: RetryOptions,
    arc_key_directory: Option<PathBuf>,
}

impl fmt::Debug for IdentityCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityCredentials")
            .field("env", &self.env)
            .field("settings", &self.settings)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl IdentityCredentials {
    /// Detection from the process environment, the system clock, default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Detects the managed identity endpoint from these variables.
    pub fn env(mut self, env: EnvVars) -> Self {
        self.env = Some(env);
        self
    }

    /// The shared settings ([`ClientSettings`]): the clock for expiry and retry waits, and the
    /// limits of the exchanges with the managed identity endpoint and with Entra (default:
    /// [`default_http_options`](crate::default_http_options)). The authority host is the
    /// configuration's cloud's, so one set here is refused when an entry is built.
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.settings = self.settings.merge(settings);
        self
    }

    /// Retry schedules of the managed identity endpoint.
    pub fn retry_options(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// Where Arc key files must be.
    pub fn arc_key_directory(mut self, directory: impl AsRef<Path>) -> Self {
        self.arc_key_directory = Some(directory.as_ref().to_owned());
        self
    }

    fn managed_identity(&self) -> ManagedIdentityCredentialBuilder {
        let mut b = ManagedIdentityCredential::builder()
            .settings(self.settings.clone())
            .retry_options(self.retry.clone());
        if let Some(env) = &self.env {
            b = b.env(env.clone());
        }
        if let Some(dir) = &self.arc_key_directory {
            b = b.arc_key_directory(dir);
        }
        b
    }

    /// The credential a `managed_identity`, `federated_managed_identity` or `workload_identity`
    /// entry of `config` describes: the one way configuration becomes these credentials.
    ///
    /// # Errors
    ///
    /// A configuration error when `entry` is of another type; the identity endpoint's detection
    /// errors; for the federated kinds, the client id or tenant missing.
    pub fn from_entry(
        &self,
        config: &BotAuthConfig,
        entry: &CredentialConfig,
    ) -> Result<Arc<dyn CredentialProvider>> {
        // A configured HTTP timeout (`BOTAUTH_HTTP_TIMEOUT`, `http_timeout`) applies to every
        // request of the entry: the identity endpoint's and Entra's.
        if let Some(timeout) = config.http_timeout {
            let mut this = self.clone();
            this.settings = this.settings.merge(ClientSettings::new().timeout(timeout));
            return this.build_entry(config, entry);
        }
        self.build_entry(config, entry)
    }

    fn build_entry(
        &self,
        config: &BotAuthConfig,
        entry: &CredentialConfig,
    ) -> Result<Arc<dyn CredentialProvider>> {
        Ok(match entry {
            CredentialConfig::ManagedIdentity { id } => {
                Arc::new(self.managed_identity().id(id.clone()).build()?)
            }
            CredentialConfig::FederatedManagedIdentity { id } => {
                let mi = self.managed_identity().id(id.clone()).build()?;
                let assertion = ManagedIdentityAssertion::with_clock(
                    mi,
                    config.cloud.federation_audience(),
                    self.settings.clock_or_system(),
                );
                self.client(config, Arc::new(assertion))?
            }
            CredentialConfig::WorkloadIdentity { token_file } => {
                if token_file.as_os_str().is_empty() {
                    return Err(Error::config(
                        "token_file",
                        "the federated token file path is empty",
                    ));
                }
                // A file that is not there cannot be loaded: fail now, so that an ordered list of
                // credentials moves on to the next one (Microsoft.Identity.Web semantics).
                if !token_file.is_file() {
                    return Err(Error::credential(format!(
                        "the federated token file {} does not exist: check the path, or that the \
                         workload identity webhook mounted the token",
                        token_file.display()
                    )));
                }
                self.client(config, Arc::new(WorkloadIdentityAssertion::new(token_file)))?
            }
            other => {
                return Err(other.not_an_entry_for(
                    "a managed identity, federated managed identity or workload identity credential",
                ));
            }
        })
    }

    /// The app's client-credentials client with `assertion`: the one implementation of that flow.
    fn client(
        &self,
        config: &BotAuthConfig,
        assertion: Arc<dyn ClientAssertionSource>,
    ) -> Result<Arc<dyn CredentialProvider>> {
        let client_id = config.require_client_id("client_id")?;
        let tenant_id = config.require_tenant_id("tenant_id")?;
        Ok(Arc::new(
            ClientCredentialsClient::builder(
                config.cloud.authority_host(),
                tenant_id,
                client_id,
                ClientAuth::Assertion(assertion),
            )
            .settings(
                ClientSettings::new()
                    .clock(self.settings.clock_or_system())
                    .http_options(self.settings.http_options_or(default_http_options())),
            )
            .build()?,
        ))
    }
}
