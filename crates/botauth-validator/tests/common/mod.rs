//! Shared helpers: a sandbox, a manual clock, and tokens whose claims follow that clock.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use botauth_core::{Clock, ManualClock};
use botauth_sandbox::Sandbox;
use botauth_validator::{ActivityInfo, BotServiceProfile, ErrorKind, Validator, ValidatorBuilder};
use serde_json::{Value, json};

pub const APP: &str = "9e1f3c2a-0000-4000-8000-00000000b07a";
pub const TEAMS: &str = "https://smba.trafficmanager.net/teams/";
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The first Bot Framework tenant, whose tokens the emulator and skills present
/// (docs/protocol.md §6).
pub const BOT_FRAMEWORK_TENANT: &str = "d6d49420-f39b-4df7-a1dc-d59a935871db";

pub struct Env {
    pub sandbox: Sandbox,
    pub clock: Arc<ManualClock>,
}

impl Env {
    pub async fn start() -> Env {
        Env {
            sandbox: Sandbox::start().await.expect("sandbox"),
            clock: Arc::new(ManualClock::new()),
        }
    }

    pub fn now(&self) -> i64 {
        unix(self.clock.now())
    }

    /// A validator for Bot Service channel tokens from this sandbox.
    pub fn builder(&self) -> ValidatorBuilder {
        Validator::builder(APP)
            .profile(
                BotServiceProfile::custom(
                    self.sandbox.bot_service_metadata_url(),
                    self.sandbox.bot_service_issuer(),
                )
                .caller_id("urn:botframework:azure"),
            )
            .settings(botauth_http::ClientSettings::new().clock(self.clock.clone()))
    }

    pub fn validator(&self) -> Validator {
        self.builder().build().expect("validator")
    }

    pub fn header(&self) -> Value {
        json!({"alg": "RS256", "kid": self.sandbox.bot_service_kid(), "typ": "JWT", "x5t": self.sandbox.bot_service_kid()})
    }

    /// Channel-token claims valid at the manual clock's now.
    pub fn claims(&self) -> Value {
        let now = self.now();
        json!({
            "iss": self.sandbox.bot_service_issuer(),
            "aud": APP,
            "serviceurl": TEAMS,
            "nbf": now,
            "iat": now,
            "exp": now + 3600,
        })
    }

    pub fn token(&self) -> String {
        self.sign(&self.header(), &self.claims())
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sandbox.sign_with_bot_service_key(header, claims)
    }

    /// A channel token with `edit` applied to its claims.
    pub fn token_with(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut claims = self.claims();
        if let Value::Object(map) = &mut claims {
            edit(map);
        }
        self.sign(&self.header(), &claims)
    }
}

pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn teams() -> ActivityInfo<'static> {
    ActivityInfo::new(TEAMS, "msteams")
}

pub async fn kind(validator: &Validator, token: &str) -> ErrorKind {
    kind_for(validator, token, teams()).await
}

pub async fn kind_for(validator: &Validator, token: &str, activity: ActivityInfo<'_>) -> ErrorKind {
    match validator.validate(token, activity).await {
        Ok(claims) => panic!("accepted: {claims:?}"),
        Err(e) => e.kind(),
    }
}
