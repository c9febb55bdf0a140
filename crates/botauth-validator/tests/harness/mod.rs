//! The entry point shared by the cargo-fuzz target (`fuzz/fuzz_targets/validate.rs`, which
//! includes this file) and the stable test `tests/malformed.rs`: a validator with a fixed key set
//! (the RFC 7515 A.2 key) and a stopped clock, fed arbitrary bytes.
//!
//! Two more harnesses live beside it, each shared the same way: [`signed`] (fuzzed contents
//! signed with the real key, cached path against full path: `fuzz_targets/cache_agreement.rs` and
//! `tests/cache_agreement.rs`) and [`service_url`] (the outbound allow-list parser:
//! `fuzz_targets/service_url.rs` and `tests/service_url_guard.rs`).
#![allow(dead_code, unreachable_pub, clippy::expect_used)]

pub mod service_url;
pub mod signed;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use botauth_core::ManualClock;
use botauth_validator::{ActivityInfo, BotClaims, BotServiceProfile, Error, Validator};
use serde_json::{Value, json};

/// The harness clock: 2023-11-14T22:13:20Z, so that corpus tokens stay valid forever.
pub const NOW: u64 = 1_700_000_000;
pub const METADATA: &str = "https://login.botframework.com/v1/.well-known/openidconfiguration";
pub const ISSUER: &str = "https://api.botframework.com";
pub const SERVICE_URL: &str = "https://smba.trafficmanager.net/teams/";
pub const APP: &str = "fuzz-app";
pub const KID: &str = "rfc7515-a2";

const VECTOR: &str = include_str!("../../../../fixtures/jose/rfc7515_a2_rs256.json");

/// The RFC 7515 A.2 vector: `key` (a private JWK), `compact`, `protected`, `payload_b64u`.
pub fn vector() -> Value {
    serde_json::from_str(VECTOR).expect("the RFC 7515 A.2 fixture is JSON")
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub struct Harness {
    validator: Validator,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    pub fn new() -> Self {
        let key = &vector()["key"];
        let jwk = json!({"kty": "RSA", "use": "sig", "kid": KID, "n": key["n"], "e": key["e"], "endorsements": ["msteams"]});
        let clock = Arc::new(ManualClock::new());
        clock.set(UNIX_EPOCH + Duration::from_secs(NOW));
        let validator = Validator::builder(APP)
            .profile(BotServiceProfile::public())
            .fixed_jwks(METADATA, json!({ "keys": [jwk] }))
            .settings(botauth_http::ClientSettings::new().clock(clock))
            .build()
            .expect("harness validator");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("harness runtime");
        Harness { validator, runtime }
    }

    /// Feeds one input. The first byte picks how the rest is used:
    /// 0: the whole `Authorization` value (lossy UTF-8, so any bytes reach the scheme parser);
    /// 1: up to three raw segments split at 0xFF, each base64url-encoded (any bytes reach the
    ///    JSON parsers); 2: fuzzed claims behind a plausible header and a 256-byte signature.
    pub fn run(&self, data: &[u8]) -> Result<BotClaims, Error> {
        let (mode, rest) = data.split_first().map_or((0, &[][..]), |(m, r)| (*m, r));
        let header = match mode % 3 {
            0 => String::from_utf8_lossy(rest).into_owned(),
            1 => {
                let parts: Vec<String> = rest.split(|&b| b == 0xff).map(b64).collect();
                format!("Bearer {}", parts.join("."))
            }
            _ => format!(
                "Bearer {}.{}.{}",
                b64(format!(r#"{{"alg":"RS256","kid":"{KID}"}}"#).as_bytes()),
                b64(rest),
                b64(&[0x5a; 256])
            ),
        };
        let activity = ActivityInfo::new(SERVICE_URL, "msteams");
        self.runtime
            .block_on(self.validator.validate_header(Some(&header), activity))
    }
}

/// splitmix64: a fixed-seed generator, so every run of the stable tests feeds the same inputs.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// The first (plausible) option half the time, otherwise any.
    pub fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        if self.next() % 2 == 0 {
            return options[0];
        }
        options[self.below(options.len())]
    }
}
