//! Fuzzes the token parser and the validator through `Validator::validate_header`, with the same
//! harness the stable test `crates/botauth-validator/tests/malformed.rs` drives.
#![no_main]

#[path = "../../crates/botauth-validator/tests/harness/mod.rs"]
mod harness;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static HARNESS: OnceLock<harness::Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(harness::Harness::new);
    // Any input must end in a typed result; only a panic or a crash is a finding. Keys are
    // fixed, so an error other than a rejection would be a bug too.
    if let Err(error) = harness.run(data) {
        assert!(error.is_rejection(), "{error:?}");
    }
});
