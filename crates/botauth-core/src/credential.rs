//! The two extension points: [`CredentialProvider`] and [`ClientAssertionSource`].

use std::fmt::{self, Debug};
use std::sync::Arc;

use async_trait::async_trait;

use crate::entra::EntraError;
use crate::{AccessToken, Result, Secret, TokenRequest};

/// Anything that can obtain an access token: a client secret, a certificate, a managed identity,
/// or your own implementation.
///
/// Providers do **not** cache: wrap one in `botauth_token::TokenManager`, which owns the only
/// cache, single-flight and refresh-ahead. Use as `Arc<dyn CredentialProvider>`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use botauth_core::{async_trait, AccessToken, CredentialInfo, CredentialProvider, Result, TokenRequest};
///
/// #[derive(Debug)]
/// struct Fixed;
///
/// #[async_trait]
/// impl CredentialProvider for Fixed {
///     async fn get_token(&self, _request: &TokenRequest) -> Result<AccessToken> {
///         Ok(AccessToken::bearer("t", SystemTime::now() + Duration::from_secs(3600)))
///     }
///     fn describe(&self) -> CredentialInfo {
///         CredentialInfo::new("fixed")
///     }
/// }
/// # let _: std::sync::Arc<dyn CredentialProvider> = std::sync::Arc::new(Fixed);
/// ```
#[async_trait]
pub trait CredentialProvider: Send + Sync + Debug {
    /// Obtains a new token for `request` from the issuer. Called by the token manager only when
    /// its cache has no usable token.
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken>;

    /// What this credential is: kind, client id, tenant, authority. Never a secret.
    fn describe(&self) -> CredentialInfo;
}

#[async_trait]
impl<T: CredentialProvider + ?Sized> CredentialProvider for Arc<T> {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        (**self).get_token(request).await
    }
    fn describe(&self) -> CredentialInfo {
        (**self).describe()
    }
}

/// A description of a credential, safe to log and print: public fields over
/// [`new`](Self::new).
///
/// ```
/// use botauth_core::CredentialInfo;
///
/// let info = CredentialInfo {
///     client_id: Some("00000000-0000-0000-0000-00000000b07a".into()),
///     ..CredentialInfo::new("sidecar")
/// };
/// assert_eq!(info.to_string(), "sidecar client_id=00000000-0000-0000-0000-00000000b07a");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct CredentialInfo {
    /// The credential kind, e.g. `client_secret`, `certificate`, `managed_identity`.
    pub kind: String,
    /// The application (client) id the credential authenticates as, when known.
    pub client_id: Option<String>,
    /// The tenant, when the credential has one.
    pub tenant_id: Option<String>,
    /// The authority host (`https://login.microsoftonline.com`), when the credential talks to one.
    pub authority_host: Option<String>,
    /// Whether the credential already retries transient failures on its own schedule (managed
    /// identity endpoints do, docs/protocol.md §4). The token manager then adds no retry of its own, so an
    /// outage is not waited through twice.
    pub retries_internally: bool,
}

impl CredentialInfo {
    /// A description with only a kind.
    pub fn new(kind: impl Into<String>) -> Self {
        CredentialInfo {
            kind: kind.into(),
            ..Default::default()
        }
    }
}

impl Debug for CredentialInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialInfo")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("authority_host", &self.authority_host)
            .field("retries_internally", &self.retries_internally)
            .finish()
    }
}

impl fmt::Display for CredentialInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if let Some(c) = &self.client_id {
            write!(f, " client_id={c}")?;
        }
        if let Some(t) = &self.tenant_id {
            write!(f, " tenant={t}")?;
        }
        Ok(())
    }
}

/// What a client assertion is for: the audience and subject it must carry (docs/protocol.md §3).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AssertionRequest<'a> {
    /// The exact token endpoint URL the assertion will be posted to (its `aud`).
    pub token_endpoint: &'a str,
    /// The application (client) id (its `iss` and `sub`).
    pub client_id: &'a str,
}

impl<'a> AssertionRequest<'a> {
    /// An assertion request for `client_id` at `token_endpoint`.
    pub fn new(token_endpoint: &'a str, client_id: &'a str) -> Self {
        AssertionRequest {
            token_endpoint,
            client_id,
        }
    }
}

/// The narrow extension point: a source of signed client assertions (a certificate, a managed
/// identity used as a federated credential, a workload-identity token file).
///
/// The token crate's client-credentials flow takes any `ClientAssertionSource`, so each of these
/// reuses one implementation of the flow.
#[async_trait]
pub trait ClientAssertionSource: Send + Sync + Debug {
    /// Produces an assertion for one token request. Called once per token request.
    async fn assertion(&self, request: &AssertionRequest<'_>) -> Result<Secret>;

    /// Called when the token endpoint rejected an assertion this source produced. Return `true`
    /// when the source reloaded something (a rotated certificate, a re-read token file, a dropped
    /// cached assertion) and one retry is worthwhile. The default reloads nothing.
    async fn on_rejected(&self, _error: &EntraError) -> bool {
        false
    }

    /// A short name of the source for [`CredentialInfo::kind`], e.g. `certificate`.
    fn kind(&self) -> &'static str;
}
