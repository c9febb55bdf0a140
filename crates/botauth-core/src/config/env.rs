//! Environment dialect readers (docs/protocol.md §7): botas, Bot Framework, Microsoft.Identity.Web,
//! Microsoft 365 Agents SDK and Azure workload identity, all producing [`BotAuthConfig`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::model::{
    BotAuthConfig, CertificateConfig, CredentialConfig, Dialect, ManagedIdentityId,
};
use super::validate::{
    KeyNames, check_endpoint_url, known_cloud, parse_endpoint_url, rekey, validate,
};
use crate::{Cloud, Error, Result, Secret};

/// An injected environment: the variables a configuration is read from.
///
/// [`BotAuthConfig::from_env`] fills one from the process environment; tests and applications that
/// keep their settings elsewhere build one themselves (`EnvVars::from_iter([("CLIENT_ID", "…")])`).
///
/// Lookups return values with surrounding whitespace trimmed, and treat an empty (or all-blank)
/// value as absent, so `MicrosoftAppPassword=` in a `.env` file means "not set".
///
/// `Debug` prints the keys only, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvVars {
    vars: BTreeMap<String, String>,
}

impl EnvVars {
    /// An empty environment.
    pub fn new() -> Self {
        EnvVars::default()
    }

    /// The process environment. Variables whose name or value is not valid UTF-8 are skipped
    /// (`std::env::vars()` would panic on them).
    pub fn from_process() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    /// Sets `key` to `value`, replacing an earlier value of exactly that key.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    /// The value of exactly `key` (case-sensitive), trimmed; `None` when absent or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).and_then(|v| non_blank(v))
    }

    /// The value of `key` compared the way .NET configuration compares keys: ASCII
    /// case-insensitively, with `:` and `__` as interchangeable section separators
    /// (`AzureAd:ClientId`, `AZUREAD__CLIENTID` and `azuread__clientid` are one key). Trimmed;
    /// `None` when absent or blank. When several spellings are set, an exact match wins, then the
    /// first in sorted key order.
    pub fn get_ci(&self, key: &str) -> Option<&str> {
        if let Some(v) = self.get(key) {
            return Some(v);
        }
        let wanted = normalize_key(key);
        self.vars
            .iter()
            .filter(|(k, _)| normalize_key(k) == wanted)
            .find_map(|(_, v)| non_blank(v))
    }

    /// Whether `key` (exactly) has a non-blank value.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of variables (including blank ones).
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are no variables at all.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The variable names, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// Non-blank variables whose normalized key (see [`EnvVars::get_ci`]) starts with the
    /// normalized `prefix`: `(normalized rest of the key, trimmed value)`.
    fn with_prefix_ci(&self, prefix: &str) -> Vec<(String, &str)> {
        let prefix = normalize_key(prefix);
        self.vars
            .iter()
            .filter_map(|(k, v)| {
                let k = normalize_key(k);
                let rest = k.strip_prefix(&prefix)?.to_owned();
                Some((rest, non_blank(v)?))
            })
            .collect()
    }

    fn has_prefix_ci(&self, prefix: &str) -> bool {
        !self.with_prefix_ci(prefix).is_empty()
    }
}

/// How an error mentions a value the user gave for an enumerated key: quoted when it looks like a
/// word (a typo worth showing), otherwise not at all (it may be a secret pasted one line off).
fn shown(value: &str) -> String {
    if value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!(" `{value}`")
    } else {
        String::new()
    }
}

fn non_blank(v: &str) -> Option<&str> {
    Some(v.trim()).filter(|v| !v.is_empty())
}

fn normalize_key(key: &str) -> String {
    key.trim().replace(':', "__").to_ascii_lowercase()
}

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVars")
            .field("keys", &self.vars.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvVars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut env = EnvVars::new();
        env.extend(iter);
        env
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for EnvVars {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for EnvVars {
    type Item = (String, String);
    type IntoIter = std::collections::btree_map::IntoIter<String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.vars.into_iter()
    }
}

// ---------------------------------------------------------------------------------------------
// Key names.

const BOTAUTH_AUTHORITY_HOST: &str = "BOTAUTH_AUTHORITY_HOST";
const BOTAUTH_CLOUD: &str = "BOTAUTH_CLOUD";
const BOTAUTH_METADATA_URL: &str = "BOTAUTH_METADATA_URL";
const BOTAUTH_ALLOWED_SERVICE_URLS: &str = "BOTAUTH_ALLOWED_SERVICE_URLS";
const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";

const AGENTS: &str = "Connections__ServiceConnection__Settings__";
const IDWEB: &str = "AzureAd__";
const IDWEB_CREDS: &str = "AzureAd__ClientCredentials";

/// The error when no dialect's keys are present.
pub(crate) fn no_configuration() -> Error {
    Error::config(
        "CLIENT_ID",
        "no botauth configuration found in the environment: set CLIENT_ID/CLIENT_SECRET/TENANT_ID (botas), \
         MicrosoftAppId/… (Bot Framework), AzureAd__… (Microsoft.Identity.Web) or \
         Connections__ServiceConnection__Settings__… (Agents SDK)",
    )
}

/// Which dialect `env` speaks, by the precedence documented on [`BotAuthConfig::from_vars`].
pub(crate) fn detect(env: &EnvVars) -> Option<Dialect> {
    if env.has_prefix_ci(AGENTS) {
        Some(Dialect::AgentsSdk)
    } else if env.has_prefix_ci(IDWEB) {
        Some(Dialect::IdentityWeb)
    } else if env.get_ci("MicrosoftAppId").is_some() || env.get_ci("MicrosoftAppPassword").is_some()
    {
        Some(Dialect::BotFramework)
    } else if env.contains("CLIENT_ID") {
        Some(Dialect::Botas)
    } else if env.contains(AZURE_FEDERATED_TOKEN_FILE) && env.contains("AZURE_CLIENT_ID") {
        Some(Dialect::WorkloadIdentity)
    } else {
        None
    }
}

/// Reads `env` in `dialect` (or the detected one), applies the generic `BOTAUTH_*` overrides and
/// validates the result.
pub(crate) fn read_env(dialect: Option<Dialect>, env: &EnvVars) -> Result<BotAuthConfig> {
    let detected = dialect.is_none();
    let dialect = match dialect {
        Some(d) => d,
        None => detect(env).ok_or_else(no_configuration)?,
    };
    tracing::debug!(%dialect, detected, "botauth: reading configuration");
    let draft = match dialect {
        Dialect::Botas => read_botas(env)?,
        Dialect::BotFramework => read_bot_framework(env)?,
        Dialect::IdentityWeb => read_identity_web(env)?,
        Dialect::AgentsSdk => read_agents(env)?,
        Dialect::WorkloadIdentity => read_workload_identity(env)?,
        Dialect::Native => {
            return Err(Error::config(
                "dialect",
                "botauth's native format is a file, not environment variables: use \
                 BotAuthConfig::from_file, from_toml_str or from_json_str",
            ));
        }
    };
    let config = finish(draft, env)?;
    tracing::debug!(
        dialect = %config.dialect,
        credentials = ?config.credentials.iter().map(CredentialConfig::type_name).collect::<Vec<_>>(),
        "botauth: configuration read"
    );
    Ok(config)
}

/// A dialect's result before the generic overrides and the common validation.
#[derive(Debug)]
struct Draft {
    /// The configuration, with `cloud` set to the dialect's base cloud.
    config: BotAuthConfig,
    /// A custom authority host given by the dialect (already checked).
    authority: Option<String>,
    /// The dialect's key names for [`validate`].
    keys: KeyNames,
}

impl Draft {
    fn new(dialect: Dialect, client_id: &str, credentials: &str) -> Self {
        let mut config = BotAuthConfig::new(dialect);
        config.client_id = Some(client_id.to_owned());
        Draft {
            config,
            authority: None,
            keys: KeyNames {
                client_id: String::new(),
                tenant_id: String::new(),
                credentials: credentials.to_owned(),
                native: false,
            },
        }
    }

    fn keys(mut self, client_id: &str, tenant_id: &str) -> Self {
        self.keys.client_id = client_id.to_owned();
        self.keys.tenant_id = tenant_id.to_owned();
        self
    }

    /// Folds in an authority host the dialect names under `key`: a known host selects its cloud,
    /// any other becomes a custom authority.
    fn authority(&mut self, key: &str, value: &str) -> Result<()> {
        let url = check_endpoint_url(key, value)?;
        match known_cloud(&url) {
            Some(cloud) => {
                self.config.cloud = cloud;
                self.authority = None;
            }
            None => self.authority = Some(url),
        }
        Ok(())
    }
}

/// Applies `BOTAUTH_CLOUD`, `BOTAUTH_AUTHORITY_HOST` and `BOTAUTH_METADATA_URL`, then validates.
///
/// `BOTAUTH_CLOUD` replaces the dialect's cloud (scopes, metadata, audience) but keeps a custom
/// authority the dialect gave; `BOTAUTH_AUTHORITY_HOST` replaces any authority.
fn finish(mut draft: Draft, env: &EnvVars) -> Result<BotAuthConfig> {
    let cloud = env
        .get(BOTAUTH_CLOUD)
        .map(|name| Cloud::from_name(name).map_err(|e| rekey(e, BOTAUTH_CLOUD)))
        .transpose()?;
    if let Some(host) = env.get(BOTAUTH_AUTHORITY_HOST) {
        match cloud {
            // As the dialects' own authority keys: a known cloud's host selects that cloud.
            None => draft.authority(BOTAUTH_AUTHORITY_HOST, host)?,
            // BOTAUTH_CLOUD decides the cloud; the host is only its authority.
            Some(_) => draft.authority = Some(check_endpoint_url(BOTAUTH_AUTHORITY_HOST, host)?),
        }
    }
    let Draft {
        mut config,
        authority,
        keys,
    } = draft;
    if let Some(cloud) = cloud {
        config.cloud = cloud;
    }
    if let Some(host) = authority {
        if !host.eq_ignore_ascii_case(config.cloud.authority_host()) {
            config.cloud = config.cloud.with_authority_host(host);
        }
    }
    if let Some(url) = env.get(BOTAUTH_METADATA_URL) {
        config.inbound.metadata_url = Some(check_endpoint_url(BOTAUTH_METADATA_URL, url)?);
    }
    if let Some(urls) = env.get(BOTAUTH_ALLOWED_SERVICE_URLS) {
        for url in service_url_list(BOTAUTH_ALLOWED_SERVICE_URLS, urls)? {
            if !config.allowed_service_urls.contains(&url) {
                config.allowed_service_urls.push(url);
            }
        }
    }
    validate(&config, &keys)?;
    Ok(config)
}

/// A comma- or whitespace-separated list of service-URL allow-list entries, each checked.
fn service_url_list(key: &str, value: &str) -> Result<Vec<String>> {
    let entries: Vec<String> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    super::validate::check_service_url_entries(key, &entries)?;
    Ok(entries)
}

fn required<'a>(value: Option<&'a str>, key: &str, what: &str) -> Result<&'a str> {
    value.ok_or_else(|| Error::config(key, format!("is required: {what}")))
}

const CLIENT_ID_WHAT: &str = "set it to the bot's application (client) id";
const TENANT_ID_WHAT: &str = "set it to the bot's tenant (directory) id";

// ---------------------------------------------------------------------------------------------
// botas

fn read_botas(env: &EnvVars) -> Result<Draft> {
    let client_id = required(env.get("CLIENT_ID"), "CLIENT_ID", CLIENT_ID_WHAT)?;
    let tenant_id = required(env.get("TENANT_ID"), "TENANT_ID", TENANT_ID_WHAT)?;
    let mut draft =
        Draft::new(Dialect::Botas, client_id, "CLIENT_SECRET").keys("CLIENT_ID", "TENANT_ID");
    draft.config.tenant_id = Some(tenant_id.to_owned());

    let mi = env.get("MANAGED_IDENTITY_CLIENT_ID");
    let credentials = &mut draft.config.credentials;
    if let Some(mi) = mi {
        credentials.push(if mi.eq_ignore_ascii_case("system") {
            CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::System,
            }
        } else if mi.eq_ignore_ascii_case(client_id) {
            // The user-assigned identity *is* the bot's app registration.
            CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::ClientId(mi.to_owned()),
            }
        } else {
            CredentialConfig::FederatedManagedIdentity {
                id: ManagedIdentityId::ClientId(mi.to_owned()),
            }
        });
    }
    match env.get("CLIENT_SECRET") {
        Some(secret) => credentials.push(CredentialConfig::ClientSecret {
            secret: Secret::new(secret),
        }),
        None if mi.is_none() => {
            return Err(Error::config(
                "CLIENT_SECRET",
                "is required: set it to the client secret's value (not its id), or set \
                 MANAGED_IDENTITY_CLIENT_ID to use a managed identity",
            ));
        }
        None => {}
    }
    if let Some(urls) = env.get("ALLOWED_SERVICE_URLS") {
        draft.config.allowed_service_urls = service_url_list("ALLOWED_SERVICE_URLS", urls)?;
    }
    Ok(draft)
}

// ---------------------------------------------------------------------------------------------
// Bot Framework

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppType {
    MultiTenant,
    SingleTenant,
    UserAssignedMsi,
}

fn read_bot_framework(env: &EnvVars) -> Result<Draft> {
    let app_id = required(
        env.get_ci("MicrosoftAppId"),
        "MicrosoftAppId",
        CLIENT_ID_WHAT,
    )?;
    let app_type = match env.get_ci("MicrosoftAppType") {
        None => AppType::MultiTenant,
        Some(t) if t.eq_ignore_ascii_case("MultiTenant") => AppType::MultiTenant,
        Some(t) if t.eq_ignore_ascii_case("SingleTenant") => AppType::SingleTenant,
        Some(t) if t.eq_ignore_ascii_case("UserAssignedMSI") => AppType::UserAssignedMsi,
        Some(t) => {
            return Err(Error::config(
                "MicrosoftAppType",
                format!(
                    "unknown app type{}: use MultiTenant, SingleTenant or UserAssignedMSI",
                    shown(t)
                ),
            ));
        }
    };
    let tenant = match (env.get_ci("MicrosoftAppTenantId"), app_type) {
        (Some(t), _) => t,
        // Legacy multi-tenant bots get their tokens from the botframework.com tenant.
        (None, AppType::MultiTenant) => "botframework.com",
        (None, _) => {
            return Err(Error::config(
                "MicrosoftAppTenantId",
                "is required when MicrosoftAppType is SingleTenant or UserAssignedMSI: set it to the \
                 bot's tenant (directory) id",
            ));
        }
    };
    let mut draft = Draft::new(Dialect::BotFramework, app_id, "MicrosoftAppPassword")
        .keys("MicrosoftAppId", "MicrosoftAppTenantId");
    draft.config.tenant_id = Some(tenant.to_owned());
    if let Some(channel_service) = env.get_ci("ChannelService") {
        draft.config.cloud =
            Cloud::from_name(channel_service).map_err(|e| rekey(e, "ChannelService"))?;
    }

    let credentials = &mut draft.config.credentials;
    if app_type == AppType::UserAssignedMsi {
        credentials.push(CredentialConfig::ManagedIdentity {
            id: ManagedIdentityId::ClientId(app_id.to_owned()),
        });
        return Ok(draft);
    }
    let private_key = env.get_ci("CertificatePrivateKey");
    let certificate_path = env.get_ci("CertificatePath");
    let thumbprint = env.get_ci("CertificateThumbprint");
    if private_key.is_some() || certificate_path.is_some() || thumbprint.is_some() {
        // The JavaScript SDK takes the key's PEM text here, other samples a path: accept both,
        // and never let PEM text travel as a path (paths are printed in messages).
        let (key_path, key_pem) = match private_key {
            Some(k) if k.trim_start().starts_with("-----BEGIN") => {
                (None, Some(Secret::new(unescape_newlines(k))))
            }
            Some(k) => (Some(PathBuf::from(k)), None),
            None => (None, None),
        };
        credentials.push(CredentialConfig::Certificate(CertificateConfig {
            certificate_path: certificate_path.map(PathBuf::from),
            key_path,
            key_pem,
            thumbprint: thumbprint.map(str::to_owned),
            ..CertificateConfig::default()
        }));
    }
    if let Some(password) = env.get_ci("MicrosoftAppPassword") {
        credentials.push(CredentialConfig::ClientSecret {
            secret: Secret::new(password),
        });
    }
    if credentials.is_empty() {
        return Err(Error::config(
            "MicrosoftAppPassword",
            "is required: set it to the client secret's value (not its id), or configure a certificate \
             (CertificatePrivateKey/CertificateThumbprint), or set MicrosoftAppType=UserAssignedMSI",
        ));
    }
    Ok(draft)
}

/// PEM text put in a one-line variable (a `.env` file, a portal setting) often spells its line
/// breaks as `\n`.
fn unescape_newlines(pem: &str) -> String {
    if pem.contains('\n') {
        pem.to_owned()
    } else {
        pem.replace("\\n", "\n")
    }
}

// ---------------------------------------------------------------------------------------------
// Microsoft.Identity.Web

const IDWEB_SOURCE_TYPES: &str = "ClientSecret, Path, Base64Encoded, SignedAssertionFromManagedIdentity or SignedAssertionFilePath";

fn read_identity_web(env: &EnvVars) -> Result<Draft> {
    let get = |field: &str| env.get_ci(&format!("{IDWEB}{field}"));
    let client_id = required(get("ClientId"), "AzureAd__ClientId", CLIENT_ID_WHAT)?;
    let tenant_id = required(get("TenantId"), "AzureAd__TenantId", TENANT_ID_WHAT)?;
    let mut draft = Draft::new(Dialect::IdentityWeb, client_id, IDWEB_CREDS)
        .keys("AzureAd__ClientId", "AzureAd__TenantId");
    draft.config.tenant_id = Some(tenant_id.to_owned());
    if let Some(instance) = get("Instance") {
        draft.authority("AzureAd__Instance", instance)?;
    }

    // ClientCredentials__{n}__{Field}: ordered by n numerically, gaps allowed.
    let mut entries: BTreeMap<u64, BTreeMap<String, &str>> = BTreeMap::new();
    for (rest, value) in env.with_prefix_ci(&format!("{IDWEB_CREDS}__")) {
        let (index, field) = rest.split_once("__").unwrap_or((rest.as_str(), ""));
        let n: u64 = index
            .parse()
            .ok()
            .filter(|_| index.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                Error::config(
                    format!("{IDWEB_CREDS}__{index}"),
                    "ClientCredentials entries are indexed by numbers: use AzureAd__ClientCredentials__0__SourceType, \
                     AzureAd__ClientCredentials__1__SourceType, …",
                )
            })?;
        let slot = entries.entry(n).or_default();
        if !field.is_empty() {
            slot.insert(field.to_owned(), value);
        }
    }
    for (n, fields) in &entries {
        if let Some(credential) = identity_web_credential(*n, fields, env)? {
            draft.config.credentials.push(credential);
        }
    }
    // The flat legacy `ClientSecret` is merged in after the list, as Identity.Web does.
    if let Some(secret) = get("ClientSecret") {
        draft
            .config
            .credentials
            .push(CredentialConfig::ClientSecret {
                secret: Secret::new(secret),
            });
    }
    if draft.config.credentials.is_empty() {
        return Err(Error::config(
            IDWEB_CREDS,
            "no client credential is configured: add AzureAd__ClientCredentials__0__SourceType \
             (ClientSecret, Path, Base64Encoded, SignedAssertionFromManagedIdentity or \
             SignedAssertionFilePath) with its settings",
        ));
    }
    Ok(draft)
}

/// One `ClientCredentials` entry; `None` when it says `Skip=true`.
fn identity_web_credential(
    n: u64,
    fields: &BTreeMap<String, &str>,
    env: &EnvVars,
) -> Result<Option<CredentialConfig>> {
    let key = |field: &str| format!("{IDWEB_CREDS}__{n}__{field}");
    let field = |name: &str| fields.get(&name.to_ascii_lowercase()).copied();
    let require = |name: &str, what: &str| {
        field(name).ok_or_else(|| Error::config(key(name), format!("is required: {what}")))
    };
    if field("Skip").is_some_and(|s| s.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let source_type = require("SourceType", &format!("set it to {IDWEB_SOURCE_TYPES}"))?;
    // .NET binds enums by name (any case) or by number.
    let source = match source_type.to_ascii_lowercase().as_str() {
        "clientsecret" | "6" => "ClientSecret",
        "path" | "3" => "Path",
        "base64encoded" | "2" => "Base64Encoded",
        "signedassertionfrommanagedidentity" | "7" => "SignedAssertionFromManagedIdentity",
        "signedassertionfilepath" | "8" => "SignedAssertionFilePath",
        "certificate" | "0" => "Certificate",
        "keyvault" | "1" => "KeyVault",
        "storewiththumbprint" | "4" => "StoreWithThumbprint",
        "storewithdistinguishedname" | "5" => "StoreWithDistinguishedName",
        "signedassertionfromvault" | "9" => "SignedAssertionFromVault",
        "autodecryptkeys" | "10" => "AutoDecryptKeys",
        "customsignedassertion" | "11" => "CustomSignedAssertion",
        _ => {
            return Err(Error::config(
                key("SourceType"),
                format!(
                    "unknown SourceType{}: use {IDWEB_SOURCE_TYPES}",
                    shown(source_type)
                ),
            ));
        }
    };
    let unsupported = |instead: &str| {
        Err(Error::config(
            key("SourceType"),
            format!("SourceType {source} is not supported by botauth: {instead}"),
        ))
    };
    let password = field("CertificatePassword").map(Secret::new);
    let credential = match source {
        "ClientSecret" => CredentialConfig::ClientSecret {
            secret: Secret::new(require(
                "ClientSecret",
                "set it to the client secret's value (not its id)",
            )?),
        },
        "Path" => CredentialConfig::Certificate(CertificateConfig {
            certificate_path: Some(PathBuf::from(require(
                "CertificateDiskPath",
                "set it to the path of the certificate file (PFX, or PEM with its key)",
            )?)),
            password,
            ..CertificateConfig::default()
        }),
        "Base64Encoded" => CredentialConfig::Certificate(CertificateConfig {
            base64_pfx: Some(Secret::new(require(
                "Base64EncodedValue",
                "set it to the base64 encoding of the PFX file",
            )?)),
            password,
            ..CertificateConfig::default()
        }),
        "SignedAssertionFromManagedIdentity" => CredentialConfig::FederatedManagedIdentity {
            id: match field("ManagedIdentityClientId") {
                Some(id) => ManagedIdentityId::ClientId(id.to_owned()),
                None => ManagedIdentityId::System,
            },
        },
        "SignedAssertionFilePath" => CredentialConfig::WorkloadIdentity {
            token_file: PathBuf::from(
                field("SignedAssertionFileDiskPath")
                    .or_else(|| env.get(AZURE_FEDERATED_TOKEN_FILE))
                    .ok_or_else(|| {
                        Error::config(
                            key("SignedAssertionFileDiskPath"),
                            "is required when AZURE_FEDERATED_TOKEN_FILE is not set: set it to the \
                             path of the federated token file",
                        )
                    })?,
            ),
        },
        "KeyVault" | "SignedAssertionFromVault" => {
            return unsupported(
                "export the certificate to a file and use SourceType Path (or Base64Encoded), or use \
                 SignedAssertionFromManagedIdentity to avoid certificates altogether",
            );
        }
        "StoreWithThumbprint" | "StoreWithDistinguishedName" => {
            return unsupported(
                "certificate stores are not read: export the certificate (with its key) to a PFX or \
                 PEM file and use SourceType Path",
            );
        }
        "Certificate" => {
            return unsupported(
                "an in-memory certificate cannot come from configuration: use SourceType Path or \
                 Base64Encoded",
            );
        }
        _ => {
            return unsupported(
                "register a custom credential in code, or use one of ClientSecret, Path, \
                 Base64Encoded, SignedAssertionFromManagedIdentity or SignedAssertionFilePath",
            );
        }
    };
    Ok(Some(credential))
}

// ---------------------------------------------------------------------------------------------
// Microsoft 365 Agents SDK

const AGENTS_AUTH_TYPES: &str = "ClientSecret, Certificate, UserManagedIdentity, \
     SystemManagedIdentity, FederatedCredentials or WorkloadIdentity";

fn read_agents(env: &EnvVars) -> Result<Draft> {
    let key = |field: &str| format!("{AGENTS}{field}");
    let get = |field: &str| env.get_ci(&key(field));
    let require = |field: &str, what: &str| required(get(field), &key(field), what);

    let auth_type = get("AuthType").unwrap_or("ClientSecret");
    let auth_type = [
        "ClientSecret",
        "Certificate",
        "UserManagedIdentity",
        "SystemManagedIdentity",
        "FederatedCredentials",
        "WorkloadIdentity",
    ]
    .into_iter()
    .find(|t| t.eq_ignore_ascii_case(auth_type))
    .ok_or_else(|| {
        Error::config(
            key("AuthType"),
            format!(
                "unknown AuthType{}: use {AGENTS_AUTH_TYPES}",
                shown(auth_type)
            ),
        )
    })?;
    let client_id = require("ClientId", CLIENT_ID_WHAT)?;

    let mut tenant_key = key("TenantId");
    let mut tenant = get("TenantId").map(str::to_owned);
    let mut authority = None;
    if let Some(endpoint) = get("AuthorityEndpoint") {
        let url = parse_endpoint_url(&key("AuthorityEndpoint"), endpoint)?;
        // `https://login.microsoftonline.com/{tenant}`: the host is the authority, the first path
        // segment the tenant (used when TenantId is not given).
        if tenant.is_none() {
            if let Some(t) = url.path.split('/').find(|s| !s.is_empty()) {
                tenant = Some(t.to_owned());
                tenant_key = key("AuthorityEndpoint");
            }
        }
        authority = Some(url.origin);
    }
    let managed = matches!(auth_type, "UserManagedIdentity" | "SystemManagedIdentity");
    if tenant.is_none() && !managed {
        return Err(Error::config(
            key("TenantId"),
            format!(
                "is required for AuthType {auth_type}: set it to the bot's tenant (directory) id"
            ),
        ));
    }

    let mut draft = Draft::new(Dialect::AgentsSdk, client_id, &key("AuthType"))
        .keys(&key("ClientId"), &tenant_key);
    draft.config.tenant_id = tenant;
    if let Some(authority) = authority {
        draft.authority(&key("AuthorityEndpoint"), &authority)?;
    }

    let credential = match auth_type {
        "ClientSecret" => CredentialConfig::ClientSecret {
            secret: Secret::new(require(
                "ClientSecret",
                "set it to the client secret's value (not its id), or choose another AuthType",
            )?),
        },
        "Certificate" => {
            let certificate_path = get("CertPemFile");
            let thumbprint = get("CertThumbprint");
            if certificate_path.is_none() && thumbprint.is_none() {
                return Err(Error::config(
                    key("CertPemFile"),
                    "is required for AuthType Certificate: set it to the PEM certificate (and CertKeyFile \
                     to its key unless the PEM holds both), or set CertThumbprint",
                ));
            }
            CredentialConfig::Certificate(CertificateConfig {
                certificate_path: certificate_path.map(PathBuf::from),
                key_path: get("CertKeyFile").map(PathBuf::from),
                thumbprint: thumbprint.map(str::to_owned),
                ..CertificateConfig::default()
            })
        }
        "UserManagedIdentity" => CredentialConfig::ManagedIdentity {
            id: ManagedIdentityId::ClientId(client_id.to_owned()),
        },
        "SystemManagedIdentity" => CredentialConfig::ManagedIdentity {
            id: ManagedIdentityId::System,
        },
        "FederatedCredentials" => CredentialConfig::FederatedManagedIdentity {
            id: ManagedIdentityId::ClientId(
                require(
                    "FederatedClientId",
                    "set it to the client id of the managed identity registered as a federated credential",
                )?
                .to_owned(),
            ),
        },
        _ => CredentialConfig::WorkloadIdentity {
            token_file: PathBuf::from(
                get("FederatedTokenFile")
                    .or_else(|| env.get(AZURE_FEDERATED_TOKEN_FILE))
                    .ok_or_else(|| {
                        Error::config(
                            key("FederatedTokenFile"),
                            "is required for AuthType WorkloadIdentity when AZURE_FEDERATED_TOKEN_FILE \
                             is not set: set it to the path of the projected token file",
                        )
                    })?,
            ),
        },
    };
    draft.config.credentials.push(credential);
    Ok(draft)
}

// ---------------------------------------------------------------------------------------------
// Workload identity

fn read_workload_identity(env: &EnvVars) -> Result<Draft> {
    let client_id = required(
        env.get("AZURE_CLIENT_ID"),
        "AZURE_CLIENT_ID",
        CLIENT_ID_WHAT,
    )?;
    let tenant_id = required(
        env.get("AZURE_TENANT_ID"),
        "AZURE_TENANT_ID",
        TENANT_ID_WHAT,
    )?;
    let token_file = required(
        env.get(AZURE_FEDERATED_TOKEN_FILE),
        AZURE_FEDERATED_TOKEN_FILE,
        "set it to the projected service account token file (the AKS workload identity webhook sets it)",
    )?;
    let mut draft = Draft::new(
        Dialect::WorkloadIdentity,
        client_id,
        AZURE_FEDERATED_TOKEN_FILE,
    )
    .keys("AZURE_CLIENT_ID", "AZURE_TENANT_ID");
    draft.config.tenant_id = Some(tenant_id.to_owned());
    if let Some(host) = env.get("AZURE_AUTHORITY_HOST") {
        draft.authority("AZURE_AUTHORITY_HOST", host)?;
    }
    draft
        .config
        .credentials
        .push(CredentialConfig::WorkloadIdentity {
            token_file: PathBuf::from(token_file),
        });
    Ok(draft)
}

// ---------------------------------------------------------------------------------------------
// Public entry points.

impl BotAuthConfig {
    /// Reads the configuration from the process environment, detecting the dialect
    /// (see [`BotAuthConfig::from_vars`] for the detection order and the generic overrides).
    pub fn from_env() -> Result<BotAuthConfig> {
        read_env(None, &EnvVars::from_process())
    }

    /// Reads the configuration from an injected environment, detecting the dialect.
    ///
    /// # Dialect detection
    ///
    /// When keys of several dialects are present, the first match wins:
    ///
    /// 1. Microsoft 365 Agents SDK: any `Connections__ServiceConnection__Settings__*` key;
    /// 2. Microsoft.Identity.Web: any `AzureAd__*` key;
    /// 3. Bot Framework: `MicrosoftAppId` (or `MicrosoftAppPassword`);
    /// 4. botas: `CLIENT_ID`;
    /// 5. workload identity: `AZURE_FEDERATED_TOKEN_FILE` together with `AZURE_CLIENT_ID`.
    ///
    /// The .NET dialects (2, 3, 4 above: Agents SDK, Identity.Web, Bot Framework) compare keys
    /// case-insensitively and accept `:` as well as `__` between sections; botas, workload identity
    /// and the `BOTAUTH_*` keys are exact. Values are trimmed and an empty value counts as absent.
    /// Unknown keys are ignored. Use [`BotAuthConfig::from_vars_as`] to skip detection.
    ///
    /// # Generic overrides (every dialect)
    ///
    /// - `BOTAUTH_CLOUD`: `public`, `usgov`, `china` (see [`Cloud::from_name`]); replaces the
    ///   dialect's cloud but keeps a custom authority host the dialect named;
    /// - `BOTAUTH_AUTHORITY_HOST`: the Entra authority host (https, or http for loopback hosts);
    ///   a known cloud's host selects that cloud unless `BOTAUTH_CLOUD` is set;
    /// - `BOTAUTH_METADATA_URL`: the inbound Bot Service metadata URL (same rule);
    /// - `BOTAUTH_ALLOWED_SERVICE_URLS`: extra hosts or URLs the bot may send its token to
    ///   (comma- or space-separated; added to botas' `ALLOWED_SERVICE_URLS` and to the Bot Service
    ///   defaults, see [`ServiceUrlAllowList`](crate::service_url::ServiceUrlAllowList)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key at fault, spelled as the dialect spells it (e.g.
    /// `MicrosoftAppPassword`, `AzureAd__ClientCredentials__0__CertificateDiskPath`), or
    /// `CLIENT_ID` when no dialect's keys are present at all.
    pub fn from_vars<I, K, V>(vars: I) -> Result<BotAuthConfig>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        read_env(None, &vars.into_iter().collect())
    }

    /// Reads the configuration from an injected environment in the given dialect, without
    /// detection: keys of other dialects are ignored. [`Dialect::Native`] is a file format and is
    /// refused (key `dialect`).
    pub fn from_vars_as<I, K, V>(dialect: Dialect, vars: I) -> Result<BotAuthConfig>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        read_env(Some(dialect), &vars.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "00000000-0000-0000-0000-00000000b07a";
    const TENANT: &str = "11111111-2222-3333-4444-555555555555";
    const MI: &str = "99999999-8888-7777-6666-555555555555";
    const SECRET: &str = "s3cr3t~Value+/=";

    fn read(vars: &[(&str, &str)]) -> Result<BotAuthConfig> {
        BotAuthConfig::from_vars(vars.iter().copied())
    }

    fn ok(vars: &[(&str, &str)]) -> BotAuthConfig {
        match read(vars) {
            Ok(c) => c,
            Err(e) => panic!("{vars:?}: {e}"),
        }
    }

    fn err_key(vars: &[(&str, &str)]) -> String {
        match read(vars) {
            Err(Error::Config { key, .. }) => key,
            other => panic!(
                "expected a config error for {:?}, got {other:?}",
                keys_of(vars)
            ),
        }
    }

    fn err_msg(vars: &[(&str, &str)]) -> String {
        read(vars).unwrap_err().to_string()
    }

    fn keys_of<'a>(vars: &[(&'a str, &str)]) -> Vec<&'a str> {
        vars.iter().map(|(k, _)| *k).collect()
    }

    fn secret_of(c: &CredentialConfig) -> &str {
        match c {
            CredentialConfig::ClientSecret { secret } => secret.expose_secret(),
            other => panic!("not a secret: {other:?}"),
        }
    }

    fn cert_of(c: &CredentialConfig) -> &CertificateConfig {
        match c {
            CredentialConfig::Certificate(cert) => cert,
            other => panic!("not a certificate: {other:?}"),
        }
    }

    fn without<'a>(vars: &[(&'a str, &'a str)], key: &str) -> Vec<(&'a str, &'a str)> {
        vars.iter().copied().filter(|(k, _)| *k != key).collect()
    }

    fn with<'a>(
        vars: &[(&'a str, &'a str)],
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        vars.iter().chain(extra).copied().collect()
    }

    // ----- EnvVars ------------------------------------------------------------------------------

    #[test]
    fn env_vars_lookups() {
        let env: EnvVars = [
            ("AzureAd:ClientId", " abc "),
            ("EMPTY", ""),
            ("BLANK", "   "),
            ("Exact", "1"),
        ]
        .into_iter()
        .collect();
        assert_eq!(env.get("AzureAd:ClientId"), Some("abc"));
        assert_eq!(env.get("azuread:clientid"), None);
        assert_eq!(env.get_ci("AZUREAD__CLIENTID"), Some("abc"));
        assert_eq!(env.get_ci("azuread:clientid"), Some("abc"));
        assert_eq!(env.get("EMPTY"), None);
        assert_eq!(env.get_ci("blank"), None);
        assert!(!env.contains("EMPTY"));
        assert_eq!(env.get_ci("exact"), Some("1"));
        assert_eq!(env.len(), 4);
        assert!(!env.is_empty());
        assert!(EnvVars::new().is_empty());
    }

    #[test]
    fn env_vars_exact_spelling_wins() {
        let env: EnvVars = [("MICROSOFTAPPID", "upper"), ("MicrosoftAppId", "exact")]
            .into_iter()
            .collect();
        assert_eq!(env.get_ci("MicrosoftAppId"), Some("exact"));
        assert_eq!(env.get_ci("microsoftappid"), Some("upper"));
    }

    #[test]
    fn env_vars_debug_prints_keys_only() {
        let mut env = EnvVars::new();
        env.insert("CLIENT_SECRET", SECRET);
        env.extend([("CLIENT_ID", APP)]);
        let dbg = format!("{env:?}");
        assert!(dbg.contains("CLIENT_SECRET"), "{dbg}");
        assert!(!dbg.contains(SECRET), "{dbg}");
        assert!(!dbg.contains(APP), "{dbg}");
        let keys: Vec<_> = env.keys().collect();
        assert_eq!(keys, ["CLIENT_ID", "CLIENT_SECRET"]);
    }

    #[test]
    fn env_vars_round_trip_into_from_vars() {
        let env: EnvVars = [
            ("CLIENT_ID", APP),
            ("CLIENT_SECRET", SECRET),
            ("TENANT_ID", TENANT),
        ]
        .into_iter()
        .collect();
        let c = BotAuthConfig::from_vars(env).unwrap();
        assert_eq!(c.dialect, Dialect::Botas);
    }

    #[test]
    fn from_env_reads_the_process_environment() {
        // Whatever the test runner's environment holds, reading it must not panic; without any
        // botauth keys it is the "nothing found" error.
        let env = EnvVars::from_process();
        if detect(&env).is_none() {
            assert!(matches!(
                BotAuthConfig::from_env(),
                Err(Error::Config { ref key, .. }) if key == "CLIENT_ID"
            ));
        }
    }

    // ----- detection ----------------------------------------------------------------------------

    #[test]
    fn nothing_found() {
        let e = read(&[("PATH", "/bin"), ("MicrosoftAppId", "")]).unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if key == "CLIENT_ID"));
        let msg = e.to_string();
        for hint in [
            "CLIENT_ID",
            "MicrosoftAppId",
            "AzureAd__",
            "Connections__ServiceConnection__Settings__",
        ] {
            assert!(msg.contains(hint), "{msg}");
        }
    }

    const BOTAS: [(&str, &str); 3] = [
        ("CLIENT_ID", APP),
        ("CLIENT_SECRET", SECRET),
        ("TENANT_ID", TENANT),
    ];
    const BF: [(&str, &str); 2] = [
        ("MicrosoftAppId", "bf-app"),
        ("MicrosoftAppPassword", "bf-pw"),
    ];
    const IDWEB_MIN: [(&str, &str); 3] = [
        ("AzureAd__ClientId", "idweb-app"),
        ("AzureAd__TenantId", TENANT),
        ("AzureAd__ClientSecret", "idweb-pw"),
    ];
    const AGENTS_MIN: [(&str, &str); 3] = [
        (
            "Connections__ServiceConnection__Settings__ClientId",
            "agents-app",
        ),
        ("Connections__ServiceConnection__Settings__TenantId", TENANT),
        (
            "Connections__ServiceConnection__Settings__ClientSecret",
            "agents-pw",
        ),
    ];
    const WI: [(&str, &str); 3] = [
        ("AZURE_CLIENT_ID", "wi-app"),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/token"),
    ];

    #[test]
    fn detection_precedence() {
        let all: Vec<_> = [&BOTAS[..], &BF, &IDWEB_MIN, &AGENTS_MIN, &WI].concat();
        let c = ok(&all);
        assert_eq!(c.dialect, Dialect::AgentsSdk);
        assert_eq!(c.client_id.as_deref(), Some("agents-app"));

        let c = ok(&[&BOTAS[..], &BF, &IDWEB_MIN, &WI].concat());
        assert_eq!(c.dialect, Dialect::IdentityWeb);
        assert_eq!(c.client_id.as_deref(), Some("idweb-app"));

        let c = ok(&[&BOTAS[..], &BF, &WI].concat());
        assert_eq!(c.dialect, Dialect::BotFramework);
        assert_eq!(c.client_id.as_deref(), Some("bf-app"));

        let c = ok(&[&BOTAS[..], &WI].concat());
        assert_eq!(c.dialect, Dialect::Botas);

        let c = ok(&WI);
        assert_eq!(c.dialect, Dialect::WorkloadIdentity);
    }

    #[test]
    fn detection_needs_both_workload_identity_keys() {
        assert_eq!(
            err_key(&[("AZURE_FEDERATED_TOKEN_FILE", "/t")]),
            "CLIENT_ID"
        );
        assert_eq!(
            err_key(&[("AZURE_CLIENT_ID", "x"), ("AZURE_TENANT_ID", TENANT)]),
            "CLIENT_ID"
        );
    }

    #[test]
    fn detection_ignores_blank_dialect_keys() {
        // A Bot Framework template with empty values must not hide a botas configuration.
        let vars = with(
            &BOTAS,
            &[("MicrosoftAppId", ""), ("MicrosoftAppPassword", " ")],
        );
        assert_eq!(ok(&vars).dialect, Dialect::Botas);
    }

    #[test]
    fn forced_dialect_ignores_others() {
        let all: Vec<_> = [&BOTAS[..], &BF, &AGENTS_MIN].concat();
        let c = BotAuthConfig::from_vars_as(Dialect::Botas, all.iter().copied()).unwrap();
        assert_eq!(c.dialect, Dialect::Botas);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        let e = BotAuthConfig::from_vars_as(Dialect::WorkloadIdentity, all.iter().copied())
            .unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if key == "AZURE_CLIENT_ID"));
        let e = BotAuthConfig::from_vars_as(Dialect::Native, all.iter().copied()).unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if key == "dialect"));
    }

    // ----- generic overrides --------------------------------------------------------------------

    #[test]
    fn botauth_authority_host_override() {
        let c = ok(&with(
            &BOTAS,
            &[("BOTAUTH_AUTHORITY_HOST", "http://127.0.0.1:8400/")],
        ));
        assert_eq!(c.cloud.authority_host(), "http://127.0.0.1:8400");
        assert_eq!(
            c.cloud.bot_connector_scope(),
            Cloud::Public.bot_connector_scope()
        );

        let c = ok(&with(
            &BOTAS,
            &[("BOTAUTH_AUTHORITY_HOST", "http://localhost:1")],
        ));
        assert_eq!(c.cloud.authority_host(), "http://localhost:1");
        let c = ok(&with(
            &BOTAS,
            &[("BOTAUTH_AUTHORITY_HOST", "http://[::1]:1")],
        ));
        assert_eq!(c.cloud.authority_host(), "http://[::1]:1");

        // The public host itself changes nothing.
        let c = ok(&with(
            &BOTAS,
            &[(
                "BOTAUTH_AUTHORITY_HOST",
                "https://login.microsoftonline.com/",
            )],
        ));
        assert_eq!(c.cloud, Cloud::Public);
    }

    #[test]
    fn botauth_authority_host_rejects_plain_http_elsewhere() {
        for bad in [
            "http://login.example.com",
            "http://127.0.0.1@evil.example",
            "ftp://127.0.0.1",
            "nope",
        ] {
            let vars = with(&BOTAS, &[("BOTAUTH_AUTHORITY_HOST", bad)]);
            assert_eq!(err_key(&vars), "BOTAUTH_AUTHORITY_HOST", "{bad}");
        }
        assert!(
            err_msg(&with(
                &BOTAS,
                &[("BOTAUTH_AUTHORITY_HOST", "http://x.example")]
            ))
            .contains("https")
        );
    }

    #[test]
    fn a_known_authority_host_selects_its_cloud() {
        let c = ok(&with(
            &BOTAS,
            &[(
                "BOTAUTH_AUTHORITY_HOST",
                "https://login.microsoftonline.us/",
            )],
        ));
        assert_eq!(c.cloud, Cloud::UsGov);
        assert_eq!(
            c.cloud.bot_connector_scope(),
            "https://api.botframework.us/.default"
        );
        let c = ok(&with(
            &BOTAS,
            &[("BOTAUTH_AUTHORITY_HOST", "https://login.chinacloudapi.cn")],
        ));
        assert_eq!(c.cloud, Cloud::China);
        // An explicit BOTAUTH_CLOUD wins: the authority becomes a custom host on that cloud.
        let c = ok(&with(
            &BOTAS,
            &[
                ("BOTAUTH_AUTHORITY_HOST", "https://login.microsoftonline.us"),
                ("BOTAUTH_CLOUD", "public"),
            ],
        ));
        assert_eq!(c.cloud.authority_host(), "https://login.microsoftonline.us");
        assert_eq!(
            c.cloud.bot_connector_scope(),
            "https://api.botframework.com/.default"
        );
    }

    #[test]
    fn botauth_cloud_and_metadata() {
        let c = ok(&with(
            &BOTAS,
            &[
                ("BOTAUTH_CLOUD", "usgov"),
                ("BOTAUTH_METADATA_URL", "http://127.0.0.1:9/meta"),
            ],
        ));
        assert_eq!(c.cloud, Cloud::UsGov);
        assert_eq!(
            c.inbound.metadata_url.as_deref(),
            Some("http://127.0.0.1:9/meta")
        );
        assert_eq!(
            err_key(&with(&BOTAS, &[("BOTAUTH_CLOUD", "mars")])),
            "BOTAUTH_CLOUD"
        );
        assert_eq!(
            err_key(&with(
                &BOTAS,
                &[("BOTAUTH_METADATA_URL", "http://meta.example/x")]
            )),
            "BOTAUTH_METADATA_URL"
        );
        // Blank overrides are absent.
        let c = ok(&with(
            &BOTAS,
            &[("BOTAUTH_CLOUD", ""), ("BOTAUTH_AUTHORITY_HOST", " ")],
        ));
        assert_eq!(c.cloud, Cloud::Public);
    }

    #[test]
    fn botauth_cloud_keeps_a_dialect_authority() {
        let c = ok(&with(
            &WI,
            &[
                ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:7"),
                ("BOTAUTH_CLOUD", "china"),
            ],
        ));
        assert_eq!(c.cloud.authority_host(), "http://127.0.0.1:7");
        assert_eq!(
            c.cloud.bot_connector_scope(),
            Cloud::China.bot_connector_scope()
        );
        // BOTAUTH_AUTHORITY_HOST beats the dialect's authority.
        let c = ok(&with(
            &WI,
            &[
                ("AZURE_AUTHORITY_HOST", "http://127.0.0.1:7"),
                ("BOTAUTH_AUTHORITY_HOST", "http://127.0.0.1:8"),
            ],
        ));
        assert_eq!(c.cloud.authority_host(), "http://127.0.0.1:8");
    }

    #[test]
    fn overrides_apply_to_every_dialect() {
        for base in [&BOTAS[..], &BF, &IDWEB_MIN, &AGENTS_MIN, &WI] {
            let c = ok(&with(
                base,
                &[("BOTAUTH_AUTHORITY_HOST", "http://127.0.0.1:1")],
            ));
            assert_eq!(
                c.cloud.authority_host(),
                "http://127.0.0.1:1",
                "{:?}",
                c.dialect
            );
            assert_eq!(
                err_key(&with(
                    base,
                    &[("BOTAUTH_AUTHORITY_HOST", "http://a.example")]
                )),
                "BOTAUTH_AUTHORITY_HOST"
            );
        }
    }

    // ----- botas --------------------------------------------------------------------------------

    #[test]
    fn botas_client_secret() {
        let c = ok(&with(
            &BOTAS,
            &[(
                "ALLOWED_SERVICE_URLS",
                " https://a.example/, b.example  c.example,,",
            )],
        ));
        assert_eq!(c.dialect, Dialect::Botas);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(c.cloud, Cloud::Public);
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(secret_of(&c.credentials[0]), SECRET);
        assert_eq!(
            c.allowed_service_urls,
            ["https://a.example/", "b.example", "c.example"]
        );
    }

    #[test]
    fn allowed_service_urls_in_every_dialect() {
        let c = ok(&with(
            &BOTAS,
            &[
                ("ALLOWED_SERVICE_URLS", "a.example"),
                (
                    "BOTAUTH_ALLOWED_SERVICE_URLS",
                    "b.example a.example http://127.0.0.1:9",
                ),
            ],
        ));
        assert_eq!(
            c.allowed_service_urls,
            ["a.example", "b.example", "http://127.0.0.1:9"]
        );
        for (key, value) in [
            ("ALLOWED_SERVICE_URLS", "http://bots.example"),
            ("ALLOWED_SERVICE_URLS", "*.com"),
            ("BOTAUTH_ALLOWED_SERVICE_URLS", "https://u@bots.example"),
            ("BOTAUTH_ALLOWED_SERVICE_URLS", "ok.example, bots%2eexample"),
        ] {
            assert_eq!(err_key(&with(&BOTAS, &[(key, value)])), key, "{value}");
        }
        let message = format!(
            "{}",
            read(&with(
                &BOTAS,
                &[("ALLOWED_SERVICE_URLS", "ok.example http://x.example")]
            ))
            .unwrap_err()
        );
        assert!(message.contains("entry 2"), "{message}");
        assert!(message.contains("loopback"), "{message}");
    }

    #[test]
    fn botas_values_are_trimmed() {
        let c = ok(&[
            ("CLIENT_ID", " app \n"),
            ("CLIENT_SECRET", "\tpw "),
            ("TENANT_ID", " t.example "),
        ]);
        assert_eq!(c.client_id.as_deref(), Some("app"));
        assert_eq!(c.tenant_id.as_deref(), Some("t.example"));
        assert_eq!(secret_of(&c.credentials[0]), "pw");
    }

    #[test]
    fn botas_missing_keys() {
        assert_eq!(err_key(&without(&BOTAS, "TENANT_ID")), "TENANT_ID");
        assert_eq!(err_key(&without(&BOTAS, "CLIENT_SECRET")), "CLIENT_SECRET");
        assert_eq!(
            err_key(&with(
                &without(&BOTAS, "CLIENT_SECRET"),
                &[("CLIENT_SECRET", "")]
            )),
            "CLIENT_SECRET"
        );
        let forced =
            BotAuthConfig::from_vars_as(Dialect::Botas, without(&BOTAS, "CLIENT_ID")).unwrap_err();
        assert!(matches!(forced, Error::Config { ref key, .. } if key == "CLIENT_ID"));
    }

    #[test]
    fn botas_bad_tenant_names_tenant_id() {
        assert_eq!(
            err_key(&with(
                &without(&BOTAS, "TENANT_ID"),
                &[("TENANT_ID", "a/b")]
            )),
            "TENANT_ID"
        );
        assert_eq!(
            err_key(&with(
                &without(&BOTAS, "TENANT_ID"),
                &[("TENANT_ID", "common")]
            )),
            "TENANT_ID"
        );
        assert_eq!(
            err_key(&with(
                &without(&BOTAS, "TENANT_ID"),
                &[("TENANT_ID", "x?y=1")]
            )),
            "TENANT_ID"
        );
    }

    #[test]
    fn botas_system_managed_identity() {
        let c = ok(&[
            ("CLIENT_ID", APP),
            ("TENANT_ID", TENANT),
            ("MANAGED_IDENTITY_CLIENT_ID", "System"),
        ]);
        assert_eq!(
            c.credentials,
            [CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::System
            }]
        );
    }

    #[test]
    fn botas_user_assigned_identity_is_the_bot() {
        let upper = APP.to_ascii_uppercase();
        let c = ok(&[
            ("CLIENT_ID", APP),
            ("TENANT_ID", TENANT),
            ("MANAGED_IDENTITY_CLIENT_ID", &upper),
        ]);
        assert_eq!(
            c.credentials,
            [CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::ClientId(upper.clone())
            }]
        );
    }

    #[test]
    fn botas_federated_managed_identity_then_secret() {
        let c = ok(&with(&BOTAS, &[("MANAGED_IDENTITY_CLIENT_ID", MI)]));
        assert_eq!(c.credentials.len(), 2);
        assert_eq!(
            c.credentials[0],
            CredentialConfig::FederatedManagedIdentity {
                id: ManagedIdentityId::ClientId(MI.into())
            }
        );
        assert_eq!(secret_of(&c.credentials[1]), SECRET);
    }

    #[test]
    fn botas_keys_are_case_sensitive() {
        assert_eq!(
            err_key(&[
                ("client_id", APP),
                ("client_secret", SECRET),
                ("tenant_id", TENANT)
            ]),
            "CLIENT_ID"
        );
    }

    // ----- Bot Framework ------------------------------------------------------------------------

    const BF_SINGLE: [(&str, &str); 4] = [
        ("MicrosoftAppId", APP),
        ("MicrosoftAppPassword", SECRET),
        ("MicrosoftAppTenantId", TENANT),
        ("MicrosoftAppType", "SingleTenant"),
    ];

    #[test]
    fn bf_single_tenant_secret() {
        let c = ok(&BF_SINGLE);
        assert_eq!(c.dialect, Dialect::BotFramework);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(secret_of(&c.credentials[0]), SECRET);
    }

    #[test]
    fn bf_multi_tenant_is_the_default() {
        let c = ok(&[("MicrosoftAppId", APP), ("MicrosoftAppPassword", SECRET)]);
        assert_eq!(c.tenant_id.as_deref(), Some("botframework.com"));
        let c = ok(&[
            ("MicrosoftAppId", APP),
            ("MicrosoftAppPassword", SECRET),
            ("MicrosoftAppType", "multitenant"),
        ]);
        assert_eq!(c.tenant_id.as_deref(), Some("botframework.com"));
        let c = ok(&[
            ("MicrosoftAppId", APP),
            ("MicrosoftAppPassword", SECRET),
            ("MicrosoftAppTenantId", TENANT),
        ]);
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
    }

    #[test]
    fn bf_keys_are_case_insensitive() {
        let c = ok(&[
            ("MICROSOFTAPPID", APP),
            ("microsoftapppassword", SECRET),
            ("MicrosoftAppTenantID", TENANT),
            ("MICROSOFTAPPTYPE", "SINGLETENANT"),
        ]);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(secret_of(&c.credentials[0]), SECRET);
    }

    #[test]
    fn bf_missing_keys() {
        assert_eq!(
            err_key(&without(&BF_SINGLE, "MicrosoftAppTenantId")),
            "MicrosoftAppTenantId"
        );
        assert_eq!(
            err_key(&without(&BF_SINGLE, "MicrosoftAppPassword")),
            "MicrosoftAppPassword"
        );
        assert_eq!(
            err_key(&without(&BF_SINGLE, "MicrosoftAppId")),
            "MicrosoftAppId"
        );
        let msi = [
            ("MicrosoftAppId", APP),
            ("MicrosoftAppType", "UserAssignedMSI"),
        ];
        assert_eq!(err_key(&msi), "MicrosoftAppTenantId");
    }

    #[test]
    fn bf_unknown_app_type() {
        let vars = with(
            &without(&BF_SINGLE, "MicrosoftAppType"),
            &[("MicrosoftAppType", "Foo")],
        );
        assert_eq!(err_key(&vars), "MicrosoftAppType");
        let msg = err_msg(&vars);
        for valid in ["MultiTenant", "SingleTenant", "UserAssignedMSI"] {
            assert!(msg.contains(valid), "{msg}");
        }
    }

    #[test]
    fn bf_bad_tenant() {
        let vars = with(
            &without(&BF_SINGLE, "MicrosoftAppTenantId"),
            &[("MicrosoftAppTenantId", "not a tenant")],
        );
        assert_eq!(err_key(&vars), "MicrosoftAppTenantId");
    }

    #[test]
    fn bf_user_assigned_msi() {
        let c = ok(&[
            ("MicrosoftAppId", MI),
            ("MicrosoftAppType", "userassignedmsi"),
            ("MicrosoftAppTenantId", TENANT),
        ]);
        assert_eq!(
            c.credentials,
            [CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::ClientId(MI.into())
            }]
        );
    }

    #[test]
    fn bf_certificate_then_secret() {
        let c = ok(&with(
            &BF_SINGLE,
            &[
                ("CertificatePrivateKey", "/keys/bot.key"),
                ("CertificatePath", "/keys/bot.pem"),
                (
                    "CertificateThumbprint",
                    "84E05C1D98BCE3A5421D225B140B36E86A3D5534",
                ),
            ],
        ));
        assert_eq!(c.credentials.len(), 2);
        let cert = cert_of(&c.credentials[0]);
        assert_eq!(
            cert.key_path.as_deref(),
            Some(std::path::Path::new("/keys/bot.key"))
        );
        assert_eq!(
            cert.certificate_path.as_deref(),
            Some(std::path::Path::new("/keys/bot.pem"))
        );
        assert_eq!(
            cert.thumbprint.as_deref(),
            Some("84E05C1D98BCE3A5421D225B140B36E86A3D5534")
        );
        assert_eq!(secret_of(&c.credentials[1]), SECRET);
    }

    #[test]
    fn bf_private_key_may_be_the_pem_text() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----";
        let escaped = pem.replace('\n', "\\n");
        for value in [pem, escaped.as_str()] {
            let c = ok(&[
                ("MicrosoftAppId", APP),
                ("MicrosoftAppTenantId", TENANT),
                ("MicrosoftAppType", "SingleTenant"),
                ("CertificatePrivateKey", value),
                (
                    "CertificateThumbprint",
                    "84E05C1D98BCE3A5421D225B140B36E86A3D5534",
                ),
            ]);
            let cert = cert_of(&c.credentials[0]);
            assert_eq!(cert.key_path, None);
            assert_eq!(cert.key_pem.as_ref().map(Secret::expose_secret), Some(pem));
            assert!(!format!("{c:?}").contains("MIIEvQ"), "the key is redacted");
        }
    }

    #[test]
    fn bf_thumbprint_only_certificate() {
        let c = ok(&[
            ("MicrosoftAppId", APP),
            ("MicrosoftAppTenantId", TENANT),
            ("MicrosoftAppType", "SingleTenant"),
            ("CertificateThumbprint", "aa:bb"),
        ]);
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(
            cert_of(&c.credentials[0]).thumbprint.as_deref(),
            Some("aa:bb")
        );
    }

    #[test]
    fn bf_channel_service() {
        let c = ok(&with(
            &BF_SINGLE,
            &[("ChannelService", "https://botframework.azure.us")],
        ));
        assert_eq!(c.cloud, Cloud::UsGov);
        assert_eq!(
            err_key(&with(
                &BF_SINGLE,
                &[("ChannelService", "https://example.com")]
            )),
            "ChannelService"
        );
    }

    #[test]
    fn bf_password_without_id_names_the_id() {
        assert_eq!(
            err_key(&[("MicrosoftAppPassword", SECRET)]),
            "MicrosoftAppId"
        );
    }

    // ----- Microsoft.Identity.Web ---------------------------------------------------------------

    fn idweb(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        with(
            &[("AzureAd__ClientId", APP), ("AzureAd__TenantId", TENANT)],
            extra,
        )
    }

    #[test]
    fn idweb_client_secret() {
        let c = ok(&idweb(&[
            ("AzureAd__Instance", "https://login.microsoftonline.com/"),
            ("AzureAd__ClientCredentials__0__SourceType", "ClientSecret"),
            ("AzureAd__ClientCredentials__0__ClientSecret", SECRET),
        ]));
        assert_eq!(c.dialect, Dialect::IdentityWeb);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(c.cloud, Cloud::Public);
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(secret_of(&c.credentials[0]), SECRET);
    }

    #[test]
    fn idweb_path_certificate() {
        let c = ok(&idweb(&[
            ("AzureAd__ClientCredentials__0__SourceType", "Path"),
            (
                "AzureAd__ClientCredentials__0__CertificateDiskPath",
                "/certs/bot.pfx",
            ),
            (
                "AzureAd__ClientCredentials__0__CertificatePassword",
                "pfx-pass",
            ),
        ]));
        let cert = cert_of(&c.credentials[0]);
        assert_eq!(
            cert.certificate_path.as_deref(),
            Some(std::path::Path::new("/certs/bot.pfx"))
        );
        assert_eq!(
            cert.password.as_ref().map(Secret::expose_secret),
            Some("pfx-pass")
        );
        assert!(!format!("{c:?}").contains("pfx-pass"));
    }

    #[test]
    fn idweb_base64_certificate() {
        let c = ok(&idweb(&[
            ("AzureAd__ClientCredentials__0__SourceType", "Base64Encoded"),
            (
                "AzureAd__ClientCredentials__0__Base64EncodedValue",
                "TUlJS0FnSUJBekNDQ2J3",
            ),
        ]));
        let cert = cert_of(&c.credentials[0]);
        assert_eq!(
            cert.base64_pfx.as_ref().map(Secret::expose_secret),
            Some("TUlJS0FnSUJBekNDQ2J3")
        );
        assert_eq!(cert.password, None);
        assert!(!format!("{c:?}").contains("TUlJS0FnSUJBekNDQ2J3"));
    }

    #[test]
    fn idweb_signed_assertion_from_managed_identity() {
        let c = ok(&idweb(&[
            (
                "AzureAd__ClientCredentials__0__SourceType",
                "SignedAssertionFromManagedIdentity",
            ),
            ("AzureAd__ClientCredentials__0__ManagedIdentityClientId", MI),
            (
                "AzureAd__ClientCredentials__1__SourceType",
                "SignedAssertionFromManagedIdentity",
            ),
        ]));
        assert_eq!(
            c.credentials,
            [
                CredentialConfig::FederatedManagedIdentity {
                    id: ManagedIdentityId::ClientId(MI.into())
                },
                CredentialConfig::FederatedManagedIdentity {
                    id: ManagedIdentityId::System
                },
            ]
        );
    }

    #[test]
    fn idweb_signed_assertion_file_path() {
        let c = ok(&idweb(&[
            (
                "AzureAd__ClientCredentials__0__SourceType",
                "SignedAssertionFilePath",
            ),
            (
                "AzureAd__ClientCredentials__0__SignedAssertionFileDiskPath",
                "/var/token",
            ),
        ]));
        assert_eq!(
            c.credentials,
            [CredentialConfig::WorkloadIdentity {
                token_file: "/var/token".into()
            }]
        );

        let c = ok(&idweb(&[
            (
                "AzureAd__ClientCredentials__0__SourceType",
                "SignedAssertionFilePath",
            ),
            ("AZURE_FEDERATED_TOKEN_FILE", "/aks/token"),
        ]));
        assert_eq!(
            c.credentials,
            [CredentialConfig::WorkloadIdentity {
                token_file: "/aks/token".into()
            }]
        );

        assert_eq!(
            err_key(&idweb(&[(
                "AzureAd__ClientCredentials__0__SourceType",
                "SignedAssertionFilePath"
            )])),
            "AzureAd__ClientCredentials__0__SignedAssertionFileDiskPath"
        );
    }

    #[test]
    fn idweb_ordered_credentials_with_gaps() {
        let c = ok(&idweb(&[
            ("AzureAd__ClientCredentials__10__SourceType", "ClientSecret"),
            ("AzureAd__ClientCredentials__10__ClientSecret", "ten"),
            ("AzureAd__ClientCredentials__2__SourceType", "ClientSecret"),
            ("AzureAd__ClientCredentials__2__ClientSecret", "two"),
            (
                "AzureAd__ClientCredentials__5__SourceType",
                "SignedAssertionFromManagedIdentity",
            ),
        ]));
        // Numeric, not lexicographic ("10" < "2" as strings).
        assert_eq!(c.credentials.len(), 3);
        assert_eq!(secret_of(&c.credentials[0]), "two");
        assert!(matches!(
            c.credentials[1],
            CredentialConfig::FederatedManagedIdentity { .. }
        ));
        assert_eq!(secret_of(&c.credentials[2]), "ten");
    }

    #[test]
    fn idweb_colon_separators_and_case() {
        let c = ok(&[
            ("azuread:clientid", APP),
            ("AZUREAD:TENANTID", TENANT),
            ("AzureAd:ClientCredentials:0:SourceType", "clientsecret"),
            ("azuread__clientcredentials:0__CLIENTSECRET", SECRET),
        ]);
        assert_eq!(c.dialect, Dialect::IdentityWeb);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(secret_of(&c.credentials[0]), SECRET);
    }

    #[test]
    fn idweb_numeric_source_type_and_skip() {
        let c = ok(&idweb(&[
            ("AzureAd__ClientCredentials__0__SourceType", "KeyVault"),
            ("AzureAd__ClientCredentials__0__Skip", "true"),
            ("AzureAd__ClientCredentials__1__SourceType", "6"),
            ("AzureAd__ClientCredentials__1__ClientSecret", SECRET),
        ]));
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(secret_of(&c.credentials[0]), SECRET);
    }

    #[test]
    fn idweb_legacy_flat_secret() {
        let c = ok(&idweb(&[("AzureAd__ClientSecret", SECRET)]));
        assert_eq!(secret_of(&c.credentials[0]), SECRET);
        // After the list when both are given.
        let c = ok(&idweb(&[
            ("AzureAd__ClientSecret", "flat"),
            (
                "AzureAd__ClientCredentials__0__SourceType",
                "SignedAssertionFromManagedIdentity",
            ),
        ]));
        assert!(matches!(
            c.credentials[0],
            CredentialConfig::FederatedManagedIdentity { .. }
        ));
        assert_eq!(secret_of(&c.credentials[1]), "flat");
    }

    #[test]
    fn idweb_missing_keys() {
        let full = idweb(&[("AzureAd__ClientSecret", SECRET)]);
        assert_eq!(
            err_key(&without(&full, "AzureAd__ClientId")),
            "AzureAd__ClientId"
        );
        assert_eq!(
            err_key(&without(&full, "AzureAd__TenantId")),
            "AzureAd__TenantId"
        );
        assert_eq!(err_key(&idweb(&[])), "AzureAd__ClientCredentials");
        assert_eq!(
            err_key(&idweb(&[(
                "AzureAd__ClientCredentials__0__SourceType",
                "ClientSecret"
            )])),
            "AzureAd__ClientCredentials__0__ClientSecret"
        );
        assert_eq!(
            err_key(&idweb(&[(
                "AzureAd__ClientCredentials__3__SourceType",
                "Path"
            )])),
            "AzureAd__ClientCredentials__3__CertificateDiskPath"
        );
        assert_eq!(
            err_key(&idweb(&[(
                "AzureAd__ClientCredentials__0__SourceType",
                "Base64Encoded"
            )])),
            "AzureAd__ClientCredentials__0__Base64EncodedValue"
        );
        assert_eq!(
            err_key(&idweb(&[(
                "AzureAd__ClientCredentials__0__ClientSecret",
                SECRET
            )])),
            "AzureAd__ClientCredentials__0__SourceType"
        );
    }

    #[test]
    fn idweb_unsupported_and_unknown_source_types() {
        for (source, hint) in [
            ("KeyVault", "Path"),
            ("StoreWithThumbprint", "PFX"),
            ("StoreWithDistinguishedName", "PFX"),
            ("Certificate", "Base64Encoded"),
            ("SignedAssertionFromVault", "Path"),
            ("CustomSignedAssertion", "custom"),
        ] {
            let vars = idweb(&[("AzureAd__ClientCredentials__1__SourceType", source)]);
            assert_eq!(
                err_key(&vars),
                "AzureAd__ClientCredentials__1__SourceType",
                "{source}"
            );
            let msg = err_msg(&vars);
            assert!(msg.contains("not supported") && msg.contains(hint), "{msg}");
        }
        let vars = idweb(&[("AzureAd__ClientCredentials__0__SourceType", "Magic")]);
        assert_eq!(err_key(&vars), "AzureAd__ClientCredentials__0__SourceType");
        let msg = err_msg(&vars);
        for valid in [
            "ClientSecret",
            "Path",
            "Base64Encoded",
            "SignedAssertionFromManagedIdentity",
            "SignedAssertionFilePath",
        ] {
            assert!(msg.contains(valid), "{msg}");
        }
    }

    #[test]
    fn idweb_non_numeric_index() {
        let vars = idweb(&[(
            "AzureAd__ClientCredentials__first__SourceType",
            "ClientSecret",
        )]);
        assert_eq!(err_key(&vars), "AzureAd__ClientCredentials__first");
        let vars = idweb(&[("AzureAd__ClientCredentials__-1__SourceType", "ClientSecret")]);
        assert_eq!(err_key(&vars), "AzureAd__ClientCredentials__-1");
    }

    #[test]
    fn idweb_instance_picks_the_cloud() {
        let base = idweb(&[("AzureAd__ClientSecret", SECRET)]);
        let c = ok(&with(
            &base,
            &[("AzureAd__Instance", "https://login.microsoftonline.us/")],
        ));
        assert_eq!(c.cloud, Cloud::UsGov);
        let c = ok(&with(
            &base,
            &[("AzureAd__Instance", "https://login.chinacloudapi.cn")],
        ));
        assert_eq!(c.cloud, Cloud::China);
        let c = ok(&with(
            &base,
            &[("AzureAd__Instance", "http://127.0.0.1:4000/")],
        ));
        assert_eq!(c.cloud.authority_host(), "http://127.0.0.1:4000");
        assert_eq!(
            err_key(&with(
                &base,
                &[("AzureAd__Instance", "http://login.example/")]
            )),
            "AzureAd__Instance"
        );
    }

    #[test]
    fn idweb_bad_tenant() {
        let vars = [
            ("AzureAd__ClientId", APP),
            ("AzureAd__TenantId", "organizations"),
            ("AzureAd__ClientSecret", SECRET),
        ];
        assert_eq!(err_key(&vars), "AzureAd__TenantId");
    }

    // ----- Agents SDK ---------------------------------------------------------------------------

    const S: &str = "Connections__ServiceConnection__Settings__";

    fn agents(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        [("ClientId", APP), ("TenantId", TENANT)]
            .iter()
            .chain(extra)
            .map(|(k, v)| {
                let k = if k.contains("__") || k.starts_with("AZURE_") {
                    (*k).to_owned()
                } else {
                    format!("{S}{k}")
                };
                (k, (*v).to_owned())
            })
            .collect()
    }

    fn agents_without(extra: &[(&str, &str)], drop: &str) -> Vec<(String, String)> {
        agents(extra)
            .into_iter()
            .filter(|(k, _)| *k != format!("{S}{drop}"))
            .collect()
    }

    fn read_owned(vars: Vec<(String, String)>) -> Result<BotAuthConfig> {
        BotAuthConfig::from_vars(vars)
    }

    fn owned_err_key(vars: Vec<(String, String)>) -> String {
        match read_owned(vars) {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn agents_client_secret_is_the_default() {
        let c = read_owned(agents(&[("ClientSecret", SECRET)])).unwrap();
        assert_eq!(c.dialect, Dialect::AgentsSdk);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(secret_of(&c.credentials[0]), SECRET);
        let c = read_owned(agents(&[
            ("AuthType", "clientsecret"),
            ("ClientSecret", SECRET),
        ]))
        .unwrap();
        assert_eq!(c.credentials.len(), 1);
    }

    #[test]
    fn agents_certificate() {
        let c = read_owned(agents(&[
            ("AuthType", "Certificate"),
            ("CertPemFile", "/c/bot.pem"),
            ("CertKeyFile", "/c/bot.key"),
            ("CertThumbprint", "ABCD"),
        ]))
        .unwrap();
        let cert = cert_of(&c.credentials[0]);
        assert_eq!(
            cert.certificate_path.as_deref(),
            Some(std::path::Path::new("/c/bot.pem"))
        );
        assert_eq!(
            cert.key_path.as_deref(),
            Some(std::path::Path::new("/c/bot.key"))
        );
        assert_eq!(cert.thumbprint.as_deref(), Some("ABCD"));

        let c = read_owned(agents(&[
            ("AuthType", "Certificate"),
            ("CertThumbprint", "ABCD"),
        ]))
        .unwrap();
        assert_eq!(cert_of(&c.credentials[0]).certificate_path, None);

        assert_eq!(
            owned_err_key(agents(&[
                ("AuthType", "Certificate"),
                ("CertKeyFile", "/c/bot.key")
            ])),
            "Connections__ServiceConnection__Settings__CertPemFile"
        );
    }

    #[test]
    fn agents_managed_identities_need_no_tenant() {
        let c = read_owned(agents_without(
            &[("AuthType", "UserManagedIdentity")],
            "TenantId",
        ))
        .unwrap();
        assert_eq!(c.tenant_id, None);
        assert_eq!(
            c.credentials,
            [CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::ClientId(APP.into())
            }]
        );
        let c = read_owned(agents_without(
            &[("AuthType", "SystemManagedIdentity")],
            "TenantId",
        ))
        .unwrap();
        assert_eq!(
            c.credentials,
            [CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::System
            }]
        );
    }

    #[test]
    fn agents_federated_credentials() {
        let c = read_owned(agents(&[
            ("AuthType", "FederatedCredentials"),
            ("FederatedClientId", MI),
        ]))
        .unwrap();
        assert_eq!(
            c.credentials,
            [CredentialConfig::FederatedManagedIdentity {
                id: ManagedIdentityId::ClientId(MI.into())
            }]
        );
        assert_eq!(
            owned_err_key(agents(&[("AuthType", "FederatedCredentials")])),
            "Connections__ServiceConnection__Settings__FederatedClientId"
        );
    }

    #[test]
    fn agents_workload_identity() {
        let c = read_owned(agents(&[
            ("AuthType", "WorkloadIdentity"),
            ("FederatedTokenFile", "/t1"),
        ]))
        .unwrap();
        assert_eq!(
            c.credentials,
            [CredentialConfig::WorkloadIdentity {
                token_file: "/t1".into()
            }]
        );
        let c = read_owned(agents(&[
            ("AuthType", "WorkloadIdentity"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/t2"),
        ]))
        .unwrap();
        assert_eq!(
            c.credentials,
            [CredentialConfig::WorkloadIdentity {
                token_file: "/t2".into()
            }]
        );
        assert_eq!(
            owned_err_key(agents(&[("AuthType", "WorkloadIdentity")])),
            "Connections__ServiceConnection__Settings__FederatedTokenFile"
        );
    }

    #[test]
    fn agents_missing_keys() {
        assert_eq!(
            owned_err_key(agents_without(&[("ClientSecret", SECRET)], "ClientId")),
            "Connections__ServiceConnection__Settings__ClientId"
        );
        assert_eq!(
            owned_err_key(agents_without(&[("ClientSecret", SECRET)], "TenantId")),
            "Connections__ServiceConnection__Settings__TenantId"
        );
        assert_eq!(
            owned_err_key(agents(&[])),
            "Connections__ServiceConnection__Settings__ClientSecret"
        );
    }

    #[test]
    fn agents_unknown_auth_type() {
        let vars = agents(&[("AuthType", "Foo"), ("ClientSecret", SECRET)]);
        let e = read_owned(vars).unwrap_err();
        assert!(
            matches!(e, Error::Config { ref key, .. } if key == "Connections__ServiceConnection__Settings__AuthType")
        );
        let msg = e.to_string();
        for valid in [
            "ClientSecret",
            "Certificate",
            "UserManagedIdentity",
            "SystemManagedIdentity",
            "FederatedCredentials",
            "WorkloadIdentity",
        ] {
            assert!(msg.contains(valid), "{msg}");
        }
    }

    #[test]
    fn agents_authority_endpoint() {
        let c = read_owned(agents_without(
            &[
                (
                    "AuthorityEndpoint",
                    "https://login.microsoftonline.us/contoso.onmicrosoft.us",
                ),
                ("ClientSecret", SECRET),
            ],
            "TenantId",
        ))
        .unwrap();
        assert_eq!(c.cloud, Cloud::UsGov);
        assert_eq!(c.tenant_id.as_deref(), Some("contoso.onmicrosoft.us"));

        // TenantId wins over the path.
        let c = read_owned(agents(&[
            ("AuthorityEndpoint", "http://127.0.0.1:5/other"),
            ("ClientSecret", SECRET),
        ]))
        .unwrap();
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(c.cloud.authority_host(), "http://127.0.0.1:5");

        // A bad tenant in the path names AuthorityEndpoint.
        assert_eq!(
            owned_err_key(agents_without(
                &[
                    (
                        "AuthorityEndpoint",
                        "https://login.microsoftonline.com/common"
                    ),
                    ("ClientSecret", SECRET)
                ],
                "TenantId",
            )),
            "Connections__ServiceConnection__Settings__AuthorityEndpoint"
        );
        assert_eq!(
            owned_err_key(agents(&[
                ("AuthorityEndpoint", "http://login.example/t"),
                ("ClientSecret", SECRET)
            ])),
            "Connections__ServiceConnection__Settings__AuthorityEndpoint"
        );
    }

    #[test]
    fn agents_case_insensitive_and_colons() {
        let c = ok(&[
            ("connections:serviceconnection:settings:clientid", APP),
            ("CONNECTIONS__SERVICECONNECTION__SETTINGS__TENANTID", TENANT),
            (
                "Connections:ServiceConnection:Settings:AuthType",
                "SYSTEMMANAGEDIDENTITY",
            ),
        ]);
        assert_eq!(c.dialect, Dialect::AgentsSdk);
        assert_eq!(
            c.credentials,
            [CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::System
            }]
        );
    }

    #[test]
    fn agents_bad_tenant() {
        let mut vars = agents_without(&[("ClientSecret", SECRET)], "TenantId");
        vars.push((format!("{S}TenantId"), "bad tenant".to_owned()));
        assert_eq!(
            owned_err_key(vars),
            "Connections__ServiceConnection__Settings__TenantId"
        );
    }

    // ----- workload identity --------------------------------------------------------------------

    #[test]
    fn workload_identity() {
        let c = ok(&WI);
        assert_eq!(c.client_id.as_deref(), Some("wi-app"));
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(
            c.credentials,
            [CredentialConfig::WorkloadIdentity {
                token_file: "/var/run/secrets/token".into()
            }]
        );
        let c = ok(&with(
            &WI,
            &[("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/")],
        ));
        assert_eq!(c.cloud, Cloud::UsGov);
        assert_eq!(
            err_key(&with(
                &WI,
                &[("AZURE_AUTHORITY_HOST", "http://login.example")]
            )),
            "AZURE_AUTHORITY_HOST"
        );
    }

    #[test]
    fn workload_identity_missing_keys() {
        assert_eq!(err_key(&without(&WI, "AZURE_TENANT_ID")), "AZURE_TENANT_ID");
        let e = BotAuthConfig::from_vars_as(
            Dialect::WorkloadIdentity,
            without(&WI, "AZURE_FEDERATED_TOKEN_FILE"),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if key == "AZURE_FEDERATED_TOKEN_FILE"));
        let bad = with(
            &without(&WI, "AZURE_TENANT_ID"),
            &[("AZURE_TENANT_ID", "t/../x")],
        );
        assert_eq!(err_key(&bad), "AZURE_TENANT_ID");
    }

    // ----- secrets never print -------------------------------------------------------------------

    #[test]
    fn debug_never_prints_secrets() {
        let vars = [
            ("AzureAd__ClientId", APP),
            ("AzureAd__TenantId", TENANT),
            ("AzureAd__ClientCredentials__0__SourceType", "ClientSecret"),
            ("AzureAd__ClientCredentials__0__ClientSecret", SECRET),
            ("AzureAd__ClientCredentials__1__SourceType", "Base64Encoded"),
            (
                "AzureAd__ClientCredentials__1__Base64EncodedValue",
                "cGZ4LWJ5dGVz",
            ),
            (
                "AzureAd__ClientCredentials__1__CertificatePassword",
                "pfx-pass-123",
            ),
        ];
        let c = ok(&vars);
        let env: EnvVars = vars.into_iter().collect();
        for dbg in [format!("{c:?}"), format!("{c:#?}"), format!("{env:?}")] {
            for secret in [SECRET, "cGZ4LWJ5dGVz", "pfx-pass-123"] {
                assert!(!dbg.contains(secret), "{dbg}");
            }
        }
    }

    #[test]
    fn enum_values_are_shown_only_when_they_look_like_words() {
        let typo = err_msg(&[
            ("MicrosoftAppId", APP),
            ("MicrosoftAppPassword", SECRET),
            ("MicrosoftAppType", "SingelTenant"),
        ]);
        assert!(typo.contains("`SingelTenant`"), "{typo}");
        let pasted = err_msg(&[("MicrosoftAppId", APP), ("MicrosoftAppType", SECRET)]);
        assert!(!pasted.contains("s3cr3t"), "{pasted}");
        let pasted = err_msg(&idweb(&[(
            "AzureAd__ClientCredentials__0__SourceType",
            SECRET,
        )]));
        assert!(!pasted.contains("s3cr3t"), "{pasted}");
        let pasted = owned_err_key(agents(&[("AuthType", SECRET)]));
        assert_eq!(pasted, "Connections__ServiceConnection__Settings__AuthType");
        let msg = read_owned(agents(&[("AuthType", SECRET)]))
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn errors_never_print_secrets() {
        // A secret pasted into the wrong key must not come back in the error message.
        let cases: [&[(&str, &str)]; 5] = [
            &[
                ("MicrosoftAppId", APP),
                ("MicrosoftAppPassword", SECRET),
                ("MicrosoftAppTenantId", SECRET),
                ("MicrosoftAppType", "SingleTenant"),
            ],
            &[
                ("CLIENT_ID", APP),
                ("CLIENT_SECRET", SECRET),
                ("TENANT_ID", TENANT),
                ("BOTAUTH_AUTHORITY_HOST", "https://app:s3cr3t~Value+/=@h"),
            ],
            &[
                ("CLIENT_ID", APP),
                ("CLIENT_SECRET", SECRET),
                ("TENANT_ID", TENANT),
                ("BOTAUTH_METADATA_URL", "http://s3cr3t~Value+/="),
            ],
            &[
                ("CLIENT_ID", APP),
                ("CLIENT_SECRET", SECRET),
                ("TENANT_ID", TENANT),
                ("BOTAUTH_CLOUD", "s3cr3t~Value+/="),
            ],
            &[
                ("MicrosoftAppId", APP),
                ("MicrosoftAppPassword", SECRET),
                ("MicrosoftAppTenantId", TENANT),
                ("MicrosoftAppType", "SingleTenant"),
                ("ChannelService", "s3cr3t~Value+/="),
            ],
        ];
        for vars in cases {
            let msg = err_msg(vars);
            assert!(!msg.contains("s3cr3t"), "{msg}");
        }
    }
}
