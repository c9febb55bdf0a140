//! Where botauth may send a request: the endpoint rule of docs/protocol.md §2 and the hosts of the
//! known clouds, in one place for every crate.
//!
//! An endpoint URL (an authority host, a metadata or key-set URL, the Token Service, a Key Vault)
//! decides where a client secret, an assertion or a bearer token goes. The rule is the same for
//! every one of them: `https`, or plain `http` only for a loopback host (`localhost`,
//! 127.0.0.0/8, `[::1]`: local development and the sandbox), with no user info, query or fragment.
//! An error names the setting, never the value, since a URL may carry credentials in its user
//! info. The configuration readers, the service-URL guard ([`crate::service_url`]), the token
//! client, the inbound validator and the Key Vault credential all apply it through this module,
//! so a rule fixed here is fixed everywhere.

use crate::{Cloud, Error, Result};

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
/// use botauth_core::internal::endpoint::check_endpoint_url;
/// assert_eq!(check_endpoint_url("k", "https://login.microsoftonline.com/").unwrap(), "https://login.microsoftonline.com");
/// assert!(check_endpoint_url("k", "http://127.0.0.1:8080").is_ok());
/// assert!(check_endpoint_url("k", "http://login.microsoftonline.com").is_err());
/// ```
pub fn check_endpoint_url(key: &str, value: &str) -> Result<String> {
    let url = parse_endpoint_url(key, value)?;
    Ok(format!("{}{}", url.origin, url.path))
}

/// Checks the `jwks_uri` an OpenID metadata document names before the key set is fetched: the
/// endpoint rule of [`check_endpoint_url`], so the metadata cannot send us to plain http elsewhere,
/// and no downgrade: metadata fetched over https may only name an https `jwks_uri` (plain http on
/// loopback is for a local authority whose metadata is itself local). Returns the URL without a
/// trailing slash; errors are configuration errors naming `jwks_uri`.
///
/// ```
/// use botauth_core::internal::endpoint::check_jwks_uri;
/// let public = "https://login.botframework.com/v1/.well-known/openidconfiguration";
/// assert!(check_jwks_uri(public, "https://login.botframework.com/v1/.well-known/keys").is_ok());
/// assert!(check_jwks_uri(public, "http://127.0.0.1:8080/keys").is_err());
/// ```
pub fn check_jwks_uri(metadata_url: &str, jwks_uri: &str) -> Result<String> {
    let checked = check_endpoint_url("jwks_uri", jwks_uri)?;
    let https = |u: &str| {
        u.get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    };
    if https(metadata_url) && !https(&checked) {
        return Err(Error::config(
            "jwks_uri",
            "metadata fetched over https names a plain-http key set; refusing to downgrade",
        ));
    }
    Ok(checked)
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
/// use botauth_core::internal::endpoint::check_key_vault_url;
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

    #[test]
    fn https_metadata_cannot_downgrade_the_key_set_to_http() {
        let public = "https://login.botframework.com/v1/.well-known/openidconfiguration";
        assert_eq!(
            check_jwks_uri(public, "https://login.botframework.com/v1/.well-known/keys").unwrap(),
            "https://login.botframework.com/v1/.well-known/keys"
        );
        let e = check_jwks_uri(public, "http://127.0.0.1:8080/keys").unwrap_err();
        assert_eq!(key_of(&e), "jwks_uri");
        assert!(check_jwks_uri(public, "http://evil.example/keys").is_err());
        // A local authority (the sandbox) may use loopback http throughout.
        let local = "http://127.0.0.1:9000/botservice/v1/.well-known/openidconfiguration";
        assert!(check_jwks_uri(local, "http://127.0.0.1:9000/botservice/v1/keys").is_ok());
        assert!(check_jwks_uri(local, "http://evil.example/keys").is_err());
    }
}
