//! Support for botauth's end-to-end tests.

use std::io::Write;
use std::sync::{Arc, Mutex};

use botauth::{BotAuth, BotAuthConfig};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};

/// The botas-dialect environment that points botauth at `sandbox` with the demo app's secret.
pub fn sandbox_env(sandbox: &Sandbox) -> Vec<(String, String)> {
    vec![
        ("CLIENT_ID".into(), DEMO_CLIENT_ID.into()),
        ("CLIENT_SECRET".into(), DEMO_CLIENT_SECRET.into()),
        ("TENANT_ID".into(), DEMO_TENANT_ID.into()),
        ("BOTAUTH_AUTHORITY_HOST".into(), sandbox.url()),
    ]
}

/// A [`BotAuth`] for the sandbox's demo app.
pub fn sandbox_auth(sandbox: &Sandbox) -> BotAuth {
    let config = BotAuthConfig::from_vars(sandbox_env(sandbox)).expect("sandbox configuration");
    BotAuth::from_config(config).expect("sandbox credential")
}

/// Everything written by `tracing`, kept in memory.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs a process-wide subscriber at TRACE level (every crate, including reqwest and
    /// hyper) writing into this buffer. Call once per test binary.
    pub fn install() -> Self {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    }

    /// The captured text so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
