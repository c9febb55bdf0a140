//! The Key Vault REST calls botauth makes (docs/protocol.md §11): get a certificate (latest or a
//! version), list its versions, get the secret version a certificate names. Every call carries a
//! bearer token for the vault's resource; ids the vault returns are followed only when they point
//! back into the same vault.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use botauth_core::{Clock, Secret, TokenRequest};
use botauth_http::HttpOptions;
use botauth_http::internal::{clean_text, read_body, retry_after, transport_error};
use botauth_token::TokenManager;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use serde::Deserialize;
use std::sync::Arc;

use crate::error::{KeyVaultError, KeyVaultErrorKind as Kind};

/// The REST API version botauth asks for: a 7.x version every cloud's vaults serve (the newest,
/// `2025-07-01`, adds nothing botauth needs).
pub(crate) const API_VERSION: &str = "7.5";

/// How many pages of a version list are followed before giving up (25 versions a page).
const MAX_PAGES: usize = 40;

/// A vault, the token for it, and the HTTP client.
#[derive(Debug)]
pub(crate) struct Vault {
    /// `https://contoso.vault.azure.net` (no trailing slash).
    pub(crate) base: String,
    pub(crate) scope: TokenRequest,
    pub(crate) tokens: TokenManager,
    pub(crate) http: reqwest::Client,
    pub(crate) options: HttpOptions,
    pub(crate) clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawAttributes {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: Option<i64>,
}

/// The validity and state of a certificate or secret version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub(crate) enabled: bool,
    pub(crate) not_before: Option<SystemTime>,
    pub(crate) expires: Option<SystemTime>,
    /// Unix seconds; 0 when the vault did not say.
    pub(crate) created: i64,
}

fn at(secs: i64) -> SystemTime {
    // A date past year 9999 is "never" for a certificate; clamping keeps it representable on
    // every platform instead of overflowing.
    botauth_core::internal::date::from_unix_seconds(secs.clamp(-MAX_SECS, MAX_SECS))
        .unwrap_or(UNIX_EPOCH)
}

/// 9999-12-31T23:59:59Z.
const MAX_SECS: i64 = 253_402_300_799;

impl From<RawAttributes> for Attributes {
    fn from(raw: RawAttributes) -> Self {
        Attributes {
            enabled: raw.enabled.unwrap_or(true),
            not_before: raw.nbf.map(at),
            expires: raw.exp.map(at),
            created: raw.created.unwrap_or(0),
        }
    }
}

impl Attributes {
    /// Whether the version may sign at `now`: enabled and inside `[nbf, exp)`.
    pub(crate) fn usable_at(&self, now: SystemTime) -> bool {
        self.enabled
            && self.not_before.is_none_or(|t| t <= now)
            && self.expires.is_none_or(|t| now < t)
    }
}

#[derive(Debug, Deserialize)]
struct RawCertificate {
    id: Option<String>,
    sid: Option<String>,
    x5t: Option<String>,
    #[serde(default)]
    attributes: RawAttributes,
    policy: Option<RawPolicy>,
}

#[derive(Debug, Deserialize)]
struct RawPolicy {
    key_props: Option<RawKeyProps>,
}

#[derive(Debug, Deserialize)]
struct RawKeyProps {
    exportable: Option<bool>,
}

/// A certificate version as the vault describes it (no key material).
#[derive(Debug, Clone)]
pub(crate) struct CertificateInfo {
    pub(crate) version: String,
    /// The secret version holding the key (`{vault}/secrets/{name}/{version}`).
    pub(crate) sid: String,
    /// The SHA-1 thumbprint, upper-case hex.
    pub(crate) sha1_hex: String,
    pub(crate) attributes: Attributes,
    /// `policy.key_props.exportable`, when the vault sent the policy.
    pub(crate) exportable: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct RawList {
    #[serde(default)]
    value: Vec<RawListItem>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawListItem {
    id: Option<String>,
    #[serde(default)]
    attributes: RawAttributes,
}

/// One entry of a certificate's version list.
#[derive(Debug, Clone)]
pub(crate) struct VersionItem {
    pub(crate) version: String,
    pub(crate) attributes: Attributes,
}

#[derive(Deserialize)]
struct RawSecret {
    value: Option<String>,
    #[serde(rename = "contentType")]
    content_type: Option<String>,
}

/// A secret version's value (the certificate and, when exportable, its key) and content type.
pub(crate) struct SecretValue {
    pub(crate) value: Secret,
    pub(crate) content_type: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &"[redacted]")
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl Vault {
    /// `GET {vault}/certificates/{name}[/{version}]`.
    pub(crate) async fn certificate(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<CertificateInfo, KeyVaultError> {
        let path = match version {
            Some(v) => format!("certificates/{name}/{v}"),
            None => format!("certificates/{name}"),
        };
        let url = format!("{}/{path}?api-version={API_VERSION}", self.base);
        let body = self.get(&url, "the certificate").await?;
        let raw: RawCertificate = parse(&url, &body)?;
        let invalid = |what: &str| {
            KeyVaultError::new(
                Kind::InvalidResponse,
                format!(
                    "{} answered a certificate without {what}: is it a Key Vault?",
                    shown(&url)
                ),
            )
        };
        let id = raw.id.ok_or_else(|| invalid("an id"))?;
        let version = self
            .version_of(&id, "certificates", name)
            .ok_or_else(|| invalid("an id in this vault"))?;
        let sid = raw.sid.ok_or_else(|| invalid("a secret id (sid)"))?;
        // The key is fetched from `sid` with the vault's token: only ever from this vault.
        self.version_of(&sid, "secrets", name)
            .ok_or_else(|| invalid("a secret id (sid) in this vault"))?;
        let x5t = raw.x5t.ok_or_else(|| invalid("a thumbprint (x5t)"))?;
        let sha1 = URL_SAFE_NO_PAD
            .decode(x5t.trim_end_matches('='))
            .ok()
            .filter(|d| d.len() == 20)
            .ok_or_else(|| invalid("a valid thumbprint (x5t)"))?;
        Ok(CertificateInfo {
            version,
            sid,
            sha1_hex: sha1.iter().map(|b| format!("{b:02X}")).collect(),
            attributes: raw.attributes.into(),
            exportable: raw
                .policy
                .and_then(|p| p.key_props)
                .and_then(|k| k.exportable),
        })
    }

    /// `GET {vault}/certificates/{name}/versions`, following `nextLink` within this vault.
    pub(crate) async fn versions(&self, name: &str) -> Result<Vec<VersionItem>, KeyVaultError> {
        let mut url = format!(
            "{}/certificates/{name}/versions?api-version={API_VERSION}",
            self.base
        );
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let body = self.get(&url, "the certificate's versions").await?;
            let page: RawList = parse(&url, &body)?;
            for item in page.value {
                let Some(version) = item
                    .id
                    .as_deref()
                    .and_then(|id| self.version_of(id, "certificates", name))
                else {
                    continue;
                };
                items.push(VersionItem {
                    version,
                    attributes: item.attributes.into(),
                });
            }
            match page.next_link.filter(|l| !l.is_empty()) {
                None => return Ok(items),
                // A next link elsewhere would get the vault's token: follow only this vault's.
                Some(next) if self.is_in_vault(&next) => url = next,
                Some(_) => {
                    return Err(KeyVaultError::new(
                        Kind::InvalidResponse,
                        format!(
                            "{} sent a nextLink outside the vault; it was not followed",
                            shown(&url)
                        ),
                    ));
                }
            }
        }
        Err(KeyVaultError::new(
            Kind::InvalidResponse,
            format!(
                "{} has more than {} pages of versions; botauth stopped following nextLink",
                shown(&url),
                MAX_PAGES
            ),
        ))
    }

    /// `GET {sid}`: the secret version that holds the certificate's key.
    pub(crate) async fn secret(&self, sid: &str) -> Result<SecretValue, KeyVaultError> {
        let url = format!("{sid}?api-version={API_VERSION}");
        let body = zeroize::Zeroizing::new(self.get(&url, "the certificate's secret").await?);
        let raw: RawSecret = serde_json::from_slice(&body).map_err(|_| {
            // serde's message could quote the value: say only where.
            KeyVaultError::new(
                Kind::InvalidResponse,
                format!(
                    "{} answered something that is not a secret (JSON)",
                    shown(&url)
                ),
            )
        })?;
        let value = raw.value.ok_or_else(|| {
            KeyVaultError::new(
                Kind::InvalidResponse,
                format!("{} answered a secret without a value", shown(&url)),
            )
        })?;
        Ok(SecretValue {
            value: Secret::new(value),
            content_type: raw.content_type.unwrap_or_default(),
        })
    }

    /// The version segment of `{vault}/{collection}/{name}/{version}` when `id` is exactly that.
    fn version_of(&self, id: &str, collection: &str, name: &str) -> Option<String> {
        let rest = strip_prefix_ci(id, &self.base)?;
        let rest = rest.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let (c, n, v) = (parts.next()?, parts.next()?, parts.next()?);
        let valid = c.eq_ignore_ascii_case(collection)
            && n.eq_ignore_ascii_case(name)
            && !v.is_empty()
            && v.bytes().all(|b| b.is_ascii_alphanumeric())
            && parts.next().is_none();
        valid.then(|| v.to_owned())
    }

    fn is_in_vault(&self, url: &str) -> bool {
        strip_prefix_ci(url, &self.base).is_some_and(|rest| rest.starts_with('/'))
    }

    /// One GET with the vault's token; a 401 is retried once with a fresh token (the cached one
    /// may have been revoked or issued for another tenant before a configuration change).
    async fn get(&self, url: &str, what: &str) -> Result<Vec<u8>, KeyVaultError> {
        let mut fresh = false;
        loop {
            let token = if fresh {
                self.tokens.force_refresh(&self.scope).await
            } else {
                self.tokens.get_token(&self.scope).await
            }
            .map_err(|e| {
                KeyVaultError::new(
                    Kind::Token,
                    format!(
                        "no token for Key Vault {} could be obtained: {e}",
                        shown(&self.base)
                    ),
                )
                .with_source(e)
            })?;
            let mut header = HeaderValue::from_str(token.authorization_header().expose_secret())
                .map_err(|e| {
                    KeyVaultError::new(Kind::Token, "the vault token cannot be sent in a header")
                        .with_source(e)
                })?;
            header.set_sensitive(true);
            let response = self
                .http
                .get(url)
                .header(AUTHORIZATION, header)
                .header(ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| unavailable(url, transport_error(url, e, self.options.timeout)))?;
            let status = response.status().as_u16();
            let wait = retry_after(response.headers(), self.clock.now());
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(|v| clean_text(v, 300));
            let body = read_body(
                response,
                url,
                self.options.max_response_bytes,
                self.options.timeout,
            )
            .await
            .map_err(|e| unavailable(url, e))?;
            if (200..300).contains(&status) {
                return Ok(body);
            }
            if status == 401 && !fresh {
                fresh = true;
                continue;
            }
            return Err(status_error(url, what, status, wait, challenge, &body));
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The URL without its query, for messages.
fn shown(url: &str) -> String {
    botauth_http::internal::display_endpoint(url)
}

fn parse<T: serde::de::DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, KeyVaultError> {
    serde_json::from_slice(body).map_err(|e| {
        KeyVaultError::new(
            Kind::InvalidResponse,
            format!(
                "{} answered something that is not Key Vault JSON",
                shown(url)
            ),
        )
        .with_source(e)
    })
}

fn unavailable(url: &str, e: botauth_core::Error) -> KeyVaultError {
    let kind = match &e {
        botauth_core::Error::InvalidResponse { .. } => Kind::InvalidResponse,
        _ => Kind::Unavailable,
    };
    KeyVaultError::new(kind, format!("Key Vault {}: {e}", shown(url))).with_source(e)
}

/// The Key Vault error body: `{"error":{"code":"…","message":"…","innererror":{"code":"…"}}}`.
fn vault_error(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let inner = e
        .pointer("/innererror/code")
        .and_then(|c| c.as_str())
        .map(|c| format!("/{c}"))
        .unwrap_or_default();
    let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
    Some(clean_text(&format!("{code}{inner}: {message}"), 300))
}

fn status_error(
    url: &str,
    what: &str,
    status: u16,
    wait: Option<Duration>,
    challenge: Option<String>,
    body: &[u8],
) -> KeyVaultError {
    let said = vault_error(body)
        .map(|s| format!(" (the vault said: {s})"))
        .unwrap_or_default();
    let at = shown(url);
    let (kind, message) = match status {
        401 => (
            Kind::Unauthorized,
            format!(
                "Key Vault refused the identity's token for {what} at {at} (HTTP 401){said}{}: the token \
                 must be for the vault's resource and from the vault's tenant; check the managed \
                 identity and that the vault is in the bot's cloud",
                challenge
                    .map(|c| format!("; challenge: {c}"))
                    .unwrap_or_default()
            ),
        ),
        403 if String::from_utf8_lossy(body).contains("Disabled") => (
            Kind::Disabled,
            format!(
                "{what} at {at} is disabled in the vault (HTTP 403){said}: enable the version or use another"
            ),
        ),
        403 => (
            Kind::Forbidden,
            format!(
                "the identity may not read {what} at {at} (HTTP 403){said}: give it the \"Key Vault \
                 Certificate User\" role on the vault (RBAC), or Get on certificates and secrets \
                 (access policies)"
            ),
        ),
        404 => (
            Kind::NotFound,
            format!(
                "{what} at {at} does not exist (HTTP 404){said}: check the vault URL, the \
                 certificate's name and version"
            ),
        ),
        429 => (
            Kind::Throttled,
            format!(
                "Key Vault is throttling requests for {what} at {at} (HTTP 429){}",
                wait.map(|w| format!("; retry after {} s", w.as_secs()))
                    .unwrap_or_default()
            ),
        ),
        500..=599 => (
            Kind::Unavailable,
            format!("Key Vault failed to answer for {what} at {at} (HTTP {status}){said}"),
        ),
        _ => (
            Kind::InvalidResponse,
            format!("Key Vault answered HTTP {status} for {what} at {at}{said}"),
        ),
    };
    KeyVaultError::new(kind, message)
        .with_status(status)
        .with_retry_after(wait)
}

/// The PEM blocks of `text` split into (private key blocks, everything else).
pub(crate) fn split_pem(text: &str) -> (zeroize::Zeroizing<String>, String) {
    let mut key = zeroize::Zeroizing::new(String::new());
    let mut rest = String::new();
    let mut block = zeroize::Zeroizing::new(String::new());
    let mut label: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            label = Some(l.to_owned());
            block.clear();
        }
        if label.is_some() {
            block.push_str(line);
            block.push('\n');
        }
        if line.starts_with("-----END ") {
            if let Some(l) = label.take() {
                if l.contains("PRIVATE KEY") {
                    key.push_str(&block);
                } else {
                    rest.push_str(&block);
                }
            }
            block.clear();
        }
    }
    (key, rest)
}
