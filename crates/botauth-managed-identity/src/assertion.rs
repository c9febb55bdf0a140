//! [`ManagedIdentityAssertion`]: a managed identity token used as the client assertion of an app
//! registration that trusts the identity through a federated identity credential.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use botauth_core::{
    AssertionRequest, ClientAssertionSource, Cloud, EntraError, Result, Secret, TokenRequest,
};
use botauth_token::TokenManager;

use crate::ManagedIdentityCredential;

/// A managed identity token for the cloud's federation audience (`api://AzureADTokenExchange`,
/// or the US Gov / China variants), sent as the `client_assertion` of the app's
/// client-credentials request.
///
/// The token lives about a day, so it is cached until shortly before it expires. The cache is a
/// [`TokenManager`] around the managed identity credential (the token crate owns caching, so this
/// is not a second cache implementation); when the token endpoint rejects the assertion, it is
/// dropped and fetched again for the one retry.
pub struct ManagedIdentityAssertion {
    tokens: TokenManager,
    request: TokenRequest,
    audience: String,
}

impl fmt::Debug for ManagedIdentityAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentityAssertion")
            .field("audience", &self.audience)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl ManagedIdentityAssertion {
    /// Assertions for `audience` from `credential`, cached on the credential's clock (its
    /// [`ClientSettings`](botauth_http::ClientSettings)).
    pub fn new(credential: ManagedIdentityCredential, audience: impl Into<String>) -> Self {
        let clock = credential.clock.clone();
        let audience = audience.into();
        // No retries added by the manager: the credential says it runs docs/protocol.md §4's retry
        // schedule itself (`CredentialInfo::retries_internally`).
        let tokens = TokenManager::builder(Arc::new(credential))
            .clock(clock)
            .build();
        let scope = format!("{}/.default", audience.trim_end_matches('/'));
        ManagedIdentityAssertion {
            tokens,
            request: TokenRequest::new(scope),
            audience,
        }
    }

    /// Assertions for `cloud`'s federation audience.
    pub fn for_cloud(credential: ManagedIdentityCredential, cloud: &Cloud) -> Self {
        Self::new(credential, cloud.federation_audience())
    }

    /// The audience of the assertions.
    pub fn audience(&self) -> &str {
        &self.audience
    }
}

#[async_trait]
impl ClientAssertionSource for ManagedIdentityAssertion {
    async fn assertion(&self, _request: &AssertionRequest<'_>) -> Result<Secret> {
        Ok(self.tokens.get_token(&self.request).await?.token)
    }

    async fn on_rejected(&self, error: &EntraError) -> bool {
        tracing::info!(
            code = error.code(),
            "federated assertion rejected; fetching a new managed identity token"
        );
        self.tokens.invalidate(&self.request);
        true
    }

    fn kind(&self) -> &'static str {
        "federated_managed_identity"
    }
}
