//! The vault's REST side (docs/sandbox.md §7): `GET` of certificates, secrets and their
//! versions, behind Key Vault's checks in its order: the bearer token (401 with the challenge),
//! the api-version (400), the access list (403), the request, then the object (404, 403 for a
//! disabled secret).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openssl::error::ErrorStack;
use openssl::pkcs12::Pkcs12;
use serde_json::{Value, json};

use super::store::{KEY_VAULT_RESOURCE, KeyVaultContentType, Version, valid_name};
use super::vault::snapshot;
use crate::error::json_response;
use crate::jwt::{self, Jws};
use crate::origin::Origin;
use crate::state::Shared;
use crate::{DEMO_TENANT_ID, clock};

/// The REST api-versions served: the 7.x line and the dated versions (docs/protocol.md §11;
/// azure-keyvault-* 4.12 for Python sends `2026-04-01`).
const API_VERSIONS: [&str; 9] = [
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-07-01",
    "2026-04-01",
];

/// Key Vault's page size limit (and default) for version lists.
const MAX_RESULTS: usize = 25;

/// A vault with soft delete and without purge protection, as new vaults are.
const RECOVERY_LEVEL: &str = "Recoverable+Purgeable";
const RECOVERABLE_DAYS: u32 = 90;

/// Prefix of the opaque `$skiptoken` (the offset follows), so a token from elsewhere is refused.
const SKIP_TOKEN_PREFIX: &str = "botauth-sandbox-kv:";

const RECOVER_HINT: &str = "If you recently deleted this {kind} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182";

/// An Azure-style resource id of the sandbox's vault, for RBAC messages.
const VAULT_RESOURCE_ID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/botauth/providers/Microsoft.KeyVault/vaults/sandbox";

// ------------------------------------------------------------------------------------------------
// Errors: Key Vault's `{"error":{"code","message","innererror"}}`.

#[derive(Debug)]
struct KvError {
    status: StatusCode,
    code: &'static str,
    message: String,
    inner: Option<&'static str>,
}

impl KvError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            inner: None,
        }
    }

    fn with_inner(mut self, code: &'static str) -> Self {
        self.inner = Some(code);
        self
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadParameter", message)
    }

    fn not_found(kind: Kind, id: &str) -> Self {
        let (code, noun) = match kind {
            Kind::Certificates => ("CertificateNotFound", "certificate"),
            Kind::Secrets => ("SecretNotFound", "secret"),
        };
        Self::new(
            StatusCode::NOT_FOUND,
            code,
            format!(
                "A {noun} with (name/id) {id} was not found in this key vault. {}",
                RECOVER_HINT.replace("{kind}", noun)
            ),
        )
    }

    fn internal(error: &ErrorStack) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!("sandbox: OpenSSL failed: {error}"),
        )
    }

    fn into_response(self, shared: &Shared) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let (Some(inner), Some(map)) = (self.inner, error.as_object_mut()) {
            map.insert("innererror".into(), json!({"code": inner}));
        }
        let mut response = json_response(self.status, &json!({ "error": error }));
        if self.status == StatusCode::UNAUTHORIZED {
            insert_challenge(shared, &mut response);
        }
        response
    }
}

/// The challenge every 401 carries: where to get a token, and for what. Azure SDKs read both.
fn insert_challenge(shared: &Shared, response: &mut Response) {
    let challenge = format!(
        "Bearer authorization=\"{}/{DEMO_TENANT_ID}\", resource=\"{KEY_VAULT_RESOURCE}\"",
        shared.url
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
}

/// The answer to an injected [`Fault::Status`](crate::Fault::Status) without a body on
/// [`Route::KeyVault`](crate::Route::KeyVault): Key Vault's error shape for the status.
pub(crate) fn injected_error(shared: &Shared, status: StatusCode) -> Response {
    let code = match status.as_u16() {
        400 => "BadParameter",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => "Throttled",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        500..=599 => "InternalServerError",
        _ => "BadRequest",
    };
    KvError::new(status, code, format!("sandbox: injected HTTP {status}.")).into_response(shared)
}

// ------------------------------------------------------------------------------------------------
// The REST side.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Certificates,
    Secrets,
}

impl Kind {
    fn segment(self) -> &'static str {
        match self {
            Self::Certificates => "certificates",
            Self::Secrets => "secrets",
        }
    }
}

/// What a request asks of a certificate or secret.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Latest,
    Version(String),
    Versions,
    Policy,
}

impl Target {
    /// The RBAC data action Key Vault checks for it.
    fn action(&self, kind: Kind) -> &'static str {
        match (kind, self) {
            (Kind::Certificates, _) => "Microsoft.KeyVault/vaults/certificates/read",
            (Kind::Secrets, Self::Versions) => {
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
            }
            (Kind::Secrets, _) => "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        }
    }
}

/// The vault's routes (inside the observing middleware: logged, faults applied).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    // At the root of the origin, as on a real vault: the Azure SDKs parse ids as
    // `/{collection}/{name}[/{version}]` and ask for the latest as `…/{name}/`.
    // `GET /certificates/{name}[/|/{version}|/versions|/policy]`,
    // `GET /secrets/{name}[/|/{version}|/versions]`.
    for (collection, kind) in [
        ("certificates", Kind::Certificates),
        ("secrets", Kind::Secrets),
    ] {
        for tail in ["{name}", "{name}/", "{name}/{version}"] {
            router = router.route(&format!("/{collection}/{tail}"), vault_get(kind));
        }
    }
    router
}

type Segments = Result<Path<HashMap<String, String>>, PathRejection>;

/// The `GET` handler for one collection.
fn vault_get(kind: Kind) -> MethodRouter<Arc<Shared>> {
    get(
        move |State(shared): State<Arc<Shared>>,
              origin: Origin,
              path: Segments,
              RawQuery(query): RawQuery,
              headers: HeaderMap| async move {
            serve(&shared, &origin, kind, path, query.as_deref(), &headers)
        },
    )
}

fn serve(
    shared: &Shared,
    origin: &Origin,
    kind: Kind,
    path: Segments,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let mut response = answer(shared, origin, kind, path, query, headers).map_or_else(
        |e| e.into_response(shared),
        |body| json_response(StatusCode::OK, &body),
    );
    let response_headers = response.headers_mut();
    response_headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response_headers.insert("x-ms-request-id", id);
    }
    if let Some(id) = headers.get("x-ms-client-request-id") {
        response_headers.insert("x-ms-client-request-id", id.clone());
    }
    response
}

/// The checks in Key Vault's order: authentication, api-version, authorization, the request,
/// then the object.
fn answer(
    shared: &Shared,
    origin: &Origin,
    kind: Kind,
    path: Segments,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Value, KvError> {
    let claims = authenticate(shared, headers)?;
    let params: HashMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let api_version = params
        .get("api-version")
        .filter(|v| API_VERSIONS.contains(&v.as_str()))
        .ok_or_else(|| {
            KvError::bad_parameter("The request URI contains an invalid or missing api-version")
        })?;
    let Ok(Path(mut segments)) = path else {
        return Err(KvError::bad_parameter(
            "The request URI contains an invalid name (not percent-encoded UTF-8).",
        ));
    };
    let name = segments.remove("name").unwrap_or_default();
    let target = match segments.remove("version") {
        None => Target::Latest,
        Some(v) if v == "versions" => Target::Versions,
        Some(v) if v == "policy" && kind == Kind::Certificates => Target::Policy,
        Some(v) => Target::Version(v),
    };
    authorize(shared, &claims, kind, &target, &name)?;
    if !valid_name(&name) {
        return Err(KvError::bad_parameter(format!(
            "The request URI contains an invalid name: {name}"
        )));
    }
    let (name, versions) =
        snapshot(shared, &name).ok_or_else(|| KvError::not_found(kind, &name))?;
    // Ids name the vault as the client reached it (https on the TLS listener).
    let base = origin.0.clone();
    let pick = |id: Option<&str>| -> Result<&Arc<Version>, KvError> {
        match id {
            None => versions.last(),
            Some(id) => versions.iter().find(|v| v.id.eq_ignore_ascii_case(id)),
        }
        .ok_or_else(|| {
            KvError::not_found(
                kind,
                &id.map_or_else(|| name.clone(), |id| format!("{name}/{id}")),
            )
        })
    };
    match (kind, &target) {
        (_, Target::Versions) => list(&base, kind, &name, &versions, &params, api_version),
        (Kind::Certificates, Target::Policy) => {
            let latest = pick(None)?;
            Ok(policy(&base, &name, latest, &versions))
        }
        (Kind::Certificates, Target::Latest | Target::Version(_)) => {
            let version = pick(version_id(&target))?;
            Ok(certificate_bundle(&base, &name, version, &versions))
        }
        (Kind::Secrets, _) => {
            let version = pick(version_id(&target))?;
            secret_bundle(&base, &name, version, &params)
        }
    }
}

fn version_id(target: &Target) -> Option<&str> {
    match target {
        Target::Version(id) => Some(id),
        _ => None,
    }
}

/// The bearer token's claims, when it is an unexpired token this sandbox issued for the vault.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Value, KvError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            KvError::unauthorized("AKV10000: Request is missing a Bearer or PoP token.")
        })?;
    // Client credentials tokens are signed by the Entra key, managed identity tokens by the
    // managed identity key (docs/protocol.md §2, §4): a vault reader may hold either.
    let jws: Jws = shared
        .entra_key
        .verify(token)
        .or_else(|_| shared.mi_key.verify(token))
        .map_err(|_| {
            let iss = Jws::parse(token)
                .and_then(|jws| jws.claim_str("iss").map(str::to_owned))
                .unwrap_or_else(|| "(not a JWT)".into());
            KvError::unauthorized(format!(
                "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{{tenant}}/, {}, found: {iss}. sandbox: the token is not signed by this sandbox's Entra ID or managed identity key.",
                shared.managed_identity_issuer()
            ))
        })?;
    let claims = Value::Object(jws.claims);
    let expired = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_none_or(|exp| exp <= clock::unix_now());
    if expired || shared.console.is_expired(&claims) {
        return Err(KvError::unauthorized(
            "Invalid token: the token has expired (sandbox: exp is past, or the console expired it).",
        ));
    }
    let audience = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if audience.strip_suffix('/').unwrap_or(audience) != KEY_VAULT_RESOURCE {
        return Err(KvError::unauthorized(format!(
            "AKV10022: Invalid audience. Expected {KEY_VAULT_RESOURCE}, found: {audience}."
        )));
    }
    Ok(claims)
}

/// The identities a token names: a managed identity's object, client and resource ids, an
/// app's client id.
const IDENTITY_CLAIMS: [&str; 4] = ["oid", "appid", "azp", "xms_mirid"];

fn authorize(
    shared: &Shared,
    claims: &Value,
    kind: Kind,
    target: &Target,
    name: &str,
) -> Result<(), KvError> {
    let allowed = shared.lock().key_vault.allowed.clone();
    let Some(allowed) = allowed else {
        return Ok(());
    };
    let claim = |n: &str| claims.get(n).and_then(Value::as_str);
    let permitted = IDENTITY_CLAIMS
        .iter()
        .filter_map(|n| claim(n))
        .any(|id| allowed.iter().any(|a| a.eq_ignore_ascii_case(id)));
    if permitted {
        return Ok(());
    }
    let message = format!(
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={};oid={};iss={}\r\nAction: '{}'\r\nResource: '{VAULT_RESOURCE_ID}/{}/{name}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: sandbox;location=local\r\n",
        claim("appid").or_else(|| claim("azp")).unwrap_or_default(),
        claim("oid").unwrap_or_default(),
        claim("iss").unwrap_or_default(),
        target.action(kind),
        kind.segment(),
    );
    Err(KvError::new(StatusCode::FORBIDDEN, "Forbidden", message).with_inner("ForbiddenByRbac"))
}

fn attributes(version: &Version) -> Value {
    json!({
        "enabled": version.enabled,
        "nbf": version.nbf,
        "exp": version.exp,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": RECOVERY_LEVEL,
        "recoverableDays": RECOVERABLE_DAYS,
    })
}

fn certificate_bundle(base: &str, name: &str, version: &Version, all: &[Arc<Version>]) -> Value {
    let id = &version.id;
    json!({
        "id": format!("{base}/certificates/{name}/{id}"),
        "kid": format!("{base}/keys/{name}/{id}"),
        "sid": format!("{base}/secrets/{name}/{id}"),
        "x5t": jwt::x5t(&version.der),
        "cer": STANDARD.encode(&version.der),
        "attributes": attributes(version),
        "policy": policy(base, name, version, all),
    })
}

/// The policy, as the version it comes with was made: Key Vault's policy is per certificate,
/// but here each version may differ (exportable, content type), and a client reading
/// `key_props.exportable` next to a version must learn that version's truth.
fn policy(base: &str, name: &str, version: &Version, all: &[Arc<Version>]) -> Value {
    let first = all.first().map_or(version.created, |v| v.created);
    let months = validity_months(version.nbf, version.exp);
    json!({
        "id": format!("{base}/certificates/{name}/policy"),
        "key_props": {
            "exportable": version.exportable,
            "kty": "RSA",
            "key_size": 2048,
            "reuse_key": false,
        },
        "secret_props": { "contentType": version.content_type.mime() },
        "x509_props": {
            "subject": version.subject,
            "ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
            "key_usage": ["digitalSignature", "keyEncipherment"],
            "validity_months": months,
        },
        "issuer": { "name": "Self" },
        "attributes": { "enabled": true, "created": first, "updated": version.created },
    })
}

fn secret_bundle(
    base: &str,
    name: &str,
    version: &Version,
    params: &HashMap<String, String>,
) -> Result<Value, KvError> {
    if !version.enabled {
        return Err(KvError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
        )
        .with_inner("SecretDisabled"));
    }
    // Key Vault converts PKCS#12 to PEM on request, and nothing else.
    let content_type = match params.get("outContentType") {
        None => version.content_type,
        Some(asked) => match KeyVaultContentType::from_mime(asked) {
            Some(t) if t == version.content_type || t == KeyVaultContentType::Pem => t,
            Some(_) => {
                return Err(KvError::bad_parameter(
                    "outContentType: only conversion from application/x-pkcs12 to application/x-pem-file is supported.",
                ));
            }
            None => {
                return Err(KvError::bad_parameter(format!(
                    "outContentType: '{asked}' is not a supported content type (application/x-pkcs12, application/x-pem-file)."
                )));
            }
        },
    };
    let value = secret_value(name, version, content_type).map_err(|e| KvError::internal(&e))?;
    let id = &version.id;
    Ok(json!({
        "value": value,
        "contentType": content_type.mime(),
        "id": format!("{base}/secrets/{name}/{id}"),
        "kid": format!("{base}/keys/{name}/{id}"),
        "managed": true,
        "attributes": attributes(version),
    }))
}

/// Whole months of 30.4375 days, rounded, at least one: 365 days are 12 months.
fn validity_months(nbf: i64, exp: i64) -> i64 {
    let seconds = exp.saturating_sub(nbf).max(0);
    (seconds.saturating_add(1_314_900) / 2_629_800).max(1)
}

/// The secret's value: the certificate, with its key when the version is exportable.
fn secret_value(
    name: &str,
    version: &Version,
    content_type: KeyVaultContentType,
) -> Result<String, ErrorStack> {
    match content_type {
        KeyVaultContentType::Pkcs12 => {
            let mut builder = Pkcs12::builder();
            builder.name(name).cert(&version.cert);
            if version.exportable {
                builder.pkey(&version.key);
            }
            // An empty password, as Key Vault's PFX secrets have (OpenSSL 3's default
            // algorithms: AES-256-CBC, PBKDF2, SHA-256 MAC).
            Ok(STANDARD.encode(builder.build2("")?.to_der()?))
        }
        KeyVaultContentType::Pem => {
            let mut pem = Vec::new();
            if version.exportable {
                pem.extend(version.key.private_key_to_pem_pkcs8()?);
            }
            pem.extend(version.cert.to_pem()?);
            Ok(String::from_utf8_lossy(&pem).into_owned())
        }
    }
}

/// A page of `{name}/versions`, oldest first, `nextLink` naming the next page while any remain.
fn list(
    base: &str,
    kind: Kind,
    name: &str,
    versions: &[Arc<Version>],
    params: &HashMap<String, String>,
    api_version: &str,
) -> Result<Value, KvError> {
    let max = match params.get("maxresults") {
        None => MAX_RESULTS,
        Some(n) => n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_RESULTS).contains(n))
            .ok_or_else(|| {
                KvError::bad_parameter(format!(
                    "maxresults: '{n}' is not a number from 1 to {MAX_RESULTS}."
                ))
            })?,
    };
    let skip = match params.get("$skiptoken") {
        None => 0,
        Some(token) => decode_skip_token(token)
            .ok_or_else(|| KvError::bad_parameter("$skiptoken: the skip token is not valid."))?,
    };
    let segment = kind.segment();
    let value: Vec<Value> = versions
        .iter()
        .skip(skip)
        .take(max)
        .map(|v| {
            let id = format!("{base}/{segment}/{name}/{}", v.id);
            match kind {
                Kind::Certificates => json!({
                    "id": id,
                    "x5t": jwt::x5t(&v.der),
                    "attributes": attributes(v),
                }),
                Kind::Secrets => json!({
                    "id": id,
                    "contentType": v.content_type.mime(),
                    "managed": true,
                    "attributes": attributes(v),
                }),
            }
        })
        .collect();
    let next = skip.saturating_add(max);
    let next_link = (next < versions.len()).then(|| {
        format!(
            "{base}/{segment}/{name}/versions?api-version={api_version}&maxresults={max}&$skiptoken={}",
            encode_skip_token(next)
        )
    });
    Ok(json!({ "value": value, "nextLink": next_link }))
}

fn encode_skip_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{SKIP_TOKEN_PREFIX}{offset}"))
}

fn decode_skip_token(token: &str) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token.trim()).ok()?).ok()?;
    text.strip_prefix(SKIP_TOKEN_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testkit::{Reply, send};
    use crate::{KeyVaultCertificateOptions, Sandbox};

    const API: &str = "api-version=7.4";

    /// A token for the vault from the sandbox's IMDS endpoint (the system-assigned identity).
    async fn vault_token(sandbox: &Sandbox) -> String {
        let url = format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={KEY_VAULT_RESOURCE}",
            sandbox.imds_host()
        );
        let reply = send(reqwest::Client::new().get(url).header("Metadata", "true")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// `GET {vault}/{path_and_query}` with a bearer token.
    async fn vault(sandbox: &Sandbox, path_and_query: &str, token: Option<&str>) -> Reply {
        let mut request =
            reqwest::Client::new().get(format!("{}/{path_and_query}", sandbox.key_vault_url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send(request).await
    }

    #[tokio::test]
    async fn disabled_versions_read_as_certificates_but_not_as_secrets() {
        let sandbox = Sandbox::start().await.unwrap();
        let created = sandbox.create_key_vault_certificate(
            "bot",
            KeyVaultCertificateOptions::default().enabled(false),
        );
        let token = vault_token(&sandbox).await;
        let disabled = json!({"error": {"code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.", "innererror": {"code": "SecretDisabled"}}});
        for path in [
            "secrets/bot".to_owned(),
            format!("secrets/bot/{}", created.version),
        ] {
            let reply = vault(&sandbox, &format!("{path}?{API}"), Some(&token)).await;
            assert_eq!(reply.status, 403, "{path}");
            assert_eq!(reply.json(), disabled);
        }
        let certificate = vault(&sandbox, &format!("certificates/bot?{API}"), Some(&token)).await;
        assert_eq!(certificate.status, 200);
        assert_eq!(certificate.json()["attributes"]["enabled"], false);
        assert!(sandbox.set_key_vault_version_enabled("bot", &created.version, true));
        let reply = vault(&sandbox, &format!("secrets/bot?{API}"), Some(&token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(!sandbox.set_key_vault_version_enabled(
            "bot",
            "00000000000000000000000000000000",
            false
        ));
    }

    #[tokio::test]
    async fn a_custom_subject_is_in_the_policy() {
        let sandbox = Sandbox::start().await.unwrap();
        let token = vault_token(&sandbox).await;
        sandbox.create_key_vault_certificate(
            "other",
            KeyVaultCertificateOptions::default().subject("CN=bot.contoso.com, O=Contoso"),
        );
        let body = vault(&sandbox, &format!("certificates/other?{API}"), Some(&token))
            .await
            .json();
        assert_eq!(
            body["policy"]["x509_props"]["subject"],
            "CN=bot.contoso.com, O=Contoso"
        );
        assert_eq!(body["policy"]["x509_props"]["validity_months"], 12);
    }

    #[test]
    fn skip_tokens_round_trip_and_refuse_strangers() {
        for offset in [0, 1, 25, 10_000] {
            assert_eq!(decode_skip_token(&encode_skip_token(offset)), Some(offset));
        }
        for bad in ["", "!!", "MQ", &URL_SAFE_NO_PAD.encode("other:1")] {
            assert_eq!(decode_skip_token(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn the_console_sees_the_request_but_never_the_secret() {
        let sandbox = Sandbox::start().await.unwrap();
        let _console = sandbox.open_console(None);
        sandbox.create_key_vault_certificate(
            "bot",
            KeyVaultCertificateOptions::default().content_type(KeyVaultContentType::Pem),
        );
        sandbox.create_key_vault_certificate("pfx", KeyVaultCertificateOptions::default());
        let imds = format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={KEY_VAULT_RESOURCE}",
            sandbox.imds_host()
        );
        let client = reqwest::Client::new();
        let token: Value = serde_json::from_slice(
            &client
                .get(imds)
                .header("Metadata", "true")
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        let token = token["access_token"].as_str().unwrap();
        let mut values = Vec::new();
        for name in ["bot", "pfx"] {
            let url = format!("{}/secrets/{name}?api-version=7.4", sandbox.key_vault_url());
            let response = client.get(url).bearer_auth(token).send().await.unwrap();
            let secret: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            values.push(secret["value"].as_str().unwrap().to_owned());
        }
        let (feed, _live) = sandbox.shared.console.subscribe(None);
        assert!(feed.contains("\"kind\":\"key_vault\""), "{feed}");
        assert!(
            feed.contains("secret released (application/x-pem-file)"),
            "{feed}"
        );
        assert!(feed.contains("value: [redacted]"), "{feed}");
        assert!(!feed.contains("PRIVATE KEY"), "{feed}");
        assert!(
            !feed.contains(token.rsplit('.').next().unwrap()),
            "token signature"
        );
        for value in &values {
            let inner = value.lines().nth(1).unwrap_or(value);
            assert!(!feed.contains(&inner[..40]), "secret value in the feed");
        }
    }

    #[test]
    fn validity_months_round() {
        let days = |n: i64| n * 86_400;
        assert_eq!(validity_months(0, days(365)), 12);
        assert_eq!(validity_months(0, days(1)), 1);
        assert_eq!(validity_months(0, days(730)), 24);
        assert_eq!(validity_months(days(2), days(1)), 1, "inverted validity");
    }
}
