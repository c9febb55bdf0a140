//! What every dialect shares: building a credential from a section's keys, the settings any
//! section may carry (authorities, clouds, inbound URLs, scopes), and the `BOTAUTH_*` overrides.

use std::path::PathBuf;

use crate::config::model::{
    BotAuthConfig, CertificateConfig, CredentialConfig, Dialect, KeyVaultCertificateConfig,
    ManagedIdentityId, parse_duration,
};
use crate::config::tables::{BOTAUTH, Choice, Kind, To};
use crate::config::validate::{KeyNames, rekey};
use crate::endpoint::{check_endpoint_url, known_cloud, parse_endpoint_url};
use crate::{Cloud, Error, Result, Secret};

use super::fields::*;
use super::{Draft, Reader};

impl<'e> Reader<'e> {
    /// Builds one credential of `kind` from `f` (the keys of a connection, entry or dialect).
    pub(super) fn credential(
        &self,
        kind: Kind,
        name: &str,
        f: &Fields<'e>,
        send_x5c: Option<bool>,
        client_id: &str,
    ) -> Result<CredentialConfig> {
        let why = format!(" for {name}");
        Ok(match kind {
            Kind::Secret => CredentialConfig::ClientSecret {
                secret: Secret::new(f.require(To::Secret, &why)?),
            },
            Kind::Certificate => {
                let (key_path, key_pem) = match f.get(To::KeyPathOrPem) {
                    // The JavaScript SDK takes the key's PEM text here, other samples a path:
                    // accept both, and never let PEM text travel as a path (paths are printed).
                    Some(k) if k.trim_start().starts_with("-----BEGIN") => {
                        (None, Some(Secret::new(unescape_newlines(k))))
                    }
                    Some(k) => (Some(PathBuf::from(k)), None),
                    None => (f.path(To::KeyPath), None),
                };
                let mut cert = CertificateConfig {
                    certificate_path: f.path(To::CertPath),
                    key_path,
                    key_pem,
                    base64_pfx: f.get(To::Base64Pfx).map(Secret::new),
                    password: f.get(To::Password).map(Secret::new),
                    thumbprint: f.get(To::Thumbprint).map(str::to_owned),
                    send_x5c: send_x5c.unwrap_or(false),
                    ..CertificateConfig::default()
                };
                cert.keys.certificate_path = f.key(To::CertPath);
                cert.keys.key_path = f.key(if f.has(To::KeyPathOrPem) {
                    To::KeyPathOrPem
                } else {
                    To::KeyPath
                });
                cert.keys.thumbprint = f.key(To::Thumbprint);
                cert.keys.password = f.key(To::Password);
                cert.keys.base64_pfx = f.key(To::Base64Pfx);
                CredentialConfig::Certificate(cert)
            }
            Kind::UserManagedIdentity => CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::ClientId(client_id.to_owned()),
            },
            Kind::SystemManagedIdentity => CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::System,
            },
            Kind::Federated => CredentialConfig::FederatedManagedIdentity {
                id: match f.get(To::FederatedClientId).or(f.get(To::ManagedIdentity)) {
                    Some(id) if !id.eq_ignore_ascii_case("system") => {
                        ManagedIdentityId::ClientId(id.to_owned())
                    }
                    _ => ManagedIdentityId::System,
                },
            },
            Kind::Workload => CredentialConfig::WorkloadIdentity {
                token_file: f
                    .path(To::TokenFile)
                    .or_else(|| {
                        self.env
                            .get("AZURE_FEDERATED_TOKEN_FILE")
                            .map(PathBuf::from)
                    })
                    .ok_or_else(|| {
                        Error::config(
                            f.key(To::TokenFile),
                            format!(
                                "is required{why} when AZURE_FEDERATED_TOKEN_FILE is not set: {}",
                                To::TokenFile.what()
                            ),
                        )
                    })?,
            },
            Kind::KeyVault => {
                let mut vault = KeyVaultCertificateConfig::new(
                    f.require(To::KeyVaultUrl, &why)?,
                    f.require(To::KeyVaultCertificateName, &why)?,
                );
                vault.version = f.get(To::KeyVaultVersion).map(str::to_owned);
                // Identity.Web: the entry's ManagedIdentityClientId, then AZURE_CLIENT_ID, else
                // the system-assigned identity.
                let identity = f
                    .get(To::KeyVaultIdentity)
                    .or(f.get(To::ManagedIdentity))
                    .or_else(|| self.env.get("AZURE_CLIENT_ID"))
                    .map(str::trim)
                    .filter(|id| !id.is_empty());
                vault.identity = match identity {
                    Some(id) if !id.eq_ignore_ascii_case("system") => {
                        ManagedIdentityId::ClientId(id.to_owned())
                    }
                    _ => ManagedIdentityId::System,
                };
                // Sent unless the configuration says otherwise (docs/protocol.md §11).
                vault.send_x5c = send_x5c.unwrap_or(true);
                if let Some(every) = f.get(To::KeyVaultRotationCheck) {
                    vault.rotation_check =
                        Some(parse_duration(&f.key(To::KeyVaultRotationCheck), every)?);
                }
                vault.keys.vault_url = f.key(To::KeyVaultUrl);
                vault.keys.certificate_name = f.key(To::KeyVaultCertificateName);
                CredentialConfig::KeyVaultCertificate(vault)
            }
            Kind::Refused(instead) => {
                return Err(Error::config(
                    f.key(To::Kind),
                    format!("{name} is not supported by botauth: {instead}"),
                ));
            }
        })
    }

    /// Checks the keys a credential kind requires before building it.
    pub(super) fn requires(&self, choice: &Choice, f: &Fields<'e>, what: &str) -> Result<()> {
        for any_of in choice.requires {
            let set = any_of.iter().any(|to| f.has(*to));
            let fallback =
                any_of.contains(&To::TokenFile) && self.env.contains("AZURE_FEDERATED_TOKEN_FILE");
            if !set && !fallback {
                let first = any_of[0];
                let others: Vec<String> = any_of[1..].iter().map(|to| f.key(*to)).collect();
                let or = if others.is_empty() {
                    String::new()
                } else {
                    format!(" (or {})", others.join(", "))
                };
                return Err(Error::config(
                    f.key(first),
                    format!(
                        "is required{or} for {what} {}: {}",
                        choice.name,
                        first.what()
                    ),
                ));
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Keys shared by every dialect's sections.

    /// Applies the settings any section may carry: tenant-bearing authorities, clouds, inbound
    /// URLs, scopes, the Token Service URL and the HTTP timeout.
    pub(super) fn common(&mut self, draft: &mut Draft, f: &Fields<'e>) -> Result<()> {
        let config = &mut draft.config;
        if let Some(value) = f.get(To::Cloud) {
            config.cloud = value
                .parse::<Cloud>()
                .map_err(|e| rekey(e, &f.key(To::Cloud)))?;
        }
        if f.bool(To::IsGov)?.unwrap_or(false) {
            config.cloud = Cloud::UsGov;
        }
        if let Some(host) = f.get(To::Authority) {
            set_authority(draft, &f.key(To::Authority), host, true)?;
        }
        if let Some(endpoint) = f.get(To::AuthorityWithTenant) {
            let key = f.key(To::AuthorityWithTenant);
            let url = parse_endpoint_url(&key, endpoint)?;
            // `https://login.microsoftonline.com/{tenant}`: the host is the authority, the first
            // path segment the tenant (used when no tenant key is given).
            if draft.config.tenant_id.is_none() {
                if let Some(t) = url.path.split('/').find(|s| !s.is_empty()) {
                    draft.config.tenant_id = Some(t.to_owned());
                    draft.keys.tenant_id.clone_from(&key);
                }
            }
            set_authority(draft, &key, &url.origin, true)?;
        }
        let config = &mut draft.config;
        let inbound = &mut config.inbound;
        if let Some(url) = f.url(To::MetadataUrl)? {
            inbound.metadata_url = Some(url);
        }
        if let Some(url) = f.url(To::EmulatorMetadataUrl)? {
            inbound.emulator_metadata_url = Some(url);
        }
        if let Some(url) = f.url(To::EntraMetadataUrl)? {
            inbound.entra_metadata_url = Some(url);
        }
        if let Some(issuer) = f.get(To::Issuer) {
            inbound.issuer = Some(issuer.to_owned());
        }
        for issuer in f.list(To::ValidIssuers) {
            if !inbound.valid_issuers.contains(&issuer) {
                inbound.valid_issuers.push(issuer);
            }
        }
        if let Some(every) = f.get(To::KeyRefresh) {
            inbound.key_refresh = Some(parse_timespan(&f.key(To::KeyRefresh), every)?);
        }
        let scopes = f.list(To::Scopes);
        if !scopes.is_empty() {
            config.scopes = scopes;
        }
        if let Some(url) = f.url(To::TokenServiceUrl)? {
            config.token_service_url = Some(url);
        }
        if let Some(timeout) = f.get(To::HttpTimeout) {
            config.http_timeout = Some(parse_duration(&f.key(To::HttpTimeout), timeout)?);
        }
        for url in service_urls(f)? {
            if !config.allowed_service_urls.contains(&url) {
                config.allowed_service_urls.push(url);
            }
        }
        Ok(())
    }

    /// `BOTAUTH_*`: `BOTAUTH_CLOUD` replaces the dialect's cloud (scopes, metadata, audience) but
    /// keeps a custom authority the dialect gave; `BOTAUTH_AUTHORITY_HOST` replaces any authority.
    pub(super) fn overrides(&mut self, draft: &mut Draft) -> Result<()> {
        let f = self.scan(&BOTAUTH, BOTAUTH.prefix)?;
        let cloud_key = f.key(To::Cloud);
        let cloud = f
            .get(To::Cloud)
            .map(|name| name.parse::<Cloud>().map_err(|e| rekey(e, &cloud_key)))
            .transpose()?;
        if let Some(host) = f.get(To::Authority) {
            // As the dialects' own authority keys: a known cloud's host selects that cloud,
            // unless BOTAUTH_CLOUD decides the cloud.
            set_authority(draft, &f.key(To::Authority), host, cloud.is_none())?;
        }
        self.key_vault_overrides(draft, &f)?;
        let mut only_common = Fields {
            section: f.section,
            prefix: f.prefix.clone(),
            found: Vec::new(),
        };
        only_common.found = f
            .found
            .into_iter()
            .filter(|x| !matches!(x.row.to, To::Cloud | To::Authority))
            .collect();
        self.common(draft, &only_common)?;
        if let Some(cloud) = cloud {
            draft.config.cloud = cloud;
        }
        if let Some(host) = draft.authority.take() {
            if !host.eq_ignore_ascii_case(draft.config.cloud.authority_host()) {
                draft.config.cloud = draft.config.cloud.with_authority_host(host);
            }
        }
        Ok(())
    }
}

impl Reader<'_> {
    /// `BOTAUTH_KEY_VAULT_*`: a Key Vault certificate put first in the credential list of any
    /// dialect (`BOTAUTH_KEY_VAULT_URL` + `_CERTIFICATE_NAME`, optional `_CERTIFICATE_VERSION` and
    /// `_IDENTITY`), and `BOTAUTH_KEY_VAULT_ROTATION_CHECK` for every Key Vault certificate.
    pub(super) fn key_vault_overrides(&mut self, draft: &mut Draft, f: &Fields<'_>) -> Result<()> {
        if f.has(To::KeyVaultUrl)
            || f.has(To::KeyVaultCertificateName)
            || f.has(To::KeyVaultVersion)
            || f.has(To::KeyVaultIdentity)
        {
            let client_id = draft.config.client_id.clone().unwrap_or_default();
            let credential =
                self.credential(Kind::KeyVault, "BOTAUTH_KEY_VAULT_URL", f, None, &client_id)?;
            draft.config.credentials.insert(0, credential);
        }
        if let Some(every) = f.get(To::KeyVaultRotationCheck) {
            let every = parse_duration(&f.key(To::KeyVaultRotationCheck), every)?;
            let connections = draft.config.connections.iter_mut();
            let lists = std::iter::once(&mut draft.config.credentials)
                .chain(connections.map(|c| &mut c.credentials));
            for list in lists {
                for credential in list.iter_mut() {
                    if let CredentialConfig::KeyVaultCertificate(vault) = credential {
                        vault.rotation_check = Some(every);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `BOTAUTH_KEY_VAULT_URL` supplies a credential, so a dialect may have none of its own.
    pub(super) fn key_vault_override_set(&self) -> bool {
        self.env.contains("BOTAUTH_KEY_VAULT_URL")
    }
}

pub(super) fn empty_app_id(key: &str) -> Error {
    Error::config(
        key,
        "is empty: the Bot Framework SDKs treat an empty app id as \"authentication off\"; botauth \
         never turns authentication off. Set it to the bot's app id (to test locally without \
         Azure, run `botauth sandbox`)",
    )
}
/// A new dialect draft naming the dialect's keys for [`validate`].
pub(super) fn draft(
    dialect: Dialect,
    client_id: &str,
    id_key: &str,
    tenant_key: &str,
    credentials: &str,
) -> Draft {
    let mut config = BotAuthConfig::new(dialect);
    config.client_id = Some(client_id.to_owned());
    let mut draft = Draft::new(config);
    draft.keys = KeyNames {
        client_id: id_key.to_owned(),
        tenant_id: tenant_key.to_owned(),
        credentials: credentials.to_owned(),
        native: false,
    };
    draft
}

/// Folds in an authority host named under `key`: a known host selects its cloud (when
/// `select_cloud`), any other becomes a custom authority.
pub(super) fn set_authority(
    draft: &mut Draft,
    key: &str,
    value: &str,
    select_cloud: bool,
) -> Result<()> {
    let url = check_endpoint_url(key, value)?;
    match known_cloud(&url).filter(|_| select_cloud) {
        Some(cloud) => {
            draft.config.cloud = cloud;
            draft.authority = None;
        }
        None => draft.authority = Some(url),
    }
    Ok(())
}

/// The service-URL allow-list entries of a section, each checked.
pub(super) fn service_urls(f: &Fields<'_>) -> Result<Vec<String>> {
    let entries = f.list(To::AllowedServiceUrls);
    if !entries.is_empty() {
        crate::config::validate::check_service_url_entries(
            &f.key(To::AllowedServiceUrls),
            &entries,
        )?;
    }
    Ok(entries)
}
