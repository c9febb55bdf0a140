//! Checks shared by every reader, plus the URL rule of docs/protocol.md §2 (https, or http for loopback only).
//!
//! Each reader checks its own keys as it reads them; [`validate`] then checks the finished model once,
//! naming the keys of the dialect it came from, so the native file format and the environment
//! dialects cannot drift apart.

use super::model::{BotAuthConfig, CredentialConfig, ManagedIdentityId, validate_tenant_id};
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
        if let Cloud::Custom(endpoints) = &config.cloud {
            check_endpoint_url("cloud.authority_host", &endpoints.authority_host)?;
            check_endpoint_url(
                "cloud.bot_service_metadata_url",
                &endpoints.bot_service_metadata_url,
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

/// The parts of an endpoint URL that the https/loopback rule looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointUrl {
    /// `scheme://host[:port]` (without a trailing slash).
    pub(crate) origin: String,
    /// The path, possibly empty, without a trailing slash.
    pub(crate) path: String,
}

const URL_RULE: &str = "must be an https URL such as `https://login.microsoftonline.com` \
     (plain http is accepted only for loopback hosts: localhost, 127.0.0.0/8 and [::1])";

/// Parses `value` as an endpoint URL and applies docs/protocol.md §2's rule: `https`, or `http` for a
/// loopback host. User info (`user@host`), queries and fragments are rejected. The value itself is
/// never echoed in the error (a URL may carry credentials in its user info).
pub(crate) fn parse_endpoint_url(key: &str, value: &str) -> Result<EndpointUrl> {
    let bad = || Error::config(key, format!("is not a valid URL: it {URL_RULE}"));
    let url = url::Url::parse(value.trim()).map_err(|_| bad())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            key,
            "must not contain user information (`user@host`): give only scheme, host and port",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(bad());
    }
    if url.host().is_none() {
        return Err(bad());
    }
    let loopback = is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(Error::config(
                key,
                format!("uses plain http for a host that is not loopback: it {URL_RULE}"),
            ));
        }
        _ => return Err(bad()),
    }
    Ok(EndpointUrl {
        origin: url.origin().ascii_serialization(),
        path: url.path().trim_end_matches('/').to_owned(),
    })
}

/// Whether `url`'s host is loopback: `localhost`, 127.0.0.0/8 or `[::1]` — the hosts plain
/// `http` is accepted for (local development and tests).
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks an endpoint URL against docs/protocol.md §2's rule (`https`, or plain `http` for loopback hosts
/// only; no user info, query or fragment) and returns it without a trailing slash. `key` names
/// the setting in the error, which never repeats the value.
///
/// ```
/// use botauth_core::config::check_endpoint_url;
/// assert_eq!(check_endpoint_url("k", "https://login.microsoftonline.com/").unwrap(), "https://login.microsoftonline.com");
/// assert!(check_endpoint_url("k", "http://127.0.0.1:8080").is_ok());
/// assert!(check_endpoint_url("k", "http://login.microsoftonline.com").is_err());
/// ```
pub fn check_endpoint_url(key: &str, value: &str) -> Result<String> {
    let url = parse_endpoint_url(key, value)?;
    Ok(format!("{}{}", url.origin, url.path))
}

/// The Key Vault resources of the known clouds and their vault host suffixes (docs/protocol.md §11).
const VAULT_RESOURCES: [(&str, &str); 3] = [
    ("https://vault.azure.net", ".vault.azure.net"),
    (
        "https://vault.usgovcloudapi.net",
        ".vault.usgovcloudapi.net",
    ),
    ("https://vault.azure.cn", ".vault.azure.cn"),
];

/// A Key Vault URL that passed [`check_key_vault_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyVaultUrl {
    /// The vault's base URL without a trailing slash (`https://contoso.vault.azure.net`).
    pub url: String,
    /// The resource a token for the vault is requested for (`https://vault.azure.net`; the scope
    /// is this plus `/.default`).
    pub resource: String,
}

/// Checks a Key Vault URL before any token is requested for it: `https` with a host ending in the
/// vault suffix of `cloud` (`.vault.azure.net`, `.vault.usgovcloudapi.net`, `.vault.azure.cn`; a
/// custom cloud may use any of the three), or a loopback host (the sandbox, `http` allowed) whose
/// resource is the public one. No path beyond `/`, no query, no user info. A typo'd or hostile
/// host never gets a token: the error names `key` and the suffix expected.
///
/// ```
/// use botauth_core::Cloud;
/// use botauth_core::config::check_key_vault_url;
/// let v = check_key_vault_url("k", "https://contoso.vault.azure.net/", &Cloud::Public).unwrap();
/// assert_eq!((v.url.as_str(), v.resource.as_str()), ("https://contoso.vault.azure.net", "https://vault.azure.net"));
/// assert!(check_key_vault_url("k", "https://contoso.vault.azure.net.evil.example", &Cloud::Public).is_err());
/// assert!(check_key_vault_url("k", "https://contoso.vault.azure.net", &Cloud::UsGov).is_err());
/// assert!(check_key_vault_url("k", "http://127.0.0.1:9/keyvault", &Cloud::Public).is_ok());
/// ```
pub fn check_key_vault_url(key: &str, value: &str, cloud: &Cloud) -> Result<KeyVaultUrl> {
    let parsed = url::Url::parse(value.trim()).map_err(|_| {
        Error::config(
            key,
            "is not a URL: give the vault's URL, e.g. https://contoso-bot.vault.azure.net/",
        )
    })?;
    let endpoint = parse_endpoint_url(key, value.trim())?;
    let public = VAULT_RESOURCES[0].0;
    if is_loopback(&parsed) {
        return Ok(KeyVaultUrl {
            url: format!("{}{}", endpoint.origin, endpoint.path),
            resource: cloud.key_vault_resource().unwrap_or(public).to_owned(),
        });
    }
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let allowed: Vec<(&str, &str)> = match cloud.key_vault_resource() {
        Some(resource) => VAULT_RESOURCES
            .iter()
            .copied()
            .filter(|(r, _)| *r == resource)
            .collect(),
        None => VAULT_RESOURCES.to_vec(),
    };
    let found = allowed.iter().find(|(_, suffix)| {
        host.len() > suffix.len() && host.ends_with(suffix) && !host.starts_with('.')
    });
    let Some((resource, _)) = found else {
        let suffixes: Vec<&str> = allowed.iter().map(|(_, s)| *s).collect();
        return Err(Error::config(
            key,
            format!(
                "is not a Key Vault of this cloud: the host must end in {} (botauth requests a vault                  token only for a vault host; check the URL for a typo)",
                suffixes.join(" or ")
            ),
        ));
    };
    if !endpoint.path.is_empty() {
        return Err(Error::config(
            key,
            "has a path: give only the vault's URL, e.g. https://contoso-bot.vault.azure.net/ (the              certificate's name goes in its own key)",
        ));
    }
    Ok(KeyVaultUrl {
        url: endpoint.origin,
        resource: (*resource).to_owned(),
    })
}

/// The cloud an authority host belongs to: one of the three known clouds when it is exactly their
/// host, otherwise `None` (a custom authority, to fold in with [`Cloud::with_authority_host`]).
pub(crate) fn known_cloud(authority: &str) -> Option<Cloud> {
    let authority = authority.trim_end_matches('/');
    [Cloud::Public, Cloud::UsGov, Cloud::China]
        .into_iter()
        .find(|c| c.authority_host().eq_ignore_ascii_case(authority))
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

    #[test]
    fn https_and_loopback_http_pass() {
        for ok in [
            "https://login.microsoftonline.com",
            "https://login.microsoftonline.com/",
            "HTTPS://Login.MicrosoftOnline.com:443/",
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:3978/",
            "http://LOCALHOST",
            "http://[::1]:9000/",
            "https://[2001:db8::1]/",
            "http://127.0.0.1:9/entra/",
        ] {
            assert!(check_endpoint_url("K", ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_endpoint_url("K", "http://127.0.0.1:9/entra/").unwrap(),
            "http://127.0.0.1:9/entra"
        );
        assert_eq!(
            check_endpoint_url("K", "https://login.microsoftonline.us/").unwrap(),
            "https://login.microsoftonline.us"
        );
    }

    #[test]
    fn plain_http_and_tricks_fail() {
        for bad in [
            "http://login.microsoftonline.com",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "http://[::2]/",
            "http://127.0.0.1@evil.example",
            "https://user:pw@login.microsoftonline.com",
            "ftp://127.0.0.1",
            "login.microsoftonline.com",
            "https://",
            "https://host:port",
            "https://host:99999",
            "https://login.microsoftonline.com/?x=1",
            "https://login.microsoftonline.com/#f",
            "https://bad host",
            "https://[::1",
        ] {
            let e = check_endpoint_url("K", bad).unwrap_err();
            assert_eq!(key_of(&e), "K", "{bad}");
        }
    }

    #[test]
    fn url_errors_do_not_echo_user_info() {
        let e = check_endpoint_url("K", "https://user:hunter2@host").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn known_clouds() {
        assert_eq!(
            known_cloud("https://login.microsoftonline.us"),
            Some(Cloud::UsGov)
        );
        assert_eq!(
            known_cloud("https://LOGIN.chinacloudapi.cn/"),
            Some(Cloud::China)
        );
        assert_eq!(
            known_cloud("https://login.microsoftonline.com"),
            Some(Cloud::Public)
        );
        assert_eq!(known_cloud("http://127.0.0.1:1"), None);
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
