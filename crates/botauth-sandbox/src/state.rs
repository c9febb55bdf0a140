//! State shared by the handlers and the [`Sandbox`](crate::Sandbox) handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::app::AppRegistration;
use crate::botservice::keys::BotKeys;
use crate::faults::FaultQueues;
use crate::jwt::SigningKey;
use crate::log::ConnectorPost;

use crate::log::RequestRecord;
use crate::managed_identity::identity::MiState;

/// The Bot Connector resources every sandbox accepts as token scopes (docs/protocol.md §2).
pub(crate) const BOT_CONNECTOR_RESOURCES: [&str; 3] = [
    "https://api.botframework.com",
    "https://api.botframework.us",
    "https://api.botframework.azure.cn",
];

/// `{base}/{tenant}/v2.0/.well-known/openid-configuration`: Entra's metadata on the origin `base`.
pub(crate) fn entra_metadata_url(base: &str, tenant: &str) -> String {
    format!("{base}/{tenant}/v2.0/.well-known/openid-configuration")
}

/// `{base}/botservice/v1/.well-known/openidconfiguration`: the Bot Service's metadata.
pub(crate) fn bot_service_metadata_url(base: &str) -> String {
    format!("{base}/botservice/v1/.well-known/openidconfiguration")
}

/// Token response settings.
#[derive(Debug, Clone)]
pub(crate) struct TokenSettings {
    pub(crate) lifetime: Duration,
    pub(crate) refresh_in: Option<Duration>,
    pub(crate) numbers_as_strings: bool,
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// `https://127.0.0.1:PORT` with TLS, else `http://127.0.0.1:PORT`; no trailing slash. The
    /// authority host, the Bot Service and the Bot Connector.
    pub(crate) url: String,
    /// `http://127.0.0.1:PORT`: the managed identity endpoints, plain http as in Azure.
    pub(crate) http_url: String,
    /// Signs access tokens.
    pub(crate) entra_key: SigningKey,
    /// Signs managed-identity tokens (federated assertions).
    pub(crate) mi_key: SigningKey,
    /// The web console's feed and state (off until opened).
    pub(crate) console: crate::console::Hub,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// Keyed by lower-case client id.
    pub(crate) apps: HashMap<String, AppRegistration>,
    pub(crate) resources: Vec<String>,
    pub(crate) faults: FaultQueues,
    pub(crate) log: Vec<RequestRecord>,
    pub(crate) token: TokenSettings,
    /// `(client id, jti)` → `exp`, for replay detection.
    pub(crate) seen_jti: HashMap<(String, String), i64>,
    pub(crate) bot: BotKeys,
    /// What the Bot Connector accepted, in order.
    pub(crate) posts: Vec<ConnectorPost>,
    /// Managed identities, endpoint secrets and outage windows.
    pub(crate) mi: MiState,
    /// The Bot Framework Token Service: OAuth connections, user tokens, sign-ins.
    pub(crate) token_service: crate::token_service::state::TokenServiceState,
    /// The Key Vault: certificates, their versions, the access list.
    pub(crate) key_vault: crate::key_vault::store::VaultState,
}

impl Inner {
    pub(crate) fn new(token: TokenSettings, bot: BotKeys) -> Self {
        Self {
            apps: HashMap::new(),
            resources: BOT_CONNECTOR_RESOURCES.map(String::from).to_vec(),
            faults: FaultQueues::default(),
            log: Vec::new(),
            token,
            seen_jti: HashMap::new(),
            bot,
            posts: Vec::new(),
            mi: MiState::default(),
            token_service: Default::default(),
            key_vault: Default::default(),
        }
    }

    pub(crate) fn register_app(&mut self, app: AppRegistration) {
        self.apps.insert(app.client_id.to_ascii_lowercase(), app);
    }

    pub(crate) fn accept_resource(&mut self, resource: String) {
        if !self.resources.contains(&resource) {
            self.resources.push(resource);
        }
    }

    /// Whether the token endpoint issues tokens for `resource`: the accepted resources and the
    /// Key Vault. The vault is not in `resources`, which the Bot Connector also accepts as
    /// audiences: a vault token must not post activities.
    pub(crate) fn issues_tokens_for(&self, resource: &str) -> bool {
        resource == crate::key_vault::store::KEY_VAULT_RESOURCE
            || self.resources.iter().any(|r| r == resource)
    }

    /// Replaces the certificates registered on app `client_id`; `false` if there is no such app.
    pub(crate) fn replace_app_certificates(&mut self, client_id: &str, ders: Vec<Vec<u8>>) -> bool {
        match self.apps.get_mut(&client_id.to_ascii_lowercase()) {
            Some(app) => {
                app.certificates = ders;
                true
            }
            None => false,
        }
    }
}

impl Shared {
    pub(crate) fn new(
        url: String,
        http_url: String,
        entra_key: SigningKey,
        mi_key: SigningKey,
        inner: Inner,
    ) -> Arc<Self> {
        Arc::new(Self {
            url,
            http_url,
            entra_key,
            mi_key,
            console: crate::console::Hub::default(),
            inner: Mutex::new(inner),
        })
    }

    /// Locks the mutable state. A panic elsewhere while holding the lock leaves plain data behind,
    /// so a poisoned lock is still usable. Never hold the guard across `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn token_endpoint(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.url)
    }

    /// The values the console's feed must never carry: registered client secrets and the managed
    /// identity endpoints' secret header.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let inner = self.lock();
        let mut secrets: Vec<String> = inner
            .apps
            .values()
            .flat_map(|app| app.secrets.iter().cloned())
            .collect();
        secrets.push(inner.mi.secret.clone());
        secrets
    }

    /// Checks a token this sandbox's token endpoint issued: signature with the Entra key and `exp`
    /// not passed.
    pub(crate) fn verify_access_token(&self, token: &str) -> Result<Value, String> {
        self.entra_key.verify_unexpired(token)
    }

    pub(crate) fn managed_identity_issuer(&self) -> String {
        format!("{}/mi-issuer", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID};

    #[test]
    fn the_feed_never_carries_registered_secrets_or_the_identity_header() {
        let key = || SigningKey::generate("state test").unwrap();
        let settings = TokenSettings {
            lifetime: Duration::from_secs(60),
            refresh_in: None,
            numbers_as_strings: false,
        };
        let mut inner = Inner::new(settings, BotKeys::new(key()));
        inner.register_app(
            AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID).with_secret(DEMO_CLIENT_SECRET),
        );
        let shared = Shared::new(String::new(), String::new(), key(), key(), inner);
        let identity_header = shared.lock().mi.secret.clone();
        assert_eq!(
            shared.secrets(),
            [DEMO_CLIENT_SECRET.to_owned(), identity_header]
        );
    }
}
