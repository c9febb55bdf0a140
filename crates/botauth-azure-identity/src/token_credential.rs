//! [`BotTokenCredential`]: the bot's identity, through botauth's one token cache, as an
//! `azure_core` `TokenCredential`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken as AzureToken, TokenCredential, TokenRequestOptions};
use botauth_token::TokenManager;

use crate::{convert, error};

/// A botauth [`TokenManager`] as an Azure SDK `TokenCredential`, so Azure SDK clients (Key Vault,
/// Storage, Microsoft Graph through the Azure SDK) authenticate as the bot, with whatever
/// credential botauth was configured with.
///
/// Every `get_token` goes to the manager: the same cache, single flight and refresh-ahead that
/// serve the Bot Connector token, keyed by scope. Ten clients asking for
/// `https://vault.azure.net/.default` cause one token request; the bridge keeps no cache of its
/// own. (An Azure SDK client's authorization policy still remembers the last token it was handed
/// until five minutes before its expiry; that is the client's, and holds the same token.)
///
/// Scopes pass through unchanged; errors are `ErrorKind::Credential` with the botauth error as
/// the source and its whole cause chain in the message. A non-bearer token is refused.
///
/// ```no_run
/// use std::sync::Arc;
/// use botauth_azure_identity::BotTokenCredential;
/// use botauth_azure_identity::azure_core::credentials::TokenCredential;
/// use botauth_core::{CredentialProvider, Result};
/// use botauth_token::TokenManager;
///
/// # async fn run(provider: Arc<dyn CredentialProvider>) -> Result<()> {
/// let tokens = TokenManager::new(provider); // or `BotAuth::tokens().clone()`
/// let credential: Arc<dyn TokenCredential> = BotTokenCredential::new(tokens);
/// // e.g. azure_security_keyvault_secrets::SecretClient::new(vault_url, credential, None)
/// # let _ = credential; Ok(()) }
/// ```
#[derive(Clone)]
pub struct BotTokenCredential {
    tokens: TokenManager,
}

impl BotTokenCredential {
    /// A credential that takes its tokens from `tokens` (clones of a manager share its cache).
    ///
    /// An `Arc`, as Azure SDK clients take `Arc<dyn TokenCredential>`.
    pub fn new(tokens: TokenManager) -> Arc<Self> {
        Arc::new(BotTokenCredential { tokens })
    }
}

impl fmt::Debug for BotTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotTokenCredential")
            .field("credential", self.tokens.credential())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenCredential for BotTokenCredential {
    /// A token for `scopes` from the token manager. The options carry nothing botauth uses:
    /// azure_core 1.x puts only a request context in them.
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AzureToken> {
        let kind = &self.tokens.credential().kind;
        let token = self
            .tokens
            .get_token(&convert::request(scopes))
            .await
            .map_err(|e| error::to_azure(e, kind))?;
        convert::to_azure(&token, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime};

    use azure_core::error::ErrorKind as AzureKind;
    use botauth_core::{
        AccessToken, CredentialInfo, CredentialProvider, Error, ErrorKind, Result, TokenRequest,
    };

    /// Counts its calls; answers a one-hour token named after the scopes, or fails without one.
    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
    }

    #[async_trait]
    impl CredentialProvider for Counting {
        async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let scopes = request.required_scopes()?;
            Ok(AccessToken::bearer(
                format!("eyJ.{}", scopes.join("+")),
                SystemTime::now() + Duration::from_secs(3600),
            ))
        }
        fn describe(&self) -> CredentialInfo {
            CredentialInfo::new("counting")
        }
    }

    #[tokio::test]
    async fn every_scope_is_one_request_and_the_expiry_is_the_managers() {
        let provider = Arc::new(Counting::default());
        let tokens = TokenManager::new(provider.clone());
        let credential = BotTokenCredential::new(tokens.clone());
        for _ in 0..10 {
            let t = credential
                .get_token(&["https://vault.azure.net/.default"], None)
                .await
                .expect("token");
            assert_eq!(t.token.secret(), "eyJ.https://vault.azure.net/.default");
        }
        let storage = credential
            .get_token(&["https://storage.azure.com/.default"], None)
            .await
            .expect("token");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
        let cached = tokens
            .get_token(&TokenRequest::new("https://storage.azure.com/.default"))
            .await
            .expect("cached");
        assert_eq!(
            provider.calls.load(Ordering::SeqCst),
            2,
            "the manager's cache"
        );
        assert_eq!(SystemTime::from(storage.expires_on), cached.expires_on);
    }

    #[tokio::test]
    async fn a_failure_is_a_credential_error_carrying_the_botauth_error() {
        let credential = BotTokenCredential::new(TokenManager::new(Arc::new(Counting::default())));
        let e = credential.get_token(&[], None).await.expect_err("no scope");
        assert_eq!(e.kind(), &AzureKind::Credential);
        assert!(
            e.to_string()
                .starts_with("BotTokenCredential authentication failed. botauth credential `counting`: configuration `scope`"),
            "{e}"
        );
        let inner = e.downcast_ref::<Error>().expect("botauth's error");
        assert_eq!(inner.kind(), ErrorKind::Config);
    }

    #[test]
    fn debug_names_the_credential_only() {
        let credential = BotTokenCredential::new(TokenManager::new(Arc::new(Counting::default())));
        let debug = format!("{credential:?}");
        assert!(
            debug.starts_with(
                "BotTokenCredential { credential: CredentialInfo { kind: \"counting\""
            ),
            "{debug}"
        );
    }
}
