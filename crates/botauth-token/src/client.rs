//! The Entra ID client-credentials grant (docs/protocol.md §2), shared by every credential that ends in
//! a `POST /{tenant}/oauth2/v2.0/token`: client secret, certificate, federated managed identity
//! and workload identity.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use botauth_core::internal::validate_tenant_id;
use botauth_core::{
    AccessToken, AssertionRequest, ClientAssertionSource, Clock, CredentialInfo,
    CredentialProvider, EntraError, Error, Result, Secret, TokenRequest,
};
use serde::Deserialize;
use serde_json::Value;

use botauth_http::internal::{self as http, ResolveSettings};
use botauth_http::{ClientSettings, HttpOptions};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the application proves its identity to the token endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A client secret (`client_secret=`).
    Secret(Secret),
    /// A signed client assertion (`client_assertion=`), made fresh for every request.
    Assertion(Arc<dyn ClientAssertionSource>),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("Secret([redacted])"),
            ClientAuth::Assertion(source) => f.debug_tuple("Assertion").field(source).finish(),
        }
    }
}

/// A client for Entra ID's client-credentials grant.
///
/// It is itself a [`CredentialProvider`] (without a cache: wrap it in a
/// [`TokenManager`](crate::TokenManager)). Errors carry Entra's `AADSTS` code with a hint.
pub struct ClientCredentialsClient {
    http: reqwest::Client,
    authority_host: String,
    tenant_id: String,
    client_id: String,
    auth: ClientAuth,
    clock: Arc<dyn Clock>,
    options: HttpOptions,
    kind: &'static str,
}

impl fmt::Debug for ClientCredentialsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsClient")
            .field("authority_host", &self.authority_host)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ClientCredentialsClient`].
#[derive(Debug)]
pub struct ClientCredentialsClientBuilder {
    authority_host: String,
    tenant_id: String,
    client_id: String,
    auth: ClientAuth,
    settings: ClientSettings,
    kind: Option<&'static str>,
}

impl ClientCredentialsClientBuilder {
    /// The shared settings: the authority host (replacing the one given to
    /// [`ClientCredentialsClient::builder`]), the HTTP client and limits, and the clock for token
    /// expiry. Settings given more than once are laid over each other.
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.settings = self.settings.merge(settings);
        self
    }

    /// The kind reported by [`CredentialProvider::describe`] (default: `client_secret` or the
    /// assertion source's kind).
    pub fn kind(mut self, kind: &'static str) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Validates the settings and builds the client.
    pub fn build(self) -> Result<ClientCredentialsClient> {
        let authority_host = botauth_core::internal::endpoint::check_endpoint_url(
            "authority_host",
            self.settings.authority_host_or(&self.authority_host),
        )?;
        validate_tenant_id(&self.tenant_id)?;
        if self.client_id.trim().is_empty() {
            return Err(Error::config(
                "client_id",
                "the application (client) id is empty",
            ));
        }
        if let ClientAuth::Secret(s) = &self.auth {
            if s.is_empty() {
                return Err(Error::config("client_secret", "the client secret is empty"));
            }
        }
        let options = self.settings.http_options_or(HttpOptions::default());
        let http = self.settings.client_or_build(&options)?;
        let kind = self.kind.unwrap_or(match &self.auth {
            ClientAuth::Secret(_) => "client_secret",
            ClientAuth::Assertion(a) => a.kind(),
        });
        Ok(ClientCredentialsClient {
            http,
            authority_host,
            tenant_id: self.tenant_id,
            client_id: self.client_id.trim().to_owned(),
            auth: self.auth,
            clock: self.settings.clock_or_system(),
            options,
            kind,
        })
    }
}

#[derive(Deserialize)]
struct SuccessWire {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_in: Option<Value>,
}

/// Entra sends numbers, and sometimes numbers as strings (docs/protocol.md §2).
fn seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl ClientCredentialsClient {
    /// Starts a builder for app `client_id` in `tenant_id` at `authority_host`
    /// (e.g. `https://login.microsoftonline.com`).
    pub fn builder(
        authority_host: impl Into<String>,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        auth: ClientAuth,
    ) -> ClientCredentialsClientBuilder {
        ClientCredentialsClientBuilder {
            authority_host: authority_host.into(),
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            auth,
            settings: ClientSettings::default(),
            kind: None,
        }
    }

    /// The token endpoint for `tenant` (default: the client's tenant).
    pub fn token_endpoint(&self, tenant: Option<&str>) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_host,
            tenant.unwrap_or(&self.tenant_id)
        )
    }

    /// Requests a token. When an assertion is rejected with a code that a reload may cure
    /// (a rotated certificate, docs/protocol.md §2), the assertion source reloads and the request is
    /// retried once.
    pub async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        let tenant = match &request.tenant_id {
            Some(t) => {
                validate_tenant_id(t)?;
                t.as_str()
            }
            None => self.tenant_id.as_str(),
        };
        let scopes = request.required_scopes()?;
        let endpoint = self.token_endpoint(Some(tenant));
        match self.post(&endpoint, &scopes).await {
            Err(Error::Entra(e)) => {
                if let ClientAuth::Assertion(source) = &self.auth {
                    if e.is_reload_once() && source.on_rejected(&e).await {
                        tracing::info!(
                            code = e.code(),
                            "client assertion rejected; credential reloaded, retrying once"
                        );
                        return self.post(&endpoint, &scopes).await;
                    }
                }
                Err(Error::Entra(e))
            }
            other => other,
        }
    }

    async fn post(&self, endpoint: &str, scopes: &[String]) -> Result<AccessToken> {
        let scope = scopes.join(" ");
        let assertion = match &self.auth {
            ClientAuth::Secret(_) => None,
            ClientAuth::Assertion(source) => Some(
                source
                    .assertion(&AssertionRequest::new(endpoint, &self.client_id))
                    .await?,
            ),
        };
        // The body holds the secret or assertion: keep it in a zeroizing box until sent.
        let body = self.form_body(&scope, assertion.as_ref());
        let request_id = uuid::Uuid::new_v4().to_string();
        tracing::debug!(
            endpoint,
            client_id = %self.client_id,
            scope = %scope,
            client_request_id = %request_id,
            "requesting token"
        );
        let response = self
            .http
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .header("client-request-id", &request_id)
            .header("return-client-request-id", "true")
            .header("x-client-SKU", http::CLIENT_SKU)
            .header("x-client-Ver", http::CLIENT_VERSION)
            .body(body.expose_secret().to_owned())
            .send()
            .await
            .map_err(|e| http::transport_error(endpoint, e, self.options.timeout))?;
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers(), self.clock.now());
        let bytes = http::read_body(
            response,
            endpoint,
            self.options.max_response_bytes,
            self.options.timeout,
        )
        .await?;
        let result = if status == 200 {
            self.parse_success(endpoint, &bytes)
        } else {
            Err(error_response(endpoint, status, &bytes, retry_after))
        };
        match &result {
            Ok(t) => tracing::debug!(
                endpoint,
                client_request_id = %request_id,
                expires_on = t.expires_on_unix(),
                "token acquired"
            ),
            Err(e) => tracing::warn!(
                endpoint,
                client_request_id = %request_id,
                status,
                error = %e,
                "token request failed"
            ),
        }
        result
    }

    fn form_body(&self, scope: &str, assertion: Option<&Secret>) -> Secret {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", scope);
        match (&self.auth, assertion) {
            (_, Some(assertion)) => {
                form.append_pair("client_assertion_type", JWT_BEARER)
                    .append_pair("client_assertion", assertion.expose_secret());
            }
            (ClientAuth::Secret(secret), None) => {
                form.append_pair("client_secret", secret.expose_secret());
            }
            (ClientAuth::Assertion(_), None) => {}
        }
        Secret::new(form.finish())
    }

    fn parse_success(&self, endpoint: &str, bytes: &[u8]) -> Result<AccessToken> {
        let invalid = |message: String| Error::InvalidResponse {
            endpoint: http::display_endpoint(endpoint),
            status: 200,
            message,
        };
        // Never quote the body: it may hold a token.
        let wire: SuccessWire = serde_json::from_slice(bytes).map_err(|e| {
            invalid(format!(
                "the body is not a JSON token response ({})",
                json_error_kind(&e)
            ))
        })?;
        let token = wire
            .access_token
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| invalid("the response has no access_token".into()))?;
        // Before anything is cached: a token with a line break or a control character would fail
        // every Bot Connector call for its whole lifetime.
        http::check_access_token(token.expose_secret(), endpoint, 200)?;
        let token_type: Cow<'static, str> = match wire.token_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("bearer") => Cow::Borrowed("Bearer"),
            Some(other) => {
                return Err(invalid(format!(
                    "token_type `{}` is not Bearer",
                    other.escape_debug()
                )));
            }
            None => return Err(invalid("the response has no token_type".into())),
        };
        let expires_in = wire
            .expires_in
            .as_ref()
            .and_then(seconds)
            .filter(|s| *s > 0)
            .ok_or_else(|| invalid("expires_in is missing or not a positive number".into()))?;
        let now = self.clock.now();
        // Checked: a hostile or broken server's huge number must be an error, not a panic.
        let expires_on = now
            .checked_add(Duration::from_secs(expires_in))
            .ok_or_else(|| invalid("expires_in is out of range".into()))?;
        let refresh_on = wire
            .refresh_in
            .as_ref()
            .and_then(seconds)
            .filter(|r| *r > 0 && *r < expires_in)
            .and_then(|r| now.checked_add(Duration::from_secs(r)));
        Ok(AccessToken {
            token,
            token_type,
            expires_on,
            refresh_on,
        })
    }
}

/// What kind of JSON error `e` is, without serde's message (which can quote the body).
fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected field types",
        serde_json::error::Category::Eof => "truncated",
    }
}

/// Maps a non-200 answer of a token endpoint to an [`Error`].
pub(crate) fn error_response(
    endpoint: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Error {
    if status == 429 {
        return Error::Throttled {
            endpoint: http::display_endpoint(endpoint),
            retry_after,
        };
    }
    let entra = EntraError::from_body(status, body, retry_after);
    if status >= 500 {
        // A failing service, whatever its body says: retryable, with Entra's details as the cause.
        return Error::Unavailable {
            endpoint: http::display_endpoint(endpoint),
            status: Some(status),
            retry_after,
            source: entra.map(|e| Arc::new(e) as botauth_core::ErrorSource),
        };
    }
    match entra {
        Some(e) => e.into(),
        None => Error::InvalidResponse {
            endpoint: http::display_endpoint(endpoint),
            status,
            message: "the error response is not an Entra error document".into(),
        },
    }
}

#[async_trait]
impl CredentialProvider for ClientCredentialsClient {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        self.request_token(request).await
    }

    fn describe(&self) -> CredentialInfo {
        CredentialInfo {
            client_id: Some(self.client_id.clone()),
            tenant_id: Some(self.tenant_id.clone()),
            authority_host: Some(self.authority_host.clone()),
            ..CredentialInfo::new(self.kind)
        }
    }
}
