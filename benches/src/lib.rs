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

/// The certificate-assertion benchmark's parts: botauth's signer and a raw OpenSSL RSA-2048
/// signing loop over an input of the same size, with the same key.
pub mod signing {
    use std::path::PathBuf;

    use botauth::certificate::{CertificateAssertion, CertificateSource};
    use botauth::core::AssertionRequest;
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::sign::Signer;

    /// The token endpoint used as the assertions' audience.
    pub const ENDPOINT: &str =
        "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token";
    /// The client id used as the assertions' issuer and subject.
    pub const CLIENT_ID: &str = "00000000-0000-0000-0000-00000000b07a";

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/certs")).join(name)
    }

    /// botauth's assertion source over the RSA-2048 fixture files (with its per-request file
    /// change check, as in production).
    pub fn assertion() -> CertificateAssertion {
        CertificateAssertion::builder(CertificateSource::pem_files(
            fixture("rsa2048.pem"),
            fixture("rsa2048.key"),
        ))
        .build()
        .unwrap_or_else(|e| panic!("loading the fixture certificate: {e}"))
    }

    /// One botauth assertion.
    pub fn botauth_sign(assertion: &CertificateAssertion) -> usize {
        let request = AssertionRequest::new(ENDPOINT, CLIENT_ID);
        match assertion.sign(&request) {
            Ok(jws) => jws.expose_secret().len(),
            Err(e) => panic!("signing failed: {e}"),
        }
    }

    /// The same fixture key, loaded by OpenSSL directly.
    pub fn raw_key() -> PKey<Private> {
        let pem = std::fs::read(fixture("rsa2048.key")).expect("fixture key");
        PKey::private_key_from_pem(&pem).expect("fixture key parses")
    }

    /// A signing input the size of a real assertion's header and claims.
    pub fn raw_input() -> Vec<u8> {
        vec![b'e'; 520]
    }

    /// One raw RS256 signature: what any JWT signer built on OpenSSL must at least do.
    pub fn raw_sign(key: &PKey<Private>, input: &[u8]) -> usize {
        let mut signer = Signer::new(MessageDigest::sha256(), key).expect("signer");
        signer.sign_oneshot_to_vec(input).expect("sign").len()
    }
}
