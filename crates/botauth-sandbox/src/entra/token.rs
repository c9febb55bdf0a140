//! The client-credentials token endpoints (v2 and v1): a secret, a certificate-signed assertion
//! or a federated assertion in, an access token signed by the sandbox's Entra key out.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::app::AppRegistration;
use crate::assertion::{self, JWT_BEARER, Presenter};
use crate::clock;
use crate::error::{EntraError, code, json_response};
use crate::faults::{Fault, PendingFault, shape_token_body};
use crate::log::FormInfo;
use crate::origin::Origin;
use crate::state::Shared;

/// The two token endpoints Entra serves. Both issue the same access tokens; v1 names the
/// resource (`resource=R`), v2 a scope (`scope=R/.default`), and a client assertion may carry
/// either endpoint's URL as its `aud` whichever it is posted to (docs/sandbox.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V2,
}

impl Version {
    pub(super) fn token_path(self, tenant: &str) -> String {
        match self {
            Self::V1 => format!("/{tenant}/oauth2/token"),
            Self::V2 => format!("/{tenant}/oauth2/v2.0/token"),
        }
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    origin: Origin,
    tenant: Result<Path<String>, PathRejection>,
    fault: Option<Extension<PendingFault>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    token_at(Version::V2, &shared, &origin, tenant, fault, &headers, body)
}

/// `POST /{tenant}/oauth2/token`: the v1 endpoint, `resource` instead of `scope`.
pub(crate) async fn token_v1(
    State(shared): State<Arc<Shared>>,
    origin: Origin,
    tenant: Result<Path<String>, PathRejection>,
    fault: Option<Extension<PendingFault>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    token_at(Version::V1, &shared, &origin, tenant, fault, &headers, body)
}

fn token_at(
    version: Version,
    shared: &Shared,
    origin: &Origin,
    tenant: Result<Path<String>, PathRejection>,
    fault: Option<Extension<PendingFault>>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut info = FormInfo::default();
    let tenant = tenant.ok().map(|Path(t)| t);
    let fault = fault.map(|Extension(PendingFault(f))| f);
    let request = TokenRequest {
        shared,
        version,
        origin,
        tenant: tenant.as_deref(),
        headers,
        body: body.as_deref().ok(),
    };
    let mut response = match request.issue(&mut info, fault.as_ref()) {
        Ok(response) => response,
        Err(error) => error.into_response(headers),
    };
    response.extensions_mut().insert(info);
    response
}

struct TokenRequest<'a> {
    shared: &'a Shared,
    version: Version,
    origin: &'a Origin,
    tenant: Option<&'a str>,
    headers: &'a HeaderMap,
    body: Option<&'a [u8]>,
}

impl TokenRequest<'_> {
    /// The checks, in Entra's order: tenant, grant type, client, scope, client authentication.
    fn issue(&self, info: &mut FormInfo, fault: Option<&Fault>) -> Result<Response, EntraError> {
        // Parse first so the log gets client_id and grant_type, but report the tenant first.
        let form = self.form(info);
        let tenant = valid_tenant(self.tenant)?;
        let form = form?;
        let field = |name: &str| form.get(name).map(String::as_str);

        match field("grant_type") {
            None => return Err(missing("grant_type")),
            Some("client_credentials") => {}
            Some(other) => {
                return Err(EntraError::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    code::UNSUPPORTED_GRANT_TYPE,
                    format!(
                        "The provided value for the input parameter 'grant_type' is not valid. Expected 'client_credentials', got '{other}'."
                    ),
                ));
            }
        }

        let client_id = field("client_id").ok_or_else(|| missing("client_id"))?;
        let app = self.find_app(client_id, tenant)?;
        let resource = match self.version {
            Version::V2 => self.resource(field("scope").ok_or_else(|| missing("scope"))?)?,
            Version::V1 => {
                let resource = field("resource").ok_or_else(|| missing("resource"))?;
                self.resource(&format!("{}/.default", resource.trim_end_matches('/')))?
            }
        };

        let has_assertion =
            form.contains_key("client_assertion") || form.contains_key("client_assertion_type");
        match (field("client_secret"), has_assertion) {
            (Some(_), true) => {
                return Err(EntraError::invalid_request(
                    code::CONFLICTING_PARAMETERS,
                    "Only one client credential may be presented: send either 'client_secret' or 'client_assertion', not both.",
                ));
            }
            (None, false) => {
                return Err(EntraError::invalid_client(
                    code::NO_CLIENT_CREDENTIAL,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                ));
            }
            (Some(secret), false) => check_secret(&app, secret)?,
            (None, true) => {
                match field("client_assertion_type") {
                    None => return Err(missing("client_assertion_type")),
                    Some(JWT_BEARER) => {}
                    Some(other) => {
                        return Err(EntraError::invalid_request(
                            code::INVALID_PARAMETER,
                            format!(
                                "The provided value '{other}' for the input parameter 'client_assertion_type' is not valid. Expected '{JWT_BEARER}'."
                            ),
                        ));
                    }
                }
                let assertion =
                    field("client_assertion").ok_or_else(|| missing("client_assertion"))?;
                // Entra takes either endpoint's URL as the audience, as the client addressed it.
                let audiences = [Version::V2, Version::V1]
                    .map(|v| format!("{}{}", self.origin.0, v.token_path(tenant)));
                let presenter = Presenter {
                    app: &app,
                    client_id,
                    audiences: &audiences,
                };
                assertion::verify(self.shared, &presenter, assertion)?;
            }
        }
        Ok(self.success(&app, resource, fault))
    }

    /// Parses the urlencoded body, recording `client_id` and `grant_type` for the log.
    fn form(&self, info: &mut FormInfo) -> Result<HashMap<String, String>, EntraError> {
        let is_form = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let body = self.body.filter(|_| is_form).ok_or_else(|| {
            EntraError::invalid_request(
                code::MISSING_PARAMETER,
                "The request body must contain the following parameter: 'grant_type'. sandbox: send the body as Content-Type: application/x-www-form-urlencoded.",
            )
        })?;
        let mut form = HashMap::new();
        let mut duplicate = None;
        for (name, value) in form_urlencoded::parse(body) {
            if form.contains_key(name.as_ref()) {
                duplicate.get_or_insert_with(|| name.clone().into_owned());
            } else {
                form.insert(name.into_owned(), value.into_owned());
            }
        }
        info.client_id = form.get("client_id").cloned();
        info.grant_type = form.get("grant_type").cloned();
        match duplicate {
            Some(name) => Err(EntraError::invalid_request(
                code::INVALID_PARAMETER,
                format!("The request contains the parameter '{name}' more than once."),
            )),
            None => Ok(form),
        }
    }

    fn find_app(&self, client_id: &str, tenant: &str) -> Result<AppRegistration, EntraError> {
        let inner = self.shared.lock();
        inner
            .apps
            .get(&client_id.to_ascii_lowercase())
            .filter(|app| app.tenant_id.eq_ignore_ascii_case(tenant))
            .cloned()
            .ok_or_else(|| {
                EntraError::new(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    code::APP_NOT_FOUND,
                    format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."),
                )
            })
    }

    /// The resource of a client-credentials scope: exactly one `<resource>/.default` for an accepted resource.
    fn resource(&self, scope: &str) -> Result<String, EntraError> {
        let mut scopes = scope.split_whitespace();
        let requested = match (scopes.next(), scopes.next()) {
            (Some(only), None) => only.strip_suffix("/.default"),
            _ => None,
        };
        let inner = self.shared.lock();
        requested
            .filter(|r| inner.issues_tokens_for(r))
            .map(str::to_owned)
            .ok_or_else(|| {
                EntraError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    code::INVALID_SCOPE,
                    format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
                )
            })
    }

    fn success(&self, app: &AppRegistration, resource: String, fault: Option<&Fault>) -> Response {
        let settings = self.shared.lock().token.clone();
        let now = clock::unix_now();
        let lifetime = clock::secs(settings.lifetime);
        let claims = json!({
            "aud": resource,
            "iss": format!("https://sts.windows.net/{}/", app.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(lifetime),
            "appid": app.client_id,
            "azp": app.client_id,
            "tid": app.tenant_id,
            "idtyp": "app",
            "ver": "1.0",
            "uti": uuid::Uuid::new_v4().to_string(),
        });
        let number = |n: i64| {
            if settings.numbers_as_strings {
                Value::String(n.to_string())
            } else {
                Value::from(n)
            }
        };
        let mut body = Map::new();
        body.insert("token_type".into(), "Bearer".into());
        body.insert("expires_in".into(), number(lifetime));
        body.insert("ext_expires_in".into(), number(lifetime));
        if let Some(refresh_in) = settings.refresh_in {
            body.insert("refresh_in".into(), number(clock::secs(refresh_in)));
        }
        if self.version == Version::V1 {
            // v1 answers also say when, and for which resource, as strings.
            let expires_on = now.saturating_add(lifetime).to_string();
            body.insert("expires_on".into(), expires_on.into());
            body.insert("not_before".into(), now.to_string().into());
            body.insert("resource".into(), resource.clone().into());
        }
        body.insert(
            "access_token".into(),
            self.shared.entra_key.sign(&claims).into(),
        );
        shape_token_body(fault, &mut body);
        let mut response = json_response(StatusCode::OK, &Value::Object(body));
        response.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        response
    }
}

/// Tenants are validated before use, as botauth itself does (docs/protocol.md §2).
pub(super) fn valid_tenant(tenant: Option<&str>) -> Result<&str, EntraError> {
    tenant
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        .ok_or_else(|| {
            EntraError::invalid_request(
                code::TENANT_NOT_FOUND,
                format!(
                    "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
                    tenant.unwrap_or_default()
                ),
            )
        })
}

fn missing(parameter: &str) -> EntraError {
    EntraError::invalid_request(
        code::MISSING_PARAMETER,
        format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

fn check_secret(app: &AppRegistration, presented: &str) -> Result<(), EntraError> {
    let presented = presented.as_bytes();
    // Constant-time comparison; `memcmp::eq` requires equal lengths and panics otherwise.
    let matches = app
        .secrets
        .iter()
        .map(String::as_bytes)
        .filter(|secret| secret.len() == presented.len())
        .fold(false, |found, secret| {
            openssl::memcmp::eq(secret, presented) | found
        });
    if matches {
        Ok(())
    } else {
        Err(EntraError::invalid_client(
            code::INVALID_SECRET,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use crate::testkit::{
        BOT_SCOPE, demo_token, demo_token_reply, get, post_form, secret_form, secret_form_with,
        verify_with_jwks,
    };
    use crate::{AppRegistration, DEMO_CLIENT_ID, DEMO_TENANT_ID, Sandbox};

    #[tokio::test]
    async fn secret_grant_issues_a_verifiable_token() {
        let sandbox = Sandbox::start().await.unwrap();
        let request_id = "5f0d7d1c-8d4e-4ad9-9b8c-0e4a4d6f2c11";
        let reply = post_form(
            &sandbox.token_endpoint(DEMO_TENANT_ID),
            &secret_form(),
            &[
                ("client-request-id", request_id),
                ("return-client-request-id", "true"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.headers["client-request-id"], request_id);
        let body = reply.json();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert_eq!(body["ext_expires_in"], 3599);
        assert!(body.get("refresh_in").is_none());

        let token = body["access_token"].as_str().unwrap();
        let claims = sandbox.verify_access_token(token).unwrap();
        assert_eq!(claims["aud"], "https://api.botframework.com");
        assert_eq!(
            claims["iss"],
            format!("https://sts.windows.net/{DEMO_TENANT_ID}/")
        );
        assert_eq!(claims["appid"], DEMO_CLIENT_ID);
        assert_eq!(claims["azp"], DEMO_CLIENT_ID);
        assert_eq!(claims["tid"], DEMO_TENANT_ID);
        assert_eq!(claims["ver"], "1.0");
        assert_eq!(claims["idtyp"], "app");
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 3599);
        assert_eq!(claims["nbf"], claims["iat"]);

        // The same token verifies against the served metadata's JWKS.
        let metadata = get(&sandbox.entra_metadata_url(DEMO_TENANT_ID))
            .await
            .json();
        assert_eq!(
            metadata["issuer"],
            format!("{}/{DEMO_TENANT_ID}/v2.0", sandbox.url())
        );
        assert_eq!(
            metadata["token_endpoint"],
            sandbox.token_endpoint(DEMO_TENANT_ID)
        );
        let jwks = get(metadata["jwks_uri"].as_str().unwrap()).await.json();
        let (served_claims, _) = verify_with_jwks(token, &jwks).unwrap();
        assert_eq!(served_claims, claims);

        let second = sandbox
            .verify_access_token(&demo_token(&sandbox).await)
            .unwrap();
        assert_ne!(second["uti"], claims["uti"]);
    }

    #[tokio::test]
    async fn verify_access_token_rejects_tampering_and_expiry() {
        let sandbox = Sandbox::start().await.unwrap();
        let token = demo_token(&sandbox).await;
        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert!(sandbox.verify_access_token(&tampered).is_err());
        assert!(sandbox.verify_access_token("not a token").is_err());
        let other = Sandbox::start().await.unwrap();
        assert!(other.verify_access_token(&token).is_err());

        sandbox.set_token_lifetime(Duration::ZERO);
        let expired = demo_token(&sandbox).await;
        assert_eq!(
            sandbox.verify_access_token(&expired),
            Err("token has expired".into())
        );
    }

    #[tokio::test]
    async fn token_settings_shape_the_response() {
        let sandbox = Sandbox::builder()
            .token_lifetime(Duration::from_secs(7200))
            .start()
            .await
            .unwrap();
        sandbox.set_refresh_in(Some(Duration::from_secs(3600)));
        let body = demo_token_reply(&sandbox).await.json();
        assert_eq!(
            (body["expires_in"].clone(), body["refresh_in"].clone()),
            (json!(7200), json!(3600))
        );

        sandbox.set_numbers_as_strings(true);
        sandbox.set_token_lifetime(Duration::from_secs(60));
        let body = demo_token_reply(&sandbox).await.json();
        assert_eq!(body["expires_in"], "60");
        assert_eq!(body["ext_expires_in"], "60");
        assert_eq!(body["refresh_in"], "3600");
    }

    #[tokio::test]
    async fn wrong_secret_is_7000215_with_the_callers_correlation_id() {
        let sandbox = Sandbox::start().await.unwrap();
        let request_id = "0b8e2a55-d0f4-4c5c-a1c1-7c1b1e0f3a99";
        let reply = post_form(
            &sandbox.token_endpoint(DEMO_TENANT_ID),
            &secret_form_with(
                "client_secret",
                Some("sandbox~Secret+with/odd=chars_012345678X"),
            ),
            &[("client-request-id", request_id)],
        )
        .await;
        reply.assert_entra_error(401, "invalid_client", 7_000_215);
        let body = reply.json();
        assert_eq!(body["correlation_id"], request_id);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("not the client secret ID")
        );
        assert!(
            reply.headers.get("client-request-id").is_none(),
            "echo only when asked"
        );

        // A secret that is a prefix (different length) is rejected the same way.
        let reply = post_form(
            &sandbox.token_endpoint(DEMO_TENANT_ID),
            &secret_form_with("client_secret", Some("sandbox")),
            &[],
        )
        .await;
        reply.assert_entra_error(401, "invalid_client", 7_000_215);
    }

    #[tokio::test]
    async fn app_lookup_and_tenant() {
        let sandbox = Sandbox::start().await.unwrap();
        let reply = post_form(
            &sandbox.token_endpoint(DEMO_TENANT_ID),
            &secret_form_with("client_id", Some("99999999-0000-0000-0000-000000000000")),
            &[],
        )
        .await;
        reply.assert_entra_error(400, "unauthorized_client", 700_016);
        assert!(reply.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("Application with identifier '99999999-0000-0000-0000-000000000000' was not found in the directory"));

        // The legacy multi-tenant tenant does not know a single-tenant app (docs/protocol.md §2).
        let reply = post_form(
            &sandbox.token_endpoint("botframework.com"),
            &secret_form(),
            &[],
        )
        .await;
        reply.assert_entra_error(400, "unauthorized_client", 700_016);

        let bad_tenant = format!("{}/bad%20tenant/oauth2/v2.0/token", sandbox.url());
        post_form(&bad_tenant, &secret_form(), &[])
            .await
            .assert_entra_error(400, "invalid_request", 90002);

        // Runtime registration, and case-insensitive client id lookup.
        sandbox.register_app(
            AppRegistration::new("AAAAAAAA-0000-0000-0000-000000000001", "other-tenant")
                .with_secret("s3cret"),
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "aaaaaaaa-0000-0000-0000-000000000001"),
            ("client_secret", "s3cret"),
            ("scope", BOT_SCOPE),
        ];
        let reply = post_form(&sandbox.token_endpoint("other-tenant"), &form, &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    /// A form and the expected status, `error` and AADSTS code.
    type ShapeCase<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str, u64);

    #[tokio::test]
    async fn request_shape_errors() {
        let sandbox = Sandbox::start().await.unwrap();
        let endpoint = sandbox.token_endpoint(DEMO_TENANT_ID);
        let cases: Vec<ShapeCase<'_>> = vec![
            (
                secret_form_with("grant_type", Some("password")),
                400,
                "unsupported_grant_type",
                70003,
            ),
            (
                secret_form_with("grant_type", None),
                400,
                "invalid_request",
                900_144,
            ),
            (
                secret_form_with("client_id", None),
                400,
                "invalid_request",
                900_144,
            ),
            (
                secret_form_with("scope", None),
                400,
                "invalid_request",
                900_144,
            ),
            (
                secret_form_with("scope", Some("https://api.botframework.com")),
                400,
                "invalid_scope",
                1_002_012,
            ),
            (
                secret_form_with(
                    "scope",
                    Some(
                        "https://api.botframework.com/.default https://api.botframework.us/.default",
                    ),
                ),
                400,
                "invalid_scope",
                1_002_012,
            ),
            (
                secret_form_with("scope", Some("https://graph.microsoft.com/.default")),
                400,
                "invalid_scope",
                1_002_012,
            ),
            (
                secret_form_with("scope", Some("https://api.botframework.com/User.Read")),
                400,
                "invalid_scope",
                1_002_012,
            ),
            (
                secret_form_with("client_secret", None),
                401,
                "invalid_client",
                7_000_216,
            ),
            (
                [
                    secret_form(),
                    vec![
                        ("client_assertion_type", crate::assertion::JWT_BEARER),
                        ("client_assertion", "a.b.c"),
                    ],
                ]
                .concat(),
                400,
                "invalid_request",
                90014,
            ),
            (
                [secret_form(), vec![("scope", BOT_SCOPE)]].concat(),
                400,
                "invalid_request",
                90100,
            ),
        ];
        for (form, status, error, code) in cases {
            post_form(&endpoint, &form, &[])
                .await
                .assert_entra_error(status, error, code);
        }

        let reply =
            crate::testkit::post_json(&endpoint, r#"{"grant_type":"client_credentials"}"#, None)
                .await;
        reply.assert_entra_error(400, "invalid_request", 900_144);

        // Grant type is checked before the client, the client before the scope.
        let form = [("grant_type", "implicit"), ("scope", "nonsense")];
        post_form(&endpoint, &form, &[]).await.assert_entra_error(
            400,
            "unsupported_grant_type",
            70003,
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "unknown"),
            ("scope", "nonsense"),
        ];
        post_form(&endpoint, &form, &[]).await.assert_entra_error(
            400,
            "unauthorized_client",
            700_016,
        );
    }

    #[tokio::test]
    async fn extra_resources_can_be_accepted() {
        let sandbox = Sandbox::start().await.unwrap();
        sandbox.accept_resource("api://extra");
        sandbox.accept_resource("api://later");
        let endpoint = sandbox.token_endpoint(DEMO_TENANT_ID);
        for scope in [
            "api://extra/.default",
            "api://later/.default",
            "https://api.botframework.us/.default",
        ] {
            let reply = post_form(&endpoint, &secret_form_with("scope", Some(scope)), &[]).await;
            let token = reply.json()["access_token"].as_str().unwrap().to_owned();
            let claims = sandbox.verify_access_token(&token).unwrap();
            assert_eq!(
                Some(claims["aud"].as_str().unwrap()),
                scope.strip_suffix("/.default")
            );
        }
    }
}
