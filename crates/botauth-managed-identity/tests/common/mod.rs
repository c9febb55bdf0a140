#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use botauth_core::config::EnvVars;
use botauth_core::{Clock, ManualClock, Sleep};
use botauth_managed_identity::{ManagedIdentityCredential, ManagedIdentityId};
use botauth_sandbox::Sandbox;

pub const BOT_SCOPE: &str = "https://api.botframework.com/.default";

/// A manual clock that records every wait: with it a retry schedule runs without waiting, and the
/// attempt times are the running sums of the recorded waits. The HTTP exchanges stay on real time
/// (see the crate's retry module for why tokio's paused clock is not used).
#[derive(Debug, Default)]
pub struct TestClock {
    clock: ManualClock,
    waits: Mutex<Vec<Duration>>,
}

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(TestClock {
            clock: ManualClock::new(),
            waits: Mutex::new(Vec::new()),
        })
    }

    /// The attempt times in whole seconds after the first attempt, given `attempts` attempts.
    pub fn attempt_times(&self) -> Vec<u64> {
        let mut t = 0;
        let mut times = vec![0];
        for w in self.waits.lock().unwrap().iter() {
            t += w.as_secs();
            times.push(t);
        }
        times
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.waits.lock().unwrap().push(duration);
        self.clock.sleep(duration)
    }
}

pub fn env(vars: &[(&str, String)]) -> EnvVars {
    vars.iter().map(|(k, v)| (*k, v.clone())).collect()
}

pub fn imds_env(sandbox: &Sandbox) -> EnvVars {
    env(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.imds_host())])
}

pub fn app_service_env(sandbox: &Sandbox) -> EnvVars {
    env(&[
        ("IDENTITY_ENDPOINT", sandbox.app_service_endpoint()),
        ("IDENTITY_HEADER", sandbox.identity_header()),
    ])
}

pub fn service_fabric_env(sandbox: &Sandbox, thumbprint: &str) -> EnvVars {
    env(&[
        ("IDENTITY_ENDPOINT", sandbox.service_fabric_endpoint()),
        ("IDENTITY_HEADER", sandbox.identity_header()),
        ("IDENTITY_SERVER_THUMBPRINT", thumbprint.to_owned()),
    ])
}

pub fn azure_ml_env(sandbox: &Sandbox) -> EnvVars {
    env(&[
        ("MSI_ENDPOINT", sandbox.azure_ml_endpoint()),
        ("MSI_SECRET", sandbox.identity_header()),
    ])
}

pub fn cloud_shell_env(sandbox: &Sandbox) -> EnvVars {
    env(&[("MSI_ENDPOINT", sandbox.cloud_shell_endpoint())])
}

pub fn arc_env(sandbox: &Sandbox) -> EnvVars {
    env(&[
        ("IDENTITY_ENDPOINT", sandbox.arc_endpoint()),
        ("IMDS_ENDPOINT", sandbox.imds_host()),
    ])
}

pub fn credential(
    env: EnvVars,
    id: ManagedIdentityId,
    clock: Arc<TestClock>,
) -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(env)
        .file_exists(|_| false)
        .id(id)
        .settings(botauth_http::ClientSettings::new().clock(clock))
        .build()
        .unwrap()
}
