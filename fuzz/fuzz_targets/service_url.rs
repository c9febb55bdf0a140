//! Fuzzes the outbound service-URL guard (`botauth_core::service_url`): arbitrary allow-list
//! entries and a service URL; nothing may panic, and an accepted URL's written host must be the
//! guard's host and match an allowed entry. The harness is shared with the stable test
//! `crates/botauth-validator/tests/service_url_guard.rs`.
#![no_main]

#[path = "../../crates/botauth-validator/tests/harness/service_url.rs"]
mod service_url;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = service_url::run(&service_url::Input::decode(data)) {
        panic!("{disagreement}");
    }
});
