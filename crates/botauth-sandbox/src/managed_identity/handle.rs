//! The managed identity part of the [`Sandbox`] handle.

use std::sync::Arc;

use super::endpoints::verify;
use super::identity::ManagedIdentity;
use super::spec::{Listener, spec};
use crate::log::Route;
use crate::sandbox::Sandbox;

impl Sandbox {
    /// `http://127.0.0.1:PORT` (plain http even with TLS, as IMDS is): the IMDS host, for `AZURE_POD_IDENTITY_AUTHORITY_HOST` (the token endpoint is
    /// `{url}/metadata/identity/oauth2/token`).
    pub fn imds_host(&self) -> String {
        self.shared.http_url.clone()
    }

    /// The endpoint of the managed identity source served on `route` ([`Route::Imds`],
    /// [`Route::AppService`], [`Route::AzureArc`], [`Route::CloudShell`], [`Route::ServiceFabric`],
    /// [`Route::AzureMl`]), for the variable its clients read (`IDENTITY_ENDPOINT`,
    /// `MSI_ENDPOINT`); `None` for a route that is not a managed identity source. Plain http
    /// except Service Fabric's, which is on its own TLS listener.
    pub fn managed_identity_endpoint(&self, route: Route) -> Option<String> {
        let spec = spec(route)?;
        Some(match spec.listener {
            Listener::Http => format!("{}{}", self.shared.http_url, spec.path),
            Listener::ServiceFabricTls => format!("https://{}{}", self.tls_addr, spec.path),
        })
    }

    /// The SHA-1 thumbprint (40 upper-case hex digits) of the Service Fabric listener's
    /// certificate, generated when the sandbox started: `IDENTITY_SERVER_THUMBPRINT`.
    pub fn service_fabric_thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The secret the App Service, Service Fabric and Azure ML endpoints expect
    /// (`IDENTITY_HEADER`, `MSI_SECRET`): a fresh random value per sandbox.
    pub fn identity_header(&self) -> String {
        self.shared.lock().mi.secret.clone()
    }

    /// Sets the host's system-assigned identity (`None`: the host has none, and requests for it
    /// answer 400 "Identity not found"). Default: the demo system-assigned identity ([`DEMO_SYSTEM_MI_CLIENT_ID`](crate::DEMO_SYSTEM_MI_CLIENT_ID)).
    pub fn set_system_identity(&self, identity: Option<ManagedIdentity>) {
        self.shared.lock().mi.system = identity;
    }

    /// Assigns a user-assigned identity to the host (default: [`ManagedIdentity::demo_user_assigned`]).
    pub(crate) fn add_user_assigned_identity(&self, identity: ManagedIdentity) {
        self.shared.lock().mi.users.push(identity);
    }

    /// The directory the Arc endpoint writes its challenge key files to. Until it is set, Arc
    /// requests answer 500.
    pub fn set_arc_key_directory(&self, directory: impl Into<std::path::PathBuf>) {
        self.shared.lock().mi.arc_key_directory = Some(directory.into());
    }

    /// The length of the Arc key files written from now on (default 64).
    pub fn set_arc_key_len(&self, len: usize) {
        self.shared.lock().mi.arc_key_len = len;
    }

    /// The time source of windowed faults ([`Fault::StatusFor`](crate::Fault::StatusFor)); default: the system clock.
    /// Tests that drive a client with a manual clock pass the same clock here.
    pub fn set_clock(&self, now: impl Fn() -> std::time::SystemTime + Send + Sync + 'static) {
        self.shared.lock().mi.clock = Some(Arc::new(now));
    }

    /// Checks the signature and `exp` of a managed identity token this sandbox issued and returns
    /// its claims.
    pub fn verify_managed_identity_token(&self, token: &str) -> Result<serde_json::Value, String> {
        verify(&self.shared, token)
    }
}
