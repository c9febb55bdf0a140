//! [`SandboxBuilder`]: binds the listeners, generates the keys and starts serving.

use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::{AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID};
use crate::botservice::keys::BotKeys;
use crate::jwt::SigningKey;
use crate::managed_identity::service_fabric_listener;
use crate::router::router;
use crate::sandbox::Sandbox;
use crate::state::{Inner, Shared, TokenSettings};
use crate::tls::ca::LocalCa;
use crate::tls::listener::{Listener, Mode, Peer};

const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// Configures and starts a [`Sandbox`].
#[derive(Debug)]
pub struct SandboxBuilder {
    port: u16,
    token_lifetime: Duration,
    demo_app: bool,
    tls: Option<LocalCa>,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            port: 0,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            demo_app: true,
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
    #[cfg(test)]
    pub(crate) fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Whether to register the demo app ([`DEMO_CLIENT_ID`] in [`DEMO_TENANT_ID`] with
    /// [`DEMO_CLIENT_SECRET`]); default true.
    #[must_use]
    pub fn with_demo_app(mut self, on: bool) -> Self {
        self.demo_app = on;
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
        let shared = Shared::new(
            format!("{scheme}://{addr}"),
            format!("http://{addr}"),
            entra_key,
            mi_key,
            inner,
        );
        let (tls_addr, thumbprint, tls_task) =
            service_fabric_listener::start(router(Arc::clone(&shared))).await?;

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

impl Sandbox {
    /// Starts a sandbox with the defaults (ephemeral port, demo app registered).
    pub async fn start() -> io::Result<Self> {
        SandboxBuilder::default().start().await
    }

    /// A builder for a customised sandbox.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }
}

#[cfg(test)]
mod tests {

    use crate::Sandbox;
    use crate::testkit::demo_token_reply;

    #[tokio::test]
    async fn builder_options_and_lifecycle() {
        let sandbox = Sandbox::builder()
            .with_demo_app(false)
            .start()
            .await
            .unwrap();
        assert!(sandbox.url().starts_with("http://127.0.0.1:"));
        assert_eq!(sandbox.url(), format!("http://{}", sandbox.addr()));
        assert!(!sandbox.url().ends_with('/'));
        demo_token_reply(&sandbox)
            .await
            .assert_entra_error(400, "unauthorized_client", 700_016);

        let url = sandbox.url();
        sandbox.shutdown().await;
        assert!(reqwest::Client::new().get(&url).send().await.is_err());

        let dropped = Sandbox::start().await.unwrap();
        let url = dropped.url();
        drop(dropped);
        tokio::task::yield_now().await;
        assert!(reqwest::Client::new().get(&url).send().await.is_err());
    }
}
