//! What the Key Vault test files share: an HTTP reply, requests to the vault, and tokens from the
//! sandbox's IMDS and token endpoints.

// Each test file uses the part it needs.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};
use openssl::hash::MessageDigest;
use serde_json::Value;

pub(crate) const API: &str = "api-version=7.4";

/// The resource (token audience) of Azure Key Vault in the public cloud.
pub(crate) const KEY_VAULT_RESOURCE: &str = "https://vault.azure.net";

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    #[track_caller]
    pub(crate) fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{}", self.text);
        body
    }
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request to the sandbox");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("response body"),
    }
}

/// `GET {vault}/{path_and_query}` with an optional bearer token.
pub(crate) async fn vault(sandbox: &Sandbox, path_and_query: &str, token: Option<&str>) -> Reply {
    get_url(
        &format!("{}/{path_and_query}", sandbox.key_vault_url()),
        token,
    )
    .await
}

pub(crate) async fn get_url(url: &str, token: Option<&str>) -> Reply {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

/// A token from the sandbox's IMDS endpoint, for `identity` (`client_id=…`, `object_id=…`,
/// `msi_res_id=…`) or the system-assigned identity.
pub(crate) async fn imds_token(
    sandbox: &Sandbox,
    resource: &str,
    identity: Option<(&str, &str)>,
) -> String {
    let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
    query.extend(identity);
    let url = format!(
        "{}/metadata/identity/oauth2/token?{}",
        sandbox.imds_host(),
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish()
    );
    let reply = send(reqwest::Client::new().get(url).header("Metadata", "true")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub(crate) async fn vault_token(sandbox: &Sandbox) -> String {
    imds_token(sandbox, KEY_VAULT_RESOURCE, None).await
}

/// A client-credentials token of the demo app (v2 `scope`, or v1 `resource`).
pub(crate) async fn entra_token(sandbox: &Sandbox, v1: bool, resource: &str) -> Reply {
    let (url, field, value) = if v1 {
        (
            format!("{}/{DEMO_TENANT_ID}/oauth2/token", sandbox.url()),
            "resource",
            resource.to_owned(),
        )
    } else {
        (
            sandbox.token_endpoint(DEMO_TENANT_ID),
            "scope",
            format!("{resource}/.default"),
        )
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            (field, &value),
        ])
        .finish();
    send(
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

pub(crate) fn sha1_x5t(der: &[u8]) -> String {
    let digest = openssl::hash::hash(MessageDigest::sha1(), der).expect("sha1");
    URL_SAFE_NO_PAD.encode(digest)
}

pub(crate) fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
