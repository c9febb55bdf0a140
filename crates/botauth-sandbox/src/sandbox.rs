//! The [`Sandbox`] handle: its lifetime, its addresses and the settings every endpoint shares.
//! Each endpoint family adds its own methods in its own file (`managed_identity/handle.rs`,
//! `key_vault/handle.rs`, `channel.rs`, ...), so this file depends on none of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::AppRegistration;
use crate::botservice::keys::{BOT_SERVICE_ISSUER, ChannelTokenClaims};
use crate::clock;
use crate::faults::Fault;
use crate::jwt::SigningKey;
use crate::log::{ConnectorPost, RequestRecord, Route};
use crate::state::{Shared, bot_service_metadata_url, entra_metadata_url};
use crate::tls::ca::LocalCa;

/// How long [`Sandbox::shutdown`] waits for open connections before aborting the server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running sandbox on 127.0.0.1. Dropping it stops the server.
pub struct Sandbox {
    pub(crate) shared: Arc<Shared>,
    pub(crate) addr: SocketAddr,
    pub(crate) task: Option<JoinHandle<()>>,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) tls_addr: SocketAddr,
    pub(crate) thumbprint: String,
    pub(crate) tls_task: Option<JoinHandle<()>>,
    pub(crate) ca: Option<LocalCa>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(task) = self.tls_task.take() {
            task.abort();
        }
    }
}

impl Sandbox {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting connections and waits (briefly) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.tls_task.take() {
            task.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }

    /// `http://127.0.0.1:PORT` (`https://…` with [`SandboxBuilder::tls`](crate::SandboxBuilder::tls)) without a trailing
    /// slash: the authority host.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// The CA that issued the https certificate, when started with [`SandboxBuilder::tls`](crate::SandboxBuilder::tls).
    pub fn tls_ca(&self) -> Option<&LocalCa> {
        self.ca.as_ref()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{url}/{tenant}/oauth2/v2.0/token`, also the `aud` client assertions must carry.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        self.shared.token_endpoint(tenant)
    }

    /// `{url}/{tenant}/v2.0/.well-known/openid-configuration`.
    pub fn entra_metadata_url(&self, tenant: &str) -> String {
        entra_metadata_url(&self.shared.url, tenant)
    }

    /// Adds an app registration, replacing one with the same client id.
    pub fn register_app(&self, app: AppRegistration) {
        self.shared.lock().register_app(app);
    }

    /// Replaces the certificates (DER X.509) registered on app `client_id`: the Entra side of a
    /// certificate rotation (register the new one, drop the old). Returns false if there is no
    /// such app.
    pub fn set_app_certificates(&self, client_id: &str, ders: Vec<Vec<u8>>) -> bool {
        self.shared.lock().replace_app_certificates(client_id, ders)
    }

    /// Accepts `<resource>/.default` as a scope, besides the three Bot Connector resources and
    /// the Key Vault (`https://vault.azure.net`), and tokens for
    /// `resource` at the Bot Connector (e.g. another bot's app id, for skill replies).
    pub fn accept_resource(&self, resource: impl Into<String>) {
        self.shared.lock().accept_resource(resource.into());
    }

    /// Queues `fault` for the next request on `route` (faults are consumed once, in FIFO order).
    pub fn inject(&self, route: Route, fault: Fault) {
        self.inject_n(route, fault, 1);
    }

    /// Queues `fault` for the next `times` requests on `route`.
    pub fn inject_n(&self, route: Route, fault: Fault, times: usize) {
        self.shared.lock().faults.push(route, fault, times);
    }

    /// Drops all queued faults and ends open outage windows ([`Fault::StatusFor`]).
    pub fn clear_faults(&self) {
        let mut inner = self.shared.lock();
        inner.faults.clear();
        inner.mi.outages.clear();
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let mut log = self.shared.lock().log.clone();
        // Records are appended when answered; delayed requests finish out of order.
        log.sort_by_key(|r| r.at);
        log
    }

    /// How many requests hit `route`.
    pub fn count(&self, route: Route) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.route == route)
            .count()
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }

    /// Lifetime of tokens issued from now on (`expires_in`); default 3599 s.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.lock().token.lifetime = lifetime;
    }

    /// When `Some`, token responses (also those of the managed identity endpoints) include `refresh_in`.
    pub fn set_refresh_in(&self, refresh_in: Option<Duration>) {
        self.shared.lock().token.refresh_in = refresh_in;
    }

    /// Sends `expires_in`, `ext_expires_in` and `refresh_in` as JSON strings, as Entra sometimes does.
    pub fn set_numbers_as_strings(&self, on: bool) {
        self.shared.lock().token.numbers_as_strings = on;
    }

    /// Checks the signature and `exp` of an access token this sandbox issued and returns its claims.
    pub fn verify_access_token(&self, token: &str) -> Result<serde_json::Value, String> {
        self.shared.verify_access_token(token)
    }

    /// `{url}/mi-issuer`: the `iss` of [`Sandbox::mint_managed_identity_token`] tokens.
    pub fn managed_identity_issuer(&self) -> String {
        self.shared.managed_identity_issuer()
    }

    /// A managed-identity token (RS256, signed by the sandbox's MI key, no `x5t` header) that the
    /// token endpoint accepts as a federated `client_assertion` when an app's
    /// [`FederatedCredential`](crate::FederatedCredential) matches its issuer, subject and audience.
    pub fn mint_managed_identity_token(
        &self,
        subject: &str,
        audience: &str,
        lifetime: Duration,
    ) -> String {
        let now = clock::unix_now();
        let claims = serde_json::json!({
            "iss": self.managed_identity_issuer(),
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(clock::secs(lifetime)),
            "uti": uuid::Uuid::new_v4().to_string(),
        });
        self.shared.mi_key.sign(&claims)
    }

    /// `{url}/botservice/v1/.well-known/openidconfiguration`.
    pub fn bot_service_metadata_url(&self) -> String {
        bot_service_metadata_url(&self.shared.url)
    }

    /// `https://api.botframework.com`, the issuer of channel tokens.
    pub fn bot_service_issuer(&self) -> &'static str {
        BOT_SERVICE_ISSUER
    }

    /// The `cloud = { … }` line of botauth's file format for this sandbox: a custom cloud whose
    /// authority and Bot Service metadata are the sandbox, with the public cloud's Bot Connector
    /// scope, Bot Service issuer and federation audience.
    pub fn cloud_toml(&self) -> String {
        format!(
            "cloud = {{ authority_host = \"{}\", bot_connector_scope = \"https://api.botframework.com/.default\", \
             bot_service_metadata_url = \"{}\", bot_service_issuer = \"{}\", \
             federation_audience = \"api://AzureADTokenExchange\" }}",
            self.url(),
            self.bot_service_metadata_url(),
            self.bot_service_issuer()
        )
    }

    /// An RS256 channel token signed by the current Bot Service key (header `kid` names it).
    pub fn mint_channel_token(&self, claims: ChannelTokenClaims) -> String {
        let key = self.shared.lock().bot.current();
        key.sign(&claims.into_claims())
    }

    /// Generates a new Bot Service key, makes it the signer and publishes it in the JWKS next to the
    /// old ones; returns its kid. Blocks for the ~100 ms RSA key generation takes.
    pub fn rotate_bot_service_key(&self) -> String {
        // Generate outside the lock: it takes ~100 ms.
        match SigningKey::generate("botauth sandbox bot service") {
            Ok(key) => self.shared.lock().bot.rotate(key),
            Err(error) => {
                tracing::warn!(%error, "botauth sandbox could not generate a key; keeping the current one");
                self.shared.lock().bot.current().kid().to_owned()
            }
        }
    }

    /// Removes a key from the Bot Service JWKS. If it is the current signer, it keeps signing, so
    /// its tokens carry a `kid` the JWKS no longer lists.
    pub fn remove_bot_service_key(&self, kid: &str) {
        self.shared.lock().bot.remove(kid);
    }

    /// Sets a published key's `endorsements` (`None` removes the field).
    pub fn set_bot_service_endorsements(&self, kid: &str, endorsements: Option<Vec<String>>) {
        self.shared.lock().bot.set_endorsements(kid, endorsements);
    }

    /// The current Bot Service signing key's kid.
    pub fn bot_service_kid(&self) -> String {
        self.shared.lock().bot.current().kid().to_owned()
    }

    /// `{url}/`: a `serviceUrl` (with trailing slash) for the sandbox's Bot Connector.
    pub fn connector_url(&self) -> String {
        format!("{}/", self.shared.url)
    }

    /// Everything the Bot Connector accepted, in order: where it was posted and by whom.
    pub fn connector_posts(&self) -> Vec<ConnectorPost> {
        self.shared.lock().posts.clone()
    }
}
