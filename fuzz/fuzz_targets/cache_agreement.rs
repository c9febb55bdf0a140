//! Fuzzes past the signature: the header, claims, `serviceUrl`, channel and clock come from the
//! input, the token is signed with the RFC 7515 A.2 key that the harness's fixed JWKS publishes,
//! and the verified-token cache must give the same answer as the full path (accept or reject,
//! claims, rejection kind and message). The harness is shared with the stable test
//! `crates/botauth-validator/tests/cache_agreement.rs`.
#![no_main]

#[path = "../../crates/botauth-validator/tests/harness/mod.rs"]
mod harness;

use std::sync::OnceLock;

use harness::signed::{Outcome, SignedHarness};
use libfuzzer_sys::fuzz_target;

static HARNESS: OnceLock<SignedHarness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(SignedHarness::new);
    match harness.run(data) {
        // Keys are fixed, so an error other than a rejection would be a bug too.
        Ok(agreed) => {
            for outcome in [&agreed.first, &agreed.second] {
                if let Outcome::Rejected { kind, message } = outcome {
                    assert!(
                        !matches!(
                            kind,
                            botauth_validator::ErrorKind::KeysUnavailable
                                | botauth_validator::ErrorKind::Config
                        ),
                        "{kind}: {message}"
                    );
                }
            }
        }
        Err(disagreement) => panic!("{disagreement}"),
    }
});
