//! From configuration to a credential: the one place that knows which crate provides which type.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use botauth_core::{
    AccessToken, BotAuthConfig, CredentialConfig, CredentialProvider, Error, Result, TokenRequest,
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
            match self.build_one(config, entry) {
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
                    tracing::warn!(credential = entry.type_name(), index, error = %error, "credential could not be loaded; trying the next one");
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
            .map(|(i, (kind, e))| format!("{}. {kind}: {e}", i + 1))
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::config(
            "credentials",
            format!("none of the configured credentials could be loaded: {list}"),
        ))
    }

    fn build_one(
        &self,
        config: &BotAuthConfig,
        entry: &CredentialConfig,
    ) -> Result<Arc<dyn CredentialProvider>> {
        match entry {
            #[cfg(feature = "secret")]
            CredentialConfig::ClientSecret { secret } => Ok(Arc::new(
                botauth_secret::ClientSecretCredential::from_parts(config, secret.clone())?,
            )),
            #[cfg(feature = "certificate")]
            CredentialConfig::Certificate(cert) => Ok(Arc::new(
                botauth_certificate::CertificateCredential::from_parts(config, cert)?,
            )),
            #[cfg(feature = "managed-identity")]
            CredentialConfig::ManagedIdentity { .. }
            | CredentialConfig::FederatedManagedIdentity { .. }
            | CredentialConfig::WorkloadIdentity { .. } => {
                let mut identities = botauth_managed_identity::IdentityCredentials::new();
                if let Some(env) = &self.env {
                    identities = identities.env(env.clone());
                }
                identities
                    .build(config, entry)?
                    .ok_or_else(|| missing_feature(entry))
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
    Error::feature_missing(entry.type_name(), entry.feature().unwrap_or("custom"))
}

/// Builds the first credential of `config` that loads, with the compiled-in credential types.
pub fn build_credential(config: &BotAuthConfig) -> Result<Arc<dyn CredentialProvider>> {
    CredentialBuilder::new().build(config)
}

/// Everything a bot needs for outbound calls, built from configuration: the credential behind a
/// [`TokenManager`], and the Bot Connector scope of the configured cloud.
#[derive(Debug, Clone)]
pub struct BotAuth {
    config: BotAuthConfig,
    tokens: TokenManager,
    connector: TokenRequest,
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
    pub fn with_builder(config: BotAuthConfig, builder: &CredentialBuilder) -> Result<Self> {
        let provider = builder.build(&config)?;
        let connector = TokenRequest::new(config.cloud.bot_connector_scope());
        Ok(BotAuth {
            tokens: TokenManager::new(provider),
            connector,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BotAuthConfig {
        &self.config
    }

    /// The token manager (the one cache).
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
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
    /// # Errors
    ///
    /// The token manager's error for the Bot Connector request.
    pub async fn check(&self) -> Result<()> {
        self.connector_token().await.map(drop)
    }

    /// A Bot Connector client that shares this token manager, for the configured cloud and
    /// service-URL allow-list (feature `connector`).
    ///
    /// # Errors
    ///
    /// A configuration error for an unusable `allowed_service_urls` entry.
    #[cfg(feature = "connector")]
    pub fn connector(&self) -> Result<botauth_connector::ConnectorClient> {
        botauth_connector::ConnectorClient::from_config(&self.config, self.tokens.clone())
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
