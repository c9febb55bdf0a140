//! The one configuration model every dialect reader produces.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroize as _;

use crate::{Cloud, Error, Result, Secret};

/// The configuration dialect a [`BotAuthConfig`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Dialect {
    /// botauth's own file format (JSON or TOML), deserialized straight into the model.
    Native,
    /// botas: `CLIENT_ID`, `CLIENT_SECRET`, `TENANT_ID`, `MANAGED_IDENTITY_CLIENT_ID`, `ALLOWED_SERVICE_URLS`.
    Botas,
    /// Bot Framework: `MicrosoftAppId`, `MicrosoftAppPassword`, `MicrosoftAppTenantId`, `MicrosoftAppType`, …
    BotFramework,
    /// Microsoft.Identity.Web: the `AzureAd` section (`AzureAd__ClientId`, `AzureAd__ClientCredentials__0__SourceType`, …).
    IdentityWeb,
    /// Microsoft 365 Agents SDK: `Connections__ServiceConnection__Settings__*`.
    AgentsSdk,
    /// Azure workload identity (AKS): `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Native => "botauth",
            Dialect::Botas => "botas",
            Dialect::BotFramework => "Bot Framework",
            Dialect::IdentityWeb => "Microsoft.Identity.Web",
            Dialect::AgentsSdk => "Microsoft 365 Agents SDK",
            Dialect::WorkloadIdentity => "workload identity",
        })
    }
}

/// Which managed identity to use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ManagedIdentityId {
    /// The system-assigned identity of the host.
    #[default]
    System,
    /// A user-assigned identity by client id.
    ClientId(String),
    /// A user-assigned identity by object (principal) id.
    ObjectId(String),
    /// A user-assigned identity by Azure resource id.
    ResourceId(String),
}

/// The algorithm and thumbprint header of a certificate client assertion (docs/protocol.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RS256 with an `x5t` (SHA-1) header: what every Microsoft SDK sends.
    #[default]
    #[serde(rename = "RS256", alias = "rs256")]
    Rs256,
    /// PS256 with an `x5t#S256` (SHA-256) header: Entra's current recommendation.
    #[serde(rename = "PS256", alias = "ps256")]
    Ps256,
}

/// Where a certificate credential comes from.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CertificateConfig {
    /// A PEM certificate (optionally with its key in the same file) or a PFX/PKCS#12 file.
    #[serde(default)]
    pub certificate_path: Option<PathBuf>,
    /// A PEM private key (PKCS#8, PKCS#1, or encrypted PKCS#8) when it is not in `certificate_path`.
    #[serde(default)]
    pub key_path: Option<PathBuf>,
    /// The PEM private key itself instead of a path to it: Bot Framework's `CertificatePrivateKey`
    /// holds the key's text in the JavaScript SDK.
    #[serde(default)]
    pub key_pem: Option<Secret>,
    /// A base64-encoded PFX (Microsoft.Identity.Web `Base64Encoded`).
    #[serde(default)]
    pub base64_pfx: Option<Secret>,
    /// The password of the PFX or of an encrypted PEM key.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The expected SHA-1 thumbprint (40 hex characters, any case, spaces and colons ignored).
    #[serde(default)]
    pub thumbprint: Option<String>,
    /// Send the certificate chain in an `x5c` header (Subject Name + Issuer authentication).
    #[serde(default)]
    pub send_x5c: bool,
    /// The assertion algorithm.
    #[serde(default)]
    pub algorithm: AssertionAlgorithm,
    /// The keys these settings were read from, so that a certificate that fails to load is
    /// reported under the key the user wrote (`CertificateThumbprint`, `…__CertPemFile`).
    #[serde(skip)]
    pub keys: CertificateKeys,
}

/// The configuration keys a [`CertificateConfig`]'s settings came from. Empty names mean
/// botauth's own (`certificate_path`, `thumbprint`, …).
///
/// Key names say where a value came from, not what it is: two configurations that say the same
/// thing compare equal whichever keys said it.
#[derive(Debug, Clone, Default, Eq)]
#[non_exhaustive]
pub struct CertificateKeys {
    /// The key of `certificate_path`.
    pub(crate) certificate_path: String,
    /// The key of `key_path` (or `key_pem`).
    pub(crate) key_path: String,
    /// The key of `thumbprint`.
    pub(crate) thumbprint: String,
    /// The key of `password`.
    pub(crate) password: String,
    /// The key of `base64_pfx`.
    pub(crate) base64_pfx: String,
}

impl PartialEq for CertificateKeys {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl CertificateKeys {
    fn or<'a>(name: &'a str, native: &'a str) -> &'a str {
        if name.is_empty() { native } else { name }
    }

    /// The key to name when the certificate file is at fault.
    pub fn certificate_path(&self) -> &str {
        Self::or(&self.certificate_path, "certificate_path")
    }

    /// The key to name when the private key is at fault.
    pub fn key_path(&self) -> &str {
        Self::or(&self.key_path, "key_path")
    }

    /// The key to name when the thumbprint is at fault.
    pub fn thumbprint(&self) -> &str {
        Self::or(&self.thumbprint, "thumbprint")
    }

    /// The key to name when the password is at fault.
    pub fn password(&self) -> &str {
        Self::or(&self.password, "password")
    }

    /// The key to name when the base64 PFX is at fault.
    pub fn base64_pfx(&self) -> &str {
        Self::or(&self.base64_pfx, "base64_pfx")
    }
}

impl fmt::Debug for CertificateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateConfig")
            .field("certificate_path", &self.certificate_path)
            .field("key_path", &self.key_path)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "[redacted]"))
            .field(
                "base64_pfx",
                &self.base64_pfx.as_ref().map(|_| "[redacted]"),
            )
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("thumbprint", &self.thumbprint)
            .field("send_x5c", &self.send_x5c)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A certificate credential whose certificate and private key live in Azure Key Vault
/// (docs/protocol.md §11).
///
/// The vault is read with [`identity`](Self::identity) (a managed identity; in code, any
/// credential). Without a pinned [`version`](Self::version), the newest enabled version is used
/// and the vault is checked again every [`rotation_check`](Self::rotation_check).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyVaultCertificateConfig {
    /// The vault, e.g. `https://contoso-bot.vault.azure.net/`: `https` and a host ending in the
    /// cloud's vault suffix (plain `http` only on loopback, for the sandbox).
    pub vault_url: String,
    /// The certificate's name in the vault.
    pub certificate_name: String,
    /// A version to pin. Pinned, the certificate is never switched by the schedule.
    #[serde(default)]
    pub version: Option<String>,
    /// The managed identity that reads the vault (default: the system-assigned one).
    #[serde(default)]
    pub identity: ManagedIdentityId,
    /// Send the certificate chain in an `x5c` header (default **on** for Key Vault certificates:
    /// a rotated certificate from the same issuer then keeps working with Subject Name + Issuer
    /// registration; Entra ignores the header for thumbprint-registered apps).
    #[serde(default = "yes")]
    pub send_x5c: bool,
    /// The assertion algorithm.
    #[serde(default)]
    pub algorithm: AssertionAlgorithm,
    /// How often the vault is asked for a newer version (default one hour, jittered).
    #[serde(default, with = "duration_opt")]
    pub rotation_check: Option<Duration>,
    /// The keys these settings were read from, for errors.
    #[serde(skip)]
    pub keys: KeyVaultKeys,
}

fn yes() -> bool {
    true
}

impl KeyVaultCertificateConfig {
    /// A Key Vault certificate entry with the defaults: newest version, system-assigned managed
    /// identity, `x5c` sent, RS256, hourly rotation check.
    pub fn new(vault_url: impl Into<String>, certificate_name: impl Into<String>) -> Self {
        KeyVaultCertificateConfig {
            vault_url: vault_url.into(),
            certificate_name: certificate_name.into(),
            version: None,
            identity: ManagedIdentityId::System,
            send_x5c: true,
            algorithm: AssertionAlgorithm::default(),
            rotation_check: None,
            keys: KeyVaultKeys::default(),
        }
    }
}

/// The configuration keys a [`KeyVaultCertificateConfig`] came from (empty: botauth's own).
/// Like [`CertificateKeys`], they never make two configurations differ.
#[derive(Debug, Clone, Default, Eq)]
#[non_exhaustive]
pub struct KeyVaultKeys {
    /// The key of `vault_url` (`AzureAd__ClientCredentials__0__KeyVaultUrl`).
    pub(crate) vault_url: String,
    /// The key of `certificate_name`.
    pub(crate) certificate_name: String,
}

impl PartialEq for KeyVaultKeys {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl KeyVaultKeys {
    /// The key to name when the vault URL is at fault.
    pub fn vault_url(&self) -> &str {
        CertificateKeys::or(&self.vault_url, "vault_url")
    }

    /// The key to name when the certificate name (or the certificate) is at fault.
    pub fn certificate_name(&self) -> &str {
        CertificateKeys::or(&self.certificate_name, "certificate_name")
    }
}

/// The free-form settings of a [`CredentialConfig::Custom`] entry: names and values that only the
/// application's factory understands.
///
/// Any value may be a secret (a vault token, a password), so every value is treated as one: `Debug`
/// prints the names with `[redacted]` for each value, the type is not `Serialize`, and the values
/// are zeroized when it is dropped. Read a value with [`get`](BTreeMap::get) through `Deref`, which
/// also lets the settings be passed where a `&BTreeMap<String, String>` is expected.
///
/// ```
/// use botauth_core::config::CustomSettings;
/// let settings: CustomSettings = [("path", "/v/bot"), ("token", "s3cr3t")].into_iter().collect();
/// assert_eq!(format!("{settings:?}"), r#"{"path": [redacted], "token": [redacted]}"#);
/// assert_eq!(settings.get("token").map(String::as_str), Some("s3cr3t"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct CustomSettings(BTreeMap<String, String>);

impl CustomSettings {
    /// Settings from name–value pairs (a later value for the same name replaces an earlier one).
    pub fn new(settings: BTreeMap<String, String>) -> Self {
        CustomSettings(settings)
    }
}

impl std::ops::Deref for CustomSettings {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for CustomSettings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        CustomSettings(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl From<BTreeMap<String, String>> for CustomSettings {
    fn from(settings: BTreeMap<String, String>) -> Self {
        CustomSettings(settings)
    }
}

impl fmt::Debug for CustomSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// What [`Secret`] prints in place of a value.
        struct Redacted;
        impl fmt::Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, Redacted)))
            .finish()
    }
}

impl Drop for CustomSettings {
    fn drop(&mut self) {
        for value in self.0.values_mut() {
            value.zeroize();
        }
    }
}

/// One way to authenticate the bot. A configuration holds an ordered list of these: the first one
/// that loads is used (Microsoft.Identity.Web `ClientCredentials` semantics).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum CredentialConfig {
    /// A client secret (feature `secret`).
    ClientSecret {
        /// The secret's value (not its id).
        secret: Secret,
    },
    /// An X.509 certificate (feature `certificate`).
    Certificate(CertificateConfig),
    /// A managed identity that *is* the bot's identity (feature `managed-identity`).
    ManagedIdentity {
        /// Which identity.
        #[serde(default)]
        id: ManagedIdentityId,
    },
    /// A managed identity used as a federated credential of the app registration `client_id`
    /// (feature `managed-identity`).
    FederatedManagedIdentity {
        /// Which identity signs the assertion.
        #[serde(default)]
        id: ManagedIdentityId,
    },
    /// A file whose contents are the client assertion, re-read when it changes: AKS workload
    /// identity, Microsoft.Identity.Web `SignedAssertionFilePath` (feature `managed-identity`).
    WorkloadIdentity {
        /// The token file (`AZURE_FEDERATED_TOKEN_FILE`).
        token_file: PathBuf,
    },
    /// An X.509 certificate kept in Azure Key Vault, read with a managed identity and picked up
    /// again when the vault rotates it (feature `key-vault`; Microsoft.Identity.Web
    /// `SourceType: KeyVault`).
    KeyVaultCertificate(KeyVaultCertificateConfig),
    /// A credential type the application registers itself.
    Custom {
        /// The name the application's factory recognises.
        name: String,
        /// Free-form settings for it. Their values print as `[redacted]`: a vault token or a
        /// password is as likely here as a path.
        #[serde(default)]
        settings: CustomSettings,
    },
}

impl CredentialConfig {
    /// The credential type's name as used in configuration files and messages.
    pub fn type_name(&self) -> &str {
        match self {
            CredentialConfig::ClientSecret { .. } => "client_secret",
            CredentialConfig::Certificate(_) => "certificate",
            CredentialConfig::KeyVaultCertificate(_) => "key_vault_certificate",
            CredentialConfig::ManagedIdentity { .. } => "managed_identity",
            CredentialConfig::FederatedManagedIdentity { .. } => "federated_managed_identity",
            CredentialConfig::WorkloadIdentity { .. } => "workload_identity",
            CredentialConfig::Custom { name, .. } => name,
        }
    }

    /// The error of a provider crate's `from_entry` given an entry of another type: a
    /// configuration error naming `credentials`, the entry's type and what `credential` builds.
    pub fn not_an_entry_for(&self, credential: &str) -> Error {
        Error::config(
            "credentials",
            format!(
                "a `{}` entry does not describe {credential}: pass the entry of that type",
                self.type_name()
            ),
        )
    }
}

/// Inbound (request validation) settings. Used by the validator crate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct InboundConfig {
    /// Accept Bot Service channel tokens of the configured cloud.
    pub bot_service: bool,
    /// Accept Entra ID tokens of these tenants (single-tenant, Agents-style).
    pub entra_tenants: Vec<String>,
    /// Accept Bot Framework Emulator tokens (development only).
    pub emulator: bool,
    /// Audiences accepted besides the app id (e.g. `api://{app id}`).
    pub extra_audiences: Vec<String>,
    /// Caller app ids allowed for Entra and skill tokens (`*` only when set explicitly).
    pub allowed_callers: Vec<String>,
    /// Accept skill calls from the bots in `allowed_callers` (which must then be non-empty).
    pub skills: bool,
    /// Reject keys without endorsements (strict mode).
    pub strict_endorsements: bool,
    /// Override of the Bot Service metadata URL (local development, custom clouds).
    pub metadata_url: Option<String>,
    /// Override of the Bot Service token issuer (Bot Framework `ToBotFromChannelTokenIssuer`).
    pub issuer: Option<String>,
    /// Override of the emulator's (Entra v2) metadata URL (Bot Framework
    /// `ToBotFromEmulatorOpenIdMetadataUrl`).
    pub emulator_metadata_url: Option<String>,
    /// Override of the Entra metadata URL used for `entra_tenants` tokens (Agents
    /// `TokenValidation:OpenIdMetadataUrl`).
    pub entra_metadata_url: Option<String>,
    /// When not empty, only tokens whose `iss` is one of these are accepted (Agents
    /// `TokenValidation:ValidIssuers`), on top of each profile's own issuer rule.
    pub valid_issuers: Vec<String>,
    /// How often the signing keys are refreshed (Agents `TokenValidation:OpenIdMetadataRefresh`).
    #[serde(default, with = "duration_opt")]
    pub key_refresh: Option<Duration>,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            bot_service: true,
            entra_tenants: Vec::new(),
            emulator: false,
            extra_audiences: Vec::new(),
            allowed_callers: Vec::new(),
            skills: false,
            strict_endorsements: false,
            metadata_url: None,
            issuer: None,
            emulator_metadata_url: None,
            entra_metadata_url: None,
            valid_issuers: Vec::new(),
            key_refresh: None,
        }
    }
}

/// botauth's configuration: who the bot is, how it proves it, and what it accepts.
///
/// Read it with [`BotAuthConfig::from_env`], [`BotAuthConfig::from_vars`] (an injected
/// environment), [`BotAuthConfig::from_file`] or [`BotAuthConfig::from_appsettings_json`]; every
/// dialect produces this same model. Fields are public: set one after reading to override the
/// environment explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BotAuthConfig {
    /// The bot's application (client) id. Also the audience of inbound tokens.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The bot's tenant id.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The cloud (with any authority-host override folded in as [`Cloud::Custom`]).
    #[serde(default)]
    pub cloud: Cloud,
    /// Credentials in order of preference.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// Inbound validation settings.
    #[serde(default)]
    pub inbound: InboundConfig,
    /// Extra hosts (or URLs) the bot may send its token to, besides the Bot Service defaults.
    #[serde(default)]
    pub allowed_service_urls: Vec<String>,
    /// Override of the Bot Framework Token Service base URL (user sign-in; docs/protocol.md §8).
    /// `None` means the configured cloud's default. Overriding it changes nothing else.
    #[serde(default)]
    pub token_service_url: Option<String>,
    /// Scopes of the bot's outgoing Connector calls instead of the cloud's default (Agents
    /// `Scopes`; `{instance}` stands for the target's `scheme://host`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The name of the connection the top-level settings describe (Agents SDK connection name,
    /// e.g. `ServiceConnection`); `None` outside the Agents SDK dialect.
    #[serde(default)]
    pub connection_name: Option<String>,
    /// Further named connections (Agents SDK `Connections:<Name>`), besides the one the top-level
    /// settings describe.
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
    /// Which connection an outgoing call uses (Agents SDK `ConnectionsMap`): tried in order, the
    /// first match wins; empty means the top-level connection for every call.
    #[serde(default)]
    pub connections_map: Vec<ConnectionMapEntry>,
    /// The timeout of every HTTP request botauth makes (token endpoints, managed identity, key
    /// metadata, Connector); `None` means each client's default (`BOTAUTH_HTTP_TIMEOUT`, TOML
    /// `http_timeout` in seconds or with a unit: `"30s"`, `"1500ms"`, `"2m"`).
    #[serde(default, with = "duration_opt")]
    pub http_timeout: Option<Duration>,
    /// The dialect this configuration was read from.
    #[serde(skip, default = "native")]
    pub dialect: Dialect,
}

fn native() -> Dialect {
    Dialect::Native
}

impl BotAuthConfig {
    /// An empty configuration of `dialect` for the public cloud.
    pub fn new(dialect: Dialect) -> Self {
        BotAuthConfig {
            client_id: None,
            tenant_id: None,
            cloud: Cloud::Public,
            credentials: Vec::new(),
            inbound: InboundConfig::default(),
            allowed_service_urls: Vec::new(),
            token_service_url: None,
            scopes: Vec::new(),
            connection_name: None,
            connections: Vec::new(),
            connections_map: Vec::new(),
            http_timeout: None,
            dialect,
        }
    }

    /// The client id, or a configuration error naming `key`.
    pub fn require_client_id(&self, key: &str) -> Result<&str> {
        self.client_id
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| Error::config(key, "the bot's application (client) id is required"))
    }

    /// The tenant id, or a configuration error naming `key`.
    pub fn require_tenant_id(&self, key: &str) -> Result<&str> {
        self.tenant_id
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                Error::config(
                    key,
                    "the bot's tenant id is required (single-tenant bots use their own directory id)",
                )
            })
    }

    /// The name of the connection the top-level settings describe: `connection_name`, or
    /// [`DEFAULT_CONNECTION_NAME`] when it is unset or blank. The facade names its connections and
    /// the Connector client its top-level connection by this one rule.
    pub fn top_level_connection_name(&self) -> &str {
        self.connection_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(DEFAULT_CONNECTION_NAME)
    }
}

/// The name of the top-level connection when the configuration gives none.
pub const DEFAULT_CONNECTION_NAME: &str = "default";

/// A named connection (Agents SDK `Connections:<Name>:Settings`) other than the top-level one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// The connection's name, as `connections_map` refers to it.
    pub name: String,
    /// The app (client) id this connection authenticates as.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its tenant.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Its cloud (with any authority override folded in).
    #[serde(default)]
    pub cloud: Cloud,
    /// Its credentials, in order of preference.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// Its scopes for outgoing calls (empty: the cloud's Connector scope).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl ConnectionConfig {
    /// A connection named `name` with nothing else set.
    pub fn new(name: impl Into<String>) -> Self {
        ConnectionConfig {
            name: name.into(),
            client_id: None,
            tenant_id: None,
            cloud: Cloud::Public,
            credentials: Vec::new(),
            scopes: Vec::new(),
        }
    }
}

/// One rule of the Agents SDK `ConnectionsMap` (docs/protocol.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConnectionMapEntry {
    /// `*` or empty matches every service URL; anything else is an unanchored, case-insensitive
    /// regular expression matched against the outgoing call's service URL.
    #[serde(default)]
    pub service_url: String,
    /// When set, the rule only applies when the inbound token's `aud` (or `appid`) equals it,
    /// compared case-insensitively.
    #[serde(default)]
    pub audience: Option<String>,
    /// The connection to use: the top-level one's `connection_name` or a `connections` entry.
    pub connection: String,
}

impl ConnectionMapEntry {
    /// A rule sending calls whose service URL matches `service_url` through `connection`.
    pub fn new(service_url: impl Into<String>, connection: impl Into<String>) -> Self {
        ConnectionMapEntry {
            service_url: service_url.into(),
            audience: None,
            connection: connection.into(),
        }
    }

    /// Restricts the rule to an inbound audience.
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }
}

/// Parses a duration setting: a number of seconds (`30`, `2.5`) or a number with a unit (`1500ms`,
/// `30s`, `2m`). `key` names the setting in the error, which never repeats the value.
pub(crate) fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    let v = value.trim();
    let (number, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60.0)
    } else {
        (v, 1.0)
    };
    let seconds = number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| s * scale)
        .filter(|s| *s <= 86_400.0)
        .ok_or_else(|| {
            Error::config(
                key,
                "is not a duration: give seconds (`30`) or a number with a unit (`1500ms`, `30s`, `2m`, `1h`), \
                 more than zero and at most a day",
            )
        })?;
    Ok(Duration::from_secs_f64(seconds))
}

/// Serde for `Option<Duration>` fields: seconds as a number, or a string for [`parse_duration`].
mod duration_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(f64),
        Text(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = match Raw::deserialize(d)? {
            Raw::Seconds(s) => s.to_string(),
            Raw::Text(t) => t,
        };
        super::parse_duration("duration", &text)
            .map(Some)
            .map_err(|_| serde::de::Error::custom("expected seconds or a duration such as `30s`"))
    }
}

/// Validates a tenant id before it goes into a URL: `[A-Za-z0-9.-]+` (docs/protocol.md §2).
///
/// The error describes the problem without echoing the value: a value in the wrong key can be a
/// secret pasted one line off.
pub(crate) fn validate_tenant_id(tenant: &str) -> Result<()> {
    let problem = match tenant
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        Some(c) => format!("it contains `{}`", c.escape_debug()),
        None if tenant.is_empty() => "it is empty".to_owned(),
        None if tenant.len() > 256 => "it is too long".to_owned(),
        None => return Ok(()),
    };
    Err(Error::config(
        "tenant_id",
        format!(
            "is not a tenant id ({problem}): use the directory's GUID or a verified domain \
             (letters, digits, `.` and `-` only)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_connection_is_named_default_unless_named() {
        let mut config = BotAuthConfig::new(Dialect::Native);
        for (name, expected) in [
            (None, "default"),
            (Some(" "), "default"),
            (Some(" ServiceConnection "), "ServiceConnection"),
        ] {
            config.connection_name = name.map(str::to_owned);
            assert_eq!(config.top_level_connection_name(), expected, "{name:?}");
        }
        assert_eq!(DEFAULT_CONNECTION_NAME, "default");
    }

    const CUSTOM: &str = r#"{"client_id":"app","credentials":[{"type":"custom","name":"vault",
        "settings":{"path":"/v/bot","password":"hunter2-custom-value"}}]}"#;

    /// Issue 13 §4: a custom credential's settings printed in clear through `Debug`, and so
    /// through every type that holds the configuration (`BotAuth`, `EchoBot`).
    #[test]
    fn custom_settings_values_are_redacted_in_debug_and_the_keys_stay_visible() {
        let config: BotAuthConfig = serde_json::from_str(CUSTOM).unwrap();
        let entry = format!("{:?}", config.credentials[0]);
        assert_eq!(
            entry,
            r#"Custom { name: "vault", settings: {"password": [redacted], "path": [redacted]} }"#
        );
        let whole = format!("{config:?} {config:#?}");
        assert!(!whole.contains("hunter2"), "{whole}");
        assert!(!whole.contains("/v/bot"), "{whole}");
        assert!(whole.contains(r#""password": [redacted]"#), "{whole}");
    }

    #[test]
    fn custom_settings_read_like_a_map_from_every_format() {
        let toml = r#"
            client_id = "app"
            [[credentials]]
            type = "custom"
            name = "vault"
            settings = { path = "/v/bot", password = "hunter2-custom-value" }
        "#;
        let from_toml: BotAuthConfig = toml::from_str(toml).unwrap();
        let from_json: BotAuthConfig = serde_json::from_str(CUSTOM).unwrap();
        assert_eq!(from_toml, from_json);
        let CredentialConfig::Custom { settings, .. } = &from_json.credentials[0] else {
            panic!("{:?}", from_json.credentials[0]);
        };
        assert_eq!(
            settings.get("password").map(String::as_str),
            Some("hunter2-custom-value")
        );
        assert_eq!(settings.keys().collect::<Vec<_>>(), ["password", "path"]);
        // Where a map is expected (the facade's `CustomFactory` takes one), the settings coerce.
        let as_map: &BTreeMap<String, String> = settings;
        assert_eq!(as_map.len(), 2);
        let built: CustomSettings = [("path", "/v/bot"), ("password", "hunter2-custom-value")]
            .into_iter()
            .collect();
        assert_eq!(&built, settings);
        assert_eq!(CustomSettings::from(as_map.clone()), built);
        assert_eq!(format!("{:?}", CustomSettings::default()), "{}");
        // Absent settings are an empty map.
        let bare: CredentialConfig =
            serde_json::from_str(r#"{"type":"custom","name":"vault"}"#).unwrap();
        assert_eq!(
            format!("{bare:?}"),
            r#"Custom { name: "vault", settings: {} }"#
        );
    }

    #[test]
    fn durations_read_as_seconds_or_with_a_unit_and_bad_ones_name_the_key() {
        let base = "client_id = \"app\"\n";
        for (value, millis) in [
            ("45", 45_000),
            ("2.5", 2_500),
            ("\"1500ms\"", 1_500),
            ("\"2m\"", 120_000),
        ] {
            let config: BotAuthConfig =
                toml::from_str(&format!("{base}http_timeout = {value}")).unwrap();
            assert_eq!(
                config.http_timeout,
                Some(Duration::from_millis(millis)),
                "{value}"
            );
        }
        for bad in ["0", "-1", "soon", "2d", "90000"] {
            let e = parse_duration("BOTAUTH_HTTP_TIMEOUT", bad).unwrap_err();
            assert!(
                matches!(e, Error::Config { ref key, .. } if key == "BOTAUTH_HTTP_TIMEOUT"),
                "{bad}: {e:?}"
            );
            assert!(!e.to_string().contains(bad) || bad.len() < 3, "{e}");
        }
        assert!(
            toml::from_str::<BotAuthConfig>(&format!("{base}http_timeout = \"soon\"")).is_err()
        );
    }
}
