//! From configuration to a credential: the one place that knows which crate provides which type.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use botauth_core::config::ConnectionConfig;
use botauth_core::{
    AccessToken, BotAuthConfig, Cloud, CredentialConfig, CredentialProvider, Error, Result,
    TokenRequest,
};
use botauth_token::TokenManager;

/// Builds a custom credential from the configuration and the entry's settings.
pub type CustomFactory = Arc<
    dyn Fn(&BotAuthConfig, &BTreeMap<String, String>) -> Result<Arc<dyn CredentialProvider>>
        + Send
        + Sync,
>;

/// Turns a [`BotAuthConfig`] into a credential: tries the configured credentials in order and
/// uses the first that loads (Microsoft.Identity.Web `ClientCredentials` semantics), logging why
/// each earlier one was skipped.
#[derive(Clone, Default)]
pub struct CredentialBuilder {
    custom: HashMap<String, CustomFactory>,
    env: Option<botauth_core::config::EnvVars>,
}

impl fmt::Debug for CredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialBuilder")
            .field("custom", &self.custom.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CredentialBuilder {
    /// A builder that knows the compiled-in credential types.
    pub fn new() -> Self {
        Self::default()
    }

    /// The environment that managed identity endpoint detection reads (default: the process's).
    pub fn env(mut self, env: botauth_core::config::EnvVars) -> Self {
        self.env = Some(env);
        self
    }

    /// Registers a factory for `type = "custom"` entries whose `name` is `name`.
    pub fn register(mut self, name: impl Into<String>, factory: CustomFactory) -> Self {
        self.custom.insert(name.into(), factory);
        self
    }

    /// Builds the first credential of `config` that loads.
    pub fn build(&self, config: &BotAuthConfig) -> Result<Arc<dyn CredentialProvider>> {
        if config.credentials.is_empty() {
            return Err(Error::config(
                "credentials",
                "no credential is configured: set a client secret, a certificate or a managed identity",
            ));
        }
        let mut errors = Vec::new();
        for (index, entry) in config.credentials.iter().enumerate() {
            match self.build_one(config, index) {
                Ok(provider) => {
                    if !errors.is_empty() {
                        tracing::info!(
                            credential = entry.type_name(),
                            index,
                            "using a fallback credential"
                        );
                    }
                    return Ok(provider);
                }
                Err(error) => {
                    // The cause chain, not only the top error: "the certificate configured by
                    // … cannot be loaded" is useless without "… does not exist".
                    let cause = botauth_core::Report::new(&error).to_string();
                    if index + 1 < config.credentials.len() {
                        tracing::warn!(credential = entry.type_name(), index, error = %cause, "credential could not be loaded; trying the next one");
                    } else if !errors.is_empty() {
                        tracing::warn!(credential = entry.type_name(), index, error = %cause, "credential could not be loaded; it was the last one");
                    }
                    errors.push((entry.type_name().to_owned(), error));
                }
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0).1);
        }
        let list = errors
            .iter()
            .enumerate()
            .map(|(i, (kind, e))| format!("{}. {kind}: {}", i + 1, botauth_core::Report::new(e)))
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::config(
            "credentials",
            format!("none of the configured credentials could be loaded: {list}"),
        ))
    }

    /// Builds entry `index` of `config`'s credentials.
    fn build_one(
        &self,
        config: &BotAuthConfig,
        index: usize,
    ) -> Result<Arc<dyn CredentialProvider>> {
        let entry = &config.credentials[index];
        match entry {
            #[cfg(feature = "secret")]
            CredentialConfig::ClientSecret { .. } => Ok(Arc::new(
                botauth_secret::ClientSecretCredential::from_entry(config, entry)?,
            )),
            #[cfg(feature = "certificate")]
            CredentialConfig::Certificate(_) => Ok(Arc::new(
                botauth_certificate::CertificateCredential::from_entry(config, entry)?,
            )),
            #[cfg(feature = "key-vault")]
            CredentialConfig::KeyVaultCertificate(_) => {
                let credential = botauth_keyvault::KeyVaultCertificateCredential::from_entry(
                    config,
                    entry,
                    self.env.clone(),
                )?;
                // The vault is read on first use, so the fall back to the next entries is
                // decided then, not here.
                if index + 1 == config.credentials.len() {
                    return Ok(Arc::new(credential));
                }
                let mut rest = config.clone();
                rest.credentials.drain(..=index);
                Ok(Arc::new(credential.with_fallback(self.build(&rest))))
            }
            #[cfg(feature = "managed-identity")]
            CredentialConfig::ManagedIdentity { .. }
            | CredentialConfig::FederatedManagedIdentity { .. }
            | CredentialConfig::WorkloadIdentity { .. } => {
                botauth_managed_identity::ManagedIdentityCredential::from_entry(
                    config,
                    entry,
                    self.env.clone(),
                )
            }
            CredentialConfig::Custom { name, settings } => match self.custom.get(name) {
                Some(factory) => factory(config, settings),
                None => Err(Error::config(
                    "credentials",
                    format!(
                        "custom credential `{name}` is not registered: call CredentialBuilder::register(\"{name}\", …)"
                    ),
                )),
            },
            other => Err(missing_feature(other)),
        }
    }
}

fn missing_feature(entry: &CredentialConfig) -> Error {
    Error::feature_missing(entry.type_name(), feature_of(entry))
}

/// The feature of this crate that provides a credential type.
fn feature_of(entry: &CredentialConfig) -> &'static str {
    match entry {
        CredentialConfig::ClientSecret { .. } => "secret",
        CredentialConfig::Certificate(_) => "certificate",
        CredentialConfig::KeyVaultCertificate(_) => "key-vault",
        CredentialConfig::ManagedIdentity { .. }
        | CredentialConfig::FederatedManagedIdentity { .. }
        | CredentialConfig::WorkloadIdentity { .. } => "managed-identity",
        _ => "custom",
    }
}

/// Everything a bot needs for outbound calls, built from configuration: the credential behind a
/// [`TokenManager`], and the Bot Connector scope of the configured cloud.
///
/// A configuration with several connections (Microsoft 365 Agents SDK `Connections:<Name>`,
/// botauth's `[[connections]]`) gets one credential and one token manager per connection, all
/// built by [`from_config`](Self::from_config) through the same [`CredentialBuilder`]; the
/// top-level settings are one more connection, named by `connection_name` (or `default`).
/// [`tokens_for`](Self::tokens_for) gives a connection's token manager by name, and, with feature
/// `connector`, `connection_for` says which connection the `ConnectionsMap` picks for a service
/// URL and an inbound audience — the choice the `connector()` client makes on every call.
#[derive(Debug, Clone)]
pub struct BotAuth {
    config: BotAuthConfig,
    tokens: TokenManager,
    connector: TokenRequest,
    /// The named connections besides the top-level one, in configuration order.
    connections: Vec<NamedConnection>,
    /// The compiled `connections_map` (regexes compiled once, here).
    #[cfg(feature = "connector")]
    map: botauth_connector::ConnectionMap,
}

/// A named connection other than the top-level one, built. Its cloud and scopes are for the
/// Connector client's token requests.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "connector"), allow(dead_code))]
struct NamedConnection {
    name: String,
    tokens: TokenManager,
    cloud: Cloud,
    scopes: Vec<String>,
}

/// Connection `connection` of `base` as a configuration of its own: its identity, cloud,
/// credentials and scopes, and every other setting (HTTP timeout, allow-list, inbound) from the
/// top level. Its credential is built from this exactly as the top-level one is.
fn connection_config(base: &BotAuthConfig, connection: &ConnectionConfig) -> BotAuthConfig {
    let mut config = base.clone();
    config.client_id.clone_from(&connection.client_id);
    config.tenant_id.clone_from(&connection.tenant_id);
    config.cloud = connection.cloud.clone();
    config.credentials.clone_from(&connection.credentials);
    config.scopes.clone_from(&connection.scopes);
    config.connection_name = Some(connection.name.clone());
    config.connections = Vec::new();
    config.connections_map = Vec::new();
    config
}

/// Says which connection an error is about: the builder's errors name the key inside the
/// connection (`credentials`, `client_id`), which alone would point at the top-level settings.
fn in_connection(name: &str, error: Error) -> Error {
    match error {
        Error::Config { key, message } => {
            Error::config(key, format!("(connection `{name}`) {message}"))
        }
        Error::Credential { .. } => Error::credential_with_source(
            format!("the credential of connection `{name}` could not be loaded"),
            error,
        ),
        other => other,
    }
}

impl BotAuth {
    /// Reads the configuration from the process environment (any dialect) and builds.
    pub fn from_env() -> Result<Self> {
        Self::from_config(BotAuthConfig::from_env()?)
    }

    /// Builds from a configuration.
    pub fn from_config(config: BotAuthConfig) -> Result<Self> {
        Self::with_builder(config, &CredentialBuilder::new())
    }

    /// Builds from a configuration, with custom credential types registered on `builder`.
    ///
    /// Every connection's credential is built here, so a broken one fails at start-up; with
    /// feature `connector` the `connections_map` is compiled here too.
    ///
    /// # Errors
    ///
    /// The builder's errors for the top-level credential and for each connection's (their
    /// messages name the connection); [`Error::Config`] naming `connections` for two connections
    /// with one name, and, with feature `connector`, naming `ConnectionsMap:<i>:ServiceUrl` for a
    /// pattern that is not a regular expression or `ConnectionsMap:<i>:Connection` for a rule
    /// naming no configured connection.
    pub fn with_builder(config: BotAuthConfig, builder: &CredentialBuilder) -> Result<Self> {
        // Configuration mistakes first: they are cheaper to report than a credential that loads.
        #[cfg(feature = "connector")]
        let map = botauth_connector::ConnectionMap::from_config(&config)?;
        let mut names = vec![config.top_level_connection_name()];
        for connection in &config.connections {
            let name = connection.name.trim();
            if name.is_empty() || names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err(Error::config(
                    "connections",
                    format!(
                        "connection names must be unique and not empty (compared without regard \
                         to case); `{name}` is {}",
                        if name.is_empty() { "empty" } else { "repeated" }
                    ),
                ));
            }
            names.push(name);
        }
        let provider = builder.build(&config)?;
        let connections = config
            .connections
            .iter()
            .map(|connection| {
                let name = connection.name.trim();
                let provider = builder
                    .build(&connection_config(&config, connection))
                    .map_err(|e| in_connection(name, e))?;
                Ok(NamedConnection {
                    name: name.to_owned(),
                    tokens: TokenManager::new(provider),
                    cloud: connection.cloud.clone(),
                    scopes: connection.scopes.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let connector = TokenRequest::new(config.cloud.bot_connector_scope());
        Ok(BotAuth {
            tokens: TokenManager::new(provider),
            connector,
            connections,
            #[cfg(feature = "connector")]
            map,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BotAuthConfig {
        &self.config
    }

    /// The token manager of the top-level connection (the one cache).
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    /// The name of the top-level connection: `connection_name` (the Agents SDK connection the
    /// top-level settings came from, e.g. `ServiceConnection`), or `default`.
    pub fn connection_name(&self) -> &str {
        self.config.top_level_connection_name()
    }

    /// The names of every connection, the top-level one first, then in configuration order.
    pub fn connection_names(&self) -> Vec<&str> {
        std::iter::once(self.connection_name())
            .chain(self.connections.iter().map(|c| c.name.as_str()))
            .collect()
    }

    /// The token manager of the connection named `connection` (compared without regard to case,
    /// as .NET configuration keys are), `None` when there is no such connection.
    ///
    /// ```no_run
    /// # async fn run(bot: botauth::BotAuth) -> botauth::Result<()> {
    /// use botauth::TokenRequest;
    /// let graph = bot.tokens_for("GraphConnection").expect("configured");
    /// let token = graph.get_token(&TokenRequest::new("https://graph.microsoft.com/.default")).await?;
    /// # Ok(()) }
    /// ```
    pub fn tokens_for(&self, connection: &str) -> Option<&TokenManager> {
        let connection = connection.trim();
        if self.connection_name().eq_ignore_ascii_case(connection) {
            return Some(&self.tokens);
        }
        self.connections
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(connection))
            .map(|c| &c.tokens)
    }

    /// The compiled `connections_map` (feature `connector`).
    #[cfg(feature = "connector")]
    pub fn connections_map(&self) -> &botauth_connector::ConnectionMap {
        &self.map
    }

    /// The connection a Bot Connector call to `service_url` uses, by the `ConnectionsMap`
    /// (feature `connector`): the first rule whose `ServiceUrl` matches and whose `Audience`, if
    /// any, equals `inbound_audience` (the inbound token's `aud`, else `appid`; `None` for a
    /// proactive message). `None` when no rule matches: the Connector client then refuses the
    /// call with a `ConnectorError` of kind `NoConnection`. With an empty map, the top-level connection.
    ///
    /// The name is the connection's as configured, whatever case the rule wrote it in. This does
    /// not check the service URL against the allow-list; the Connector client does, before
    /// anything else.
    #[cfg(feature = "connector")]
    pub fn connection_for(
        &self,
        service_url: &str,
        inbound_audience: Option<&str>,
    ) -> Option<&str> {
        if self.map.is_empty() {
            return Some(self.connection_name());
        }
        let rule = self.map.resolve(service_url, inbound_audience)?;
        self.connection_names()
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(rule))
    }

    /// The default connection by the Agents SDK rule (feature `connector`): the first map rule
    /// with a `*` (or empty) service URL and no audience, else the top-level connection.
    #[cfg(feature = "connector")]
    pub fn default_connection(&self) -> &str {
        self.map
            .default_connection()
            .and_then(|rule| {
                self.connection_names()
                    .into_iter()
                    .find(|n| n.eq_ignore_ascii_case(rule))
            })
            .unwrap_or_else(|| self.connection_name())
    }

    /// The Bot Connector token request of the configured cloud.
    pub fn connector_request(&self) -> &TokenRequest {
        &self.connector
    }

    /// A token for the Bot Connector of the configured cloud.
    pub async fn connector_token(&self) -> Result<AccessToken> {
        self.tokens.get_token(&self.connector).await
    }

    /// The start-up check: gets the Bot Connector token once, so that a wrong secret, an
    /// unregistered certificate, a missing federated credential or an unreachable authority
    /// fails when the bot starts, with the typed error and its AADSTS hint, instead of as a 500
    /// on the first reply. The token stays cached for that reply.
    ///
    /// Print the error with [`Report`](botauth_core::Report) to keep its whole cause chain.
    ///
    /// With several connections (Agents SDK `Connections`), each one gets its token once too:
    /// for its scopes, or the cloud's Connector scope when it has none. Scopes with the
    /// `{instance}` placeholder depend on the call's service URL and are not checked here.
    ///
    /// # Errors
    ///
    /// The token manager's error for the first request that fails (a WARN names its connection).
    pub async fn check(&self) -> Result<()> {
        self.connector_token().await?;
        for c in &self.connections {
            let request = if c.scopes.is_empty() {
                TokenRequest::new(c.cloud.bot_connector_scope())
            } else if c.scopes.iter().any(|s| s.contains("{instance}")) {
                tracing::debug!(connection = %c.name, "start-up check skipped: its scopes depend on the service URL");
                continue;
            } else {
                TokenRequest::with_scopes(c.scopes.iter().cloned())
            };
            if let Err(e) = c.tokens.get_token(&request).await {
                // The error keeps its kind (and AADSTS hint); the log says which connection.
                tracing::warn!(connection = %c.name, "botauth: the start-up check failed for this connection");
                return Err(e);
            }
        }
        Ok(())
    }

    /// A Bot Connector client that shares these token managers, for the configured cloud and
    /// service-URL allow-list (feature `connector`). With several connections, it picks one per
    /// call by the `ConnectionsMap` and sends that connection's token with its scopes.
    ///
    /// # Errors
    ///
    /// A configuration error for an unusable `allowed_service_urls` entry.
    #[cfg(feature = "connector")]
    pub fn connector(&self) -> Result<botauth_connector::ConnectorClient> {
        let mut builder = botauth_connector::ConnectorClient::builder_from_parts(
            &self.config,
            self.tokens.clone(),
            self.map.clone(),
        );
        for c in &self.connections {
            builder = builder.connection(
                botauth_connector::Connection::new(&c.name, c.tokens.clone())
                    .with_cloud(c.cloud.clone())
                    .with_scopes(c.scopes.clone()),
            );
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::{CredentialInfo, async_trait};

    fn config(credentials: Vec<CredentialConfig>) -> BotAuthConfig {
        let mut c = BotAuthConfig::new(botauth_core::Dialect::Native);
        c.client_id = Some("00000000-0000-0000-0000-00000000b07a".into());
        c.tenant_id = Some("11111111-2222-3333-4444-555555555555".into());
        c.credentials = credentials;
        c
    }

    /// The first credential of `config` that loads, with the compiled-in credential types.
    fn build_credential(config: &BotAuthConfig) -> Result<Arc<dyn CredentialProvider>> {
        CredentialBuilder::new().build(config)
    }

    fn managed_identity() -> CredentialConfig {
        serde_json::from_str(r#"{"type":"managed_identity"}"#).unwrap()
    }

    #[cfg(not(feature = "managed-identity"))]
    #[test]
    fn a_type_not_compiled_in_names_its_feature() {
        let e = build_credential(&config(vec![managed_identity()])).unwrap_err();
        assert_eq!(e.kind(), botauth_core::ErrorKind::FeatureMissing);
        assert!(matches!(
            e,
            Error::FeatureMissing { ref credential, ref feature }
                if credential == "managed_identity" && feature == "managed-identity"
        ));
    }

    #[test]
    fn nothing_configured() {
        let e = build_credential(&config(vec![])).unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if key == "credentials"));
    }

    #[cfg(all(feature = "secret", not(feature = "managed-identity")))]
    #[test]
    fn falls_back_to_the_next_credential() {
        let secret: CredentialConfig =
            serde_json::from_str(r#"{"type":"client_secret","secret":"abc~def"}"#).unwrap();
        let p = build_credential(&config(vec![managed_identity(), secret])).unwrap();
        assert_eq!(p.describe().kind, "client_secret");
    }

    #[cfg(all(feature = "secret", not(feature = "managed-identity")))]
    #[test]
    fn every_failure_is_listed_when_none_loads() {
        let empty: CredentialConfig =
            serde_json::from_str(r#"{"type":"client_secret","secret":""}"#).unwrap();
        let e = build_credential(&config(vec![managed_identity(), empty])).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("1. managed_identity"), "{text}");
        assert!(text.contains("2. client_secret"), "{text}");
    }

    #[cfg(feature = "certificate")]
    #[test]
    fn certificate_entries_build_a_certificate_credential() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/certs");
        let cert: CredentialConfig = serde_json::from_value(serde_json::json!({
            "type": "certificate",
            "certificate_path": format!("{dir}/rsa2048.pem"),
            "key_path": format!("{dir}/rsa2048.key"),
        }))
        .unwrap();
        let p = build_credential(&config(vec![cert])).unwrap();
        assert_eq!(p.describe().kind, "certificate");
    }

    #[cfg(not(feature = "certificate"))]
    #[test]
    fn certificate_without_its_feature_names_it() {
        let cert: CredentialConfig =
            serde_json::from_str(r#"{"type":"certificate","certificate_path":"/x.pem"}"#).unwrap();
        let e = build_credential(&config(vec![cert])).unwrap_err();
        assert!(matches!(
            e,
            Error::FeatureMissing { ref feature, .. } if feature == "certificate"
        ));
    }

    #[cfg(feature = "managed-identity")]
    #[test]
    fn identity_credentials_are_built_from_configuration() {
        let dir = std::env::temp_dir().join(format!("botauth-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "eyJ.token.file").unwrap();
        let workload = CredentialConfig::WorkloadIdentity {
            token_file: file.clone(),
        };
        let p = build_credential(&config(vec![workload])).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(p.describe().kind, "workload_identity");
        assert_eq!(
            p.describe().client_id.as_deref(),
            Some("00000000-0000-0000-0000-00000000b07a")
        );
        // A token file that is not there cannot be loaded.
        let missing = CredentialConfig::WorkloadIdentity {
            token_file: dir.join("gone"),
        };
        let e = build_credential(&config(vec![missing])).unwrap_err();
        assert_eq!(e.kind(), botauth_core::ErrorKind::Credential);
        assert!(e.to_string().contains("does not exist"), "{e}");
        // A managed identity whose source cannot select it is skipped for the next entry.
        let empty: CredentialConfig =
            serde_json::from_str(r#"{"type":"managed_identity","id":{"client_id":" "}}"#).unwrap();
        let federated: CredentialConfig =
            serde_json::from_str(r#"{"type":"federated_managed_identity"}"#).unwrap();
        let p = build_credential(&config(vec![empty, federated])).unwrap();
        assert_eq!(p.describe().kind, "federated_managed_identity");
        assert_eq!(
            build_credential(&config(vec![managed_identity()]))
                .unwrap()
                .describe()
                .kind,
            "managed_identity"
        );
    }

    #[cfg(feature = "connector")]
    #[derive(Debug)]
    struct Mine;

    #[async_trait]
    impl CredentialProvider for Mine {
        async fn get_token(&self, _r: &TokenRequest) -> Result<AccessToken> {
            Err(Error::credential("not really"))
        }
        fn describe(&self) -> CredentialInfo {
            CredentialInfo::new("mine")
        }
    }

    #[test]
    fn custom_types_need_registering() {
        let custom: CredentialConfig =
            serde_json::from_str(r#"{"type":"custom","name":"vault","settings":{"path":"x"}}"#)
                .unwrap();
        let e = build_credential(&config(vec![custom.clone()])).unwrap_err();
        assert!(e.to_string().contains("not registered"));
        let builder = CredentialBuilder::new().register(
            "vault",
            Arc::new(|_c: &BotAuthConfig, s: &BTreeMap<String, String>| {
                assert_eq!(s.get("path").map(String::as_str), Some("x"));
                Ok(Arc::new(Mine) as Arc<dyn CredentialProvider>)
            }),
        );
        assert_eq!(
            builder
                .build(&config(vec![custom]))
                .unwrap()
                .describe()
                .kind,
            "mine"
        );
    }
}
