//! The [`Sandbox`] handle, its builder, the router and the observing middleware.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::AppRegistration;
use crate::botservice::{self, BOT_SERVICE_ISSUER, BotKeys, ChannelTokenClaims};
use crate::connector::ConnectorPost;
use crate::error::{EntraError, client_request_id};
use crate::faults::{self, Fault, MALFORMED_BODY, PendingFault};
use crate::jwt::SigningKey;
use crate::log::{FormInfo, RequestRecord, Route};
use crate::managed_identity;
use crate::state::{Inner, Shared, TokenSettings};
use crate::tls::{Listener, LocalCa, Mode, Peer};
use crate::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, clock, connector, entra};

const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// How long [`Sandbox::shutdown`] waits for open connections before aborting the server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Configures and starts a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    port: u16,
    token_lifetime: Duration,
    apps: Vec<AppRegistration>,
    demo_app: bool,
    resources: Vec<String>,
    tls: Option<LocalCa>,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            port: 0,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            apps: Vec::new(),
            demo_app: true,
            resources: Vec::new(),
            tls: None,
        }
    }
}

impl SandboxBuilder {
    /// Port on 127.0.0.1; 0 (the default) picks a free one.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Lifetime of issued access tokens (`expires_in`); default 3599 s.
    #[must_use]
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Registers an app (may be called repeatedly; a later app with the same client id wins).
    #[must_use]
    pub fn app(mut self, app: AppRegistration) -> Self {
        self.apps.push(app);
        self
    }

    /// Whether to register the demo app ([`DEMO_CLIENT_ID`] in [`DEMO_TENANT_ID`] with
    /// [`DEMO_CLIENT_SECRET`]); default true.
    #[must_use]
    pub fn with_demo_app(mut self, on: bool) -> Self {
        self.demo_app = on;
        self
    }

    /// Accepts `<resource>/.default` as a scope, besides the three Bot Connector resources and
    /// the Key Vault ([`KEY_VAULT_RESOURCE`](crate::KEY_VAULT_RESOURCE)), and tokens for
    /// `resource` at the Bot Connector (e.g. another bot's app id, for skill replies).
    #[must_use]
    pub fn accept_resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Serves Entra ID, the Bot Service and the Bot Connector over https, with a server
    /// certificate issued by `ca` for `localhost`, `127.0.0.1` and `::1`. The managed identity
    /// endpoints that are plain http in Azure stay plain http, on the same port
    /// ([`Sandbox::imds_host`]); every other endpoint answers on both schemes, and its metadata
    /// names the scheme the client used.
    #[must_use]
    pub fn tls(mut self, ca: LocalCa) -> Self {
        self.tls = Some(ca);
        self
    }

    /// Generates the signing keys, binds 127.0.0.1 and starts serving.
    pub async fn start(self) -> io::Result<Sandbox> {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)).await?;
        let addr = tcp.local_addr()?;
        let mode = match &self.tls {
            Some(ca) => Mode::Both(ca.server_acceptor().map_err(io::Error::other)?),
            None => Mode::Plain,
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let listener = Listener::new(tcp, mode);
        // RSA key generation is CPU-bound (~100 ms each): run the three side by side.
        let (entra_key, mi_key, bot_key) = tokio::try_join!(
            generate_key("botauth sandbox entra"),
            generate_key("botauth sandbox managed identity"),
            generate_key("botauth sandbox bot service"),
        )?;

        let settings = TokenSettings {
            lifetime: self.token_lifetime,
            refresh_in: None,
            numbers_as_strings: false,
        };
        let mut inner = Inner::new(settings, BotKeys::new(bot_key));
        if self.demo_app {
            inner.register_app(
                AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
                    .with_secret(DEMO_CLIENT_SECRET),
            );
        }
        self.apps
            .into_iter()
            .for_each(|app| inner.register_app(app));
        self.resources
            .into_iter()
            .for_each(|r| inner.accept_resource(r));
        let shared = Shared::new(
            format!("{scheme}://{addr}"),
            format!("http://{addr}"),
            entra_key,
            mi_key,
            inner,
        );
        let (tls_addr, thumbprint, tls_task) = managed_identity::start_tls(&shared).await?;

        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let shutdown = async {
                // A dropped sender means the handle is gone; Drop aborts the task anyway.
                let _ = stopped.await;
            };
            let app = app.into_make_service_with_connect_info::<Peer>();
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(%error, "botauth sandbox server stopped");
            }
        });
        tracing::debug!(url = %shared.url, "botauth sandbox listening");
        Ok(Sandbox {
            shared,
            addr,
            task: Some(task),
            stop: Some(stop),
            tls_addr,
            thumbprint,
            tls_task: Some(tls_task),
            ca: self.tls,
        })
    }
}

async fn generate_key(common_name: &'static str) -> io::Result<SigningKey> {
    tokio::task::spawn_blocking(move || SigningKey::generate(common_name))
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::other)
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(managed_identity::IMDS_PATH, get(managed_identity::imds))
        .route(
            managed_identity::APP_SERVICE_PATH,
            get(managed_identity::app_service),
        )
        .route(managed_identity::ARC_PATH, get(managed_identity::arc))
        .route(
            managed_identity::CLOUD_SHELL_PATH,
            post(managed_identity::cloud_shell),
        )
        .route(
            managed_identity::SERVICE_FABRIC_PATH,
            get(managed_identity::service_fabric),
        )
        .route(
            managed_identity::AZURE_ML_PATH,
            get(managed_identity::azure_ml),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
        .route("/{tenant}/oauth2/token", post(entra::token_v1))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(entra::metadata),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(entra::metadata_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(entra::jwks))
        .route("/{tenant}/discovery/keys", get(entra::jwks))
        .route("/common/discovery/instance", get(entra::instance_discovery))
        .route(
            "/botservice/v1/.well-known/openidconfiguration",
            get(botservice::metadata),
        )
        .route("/botservice/v1/.well-known/keys", get(botservice::jwks))
        .route(
            "/v3/conversations/{conversation}/activities",
            post(connector::post_activity),
        )
        .route(
            "/v3/conversations/{conversation}/activities/{activity}",
            post(connector::post_activity),
        )
        .merge(crate::token_service::routes())
        .merge(crate::key_vault::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), observe))
        // The console's own page and stream, and the Key Vault's control endpoint, are not
        // sandbox traffic: outside `observe`.
        .merge(crate::console::router())
        .merge(crate::key_vault::control_routes())
        .with_state(shared)
}

async fn not_found(headers: HeaderMap) -> Response {
    EntraError::for_status(StatusCode::NOT_FOUND, "sandbox: no such endpoint.")
        .into_response(&headers)
}

/// Applies injected faults, echoes `client-request-id`, and logs every request.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let route = Route::classify(request.uri().path());
    let (mut request, capture) = match crate::console::capture(&shared, route, request).await {
        Ok(captured) => captured,
        Err(response) => return response,
    };
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    // An open outage window answers like a queued status fault, without consuming one.
    let fault = {
        let mut inner = shared.lock();
        match inner.mi.outage(route) {
            Some(status) => Some(Fault::status(status)),
            None => inner.faults.pop(route),
        }
    };

    let injected = matches!(fault, Some(Fault::Status { .. } | Fault::StatusFor { .. }));
    let mut response = match fault {
        Some(Fault::StatusFor { status, duration }) => {
            shared.lock().mi.open_outage(route, status, duration);
            faults::status_response(&shared, route, status, None, None, &headers)
        }
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => faults::status_response(
            &shared,
            route,
            status,
            body,
            retry_after.as_deref(),
            &headers,
        ),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::MalformedJson) => {
            let mut response = next.run(request).await;
            if response.status().is_success() {
                *response.body_mut() = Body::from(MALFORMED_BODY);
            }
            response
        }
        Some(fault) => {
            request.extensions_mut().insert(PendingFault(fault));
            next.run(request).await
        }
        None => next.run(request).await,
    };

    let client_request_id = client_request_id(&headers);
    let echo = headers
        .get("return-client-request-id")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if let Some(id) = client_request_id.as_deref().filter(|_| echo) {
        if let Ok(value) = HeaderValue::from_str(id) {
            response.headers_mut().insert("client-request-id", value);
        }
    }

    if let Some(capture) = capture {
        response = capture.finish(&shared, injected, response).await;
    }
    let form = response
        .extensions_mut()
        .remove::<FormInfo>()
        .unwrap_or_default();
    let record = RequestRecord {
        route,
        method,
        path,
        status: response.status().as_u16(),
        at,
        client_id: form.client_id,
        client_request_id,
        grant_type: form.grant_type,
    };
    tracing::debug!(
        method = %record.method,
        path = %record.path,
        status = record.status,
        route = ?route,
        "botauth sandbox request"
    );
    shared.lock().log.push(record);
    response
}

/// A running sandbox on 127.0.0.1. Dropping it stops the server.
pub struct Sandbox {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
    pub(crate) tls_addr: SocketAddr,
    pub(crate) thumbprint: String,
    tls_task: Option<JoinHandle<()>>,
    ca: Option<LocalCa>,
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

    /// Starts a sandbox with the defaults (ephemeral port, demo app registered).
    pub async fn start() -> io::Result<Self> {
        SandboxBuilder::default().start().await
    }

    /// A builder for a customised sandbox.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
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

    /// `http://127.0.0.1:PORT` (`https://…` with [`SandboxBuilder::tls`]) without a trailing
    /// slash: the authority host.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// The CA that issued the https certificate, when started with [`SandboxBuilder::tls`].
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
        entra::metadata_url(&self.shared.url, tenant)
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
    /// the Key Vault ([`KEY_VAULT_RESOURCE`](crate::KEY_VAULT_RESOURCE)), and tokens for
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
        entra::verify_access_token(&self.shared, token)
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
        botservice::metadata_url(&self.shared.url)
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

    /// The activity bodies the Bot Connector accepted, in order (the `activity` of each of
    /// [`Sandbox::connector_posts`]).
    pub fn connector_activities(&self) -> Vec<serde_json::Value> {
        let inner = self.shared.lock();
        inner.posts.iter().map(|p| p.activity.clone()).collect()
    }

    /// Everything the Bot Connector accepted, in order: where it was posted and by whom.
    pub fn connector_posts(&self) -> Vec<ConnectorPost> {
        self.shared.lock().posts.clone()
    }
}
