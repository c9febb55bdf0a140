//! Support for botauth's end-to-end tests.

use std::net::{Ipv4Addr, SocketAddr};

use botauth::core::testkit::LogCapture;
use botauth::{BotAuth, BotAuthConfig, CredentialBuilder};
use botauth_echo_bot::{EchoBot, MESSAGES_PATH};
use botauth_sandbox::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Delivery, DemoEnvironment, Sandbox,
};
use serde_json::Value;

/// The password of the PFX files in `fixtures/certs/` (see `fixtures/gen-certs.sh`).
pub const FIXTURE_PFX_PASSWORD: &str = "fixture-Pfx+pass/1";

/// The path of `fixtures/certs/{name}`.
pub fn fixture(name: &str) -> String {
    format!("{}/../fixtures/certs/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The botas-dialect environment that points botauth at `sandbox` with the demo app's secret.
pub fn sandbox_env(sandbox: &Sandbox) -> Vec<(String, String)> {
    vec![
        ("CLIENT_ID".into(), DEMO_CLIENT_ID.into()),
        ("CLIENT_SECRET".into(), DEMO_CLIENT_SECRET.into()),
        ("TENANT_ID".into(), DEMO_TENANT_ID.into()),
        ("BOTAUTH_AUTHORITY_HOST".into(), sandbox.url()),
    ]
}

/// The demo app's configuration for a bot that signs users in against `sandbox`: the sandbox's
/// Bot Service metadata, its Connector allowed, its Token Service as the user-token endpoint.
pub fn sign_in_config(sandbox: &Sandbox) -> BotAuthConfig {
    let mut vars = sandbox_env(sandbox);
    vars.push((
        "BOTAUTH_METADATA_URL".into(),
        sandbox.bot_service_metadata_url(),
    ));
    vars.push((
        "BOTAUTH_ALLOWED_SERVICE_URLS".into(),
        sandbox.connector_url(),
    ));
    let mut config = BotAuthConfig::from_vars(vars).expect("sandbox configuration");
    config.token_service_url = Some(sandbox.url());
    config
}

/// A [`BotAuth`] for the sandbox's demo app.
pub fn sandbox_auth(sandbox: &Sandbox) -> BotAuth {
    let config = BotAuthConfig::from_vars(sandbox_env(sandbox)).expect("sandbox configuration");
    BotAuth::from_config(config).expect("sandbox credential")
}

/// A [`BotAuth`] for the sandbox's demo app with another client secret (a wrong one: Entra
/// refuses it with AADSTS7000215).
pub fn sandbox_auth_with_secret(sandbox: &Sandbox, secret: &str) -> BotAuth {
    let vars = sandbox_env(sandbox).into_iter().map(|(k, v)| {
        let v = if k == "CLIENT_SECRET" {
            secret.to_owned()
        } else {
            v
        };
        (k, v)
    });
    let config = BotAuthConfig::from_vars(vars).expect("sandbox configuration");
    BotAuth::from_config(config).expect("sandbox credential")
}

/// The test program's capture of everything `tracing` writes (core's `testkit::LogCapture`,
/// installed for the whole process).
#[derive(Debug, Clone)]
pub struct CapturedLogs(LogCapture);

impl CapturedLogs {
    /// The process-wide capture: on the first call, installs a subscriber at TRACE level (every
    /// crate, including reqwest and hyper) writing into one buffer; every later call in the same
    /// test program returns that buffer, so the scenarios of one program share it.
    pub fn install() -> Self {
        static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        CapturedLogs(
            CAPTURE
                .get_or_init(|| {
                    let capture = LogCapture::new();
                    tracing::subscriber::set_global_default(capture.subscriber())
                        .expect("no other subscriber is installed in a log-leak test program");
                    capture
                })
                .clone(),
        )
    }

    /// Starts a log-leak scenario: waits until no other scenario of this program runs (so what
    /// is logged from now on is this one's), then marks where its events begin.
    pub async fn scenario() -> Scenario {
        static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let turn = TURN.lock().await;
        let logs = CapturedLogs::install();
        let start = logs.0.len();
        Scenario {
            logs,
            start,
            _turn: turn,
        }
    }

    /// The captured text so far.
    pub fn text(&self) -> String {
        self.0.text()
    }
}

/// One log-leak scenario's view of the capture (see [`CapturedLogs::scenario`]).
#[derive(Debug)]
pub struct Scenario {
    logs: CapturedLogs,
    start: usize,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Scenario {
    /// What was logged since the scenario started.
    pub fn text(&self) -> String {
        self.logs.0.text_from(self.start)
    }

    /// Everything captured so far, by every scenario of the program.
    pub fn whole_capture(&self) -> String {
        self.logs.text()
    }

    /// The check every scenario ends with: each of `expected` was logged since it started (so
    /// the capture saw its run), and none of `forbidden` appears anywhere in the capture, this
    /// scenario's events or any other's.
    ///
    /// # Panics
    ///
    /// When an expected text is missing or a forbidden one is present (the test fails).
    pub fn assert_clean(&self, expected: &[&str], forbidden: &[String]) {
        let text = self.text();
        for needle in expected {
            assert!(
                text.contains(needle),
                "`{needle}` was not logged: the capture missed the run"
            );
        }
        assert_absent(&self.whole_capture(), forbidden);
    }
}

/// `s` as an `application/x-www-form-urlencoded` body carries it: how a secret would look if a
/// request body were logged.
pub fn form_encoded(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A JWT and each of its parts: any one part is as good as the token to an attacker who has the
/// others, so none may be logged either.
pub fn jwt_and_parts(jwt: &str) -> Vec<String> {
    let mut all: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    all.push(jwt.to_owned());
    all
}

/// Fails, naming it, if any of `forbidden` appears in the captured `text`.
pub fn assert_absent(text: &str, forbidden: &[String]) {
    for needle in forbidden {
        assert!(
            !text.contains(needle.as_str()),
            "a secret leaked into the logs: {needle}"
        );
    }
}

/// An echo bot (templates/echo-bot) serving on 127.0.0.1, configured from a demo environment.
#[derive(Debug)]
pub struct RunningBot {
    /// Its outbound side: the token manager its replies take tokens from.
    pub auth: BotAuth,
    /// `http://127.0.0.1:PORT/api/messages`.
    pub url: String,
    /// The app id channel tokens must be addressed to.
    pub app_id: String,
}

impl RunningBot {
    /// Builds the echo bot from `env`'s bot variables, as a deployment would (the managed
    /// identity endpoint is detected from the same variables, not the test process's), and serves
    /// it on an ephemeral port. Each call is a fresh bot: no keys and no token cached.
    pub async fn start(env: &DemoEnvironment) -> RunningBot {
        let vars = || env.bot_vars().iter().cloned();
        let config = BotAuthConfig::from_vars(vars()).expect("the demo configuration");
        let app_id = config.client_id.clone().expect("the demo app id");
        let builder = CredentialBuilder::new().env(vars().collect());
        let bot = EchoBot::from_config(config, &builder).expect("the echo bot");
        let auth = bot.auth().clone();
        let addr = bot
            .spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("the echo bot listens");
        RunningBot {
            auth,
            url: format!("http://{addr}{MESSAGES_PATH}"),
            app_id,
        }
    }

    /// Delivers `activity` with `Authorization: Bearer {bearer}` (none when `None`).
    pub async fn deliver(
        &self,
        sandbox: &Sandbox,
        activity: &Value,
        bearer: Option<&str>,
    ) -> Delivery {
        sandbox
            .deliver_activity(&self.url, activity, bearer)
            .await
            .expect("the echo bot answers")
    }

    /// A fresh channel message to this bot and its genuine channel token.
    pub fn message(&self, sandbox: &Sandbox, text: &str) -> (Value, String) {
        let activity = sandbox.channel_activity(&self.app_id, text);
        let token = sandbox.channel_token(&self.app_id, &activity);
        (activity, token)
    }
}
