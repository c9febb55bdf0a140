//! What the sandbox records for tests to read back, never with secrets: the request log (which
//! route each request hit and how it was answered) and the activities the Bot Connector accepted.

use std::time::Instant;

use serde_json::Value;

/// The sandbox endpoints, for fault injection and request counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /{tenant}/oauth2/v2.0/token` (v1: `/{tenant}/oauth2/token`).
    Token,
    /// `GET /botservice/v1/.well-known/openidconfiguration`.
    BotServiceMetadata,
    /// `GET /botservice/v1/.well-known/keys`.
    BotServiceJwks,
    /// `GET /{tenant}/v2.0/.well-known/openid-configuration` (v1: `/{tenant}/.well-known/openid-configuration`).
    EntraMetadata,
    /// `GET /{tenant}/discovery/v2.0/keys` (v1: `/{tenant}/discovery/keys`).
    EntraJwks,
    /// `GET /common/discovery/instance`: instance discovery.
    InstanceDiscovery,
    /// `POST /v3/conversations/{conversationId}/activities[/{activityId}]`.
    Connector,
    /// `GET /metadata/identity/oauth2/token`: IMDS.
    Imds,
    /// `GET /appservice/msi/token`: App Service / Functions.
    AppService,
    /// `GET /arc/metadata/identity/oauth2/token`: Azure Arc.
    AzureArc,
    /// `POST /cloudshell/oauth2/token`: Cloud Shell.
    CloudShell,
    /// `GET /servicefabric/metadata/identity/oauth2/token` on the TLS listener: Service Fabric.
    ServiceFabric,
    /// `GET /azureml/msi/token`: Azure ML.
    AzureMl,
    /// The Bot Framework Token Service: `/api/usertoken/{operation}`, `/api/botsignin/{operation}`,
    /// the sign-in page `/api/sandbox/signin` and the Teams client's `/api/sandbox/teams-sso-token`.
    TokenService,
    /// The Key Vault, at the root of the origin: `GET /certificates/…` and `/secrets/…` (not the
    /// control endpoint `/keyvault/_sandbox/…`, which is not vault traffic).
    KeyVault,
    /// Anything else (answered 404).
    Other,
}

impl Route {
    /// Classifies a request path the same way the router dispatches it.
    pub(crate) fn classify(path: &str) -> Self {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        // The Azure SDKs ask a vault for the latest version as `/certificates/{name}/`.
        if let ["certificates" | "secrets", name, ""] = segments.as_slice() {
            if !name.is_empty() {
                return Self::KeyVault;
            }
        }
        if segments.iter().any(|s| s.is_empty()) {
            return Self::Other;
        }
        match segments.as_slice() {
            ["botservice", "v1", ".well-known", "openidconfiguration"] => Self::BotServiceMetadata,
            ["botservice", "v1", ".well-known", "keys"] => Self::BotServiceJwks,
            ["v3", "conversations", _, "activities"]
            | ["v3", "conversations", _, "activities", _] => Self::Connector,
            ["metadata", "identity", "oauth2", "token"] => Self::Imds,
            ["appservice", "msi", "token"] => Self::AppService,
            ["arc", "metadata", "identity", "oauth2", "token"] => Self::AzureArc,
            ["cloudshell", "oauth2", "token"] => Self::CloudShell,
            ["servicefabric", "metadata", "identity", "oauth2", "token"] => Self::ServiceFabric,
            ["azureml", "msi", "token"] => Self::AzureMl,
            ["api", "usertoken" | "botsignin", _]
            | ["api", "sandbox", "signin" | "teams-sso-token"] => Self::TokenService,
            ["common", "discovery", "instance"] => Self::InstanceDiscovery,
            ["certificates" | "secrets", _] | ["certificates" | "secrets", _, _] => Self::KeyVault,
            [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"] => Self::Token,
            [_, "v2.0", ".well-known", "openid-configuration"]
            | [_, ".well-known", "openid-configuration"] => Self::EntraMetadata,
            [_, "discovery", "v2.0", "keys"] | [_, "discovery", "keys"] => Self::EntraJwks,
            _ => Self::Other,
        }
    }
}

/// One request as the sandbox saw it. Holds no secrets, assertions or tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestRecord {
    /// The endpoint it hit.
    pub route: Route,
    /// HTTP method.
    pub(crate) method: String,
    /// Request path (no query string).
    pub path: String,
    /// Status the sandbox answered with.
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
    /// The form's `client_id` (token requests that reached the handler).
    pub client_id: Option<String>,
    /// The `client-request-id` header.
    pub client_request_id: Option<String>,
    /// The form's `grant_type` (token requests that reached the handler).
    pub grant_type: Option<String>,
}

/// What the token handler learned from the form, handed to the logging middleware via response extensions.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormInfo {
    pub(crate) client_id: Option<String>,
    pub(crate) grant_type: Option<String>,
}

/// One activity the sandbox's Bot Connector accepted: where it was posted, and by whom.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectorPost {
    /// The `{conversationId}` path segment, percent-decoded (e.g. `a:1Xyz` for `a%3A1Xyz`).
    pub conversation_id: String,
    /// The `{activityId}` path segment, percent-decoded, when the reply-to route
    /// (`…/activities/{activityId}`) was used.
    pub reply_to_id: Option<String>,
    /// The activity body.
    pub activity: Value,
    /// The caller: the bearer token's `appid` claim, or `azp` when it has no `appid`.
    pub app_id: String,
    /// The bearer token's `aud`.
    pub audience: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        let cases = [
            ("/t/oauth2/v2.0/token", Route::Token),
            (
                "/t/v2.0/.well-known/openid-configuration",
                Route::EntraMetadata,
            ),
            ("/t/discovery/v2.0/keys", Route::EntraJwks),
            (
                "/botservice/v1/.well-known/openidconfiguration",
                Route::BotServiceMetadata,
            ),
            ("/botservice/v1/.well-known/keys", Route::BotServiceJwks),
            ("/v3/conversations/c/activities", Route::Connector),
            ("/v3/conversations/c/activities/a", Route::Connector),
            ("/metadata/identity/oauth2/token", Route::Imds),
            ("/appservice/msi/token", Route::AppService),
            ("/arc/metadata/identity/oauth2/token", Route::AzureArc),
            ("/cloudshell/oauth2/token", Route::CloudShell),
            (
                "/servicefabric/metadata/identity/oauth2/token",
                Route::ServiceFabric,
            ),
            ("/azureml/msi/token", Route::AzureMl),
            ("/api/usertoken/GetToken", Route::TokenService),
            ("/api/usertoken/exchange", Route::TokenService),
            ("/api/botsignin/GetSignInResource", Route::TokenService),
            ("/api/sandbox/signin", Route::TokenService),
            ("/api/sandbox/teams-sso-token", Route::TokenService),
            ("/certificates/c", Route::KeyVault),
            ("/certificates/c/0123abcd", Route::KeyVault),
            ("/secrets/c/versions", Route::KeyVault),
            ("/secrets/c/", Route::KeyVault),
            ("/certificates/c/", Route::KeyVault),
            ("/certificates//", Route::Other),
            ("/secrets/c/v/x", Route::Other),
            ("/keys/c", Route::Other),
            ("/keyvault/_sandbox/certificates/c/rotate", Route::Other),
            ("/keyvault/certificates/c", Route::Other),
            ("/api/sandbox/sas/x", Route::Other),
            ("/api/usertoken", Route::Other),
            ("/api/usertoken/GetToken/x", Route::Other),
            ("//oauth2/v2.0/token", Route::Other),
            ("/t/oauth2/v2.0/token/", Route::Other),
            ("/", Route::Other),
            ("", Route::Other),
        ];
        for (path, route) in cases {
            assert_eq!(Route::classify(path), route, "{path}");
        }
    }
}
