//! [`CertificateCredential`]: the client-credentials grant with a certificate client assertion.

use std::sync::Arc;

use async_trait::async_trait;
use botauth_core::config::CertificateConfig;
use botauth_core::{
    AccessToken, BotAuthConfig, Clock, Cloud, CredentialConfig, CredentialInfo, CredentialProvider,
    Error, Result, TokenRequest,
};
use botauth_token::http::HttpOptions;
use botauth_token::{ClientAuth, ClientCredentialsClient, ClientCredentialsClientBuilder};

use crate::assertion::CertificateAssertion;
use crate::thumbprint::Thumbprints;

/// A certificate credential: the token crate's client-credentials client, authenticated by a
/// [`CertificateAssertion`].
#[derive(Debug)]
pub struct CertificateCredential {
    client: ClientCredentialsClient,
    assertion: Arc<CertificateAssertion>,
}

/// Builds a [`CertificateCredential`]: the client-credentials client's builder around an
/// assertion that has already loaded its certificate.
#[derive(Debug)]
pub struct CertificateCredentialBuilder {
    assertion: Arc<CertificateAssertion>,
    client: ClientCredentialsClientBuilder,
}

impl CertificateCredentialBuilder {
    /// Uses the authority host of `cloud` (default: public cloud).
    pub fn cloud(self, cloud: &Cloud) -> Self {
        self.authority_host(cloud.authority_host())
    }

    /// Uses this authority host (`https://…`, or `http://` on loopback for local development).
    pub fn authority_host(mut self, authority_host: impl Into<String>) -> Self {
        self.client = self.client.authority_host(authority_host);
        self
    }

    /// Uses this HTTP client (proxy, custom roots). It should not follow redirects.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = self.client.http_client(client);
        self
    }

    /// Timeouts and size limits.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.client = self.client.http_options(options);
        self
    }

    /// Uses this clock for token expiry times (tests). The assertion has its own clock
    /// ([`CertificateAssertionBuilder::clock`](crate::CertificateAssertionBuilder::clock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.client = self.client.clock(clock);
        self
    }

    /// Validates the tenant, client id and authority, and builds the credential.
    pub fn build(self) -> Result<CertificateCredential> {
        Ok(CertificateCredential {
            client: self.client.build()?,
            assertion: self.assertion,
        })
    }
}

impl CertificateCredential {
    /// A builder for app `client_id` in `tenant_id`, signing with `assertion`, on the public cloud.
    pub fn builder(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        assertion: CertificateAssertion,
    ) -> CertificateCredentialBuilder {
        let assertion = Arc::new(assertion);
        CertificateCredentialBuilder {
            client: ClientCredentialsClient::builder(
                Cloud::Public.authority_host(),
                tenant_id,
                client_id,
                ClientAuth::Assertion(assertion.clone()),
            ),
            assertion,
        }
    }

    /// The credential described by the first certificate entry of `config`.
    pub fn from_config(config: &BotAuthConfig) -> Result<Self> {
        let cert = config
            .credentials
            .iter()
            .find_map(|c| match c {
                CredentialConfig::Certificate(cert) => Some(cert),
                _ => None,
            })
            .ok_or_else(|| Error::config("credentials", "no certificate is configured"))?;
        Self::from_parts(config, cert)
    }

    /// The credential for `config`'s client id, tenant and cloud with the certificate `cert`.
    pub fn from_parts(config: &BotAuthConfig, cert: &CertificateConfig) -> Result<Self> {
        let client_id = config.require_client_id("client_id")?;
        let tenant_id = config.require_tenant_id("tenant_id")?;
        let assertion = CertificateAssertion::from_config(cert)?.build()?;
        Self::builder(tenant_id, client_id, assertion)
            .cloud(&config.cloud)
            .build()
    }

    /// The token endpoint this credential posts to (the assertions' `aud`).
    pub fn token_endpoint(&self) -> String {
        self.client.token_endpoint(None)
    }

    /// The thumbprints of the certificate in use (it changes when the files are rotated).
    pub fn thumbprints(&self) -> Thumbprints {
        self.assertion.thumbprints()
    }

    /// The assertion source.
    pub fn assertion(&self) -> &CertificateAssertion {
        &self.assertion
    }
}

#[async_trait]
impl CredentialProvider for CertificateCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        self.client.request_token(request).await
    }

    fn describe(&self) -> CredentialInfo {
        self.client.describe()
    }
}
