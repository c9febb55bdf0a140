//! Shared pieces of botauth's benchmarks.

pub mod validator;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use botauth::{
    AccessToken, CredentialInfo, CredentialProvider, Result, TokenManager, TokenRequest,
    async_trait,
};

/// The Bot Connector scope used throughout the benchmarks.
pub const SCOPE: &str = "https://api.botframework.com/.default";

/// A provider that answers at once from memory, so that cache benchmarks measure the cache.
#[derive(Debug, Default)]
pub struct InstantProvider;

#[async_trait]
impl CredentialProvider for InstantProvider {
    async fn get_token(&self, _request: &TokenRequest) -> Result<AccessToken> {
        Ok(AccessToken::bearer(
            "eyJ.bench.token",
            SystemTime::now() + Duration::from_secs(3600),
        ))
    }

    fn describe(&self) -> CredentialInfo {
        CredentialInfo::new("bench")
    }
}

/// A token manager around [`InstantProvider`] with a warm cache for [`SCOPE`].
pub async fn warm_manager() -> (TokenManager, TokenRequest) {
    let manager = TokenManager::new(Arc::new(InstantProvider));
    let request = TokenRequest::new(SCOPE);
    if let Err(e) = manager.get_token(&request).await {
        panic!("warming the cache failed: {e}");
    }
    (manager, request)
}
