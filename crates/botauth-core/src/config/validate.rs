//! Checks shared by every reader. The URL rule of docs/protocol.md §2 lives in [`crate::internal::endpoint`].
//!
//! Each reader checks its own keys as it reads them; [`validate`] then checks the finished model once,
//! naming the keys of the dialect it came from, so the native file format and the environment
//! dialects cannot drift apart.

use super::model::{BotAuthConfig, CredentialConfig, ManagedIdentityId, validate_tenant_id};
use crate::endpoint::{check_endpoint_url, check_key_vault_url};
use crate::{Cloud, Error, Result};

/// The user-facing key names of one dialect, for errors raised by [`validate`].
#[derive(Debug, Clone)]
pub(crate) struct KeyNames {
    /// The key holding the client id.
    pub(crate) client_id: String,
    /// The key holding the tenant id (or the key it was derived from).
    pub(crate) tenant_id: String,
    /// The key holding the credentials list.
    pub(crate) credentials: String,
    /// Whether this is the native model, where per-credential keys are `credentials[i].field`
    /// and the cloud's custom endpoints must be checked too.
    pub(crate) native: bool,
}

impl KeyNames {
    /// The native model's keys.
    pub(crate) fn native() -> Self {
        KeyNames {
            client_id: "client_id".into(),
            tenant_id: "tenant_id".into(),
            credentials: "credentials".into(),
            native: true,
        }
    }

    fn credential_field(&self, index: usize, field: &str) -> String {
        if self.native {
            format!("{}[{index}].{field}", self.credentials)
        } else {
            self.credentials.clone()
        }
    }
}

/// Tenants that cannot issue client-credentials tokens for a bot (docs/protocol.md §2).
const MULTI_TENANT_ALIASES: [&str; 3] = ["common", "organizations", "consumers"];

/// Checks a finished configuration. Readers have already rejected most problems with their own
/// keys; this is the common backstop (and the only check of the native file format).
pub(crate) fn validate(config: &BotAuthConfig, keys: &KeyNames) -> Result<()> {
    config.require_client_id(&keys.client_id)?;

    if config.credentials.is_empty() {
        return Err(Error::config(
            &keys.credentials,
            "no credential is configured: add a client secret, a certificate, a managed identity or a workload identity token file",
        ));
    }
    for (i, credential) in config.credentials.iter().enumerate() {
        validate_credential(i, credential, keys, &config.cloud)?;
    }

    // A managed identity that *is* the bot gets its token from the host, not from Entra's token
    // endpoint, so it is the one credential that needs no tenant. Custom credentials decide for
    // themselves.
    let needs_tenant = config.credentials.iter().any(|c| {
        matches!(
            c,
            CredentialConfig::ClientSecret { .. }
                | CredentialConfig::Certificate(_)
                | CredentialConfig::KeyVaultCertificate(_)
                | CredentialConfig::FederatedManagedIdentity { .. }
                | CredentialConfig::WorkloadIdentity { .. }
        )
    });
    match config.tenant_id.as_deref() {
        Some(tenant) => check_tenant(tenant, &keys.tenant_id)?,
        None if needs_tenant => {
            config.require_tenant_id(&keys.tenant_id)?;
        }
        None => {}
    }

    if keys.native {
        if let Cloud::Custom(_) = &config.cloud {
            check_endpoint_url("cloud.authority_host", config.cloud.authority_host())?;
            check_endpoint_url(
                "cloud.bot_service_metadata_url",
                config.cloud.bot_service_metadata_url(),
            )?;
        }
        if let Some(url) = &config.inbound.metadata_url {
            check_endpoint_url("inbound.metadata_url", url)?;
        }
        check_service_url_entries("allowed_service_urls", &config.allowed_service_urls)?;
    }
    Ok(())
}

/// Checks service-URL allow-list entries (docs/protocol.md §6, outbound guard) when the configuration is
/// read, so a typo fails at start-up naming `key` rather than at the first reply.
pub(crate) fn check_service_url_entries(key: &str, entries: &[String]) -> Result<()> {
    crate::service_url::ServiceUrlAllowList::empty().allow_entries(key, entries)
}

/// Validates a tenant id, naming `key` (the dialect's key) on failure.
pub(crate) fn check_tenant(tenant: &str, key: &str) -> Result<()> {
    validate_tenant_id(tenant).map_err(|e| rekey(e, key))?;
    if MULTI_TENANT_ALIASES
        .iter()
        .any(|a| tenant.eq_ignore_ascii_case(a))
    {
        return Err(Error::config(
            key,
            format!(
                "`{tenant}` cannot issue client-credentials tokens: use the bot's own tenant (directory) id, \
                 or `botframework.com` for a legacy multi-tenant bot"
            ),
        ));
    }
    Ok(())
}

fn validate_credential(
    i: usize,
    credential: &CredentialConfig,
    keys: &KeyNames,
    cloud: &Cloud,
) -> Result<()> {
    match credential {
        CredentialConfig::ClientSecret { secret } => {
            if secret.expose_secret().trim().is_empty() {
                return Err(Error::config(
                    keys.credential_field(i, "secret"),
                    "the client secret is empty: set the secret's value (not its id)",
                ));
            }
        }
        CredentialConfig::Certificate(cert) => {
            let has_source = cert.certificate_path.is_some()
                || cert.key_path.is_some()
                || cert.key_pem.as_ref().is_some_and(|k| !k.is_empty())
                || cert.base64_pfx.as_ref().is_some_and(|b| !b.is_empty())
                || cert
                    .thumbprint
                    .as_deref()
                    .is_some_and(|t| !t.trim().is_empty());
            if !has_source {
                return Err(Error::config(
                    keys.credential_field(i, "certificate_path"),
                    "the certificate credential names no certificate: set certificate_path (PEM or PFX), \
                     key_path, base64_pfx or thumbprint",
                ));
            }
        }
        CredentialConfig::ManagedIdentity { id }
        | CredentialConfig::FederatedManagedIdentity { id } => {
            let empty = match id {
                ManagedIdentityId::System => false,
                ManagedIdentityId::ClientId(v)
                | ManagedIdentityId::ObjectId(v)
                | ManagedIdentityId::ResourceId(v) => v.trim().is_empty(),
            };
            if empty {
                return Err(Error::config(
                    keys.credential_field(i, "id"),
                    "the managed identity id is empty: give the identity's client id, or use `system`",
                ));
            }
        }
        CredentialConfig::KeyVaultCertificate(vault) => {
            check_key_vault_url(vault.keys.vault_url(), &vault.vault_url, cloud)?;
            let name = vault.certificate_name.trim();
            // Key Vault object names: 1-127 letters, digits and dashes.
            if name.is_empty()
                || name.len() > 127
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(Error::config(
                    vault.keys.certificate_name(),
                    "is not a Key Vault certificate name: 1 to 127 letters, digits and dashes",
                ));
            }
            if let Some(version) = &vault.version {
                if version.is_empty() || !version.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(Error::config(
                        keys.credential_field(i, "version"),
                        "is not a Key Vault version: the 32-character id at the end of the \
                         certificate's URL",
                    ));
                }
            }
        }
        CredentialConfig::WorkloadIdentity { token_file } => {
            if token_file.as_os_str().is_empty() {
                return Err(Error::config(
                    keys.credential_field(i, "token_file"),
                    "the workload identity token file path is empty: set it to the projected token file \
                     (AZURE_FEDERATED_TOKEN_FILE)",
                ));
            }
        }
        CredentialConfig::Custom { name, .. } => {
            if name.trim().is_empty() {
                return Err(Error::config(
                    keys.credential_field(i, "name"),
                    "the custom credential has no name: set the name its factory was registered under",
                ));
            }
        }
    }
    Ok(())
}

/// Gives a configuration error another key (e.g. `tenant_id` → `TENANT_ID`); other errors pass through.
pub(crate) fn rekey(error: Error, key: &str) -> Error {
    match error {
        Error::Config { message, .. } => Error::config(key, message),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CertificateConfig;
    use crate::{Dialect, Secret};

    fn key_of(e: &Error) -> &str {
        match e {
            Error::Config { key, .. } => key,
            other => panic!("not a config error: {other:?}"),
        }
    }

    fn base() -> BotAuthConfig {
        let mut c = BotAuthConfig::new(Dialect::Native);
        c.client_id = Some("app".into());
        c.tenant_id = Some("contoso.onmicrosoft.com".into());
        c.credentials = vec![CredentialConfig::ClientSecret {
            secret: Secret::new("s"),
        }];
        c
    }

    #[test]
    fn validate_names_native_keys() {
        let keys = KeyNames::native();
        assert!(validate(&base(), &keys).is_ok());

        let mut c = base();
        c.client_id = None;
        assert_eq!(key_of(&validate(&c, &keys).unwrap_err()), "client_id");

        let mut c = base();
        c.tenant_id = None;
        assert_eq!(key_of(&validate(&c, &keys).unwrap_err()), "tenant_id");

        let mut c = base();
        c.tenant_id = Some("bad/tenant".into());
        assert_eq!(key_of(&validate(&c, &keys).unwrap_err()), "tenant_id");

        let mut c = base();
        c.tenant_id = Some("Common".into());
        assert_eq!(key_of(&validate(&c, &keys).unwrap_err()), "tenant_id");

        let mut c = base();
        c.credentials.clear();
        assert_eq!(key_of(&validate(&c, &keys).unwrap_err()), "credentials");

        let mut c = base();
        c.credentials.push(CredentialConfig::ClientSecret {
            secret: Secret::new(" "),
        });
        assert_eq!(
            key_of(&validate(&c, &keys).unwrap_err()),
            "credentials[1].secret"
        );

        let mut c = base();
        c.credentials = vec![CredentialConfig::Certificate(CertificateConfig::default())];
        assert_eq!(
            key_of(&validate(&c, &keys).unwrap_err()),
            "credentials[0].certificate_path"
        );

        let mut c = base();
        c.credentials = vec![CredentialConfig::FederatedManagedIdentity {
            id: ManagedIdentityId::ClientId(String::new()),
        }];
        assert_eq!(
            key_of(&validate(&c, &keys).unwrap_err()),
            "credentials[0].id"
        );
    }

    #[test]
    fn managed_identity_needs_no_tenant() {
        let mut c = base();
        c.tenant_id = None;
        c.credentials = vec![CredentialConfig::ManagedIdentity {
            id: ManagedIdentityId::System,
        }];
        assert!(validate(&c, &KeyNames::native()).is_ok());
    }

    #[test]
    fn native_custom_cloud_must_be_https() {
        let mut c = base();
        c.cloud = Cloud::Public.with_authority_host("http://login.example");
        assert_eq!(
            key_of(&validate(&c, &KeyNames::native()).unwrap_err()),
            "cloud.authority_host"
        );
        let mut c = base();
        c.inbound.metadata_url = Some("http://meta.example/x".into());
        assert_eq!(
            key_of(&validate(&c, &KeyNames::native()).unwrap_err()),
            "inbound.metadata_url"
        );
    }
}
