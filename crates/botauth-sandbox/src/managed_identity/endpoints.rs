//! The endpoints' handlers: one for the sources that take their request in the query (the rows
//! of [`SPECS`]), and Arc's challenge and Cloud Shell's form, which are their own.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::identity::ManagedIdentity;
use super::spec::{Header, IdNames, Listener, SPECS, Shape, Spec};
use crate::clock;
use crate::error::json_response;
use crate::log::Route;
use crate::state::Shared;
use crate::tls::listener::Peer;

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

/// The check of a request's [`Header`].
fn check_header(shared: &Shared, headers: &HeaderMap, header: Header) -> Result<(), Refusal> {
    match header {
        Header::Metadata => require_metadata(headers),
        Header::Secret(name) => require_secret(shared, headers, name),
        Header::ServiceFabricSecret => {
            let expected = shared.lock().mi.secret.clone();
            match self::header(headers, "secret") {
                Some(v) if v == expected => Ok(()),
                _ => Err(Refusal {
                    status: StatusCode::UNAUTHORIZED,
                    body: json!({"error": {"code": "SecretHeaderNotFound", "message": "Secret is not found in the request headers or does not match."}}),
                }),
            }
        }
    }
}

/// The api-version check of `spec`, if it takes one.
fn check_api_version(params: &HashMap<String, String>, spec: &Spec) -> Result<(), Refusal> {
    spec.api_version
        .map_or(Ok(()), |expected| api_version(params, expected))
}

/// The routes of every source, each from its row of [`SPECS`].
pub(crate) fn routes() -> Router<Arc<Shared>> {
    SPECS.iter().fold(Router::new(), |router, spec| {
        let handler = match spec.route {
            Route::AzureArc => get(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap, Query(params): Params| async move {
                    arc(spec, &shared, &headers, &params).await
                },
            ),
            Route::CloudShell => post(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| async move {
                    answer(cloud_shell(spec, &shared, &headers, &body))
                },
            ),
            _ => get(
                move |State(shared): State<Arc<Shared>>,
                      peer: Option<Extension<ConnectInfo<Peer>>>,
                      headers: HeaderMap,
                      Query(params): Params| async move {
                    let tls = peer.is_some_and(|Extension(ConnectInfo(peer))| peer.tls);
                    answer(query_token(spec, &shared, tls, &headers, &params))
                },
            ),
        };
        router.route(spec.path, handler)
    })
}

/// `GET {path}?api-version=V&resource=R[&<id parameter>=<id>]` with the source's header: IMDS,
/// App Service, Service Fabric (on its TLS listener only) and Azure ML.
fn query_token(
    spec: &Spec,
    shared: &Shared,
    tls: bool,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Response, Refusal> {
    if spec.listener == Listener::ServiceFabricTls && !tls {
        return Err(bad_request(
            "Service Fabric's identity endpoint is served over https only.",
        ));
    }
    check_header(shared, headers, spec.header)?;
    check_api_version(params, spec)?;
    let resource = resource(params)?;
    let identity = find_identity(shared, params, &spec.ids)?;
    Ok(issue(shared, &identity, &resource, spec.shape))
}

/// `GET /arc/metadata/identity/oauth2/token`: a challenge first, then the key file's contents.
async fn arc(
    spec: &Spec,
    shared: &Shared,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Response {
    if let Err(r) =
        check_header(shared, headers, spec.header).and_then(|()| check_api_version(params, spec))
    {
        return r.into_response();
    }
    let resource = match resource(params) {
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
    match header(headers, "authorization") {
        None => challenge(shared).await,
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
                Some(identity) => issue(shared, &identity, &resource, spec.shape),
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
fn cloud_shell(
    spec: &Spec,
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Refusal> {
    check_header(shared, headers, spec.header)?;
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
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
    Ok(issue(shared, &identity, &resource, spec.shape))
}

/// Checks a managed identity token this sandbox issued: signature and `exp`.
pub(crate) fn verify(shared: &Shared, token: &str) -> Result<Value, String> {
    shared.mi_key.verify_unexpired(token)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::{DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_MI_RESOURCE_ID, Fault, Sandbox};

    // The protocol facts, written out again so that a wrong row in the table fails here.
    const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
    const SERVICE_FABRIC_PATH: &str = "/servicefabric/metadata/identity/oauth2/token";
    const IMDS_API: &str = "2018-02-01";
    const APP_SERVICE_API: &str = "2019-08-01";
    const ARC_API: &str = "2020-06-01";
    const SERVICE_FABRIC_API: &str = "2019-07-01-preview";
    const AZURE_ML_API: &str = "2017-09-01";

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
                sandbox
                    .managed_identity_endpoint(Route::AppService)
                    .unwrap(),
                "X-IDENTITY-HEADER",
                APP_SERVICE_API,
            ),
            (
                sandbox.managed_identity_endpoint(Route::AzureMl).unwrap(),
                "secret",
                AZURE_ML_API,
            ),
            (
                sandbox
                    .managed_identity_endpoint(Route::ServiceFabric)
                    .unwrap(),
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
            &sandbox.managed_identity_endpoint(Route::AzureMl).unwrap(),
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
        let url = sandbox.managed_identity_endpoint(Route::AzureArc).unwrap();
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
                .post(
                    sandbox
                        .managed_identity_endpoint(Route::CloudShell)
                        .unwrap(),
                )
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
