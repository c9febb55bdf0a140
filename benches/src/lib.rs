//! Shared pieces of botauth's benchmarks.

pub mod echo;
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

/// Time on the CPU, for throughput figures measured on a machine shared with other work: a
/// thread that is preempted is not charged for the time it waits. Linux's scheduler statistics
/// (`/proc/thread-self/schedstat`) give it, but their first field, the time run, only moves at
/// scheduler ticks (every 4 ms here), which made a 60 ms measurement uncertain by several per
/// cent; the second, the time spent waiting to run, is brought up to date each time the thread
/// is switched back in, so wall-clock time less the growth of that wait is the time on the CPU
/// to the nanosecond, for a thread that does not block. Elsewhere, or when the file cannot be
/// read, wall-clock time stands in.
pub mod cpu {
    use std::time::{Duration, Instant};

    /// On-CPU time of the calling thread so far, if the system tells (to the last scheduler
    /// tick).
    pub fn thread_time() -> Option<Duration> {
        schedstat("/proc/thread-self/schedstat")
    }

    /// How long the calling thread has waited to run so far (up to date to the nanosecond: the
    /// scheduler adds each wait when it switches the thread back in).
    fn waited() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        text.split_whitespace().nth(1)?.parse().ok()
    }

    /// On-CPU time so far of this process's threads whose name starts with `prefix`.
    pub fn threads_time(prefix: &str) -> Option<Duration> {
        let mut total = Duration::ZERO;
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if name.starts_with(prefix) {
                total += schedstat(path.join("schedstat"))?;
            }
        }
        Some(total)
    }

    fn schedstat(path: impl AsRef<std::path::Path>) -> Option<Duration> {
        let text = std::fs::read_to_string(path).ok()?;
        let ns = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(ns))
    }

    /// Measures the calling thread's on-CPU time (or wall time, see the module), for work that
    /// does not block.
    #[derive(Debug, Clone, Copy)]
    pub struct Stopwatch {
        waited: Option<u64>,
        wall: Instant,
    }

    impl Stopwatch {
        /// Starts measuring.
        pub fn start() -> Self {
            Stopwatch {
                waited: waited(),
                wall: Instant::now(),
            }
        }

        /// The time since [`Stopwatch::start`], on the CPU if known: the wall-clock time less
        /// the time the thread waited to run meanwhile.
        pub fn elapsed(&self) -> Duration {
            let wall = self.wall.elapsed();
            match (self.waited, waited()) {
                (Some(start), Some(now)) => {
                    wall.saturating_sub(Duration::from_nanos(now.saturating_sub(start)))
                }
                _ => wall,
            }
        }

        /// What is measured: `"thread_cpu"` or `"wall"`.
        pub fn clock(&self) -> &'static str {
            if self.waited.is_some() {
                "thread_cpu"
            } else {
                "wall"
            }
        }
    }
}
