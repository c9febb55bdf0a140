//! Managed identity endpoints (docs/protocol.md §4): IMDS, App Service, Azure Arc, Cloud Shell, Service
//! Fabric (over TLS, on its own listener) and Azure ML. Each checks its secret header and its
//! api-version exactly, answering 400 or 401 as the real endpoint does, and issues tokens signed
//! by the sandbox's managed identity key, which the token endpoint accepts as federated
//! assertions when an app has a matching federated identity credential.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::clock;
use crate::error::json_response;
use crate::log::Route;
use crate::state::Shared;
use crate::tls::{Listener, Mode, Peer};

/// Client id of the sandbox's demo user-assigned managed identity.
pub const DEMO_MI_CLIENT_ID: &str = "33333333-0000-4000-8000-00000000c11d";
/// Object (principal) id of the demo user-assigned managed identity: the `sub` of its tokens.
pub const DEMO_MI_OBJECT_ID: &str = "33333333-0000-4000-8000-0000000000b1";
/// Azure resource id of the demo user-assigned managed identity.
pub const DEMO_MI_RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/botauth/providers/Microsoft.ManagedIdentity/userAssignedIdentities/botauth-demo";
/// Client id of the sandbox host's system-assigned identity.
pub const DEMO_SYSTEM_MI_CLIENT_ID: &str = "44444444-0000-4000-8000-00000000c11d";
/// Object id of the sandbox host's system-assigned identity.
pub const DEMO_SYSTEM_MI_OBJECT_ID: &str = "44444444-0000-4000-8000-0000000000b1";

/// The api-versions the endpoints insist on.
const IMDS_API: &str = "2018-02-01";
const APP_SERVICE_API: &str = "2019-08-01";
const ARC_API: &str = "2020-06-01";
const SERVICE_FABRIC_API: &str = "2019-07-01-preview";
const AZURE_ML_API: &str = "2017-09-01";

/// Paths of the endpoints below the sandbox's URL.
pub(crate) const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
pub(crate) const APP_SERVICE_PATH: &str = "/appservice/msi/token";
pub(crate) const ARC_PATH: &str = "/arc/metadata/identity/oauth2/token";
pub(crate) const CLOUD_SHELL_PATH: &str = "/cloudshell/oauth2/token";
pub(crate) const SERVICE_FABRIC_PATH: &str = "/servicefabric/metadata/identity/oauth2/token";
pub(crate) const AZURE_ML_PATH: &str = "/azureml/msi/token";

/// A managed identity the sandbox's host has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagedIdentity {
    /// Client (application) id.
    pub client_id: String,
    /// Object (principal) id: the `sub` of its tokens, and the subject of federated credentials.
    pub object_id: String,
    /// Azure resource id.
    pub resource_id: String,
}

impl ManagedIdentity {
    /// An identity with these ids.
    pub fn new(
        client_id: impl Into<String>,
        object_id: impl Into<String>,
        resource_id: impl Into<String>,
    ) -> Self {
        ManagedIdentity {
            client_id: client_id.into(),
            object_id: object_id.into(),
            resource_id: resource_id.into(),
        }
    }

    /// The demo user-assigned identity ([`DEMO_MI_CLIENT_ID`], [`DEMO_MI_OBJECT_ID`]).
    pub fn demo_user_assigned() -> Self {
        Self::new(DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_MI_RESOURCE_ID)
    }

    /// The demo system-assigned identity.
    pub fn demo_system_assigned() -> Self {
        Self::new(
            DEMO_SYSTEM_MI_CLIENT_ID,
            DEMO_SYSTEM_MI_OBJECT_ID,
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/botauth/providers/Microsoft.Compute/virtualMachines/sandbox",
        )
    }
}

/// A time source for windowed faults ([`Fault::StatusFor`](crate::Fault::StatusFor)(crate::Fault::StatusFor)).
pub(crate) type TimeSource = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The managed identity part of the sandbox's state.
pub(crate) struct MiState {
    pub(crate) system: Option<ManagedIdentity>,
    pub(crate) users: Vec<ManagedIdentity>,
    /// `IDENTITY_HEADER` / `MSI_SECRET` the endpoints expect.
    pub(crate) secret: String,
    pub(crate) arc_key_directory: Option<PathBuf>,
    pub(crate) arc_key_len: usize,
    pub(crate) arc_keys: HashSet<String>,
    pub(crate) clock: Option<TimeSource>,
    /// Route → (status, until): windows opened by `Fault::StatusFor`.
    pub(crate) outages: HashMap<Route, (u16, SystemTime)>,
}

impl std::fmt::Debug for MiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiState")
            .field("system", &self.system)
            .field("users", &self.users)
            .field("arc_key_directory", &self.arc_key_directory)
            .finish_non_exhaustive()
    }
}

impl Default for MiState {
    fn default() -> Self {
        MiState {
            system: Some(ManagedIdentity::demo_system_assigned()),
            users: vec![ManagedIdentity::demo_user_assigned()],
            secret: uuid::Uuid::new_v4().to_string(),
            arc_key_directory: None,
            arc_key_len: 64,
            arc_keys: HashSet::new(),
            clock: None,
            outages: HashMap::new(),
        }
    }
}

impl MiState {
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.as_ref().map_or_else(SystemTime::now, |c| c())
    }

    /// The status of an open outage window on `route`, closing expired ones.
    pub(crate) fn outage(&mut self, route: Route) -> Option<u16> {
        let now = self.now();
        match self.outages.get(&route) {
            Some((status, until)) if now < *until => Some(*status),
            Some(_) => {
                self.outages.remove(&route);
                None
            }
            None => None,
        }
    }

    pub(crate) fn open_outage(&mut self, route: Route, status: u16, duration: Duration) {
        let until = self.now() + duration;
        self.outages.insert(route, (status, until));
    }
}

type Params = Query<HashMap<String, String>>;

/// A refusal, turned into a response at the end of a handler (small, unlike a `Response`).
struct Refusal {
    status: StatusCode,
    body: Value,
}

impl Refusal {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body)
    }
}

fn error(status: StatusCode, error: &str, description: &str) -> Refusal {
    Refusal {
        status,
        body: json!({"error": error, "error_description": description}),
    }
}

fn bad_request(description: &str) -> Refusal {
    error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn api_version(params: &HashMap<String, String>, expected: &str) -> Result<(), Refusal> {
    match params.get("api-version").map(String::as_str) {
        Some(v) if v == expected => Ok(()),
        Some(_) => Err(bad_request(&format!(
            "Invalid api-version: this endpoint supports {expected}."
        ))),
        None => Err(bad_request(
            "Required query variable 'api-version' is missing.",
        )),
    }
}

fn resource(params: &HashMap<String, String>) -> Result<String, Refusal> {
    params
        .get("resource")
        .filter(|r| !r.trim().is_empty())
        .cloned()
        .ok_or_else(|| bad_request("Required query variable 'resource' is missing."))
}

/// How a request selects an identity: `(client id, object id, resource id)` parameter names.
struct IdNames {
    client_id: Option<&'static str>,
    object_id: Option<&'static str>,
    resource_id: Option<&'static str>,
}

fn find_identity(
    shared: &Shared,
    params: &HashMap<String, String>,
    names: &IdNames,
) -> Result<ManagedIdentity, Refusal> {
    let given: Vec<(usize, &String)> = [names.client_id, names.object_id, names.resource_id]
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.and_then(|n| params.get(n)).map(|v| (i, v)))
        .collect();
    let inner = shared.lock();
    let found = match given.as_slice() {
        [] => inner.mi.system.clone(),
        [(i, value)] => inner
            .mi
            .users
            .iter()
            .find(|m| {
                let id = match i {
                    0 => &m.client_id,
                    1 => &m.object_id,
                    _ => &m.resource_id,
                };
                id.eq_ignore_ascii_case(value)
            })
            .cloned(),
        _ => {
            return Err(bad_request(
                "Only one of client_id, object_id or msi_res_id may be specified.",
            ));
        }
    };
    found.ok_or_else(|| bad_request("Identity not found"))
}

/// How an endpoint shapes its success body.
#[derive(Clone, Copy)]
enum Shape {
    /// Every value a string, `expires_on` epoch (IMDS, App Service, Arc).
    Strings,
    /// Numbers (Cloud Shell, Service Fabric).
    Numbers,
    /// `expires_on` as `MM/dd/yyyy HH:mm:ss +00:00` and no `expires_in` (Azure ML's 2017 API).
    OldDate,
}

fn issue(shared: &Shared, identity: &ManagedIdentity, resource: &str, shape: Shape) -> Response {
    let (lifetime, refresh_in) = {
        let settings = &shared.lock().token;
        (
            clock::secs(settings.lifetime),
            settings.refresh_in.map(clock::secs),
        )
    };
    let now = clock::unix_now();
    let exp = now.saturating_add(lifetime);
    let claims = json!({
        "iss": shared.managed_identity_issuer(),
        "sub": identity.object_id,
        "oid": identity.object_id,
        "appid": identity.client_id,
        "aud": resource,
        "iat": now,
        "nbf": now,
        "exp": exp,
        "idtyp": "app",
        "xms_mirid": identity.resource_id,
        "uti": uuid::Uuid::new_v4().to_string(),
    });
    let token = shared.mi_key.sign(&claims);
    let mut body = match shape {
        Shape::Strings => json!({
            "access_token": token,
            "client_id": identity.client_id,
            "expires_in": lifetime.to_string(),
            "expires_on": exp.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
        Shape::Numbers => json!({
            "access_token": token,
            "expires_in": lifetime,
            "expires_on": exp,
            "resource": resource,
            "token_type": "Bearer",
        }),
        Shape::OldDate => json!({
            "access_token": token,
            "expires_on": old_date(exp),
            "resource": resource,
            "token_type": "Bearer",
        }),
    };
    if let (Some(refresh_in), Some(map)) = (refresh_in, body.as_object_mut()) {
        map.insert("refresh_in".into(), Value::String(refresh_in.to_string()));
    }
    json_response(StatusCode::OK, &body)
}

/// `MM/dd/yyyy HH:mm:ss +00:00`.
fn old_date(unix: i64) -> String {
    // entra_timestamp is `yyyy-MM-dd HH:mm:ssZ`; rearrange it.
    let t = clock::entra_timestamp(unix);
    let (date, time) = t.split_once(' ').unwrap_or((&t, ""));
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next().unwrap_or_default(),
        d.next().unwrap_or_default(),
        d.next().unwrap_or_default(),
    );
    format!("{m}/{day}/{y} {} +00:00", time.trim_end_matches('Z'))
}

fn require_secret(shared: &Shared, headers: &HeaderMap, name: &str) -> Result<(), Refusal> {
    let expected = shared.lock().mi.secret.clone();
    match header(headers, name) {
        Some(v) if v == expected => Ok(()),
        Some(_) => Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            &format!("The '{name}' header does not match."),
        )),
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            &format!("Required header '{name}' is missing."),
        )),
    }
}

fn require_metadata(headers: &HeaderMap) -> Result<(), Refusal> {
    match header(headers, "metadata") {
        Some("true") => Ok(()),
        _ => Err(bad_request("Required metadata header not specified")),
    }
}

fn answer(result: Result<Response, Refusal>) -> Response {
    result.unwrap_or_else(Refusal::into_response)
}

/// `GET /metadata/identity/oauth2/token`.
pub(crate) async fn imds(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    answer((|| -> Result<Response, Refusal> {
        require_metadata(&headers)?;
        api_version(&params, IMDS_API)?;
        let resource = resource(&params)?;
        let names = IdNames {
            client_id: Some("client_id"),
            object_id: Some("object_id"),
            resource_id: Some("msi_res_id"),
        };
        let identity = find_identity(&shared, &params, &names)?;
        Ok(issue(&shared, &identity, &resource, Shape::Strings))
    })())
}

/// `GET /appservice/msi/token`.
pub(crate) async fn app_service(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    answer((|| -> Result<Response, Refusal> {
        require_secret(&shared, &headers, "x-identity-header")?;
        api_version(&params, APP_SERVICE_API)?;
        let resource = resource(&params)?;
        let names = IdNames {
            client_id: Some("client_id"),
            object_id: Some("object_id"),
            resource_id: Some("mi_res_id"),
        };
        let identity = find_identity(&shared, &params, &names)?;
        Ok(issue(&shared, &identity, &resource, Shape::Strings))
    })())
}

/// `GET /arc/metadata/identity/oauth2/token`: a challenge first, then the key file's contents.
pub(crate) async fn arc(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(r) = require_metadata(&headers).and_then(|()| api_version(&params, ARC_API)) {
        return r.into_response();
    }
    let resource = match resource(&params) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    if ["client_id", "object_id", "msi_res_id", "mi_res_id"]
        .iter()
        .any(|k| params.contains_key(*k))
    {
        return bad_request("Azure Arc supports only the system-assigned identity.")
            .into_response();
    }
    match header(&headers, "authorization") {
        None => challenge(&shared).await,
        Some(value) => {
            let presented = value.strip_prefix("Basic ").unwrap_or_default();
            let known = shared.lock().mi.arc_keys.contains(presented);
            if !known {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "The key presented in the Authorization header is not valid.",
                )
                .into_response();
            }
            let identity = shared.lock().mi.system.clone();
            match identity {
                Some(identity) => issue(&shared, &identity, &resource, Shape::Strings),
                None => bad_request("Identity not found").into_response(),
            }
        }
    }
}

async fn challenge(shared: &Shared) -> Response {
    let (directory, len) = {
        let inner = shared.lock();
        (inner.mi.arc_key_directory.clone(), inner.mi.arc_key_len)
    };
    let Some(directory) = directory else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "sandbox: no Arc key directory is set (Sandbox::set_arc_key_directory).",
        )
        .into_response();
    };
    let mut key = String::new();
    while key.len() < len {
        key.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    key.truncate(len);
    let path = directory.join(format!("{}.key", uuid::Uuid::new_v4()));
    if let Err(e) = tokio::fs::write(&path, &key).await {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &format!("sandbox: cannot write the Arc key file: {e}"),
        )
        .into_response();
    }
    shared.lock().mi.arc_keys.insert(key);
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "unauthorized_client",
        "Authorization required: read the key file named in WWW-Authenticate.",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("Basic realm={}", path.display())) {
        response.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    response
}

/// `POST /cloudshell/oauth2/token` with the form `resource=R`.
pub(crate) async fn cloud_shell(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer((|| -> Result<Response, Refusal> {
        require_metadata(&headers)?;
        let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        let resource = resource(&form)?;
        if form.len() > 1 {
            return Err(bad_request(
                "Cloud Shell supports only the signed-in user's identity.",
            ));
        }
        let identity = shared
            .lock()
            .mi
            .system
            .clone()
            .ok_or_else(|| bad_request("Identity not found"))?;
        Ok(issue(&shared, &identity, &resource, Shape::Numbers))
    })())
}

/// `GET /servicefabric/metadata/identity/oauth2/token`, on the TLS listener only.
pub(crate) async fn service_fabric(
    State(shared): State<Arc<Shared>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<Peer>>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if !peer.is_some_and(|axum::Extension(axum::extract::ConnectInfo(peer))| peer.tls) {
        return bad_request("Service Fabric's identity endpoint is served over https only.")
            .into_response();
    }
    let expected = shared.lock().mi.secret.clone();
    match header(&headers, "secret") {
        Some(v) if v == expected => {}
        _ => {
            return json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": {"code": "SecretHeaderNotFound", "message": "Secret is not found in the request headers or does not match."}}),
            );
        }
    }
    answer((|| -> Result<Response, Refusal> {
        api_version(&params, SERVICE_FABRIC_API)?;
        let resource = resource(&params)?;
        let names = IdNames {
            client_id: Some("client_id"),
            object_id: None,
            resource_id: Some("mi_res_id"),
        };
        let identity = find_identity(&shared, &params, &names)?;
        Ok(issue(&shared, &identity, &resource, Shape::Numbers))
    })())
}

/// `GET /azureml/msi/token`.
pub(crate) async fn azure_ml(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    answer((|| -> Result<Response, Refusal> {
        require_secret(&shared, &headers, "secret")?;
        api_version(&params, AZURE_ML_API)?;
        let resource = resource(&params)?;
        let names = IdNames {
            client_id: Some("clientid"),
            object_id: None,
            resource_id: None,
        };
        let identity = find_identity(&shared, &params, &names)?;
        Ok(issue(&shared, &identity, &resource, Shape::OldDate))
    })())
}

/// Checks a managed identity token this sandbox issued: signature and `exp`.
pub(crate) fn verify(shared: &Shared, token: &str) -> Result<Value, String> {
    shared.mi_key.verify_unexpired(token)
}

// ------------------------------------------------------------------------------------------------
// The managed identity part of the `Sandbox` handle.

impl crate::Sandbox {
    /// `http://127.0.0.1:PORT` (plain http even with TLS, as IMDS is): the IMDS host, for `AZURE_POD_IDENTITY_AUTHORITY_HOST` (the token endpoint is
    /// `{url}/metadata/identity/oauth2/token`).
    pub fn imds_host(&self) -> String {
        self.shared.http_url.clone()
    }

    /// The App Service / Functions endpoint, for `IDENTITY_ENDPOINT`.
    pub fn app_service_endpoint(&self) -> String {
        format!("{}{}", self.shared.http_url, APP_SERVICE_PATH)
    }

    /// The Azure Arc endpoint, for `IDENTITY_ENDPOINT` (with `IMDS_ENDPOINT` set to anything).
    pub fn arc_endpoint(&self) -> String {
        format!("{}{}", self.shared.http_url, ARC_PATH)
    }

    /// The Cloud Shell endpoint, for `MSI_ENDPOINT`.
    pub fn cloud_shell_endpoint(&self) -> String {
        format!("{}{}", self.shared.http_url, CLOUD_SHELL_PATH)
    }

    /// The Azure ML endpoint, for `MSI_ENDPOINT` (with `MSI_SECRET`).
    pub fn azure_ml_endpoint(&self) -> String {
        format!("{}{}", self.shared.http_url, AZURE_ML_PATH)
    }

    /// The Service Fabric endpoint on its own TLS listener, for `IDENTITY_ENDPOINT`.
    pub fn service_fabric_endpoint(&self) -> String {
        format!("https://{}{}", self.tls_addr, SERVICE_FABRIC_PATH)
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
    /// answer 400 "Identity not found"). Default: [`ManagedIdentity::demo_system_assigned`].
    pub fn set_system_identity(&self, identity: Option<ManagedIdentity>) {
        self.shared.lock().mi.system = identity;
    }

    /// Assigns a user-assigned identity to the host (default: [`ManagedIdentity::demo_user_assigned`]).
    pub fn add_user_assigned_identity(&self, identity: ManagedIdentity) {
        self.shared.lock().mi.users.push(identity);
    }

    /// Removes every user-assigned identity.
    pub fn clear_user_assigned_identities(&self) {
        self.shared.lock().mi.users.clear();
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

// ------------------------------------------------------------------------------------------------
// The Service Fabric TLS listener.

/// Starts the Service Fabric TLS listener on 127.0.0.1 with a fresh certificate; returns its
/// address, the certificate's thumbprint and the server task.
pub(crate) async fn start_tls(
    shared: &Arc<Shared>,
) -> std::io::Result<(std::net::SocketAddr, String, tokio::task::JoinHandle<()>)> {
    let tcp = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = tcp.local_addr()?;
    let identity = TlsIdentity::generate().map_err(std::io::Error::other)?;
    // A client that rejects the certificate (a thumbprint mismatch) ends in the handshake,
    // before any request could be read.
    let listener = Listener::new(tcp, Mode::TlsOnly(identity.acceptor));
    let app =
        crate::server::router(Arc::clone(shared)).into_make_service_with_connect_info::<Peer>();
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "botauth sandbox TLS server stopped");
        }
    });
    Ok((addr, identity.thumbprint, task))
}

/// A self-signed certificate and key for the Service Fabric endpoint, which clients pin by its
/// thumbprint (`IDENTITY_SERVER_THUMBPRINT`) instead of trusting a CA.
pub(crate) struct TlsIdentity {
    pub(crate) acceptor: openssl::ssl::SslAcceptor,
    pub(crate) thumbprint: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// An EC P-256 key and a self-signed certificate for 127.0.0.1, generated with OpenSSL.
    pub(crate) fn generate() -> Result<Self, openssl::error::ErrorStack> {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::ssl::{SslAcceptor, SslMethod};

        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let cert = crate::jwt::self_signed_certificate(&key, "botauth sandbox service fabric", 30)?;
        let thumbprint = cert
            .digest(MessageDigest::sha1())?
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        acceptor.set_private_key(&key)?;
        acceptor.set_certificate(&cert)?;
        acceptor.check_private_key()?;
        Ok(TlsIdentity {
            acceptor: acceptor.build(),
            thumbprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Fault, Sandbox};

    #[test]
    fn old_dates() {
        assert_eq!(old_date(1_700_000_000), "11/14/2023 22:13:20 +00:00");
    }

    const BOT: &str = "https://api.botframework.com";

    async fn get(url: &str, query: &[(&str, &str)], headers: &[(&str, &str)]) -> (u16, Value) {
        let client = reqwest::Client::builder()
            // The Service Fabric listener's certificate is self-signed; these tests check the
            // endpoint's own rules, the client crate tests the pinning.
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let mut request = client.get(with_query(url, query));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
        (status, body)
    }

    fn with_query(url: &str, query: &[(&str, &str)]) -> String {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        format!("{url}?{q}")
    }

    fn description(body: &Value) -> &str {
        body["error_description"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn imds_checks_its_header_version_and_identity() {
        let sandbox = Sandbox::start().await.unwrap();
        let url = format!("{}{IMDS_PATH}", sandbox.imds_host());
        let meta = [("Metadata", "true")];
        let (status, body) = get(&url, &[("api-version", IMDS_API), ("resource", BOT)], &[]).await;
        assert_eq!(
            (status, description(&body)),
            (400, "Required metadata header not specified")
        );
        let (status, _) = get(
            &url,
            &[("api-version", IMDS_API), ("resource", BOT)],
            &[("Metadata", "True")],
        )
        .await;
        assert_eq!(status, 400, "the header value is exact");
        let (status, body) = get(
            &url,
            &[("api-version", "2019-08-01"), ("resource", BOT)],
            &meta,
        )
        .await;
        assert_eq!(status, 400);
        assert!(description(&body).starts_with("Invalid api-version"));
        let (status, _) = get(&url, &[("resource", BOT)], &meta).await;
        assert_eq!(status, 400);
        let (status, _) = get(&url, &[("api-version", IMDS_API)], &meta).await;
        assert_eq!(status, 400);
        let (status, body) = get(
            &url,
            &[
                ("api-version", IMDS_API),
                ("resource", BOT),
                ("client_id", "nobody"),
            ],
            &meta,
        )
        .await;
        assert_eq!((status, description(&body)), (400, "Identity not found"));
        let (status, _) = get(
            &url,
            &[
                ("api-version", IMDS_API),
                ("resource", BOT),
                ("client_id", DEMO_MI_CLIENT_ID),
                ("object_id", DEMO_MI_OBJECT_ID),
            ],
            &meta,
        )
        .await;
        assert_eq!(status, 400, "one id at most");
        let (status, body) = get(
            &url,
            &[
                ("api-version", IMDS_API),
                ("resource", BOT),
                ("msi_res_id", DEMO_MI_RESOURCE_ID),
            ],
            &meta,
        )
        .await;
        assert_eq!(status, 200);
        assert!(body["expires_on"].is_string() && body["expires_in"].is_string());
        let claims = sandbox
            .verify_managed_identity_token(body["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            (claims["sub"].as_str(), claims["aud"].as_str()),
            (Some(DEMO_MI_OBJECT_ID), Some(BOT))
        );
        sandbox.set_system_identity(None);
        let (status, body) =
            get(&url, &[("api-version", IMDS_API), ("resource", BOT)], &meta).await;
        assert_eq!((status, description(&body)), (400, "Identity not found"));
    }

    #[tokio::test]
    async fn secret_header_endpoints_answer_401_then_check_the_version() {
        let sandbox = Sandbox::start().await.unwrap();
        let secret = sandbox.identity_header();
        let cases = [
            (
                sandbox.app_service_endpoint(),
                "X-IDENTITY-HEADER",
                APP_SERVICE_API,
            ),
            (sandbox.azure_ml_endpoint(), "secret", AZURE_ML_API),
            (
                sandbox.service_fabric_endpoint(),
                "secret",
                SERVICE_FABRIC_API,
            ),
        ];
        for (url, header, version) in cases {
            let q = [("api-version", version), ("resource", BOT)];
            assert_eq!(get(&url, &q, &[]).await.0, 401, "{url}");
            assert_eq!(get(&url, &q, &[(header, "wrong")]).await.0, 401, "{url}");
            let wrong_version = [("api-version", "2018-02-01"), ("resource", BOT)];
            assert_eq!(
                get(&url, &wrong_version, &[(header, &secret)]).await.0,
                400,
                "{url}"
            );
            let (status, body) = get(&url, &q, &[(header, &secret)]).await;
            assert_eq!(status, 200, "{url}: {body}");
        }
        // Azure ML answers in the 2017 date format.
        let (_, body) = get(
            &sandbox.azure_ml_endpoint(),
            &[("api-version", AZURE_ML_API), ("resource", BOT)],
            &[("secret", &secret)],
        )
        .await;
        assert!(
            body["expires_on"].as_str().unwrap().ends_with(" +00:00"),
            "{body}"
        );
        // Service Fabric is not served over plain http.
        let plain = format!("{}{SERVICE_FABRIC_PATH}", sandbox.url());
        let (status, _) = get(
            &plain,
            &[("api-version", SERVICE_FABRIC_API), ("resource", BOT)],
            &[("secret", &secret)],
        )
        .await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn arc_challenges_then_accepts_the_key() {
        let sandbox = Sandbox::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = sandbox.arc_endpoint();
        let q = [("api-version", ARC_API), ("resource", BOT)];
        let meta = ("Metadata", "true");
        assert_eq!(get(&url, &q, &[meta]).await.0, 500, "no key directory yet");
        sandbox.set_arc_key_directory(dir.path());
        assert_eq!(
            get(
                &url,
                &[("api-version", IMDS_API), ("resource", BOT)],
                &[meta]
            )
            .await
            .0,
            400
        );
        assert_eq!(get(&url, &q, &[]).await.0, 400);
        let response = reqwest::Client::new()
            .get(with_query(&url, &q))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let realm = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let path = realm.strip_prefix("Basic realm=").unwrap();
        assert!(std::path::Path::new(path).starts_with(dir.path()));
        let key = std::fs::read_to_string(path).unwrap();
        assert_eq!(key.len(), 64);
        assert_eq!(
            get(&url, &q, &[meta, ("Authorization", "Basic not-the-key")])
                .await
                .0,
            401
        );
        let auth = format!("Basic {key}");
        assert_eq!(
            get(&url, &q, &[meta, ("Authorization", &auth)]).await.0,
            200
        );
        let user = [
            ("api-version", ARC_API),
            ("resource", BOT),
            ("client_id", DEMO_MI_CLIENT_ID),
        ];
        assert_eq!(
            get(&url, &user, &[meta, ("Authorization", &auth)]).await.0,
            400
        );
    }

    #[tokio::test]
    async fn cloud_shell_takes_a_form() {
        let sandbox = Sandbox::start().await.unwrap();
        let post = |headers: bool, form: &'static str| {
            let mut r = reqwest::Client::new()
                .post(sandbox.cloud_shell_endpoint())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
            if headers {
                r = r.header("Metadata", "true");
            }
            r.send()
        };
        assert_eq!(
            post(false, "resource=https%3A%2F%2Fapi.botframework.com")
                .await
                .unwrap()
                .status(),
            400
        );
        assert_eq!(post(true, "").await.unwrap().status(), 400);
        let ok = post(true, "resource=https%3A%2F%2Fapi.botframework.com")
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let body: Value = serde_json::from_slice(&ok.bytes().await.unwrap()).unwrap();
        assert!(body["expires_in"].is_number());
    }

    #[tokio::test]
    async fn outages_last_for_their_duration_on_the_sandbox_clock() {
        let sandbox = Sandbox::start().await.unwrap();
        let now = Arc::new(std::sync::Mutex::new(SystemTime::now()));
        let t = Arc::clone(&now);
        sandbox.set_clock(move || *t.lock().unwrap());
        sandbox.inject(
            Route::Imds,
            Fault::StatusFor {
                status: 410,
                duration: Duration::from_secs(30),
            },
        );
        let url = format!("{}{IMDS_PATH}", sandbox.imds_host());
        let q = [("api-version", IMDS_API), ("resource", BOT)];
        let meta = [("Metadata", "true")];
        assert_eq!(get(&url, &q, &meta).await.0, 410);
        *now.lock().unwrap() += Duration::from_secs(29);
        assert_eq!(get(&url, &q, &meta).await.0, 410);
        *now.lock().unwrap() += Duration::from_secs(1);
        assert_eq!(get(&url, &q, &meta).await.0, 200);
        // Other routes are not affected.
        assert_eq!(sandbox.count(Route::Imds), 3);
    }
}
