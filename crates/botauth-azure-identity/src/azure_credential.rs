//! [`AzureCredential`]: any `azure_core` `TokenCredential` as a botauth [`CredentialProvider`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use botauth_core::{AccessToken, CredentialInfo, CredentialProvider, Error, Result, TokenRequest};
use botauth_token::ManagerOptions;

use crate::{convert, error};

/// The kind an [`AzureCredential`] reports unless told otherwise.
const DEFAULT_KIND: &str = "azure_token_credential";

/// How long before expiry azure_identity's credentials fetch a new token instead of answering
/// from their own cache (its `TokenCache`; Azure SDK clients' bearer policy uses the same five
/// minutes).
const AZURE_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An Azure SDK credential (`azure_identity`'s `ManagedIdentityCredential`,
/// `DeveloperToolsCredential`, `ClientSecretCredential`, `WorkloadIdentityCredential`, or your
/// own `TokenCredential`) as a botauth [`CredentialProvider`].
///
/// Put it behind a `TokenManager` like any provider: botauth's cache, single flight,
/// refresh-ahead and typed errors then apply to it.
///
/// - **Scopes** pass through unchanged (`https://api.botframework.com/.default`).
/// - **Expiry** carries over exactly; Azure tokens have no `refresh_in`, so the manager refreshes
///   at its usual point (half-life for long tokens, else five minutes and a bit before expiry).
/// - **Errors** become botauth's typed errors: an Entra rejection with its `AADSTS` code and hint,
///   429 with `Retry-After`, 5xx and transport failures as `Unavailable`; the Azure error, with its
///   troubleshooting link, is the cause.
/// - **Tenant**: an Azure credential is bound to its tenant when it is built (azure_core 1.x takes
///   none per request), so a request for another tenant is a configuration error, never a token
///   from the wrong tenant.
/// - **Retries**: azure_identity's credentials retry transient failures in their own pipeline
///   (up to 8 times within a minute), so by default the description says
///   [`retries_internally`](CredentialInfo::retries_internally) and the manager adds no retry of
///   its own. Describe a credential that does not retry with [`with_info`](Self::with_info).
/// - **Caching**: azure_identity's credentials keep a cache of their own (until five minutes
///   before expiry) that cannot be turned off. It sits behind botauth's, so it costs no requests,
///   but `TokenManager::force_refresh` cannot reach through it: until that point it returns the
///   token azure_identity holds. And a refresh botauth starts earlier than that gets the same
///   token back, so the manager tries again on its next use; build the manager with
///   [`manager_options`](Self::manager_options) so botauth refreshes once, when azure_identity
///   will fetch.
///
/// `Debug` shows the description only, never the wrapped credential (whose `Debug` is not
/// botauth's to vouch for).
#[derive(Clone)]
pub struct AzureCredential {
    credential: Arc<dyn TokenCredential>,
    info: CredentialInfo,
}

impl AzureCredential {
    /// Wraps `credential`, described as kind `azure_token_credential` that retries internally.
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self::with_info(
            credential,
            CredentialInfo {
                retries_internally: true,
                ..CredentialInfo::new(DEFAULT_KIND)
            },
        )
    }

    /// Wraps `credential` with your description of it: its kind (for logs and metrics, e.g.
    /// `azure_managed_identity`), client id, tenant and authority host (part of the token
    /// manager's cache key, and named in errors), and whether it retries on its own.
    pub fn with_info(credential: Arc<dyn TokenCredential>, info: CredentialInfo) -> Self {
        AzureCredential { credential, info }
    }

    /// [`TokenManager`](botauth_token::TokenManager) options that line botauth's refresh up with
    /// azure_identity's cache: the refresh falls in the last five minutes before expiry (the
    /// default [`refresh_window`](ManagerOptions::refresh_window) and
    /// [`max_jitter`](ManagerOptions::max_jitter) within them, so the
    /// [`expiry_margin`](ManagerOptions::expiry_margin) is 180 s), and long tokens do not
    /// refresh at half-life, since azure_identity would answer those refreshes from its cache.
    ///
    /// With the defaults, the manager's refresh (six to seven minutes before expiry) gets
    /// azure_identity's cached token back, and every use in the minute or two until
    /// azure_identity fetches starts another refresh: requests to its cache, not to the
    /// network, but each one a `botauth.token.acquire` span and a token request in the metrics.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use botauth_azure_identity::AzureCredential;
    /// # fn wrap(provider: AzureCredential) -> botauth_token::TokenManager {
    /// botauth_token::TokenManager::builder(Arc::new(provider))
    ///     .options(AzureCredential::manager_options())
    ///     .build()
    /// # }
    /// ```
    pub fn manager_options() -> ManagerOptions {
        let mut options = ManagerOptions::default();
        options.expiry_margin = AZURE_REFRESH_MARGIN
            .saturating_sub(options.refresh_window)
            .saturating_sub(options.max_jitter);
        options.half_life_threshold = Duration::MAX;
        options
    }
}

impl fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCredential")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CredentialProvider for AzureCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        if request.tenant_id.is_some() {
            return Err(Error::config(
                "tenant_id",
                format!(
                    "the Azure credential `{}` is bound to the tenant it was built for (azure_core \
                     takes no tenant per request): build one credential per tenant, each behind \
                     its own TokenManager",
                    self.info.kind
                ),
            ));
        }
        let scopes = request.required_scopes()?;
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let token = self
            .credential
            .get_token(&scopes, None)
            .await
            .map_err(|e| error::from_azure(e, &self.info))?;
        Ok(convert::from_azure(token))
    }

    fn describe(&self) -> CredentialInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::credentials::{AccessToken as AzureToken, TokenRequestOptions};
    use azure_core::time::{Duration, OffsetDateTime};
    use botauth_core::{Clock, ErrorKind, ManualClock};
    use botauth_token::TokenManager;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records the scopes it was asked for and answers a token that expires in an hour.
    #[derive(Debug, Default)]
    struct Recording {
        asked: Mutex<Vec<Vec<String>>>,
    }

    #[async_trait]
    impl TokenCredential for Recording {
        async fn get_token(
            &self,
            scopes: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AzureToken> {
            self.asked
                .lock()
                .expect("lock")
                .push(scopes.iter().map(|s| (*s).to_owned()).collect());
            Ok(AzureToken::new(
                "eyJ.recorded",
                OffsetDateTime::now_utc() + Duration::hours(1),
            ))
        }
    }

    #[tokio::test]
    async fn scopes_go_through_normalized_and_a_tenant_is_refused() {
        let azure = Arc::new(Recording::default());
        let provider = AzureCredential::new(azure.clone());
        let token = provider
            .get_token(&TokenRequest::with_scopes([
                " https://vault.azure.net/.default",
                "https://vault.azure.net/.default",
            ]))
            .await
            .expect("token");
        assert_eq!(token.token.expose_secret(), "eyJ.recorded");
        assert_eq!(
            azure.asked.lock().expect("lock").as_slice(),
            [vec!["https://vault.azure.net/.default".to_owned()]]
        );

        let e = provider
            .get_token(&TokenRequest {
                tenant_id: Some("other".into()),
                ..TokenRequest::new("https://api.botframework.com/.default")
            })
            .await
            .expect_err("another tenant");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(matches!(&e, Error::Config { key, .. } if key == "tenant_id"));

        let e = provider
            .get_token(&TokenRequest::with_scopes(["", " "]))
            .await
            .expect_err("no scope");
        assert!(matches!(&e, Error::Config { key, .. } if key == "scope"));
        assert_eq!(
            azure.asked.lock().expect("lock").len(),
            1,
            "refused before asking Azure"
        );
    }

    /// Answers as azure_identity's credentials do: the token it holds while that has more than
    /// five minutes left (by `clock`), else a new one-hour token.
    #[derive(Debug)]
    struct CachingLikeAzureIdentity {
        clock: Arc<ManualClock>,
        held: Mutex<Option<AzureToken>>,
        calls: AtomicUsize,
        fetches: AtomicUsize,
    }

    #[async_trait]
    impl TokenCredential for CachingLikeAzureIdentity {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AzureToken> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = OffsetDateTime::from(self.clock.now());
            let mut held = self.held.lock().expect("lock");
            if let Some(token) = held
                .as_ref()
                .filter(|t| t.expires_on > now + Duration::minutes(5))
            {
                return Ok(token.clone());
            }
            let n = self.fetches.fetch_add(1, Ordering::SeqCst);
            let token = AzureToken::new(format!("eyJ.{n}"), now + Duration::hours(1));
            *held = Some(token.clone());
            Ok(token)
        }
    }

    /// Calls to the Azure credential while a caller uses the token every second through the
    /// last ten minutes of its life, with `options`; and how many tokens it fetched.
    async fn last_ten_minutes(options: Option<ManagerOptions>) -> (usize, usize) {
        let clock = Arc::new(ManualClock::new());
        let azure = Arc::new(CachingLikeAzureIdentity {
            clock: clock.clone(),
            held: Mutex::new(None),
            calls: AtomicUsize::new(0),
            fetches: AtomicUsize::new(0),
        });
        let mut builder = TokenManager::builder(Arc::new(AzureCredential::new(azure.clone())))
            .clock(clock.clone());
        if let Some(options) = options {
            builder = builder.options(options);
        }
        let tokens = builder.build();
        let request = TokenRequest::new("https://api.botframework.com/.default");
        tokens.get_token(&request).await.expect("first");
        clock.advance(std::time::Duration::from_secs(50 * 60));
        for _ in 0..600 {
            tokens.get_token(&request).await.expect("token");
            // Let a background refresh run to its end.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            clock.advance(std::time::Duration::from_secs(1));
        }
        (
            azure.calls.load(Ordering::SeqCst),
            azure.fetches.load(Ordering::SeqCst),
        )
    }

    #[tokio::test]
    async fn manager_options_refresh_once_when_azure_identity_fetches() {
        let (calls, fetches) = last_ten_minutes(Some(AzureCredential::manager_options())).await;
        assert_eq!((calls, fetches), (2, 2), "the first token and one refresh");
        // The defaults refresh while azure_identity still answers from its cache: a call per
        // use until it fetches.
        let (calls, fetches) = last_ten_minutes(None).await;
        assert_eq!(fetches, 2);
        assert!(calls > 50, "{calls} calls");
    }

    #[test]
    fn the_description_is_the_callers_and_debug_shows_nothing_else() {
        let provider = AzureCredential::new(Arc::new(Recording::default()));
        let info = provider.describe();
        assert_eq!(info.kind, "azure_token_credential");
        assert!(info.retries_internally);
        let provider = AzureCredential::with_info(
            Arc::new(Recording::default()),
            CredentialInfo {
                tenant_id: Some("t".into()),
                ..CredentialInfo::new("azure_cli")
            },
        );
        assert!(!provider.describe().retries_internally);
        let debug = format!("{provider:?}");
        assert!(
            debug.starts_with("AzureCredential { info: CredentialInfo { kind: \"azure_cli\""),
            "{debug}"
        );
        assert!(!debug.contains("Recording"), "{debug}");
    }
}
