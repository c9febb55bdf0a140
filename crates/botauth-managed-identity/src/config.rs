//! From a configuration entry to a credential: the three identity-based credential types.

use std::sync::Arc;

use botauth_core::config::EnvVars;
use botauth_core::{
    BotAuthConfig, ClientAssertionSource, CredentialConfig, CredentialProvider, Error, Result,
};
use botauth_http::ClientSettings;
use botauth_http::internal::ResolveSettings;
use botauth_token::{ClientAuth, ClientCredentialsClient};

use crate::credential::default_http_options;
use crate::{
    ManagedIdentityAssertion, ManagedIdentityCredential, ManagedIdentityCredentialBuilder,
    WorkloadIdentityAssertion,
};

impl ManagedIdentityCredential {
    /// The credential a `managed_identity`, `federated_managed_identity` or `workload_identity`
    /// entry of `config` describes, with `config`'s client id, tenant, cloud and HTTP timeout;
    /// the managed identity endpoint is detected from `env` (default: the process environment).
    /// The one way configuration becomes these credentials (the federated kinds are the app's
    /// client-credentials client with the identity's assertion, hence the trait object).
    ///
    /// # Errors
    ///
    /// A configuration error when `entry` is of another type; the identity endpoint's detection
    /// errors; for the federated kinds, the client id or tenant missing.
    pub fn from_entry(
        config: &BotAuthConfig,
        entry: &CredentialConfig,
        env: Option<EnvVars>,
    ) -> Result<Arc<dyn CredentialProvider>> {
        let mut settings = ClientSettings::new();
        // A configured HTTP timeout (`BOTAUTH_HTTP_TIMEOUT`, `http_timeout`) applies to every
        // request of the entry: the identity endpoint's and Entra's.
        if let Some(timeout) = config.http_timeout {
            settings = settings.timeout(timeout);
        }
        EntryBuilder { env, settings }.build_entry(config, entry)
    }
}

/// What building an entry shares between the managed identity and the app's client.
struct EntryBuilder {
    env: Option<EnvVars>,
    settings: ClientSettings,
}

impl EntryBuilder {
    fn managed_identity(&self) -> ManagedIdentityCredentialBuilder {
        let mut b = ManagedIdentityCredential::builder().settings(self.settings.clone());
        if let Some(env) = &self.env {
            b = b.env(env.clone());
        }
        b
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
                let assertion = ManagedIdentityAssertion::for_cloud(mi, &config.cloud);
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
