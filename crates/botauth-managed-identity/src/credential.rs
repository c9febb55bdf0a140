//! [`ManagedIdentityCredential`]: a token from the host's managed identity endpoint.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use botauth_core::config::{EnvVars, ManagedIdentityId};
use botauth_core::{
    AccessToken, Clock, CredentialInfo, CredentialProvider, Error, Result, TokenRequest,
};
use botauth_http::internal::ResolveSettings;
use botauth_http::{ClientSettings, HttpOptions};
use serde::Deserialize;

use crate::retry::{Decision, Outcome, RetryOptions, Schedule};
use crate::source::{self, Endpoint, ManagedIdentitySource};
use crate::transport::{self, Request, Response, SendError};
use crate::{arc, cloud_shell, request, response, service_fabric};

/// A managed identity: system-assigned, or user-assigned by client id, object id or resource id.
///
/// The endpoint is detected from the environment when the credential is built (docs/protocol.md §4:
/// Service Fabric, App Service / Functions, Azure ML, Cloud Shell, Azure Arc, else IMDS). Like every
/// provider it does not cache: wrap it in a `botauth_token::TokenManager`.
pub struct ManagedIdentityCredential {
    id: ManagedIdentityId,
    endpoint: Endpoint,
    http: reqwest::Client,
    options: HttpOptions,
    retry: RetryOptions,
    pub(crate) clock: Arc<dyn Clock>,
    arc_key_directory: PathBuf,
}

impl fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentityCredential")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .field("options", &self.options)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ManagedIdentityCredential`].
pub struct ManagedIdentityCredentialBuilder {
    id: ManagedIdentityId,
    env: Option<EnvVars>,
    file_exists: Arc<dyn Fn(&Path) -> bool + Send + Sync>,
    settings: ClientSettings,
    retry: RetryOptions,
    arc_key_directory: Option<PathBuf>,
}

impl fmt::Debug for ManagedIdentityCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentityCredentialBuilder")
            .field("id", &self.id)
            .field("env", &self.env)
            .field("settings", &self.settings)
            .field("retry", &self.retry)
            .field("arc_key_directory", &self.arc_key_directory)
            .finish_non_exhaustive()
    }
}

/// The default limits for managed identity endpoints: they live on the host, so a connection that
/// is not accepted within a second means there is no endpoint (not on Azure) and waiting longer
/// only delays the error.
pub(crate) fn default_http_options() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
        max_response_bytes: 64 * 1024,
    }
}

impl ManagedIdentityCredentialBuilder {
    /// Selects the identity (default: system-assigned).
    pub fn id(mut self, id: ManagedIdentityId) -> Self {
        self.id = id;
        self
    }

    /// Detects the endpoint from these variables instead of the process environment.
    pub fn env(mut self, env: EnvVars) -> Self {
        self.env = Some(env);
        self
    }

    /// Answers "does this file exist" for detection (the Arc agent binary); default: the file system.
    pub fn file_exists(mut self, f: impl Fn(&Path) -> bool + Send + Sync + 'static) -> Self {
        self.file_exists = Arc::new(f);
        self
    }

    /// The shared settings ([`ClientSettings`]): timeouts and the response size limit (default:
    /// 1 s to connect, 10 s overall, 64 KiB: the endpoint lives on the host, so a connection not
    /// accepted within a second means there is none), and the clock for expiry times, `Retry-After` dates and the waits
    /// between retries. An HTTP client given here is used as it is (the one botauth builds never
    /// goes through a proxy); an authority host is refused by [`build`](Self::build): managed
    /// identity endpoints are found on the host, not at Entra.
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.settings = self.settings.merge(settings);
        self
    }

    /// The retry schedules (default: docs/protocol.md §4's).
    pub fn retry_options(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// The directory Arc's challenge key files must be in (default: the agent's,
    /// `/var/opt/azcmagent/tokens` or `%ProgramData%\AzureConnectedMachineAgent\Tokens`).
    pub fn arc_key_directory(mut self, directory: impl Into<PathBuf>) -> Self {
        self.arc_key_directory = Some(directory.into());
        self
    }

    /// Detects the endpoint and checks that it can serve the selected identity.
    pub fn build(self) -> Result<ManagedIdentityCredential> {
        let env = self.env.unwrap_or_else(EnvVars::from_process);
        let endpoint = source::detect(&env, &*self.file_exists)?;
        check_id(&self.id)?;
        request::spec(endpoint.source).check_id(&self.id)?;
        self.settings
            .refuse_authority_host("a managed identity credential")?;
        let options = self.settings.http_options_or(default_http_options());
        let http = match self.settings.given_http_client() {
            Some(client) => client.clone(),
            None => transport::build_client(&options)?,
        };
        tracing::debug!(source = %endpoint.source, endpoint = %endpoint.url, "managed identity endpoint detected");
        Ok(ManagedIdentityCredential {
            id: self.id,
            endpoint,
            http,
            options,
            retry: self.retry,
            clock: self.settings.clock_or_system(),
            arc_key_directory: self
                .arc_key_directory
                .unwrap_or_else(source::default_arc_key_directory),
        })
    }
}

fn check_id(id: &ManagedIdentityId) -> Result<()> {
    let value = match id {
        ManagedIdentityId::System => return Ok(()),
        ManagedIdentityId::ClientId(v)
        | ManagedIdentityId::ObjectId(v)
        | ManagedIdentityId::ResourceId(v) => v,
        _ => return Ok(()),
    };
    if value.trim().is_empty() {
        return Err(Error::config(
            "managed_identity",
            "the user-assigned identity's id is empty",
        ));
    }
    Ok(())
}

/// The error of a managed identity endpoint that answered with a refusal: what it said, for the
/// `source()` chain of the [`Error`] botauth returns (whose message says what to do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{endpoint} answered HTTP {status}{}{}", error.as_deref().map(|e| format!(": {e}")).unwrap_or_default(), description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
#[non_exhaustive]
pub struct EndpointRejection {
    endpoint: ManagedIdentitySource,
    status: u16,
    error: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct ErrorWire {
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl EndpointRejection {
    /// Which endpoint answered.
    pub fn endpoint(&self) -> ManagedIdentitySource {
        self.endpoint
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Its `error` field, when the body had one.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Its `error_description` (or `message`), when the body had one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    fn parse(source: ManagedIdentitySource, status: u16, body: &[u8]) -> Self {
        let wire: Option<ErrorWire> = serde_json::from_slice(body).ok();
        let (error, description) = match wire {
            Some(w) => {
                // Some endpoints nest `{"error":{"code":…,"message":…}}`.
                let (error, nested) = match w.error {
                    Some(serde_json::Value::String(s)) => (Some(s), None),
                    Some(serde_json::Value::Object(o)) => (
                        o.get("code").and_then(|v| v.as_str()).map(str::to_owned),
                        o.get("message").and_then(|v| v.as_str()).map(str::to_owned),
                    ),
                    _ => (None, None),
                };
                (error, w.error_description.or(w.message).or(nested))
            }
            None => (None, None),
        };
        // Clipped, and control characters replaced: the server's text ends up in error messages
        // and logs, where a newline could forge a log line.
        let clip = |s: String| {
            s.chars()
                .take(300)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
        };
        EndpointRejection {
            endpoint: source,
            status,
            error: error.map(clip),
            description: description.map(clip),
        }
    }
}

impl ManagedIdentityCredential {
    /// A builder for the system-assigned identity, detecting the endpoint from the process
    /// environment.
    pub fn builder() -> ManagedIdentityCredentialBuilder {
        ManagedIdentityCredentialBuilder {
            id: ManagedIdentityId::System,
            env: None,
            file_exists: Arc::new(|p: &Path| p.exists()),
            settings: ClientSettings::default(),
            retry: RetryOptions::default(),
            arc_key_directory: None,
        }
    }

    /// The detected source.
    pub fn source(&self) -> ManagedIdentitySource {
        self.endpoint.source
    }

    /// The endpoint URL (without query).
    pub fn endpoint(&self) -> &str {
        self.endpoint.url.as_str()
    }

    /// A token for the single resource of `request`.
    async fn request_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        let resource = resource(request)?;
        let source = self.endpoint.source;
        let mut schedule = Schedule::new(&self.retry, source, self.clock.now());
        // The request depends only on the endpoint, the resource and the identity: build it once.
        let built = self.build_request(&resource)?;
        let endpoint = built.endpoint();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            tracing::debug!(%source, endpoint, attempt, "requesting a managed identity token");
            let failed = match self.send(&built).await {
                Ok(response) if response.status == 200 => {
                    return response::parse(&endpoint, &response.body, self.clock.now());
                }
                Ok(response) => Failed::Answer(response),
                Err(SendError::Timeout(after)) => Failed::TimedOut(after),
                Err(SendError::Connect(cause)) => return Err(self.unreachable(&endpoint, cause)),
                Err(SendError::Other(e)) => return Err(e),
            };
            let retry = match &failed {
                Failed::Answer(r) => Outcome::Status(r.status, r.retry_after),
                Failed::TimedOut(_) => Outcome::Timeout,
            };
            match schedule.next(retry, self.clock.now()) {
                Decision::Retry(wait) => {
                    tracing::info!(%source, attempt, wait_ms = wait.as_millis() as u64, ?retry, "managed identity request failed; retrying");
                    self.clock.sleep(wait).await;
                }
                Decision::GiveUp => {
                    return Err(match failed {
                        Failed::Answer(response) => self.failure(&endpoint, &response),
                        Failed::TimedOut(after) => Error::Timeout { endpoint, after },
                    });
                }
            }
        }
    }

    fn build_request(&self, resource: &str) -> Result<Request> {
        let e = &self.endpoint;
        match e.source {
            ManagedIdentitySource::CloudShell => cloud_shell::request(e, resource, &self.id),
            source => request::spec(source).get(e, resource, &self.id),
        }
    }

    /// One exchange; for Arc, including the challenge round trip.
    async fn send(&self, request: &Request) -> Result<Response, SendError> {
        let response = self.send_once(request).await?;
        if self.endpoint.source != ManagedIdentitySource::AzureArc || response.status != 401 {
            return Ok(response);
        }
        let key = arc::read_challenge_key(
            response.www_authenticate.as_deref(),
            &self.arc_key_directory,
        )
        .await
        .map_err(SendError::Other)?;
        let authorized = request
            .clone()
            .header("Authorization", format!("Basic {}", key.expose_secret()));
        self.send_once(&authorized).await
    }

    async fn send_once(&self, request: &Request) -> Result<Response, SendError> {
        match self.endpoint.thumbprint {
            Some(thumbprint) => {
                service_fabric::send_pinned(request, thumbprint, &self.options, self.clock.now())
                    .await
            }
            None => transport::send(&self.http, &self.options, request, self.clock.now()).await,
        }
    }

    fn unreachable(&self, endpoint: &str, cause: botauth_core::ErrorSource) -> Error {
        let source = self.endpoint.source;
        let advice = match source {
            ManagedIdentitySource::Imds => {
                "this host does not look like an Azure VM, scale set or AKS node. Off Azure, use \
                 another credential (a client secret or a certificate), or point \
                 AZURE_POD_IDENTITY_AUTHORITY_HOST at a local stand-in; on App Service or Functions, \
                 enable the managed identity (Identity blade), which sets IDENTITY_ENDPOINT and \
                 IDENTITY_HEADER"
            }
            _ => {
                "the platform's identity agent is not running: check that the managed identity is enabled"
            }
        };
        Error::Credential {
            message: format!(
                "no managed identity endpoint is available: {} at {endpoint} refused the connection \
                 or did not accept it within {:?}; {advice}",
                source.product(),
                self.options.connect_timeout
            ),
            source: Some(cause),
        }
    }

    /// The error for a final non-200 answer.
    fn failure(&self, endpoint: &str, response: &Response) -> Error {
        let source = self.endpoint.source;
        let status = response.status;
        let rejection = EndpointRejection::parse(source, status, &response.body);
        let endpoint = endpoint.to_owned();
        match status {
            429 => Error::Throttled {
                endpoint,
                retry_after: response.retry_after,
            },
            404 | 408 | 410 | 500..=599 => Error::Unavailable {
                endpoint,
                status: Some(status),
                retry_after: response.retry_after,
                source: Some(Arc::new(rejection)),
            },
            400 | 401 | 403 => Error::Credential {
                message: self.refusal_advice(&rejection),
                source: Some(Arc::new(rejection)),
            },
            _ => Error::InvalidResponse {
                endpoint,
                status,
                message: "unexpected status from the managed identity endpoint".into(),
            },
        }
    }

    fn refusal_advice(&self, r: &EndpointRejection) -> String {
        let product = r.endpoint.product();
        let not_found = r
            .description
            .as_deref()
            .is_some_and(|d| d.to_ascii_lowercase().contains("identity not found"));
        let which = match &self.id {
            ManagedIdentityId::System => "system-assigned identity".to_owned(),
            ManagedIdentityId::ClientId(v) => format!("user-assigned identity with client id {v}"),
            ManagedIdentityId::ObjectId(v) => format!("user-assigned identity with object id {v}"),
            ManagedIdentityId::ResourceId(v) => format!("user-assigned identity {v}"),
            _ => "such identity".to_owned(),
        };
        match (r.endpoint, r.status) {
            (ManagedIdentitySource::Imds, 400) if not_found || r.description.is_none() => format!(
                "{product} has no {which}: {}",
                if matches!(self.id, ManagedIdentityId::System) {
                    "enable the system-assigned identity of this VM (Identity blade, Status On), or configure the client id of a user-assigned identity assigned to it"
                } else {
                    "assign that identity to this VM or scale set (Identity blade, User assigned), or check the id"
                }
            ),
            (_, 400) if not_found => format!(
                "{product} has no {which}: assign it to this resource (Identity blade) or check the id"
            ),
            (ManagedIdentitySource::AppService, 401 | 403) => format!(
                "{product} refused the request (HTTP {}): IDENTITY_HEADER is not accepted; it changes \
                 when the app restarts, so read it from the environment at start-up rather than copying it",
                r.status
            ),
            (ManagedIdentitySource::AzureArc, 401 | 403) => format!(
                "{product} refused the challenge key: run the bot as a member of the himds group (or as administrator)"
            ),
            (ManagedIdentitySource::ServiceFabric | ManagedIdentitySource::AzureMl, 401 | 403) => {
                format!(
                    "{product} refused the request (HTTP {}): the secret from the environment is not accepted",
                    r.status
                )
            }
            _ => format!(
                "{product} refused the token request for the {which} (HTTP {}): check the identity and the requested resource",
                r.status
            ),
        }
    }
}

/// An attempt that did not produce a token but may be retried.
enum Failed {
    /// The endpoint answered with a status other than 200.
    Answer(Response),
    /// No answer in time.
    TimedOut(std::time::Duration),
}

/// The one resource of a managed identity request: its scope without `/.default`.
pub(crate) fn resource(request: &TokenRequest) -> Result<String> {
    if request.tenant_id.is_some() {
        return Err(Error::config(
            "tenant_id",
            "a managed identity issues tokens in its own tenant only: do not set a tenant on the request",
        ));
    }
    let scopes = request.required_scopes()?;
    match scopes.as_slice() {
        [scope] => {
            let resource = scope.strip_suffix("/.default").unwrap_or(scope);
            if resource.is_empty() {
                return Err(Error::config("scope", "the scope names no resource"));
            }
            Ok(resource.to_owned())
        }
        _ => Err(Error::config(
            "scope",
            format!(
                "a managed identity token is for exactly one resource, but {} scopes were requested: \
                 request each resource separately",
                scopes.len()
            ),
        )),
    }
}

#[async_trait]
impl CredentialProvider for ManagedIdentityCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        self.request_token(request).await
    }

    fn describe(&self) -> CredentialInfo {
        // The source's own retry schedule (docs/protocol.md §4) is the only one.
        CredentialInfo {
            // The client id is known only when the identity is selected by it.
            client_id: match &self.id {
                ManagedIdentityId::ClientId(c) => Some(c.clone()),
                _ => None,
            },
            authority_host: Some(self.endpoint.url.origin().ascii_serialization()),
            retries_internally: true,
            ..CredentialInfo::new("managed_identity")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::ErrorKind;

    fn key(e: Error) -> String {
        match e {
            Error::Config { key, .. } => key,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scopes_become_one_resource() {
        assert_eq!(
            resource(&TokenRequest::new("https://api.botframework.com/.default")).unwrap(),
            "https://api.botframework.com"
        );
        assert_eq!(
            resource(&TokenRequest::new("api://AzureADTokenExchange")).unwrap(),
            "api://AzureADTokenExchange"
        );
        // Duplicates collapse into one.
        assert_eq!(
            resource(&TokenRequest::with_scopes(["a/.default", "a/.default"])).unwrap(),
            "a"
        );
        let two = TokenRequest::with_scopes(["https://a/.default", "https://b/.default"]);
        let e = resource(&two).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("exactly one resource"), "{e}");
        assert_eq!(
            key(resource(&TokenRequest::with_scopes([" "])).unwrap_err()),
            "scope"
        );
        assert_eq!(
            key(resource(&TokenRequest::new("/.default")).unwrap_err()),
            "scope"
        );
        assert_eq!(
            key(resource(&TokenRequest {
                tenant_id: Some("t".into()),
                ..TokenRequest::new("a")
            })
            .unwrap_err()),
            "tenant_id"
        );
    }

    fn build(vars: &[(&str, &str)], id: ManagedIdentityId) -> Result<ManagedIdentityCredential> {
        ManagedIdentityCredential::builder()
            .env(vars.iter().map(|(k, v)| (*k, *v)).collect())
            .file_exists(|_| false)
            .id(id)
            .build()
    }

    #[test]
    fn sources_refuse_ids_they_cannot_select() {
        let arc = [
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:40342/x"),
            ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
        ];
        let e = build(&arc, ManagedIdentityId::ClientId("c".into())).unwrap_err();
        assert_eq!(key(e), "managed_identity");
        let shell = [("MSI_ENDPOINT", "http://127.0.0.1:1/x")];
        assert!(build(&shell, ManagedIdentityId::System).is_ok());
        assert_eq!(
            key(build(&shell, ManagedIdentityId::ObjectId("o".into())).unwrap_err()),
            "managed_identity"
        );
        let ml = [
            ("MSI_ENDPOINT", "http://127.0.0.1:1/x"),
            ("MSI_SECRET", "s"),
        ];
        assert!(build(&ml, ManagedIdentityId::ClientId("c".into())).is_ok());
        assert_eq!(
            key(build(&ml, ManagedIdentityId::ResourceId("r".into())).unwrap_err()),
            "managed_identity"
        );
        let sf = [
            ("IDENTITY_ENDPOINT", "https://127.0.0.1:1/x"),
            ("IDENTITY_HEADER", "h"),
            (
                "IDENTITY_SERVER_THUMBPRINT",
                "84E05C1D98BCE3A5421D225B140B36E86A3D5534",
            ),
        ];
        assert!(build(&sf, ManagedIdentityId::ResourceId("r".into())).is_ok());
        assert_eq!(
            key(build(&sf, ManagedIdentityId::ObjectId("o".into())).unwrap_err()),
            "managed_identity"
        );
        assert_eq!(
            key(build(&[], ManagedIdentityId::ClientId(" ".into())).unwrap_err()),
            "managed_identity"
        );
    }

    #[test]
    fn debug_and_describe_hide_the_secret_header() {
        let c = build(
            &[
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token"),
                ("IDENTITY_HEADER", "hdr-s3cret"),
            ],
            ManagedIdentityId::ClientId("cid".into()),
        )
        .unwrap();
        assert_eq!(c.source(), ManagedIdentitySource::AppService);
        let debug = format!("{c:?} {:?} {}", c.describe(), c.describe());
        assert!(!debug.contains("hdr-s3cret"), "{debug}");
        assert_eq!(c.describe().kind, "managed_identity");
        assert_eq!(c.describe().client_id.as_deref(), Some("cid"));
        // Its own docs/protocol.md §4 schedule is the only one: the token manager must not add another.
        assert!(c.describe().retries_internally);
    }

    #[test]
    fn rejections_parse_flat_and_nested_bodies() {
        let r = EndpointRejection::parse(
            ManagedIdentitySource::Imds,
            400,
            br#"{"error":"invalid_request","error_description":"Identity not found"}"#,
        );
        assert_eq!(r.error.as_deref(), Some("invalid_request"));
        assert_eq!(r.description.as_deref(), Some("Identity not found"));
        assert_eq!(
            r.to_string(),
            "imds answered HTTP 400: invalid_request (Identity not found)"
        );
        let r = EndpointRejection::parse(
            ManagedIdentitySource::ServiceFabric,
            401,
            br#"{"error":{"code":"SecretHeaderNotFound","message":"Secret is not found"}}"#,
        );
        assert_eq!(r.error.as_deref(), Some("SecretHeaderNotFound"));
        assert_eq!(r.description.as_deref(), Some("Secret is not found"));
        let r = EndpointRejection::parse(ManagedIdentitySource::AppService, 500, b"<html>");
        assert_eq!(r.error, None);
        // The server's text cannot start a new log line.
        let r = EndpointRejection::parse(
            ManagedIdentitySource::Imds,
            400,
            br#"{"error":"bad\nINFO forged","error_description":"x\r\ny"}"#,
        );
        assert_eq!(r.error.as_deref(), Some("bad INFO forged"));
        assert_eq!(r.description.as_deref(), Some("x  y"));
    }
}
