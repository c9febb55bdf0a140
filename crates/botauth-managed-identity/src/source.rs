//! Which managed identity endpoint this host has: detection from the environment (docs/protocol.md §4).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use botauth_core::config::EnvVars;
use botauth_core::{Error, Result, Secret};
use url::Url;

/// The managed identity endpoints botauth knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManagedIdentitySource {
    /// The Azure Instance Metadata Service of VMs, scale sets and AKS nodes.
    Imds,
    /// App Service and Azure Functions.
    AppService,
    /// Azure Arc-enabled servers.
    AzureArc,
    /// Azure Cloud Shell.
    CloudShell,
    /// Service Fabric.
    ServiceFabric,
    /// Azure Machine Learning compute.
    AzureMl,
}

impl ManagedIdentitySource {
    /// A short name for messages and descriptions (`imds`, `app_service`, …): the `Display`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ManagedIdentitySource::Imds => "imds",
            ManagedIdentitySource::AppService => "app_service",
            ManagedIdentitySource::AzureArc => "azure_arc",
            ManagedIdentitySource::CloudShell => "cloud_shell",
            ManagedIdentitySource::ServiceFabric => "service_fabric",
            ManagedIdentitySource::AzureMl => "azure_ml",
        }
    }

    /// The product name, for messages.
    pub(crate) fn product(self) -> &'static str {
        match self {
            ManagedIdentitySource::Imds => "the instance metadata service (IMDS)",
            ManagedIdentitySource::AppService => "the App Service / Functions identity endpoint",
            ManagedIdentitySource::AzureArc => "the Azure Arc identity endpoint",
            ManagedIdentitySource::CloudShell => "the Cloud Shell identity endpoint",
            ManagedIdentitySource::ServiceFabric => "the Service Fabric identity endpoint",
            ManagedIdentitySource::AzureMl => "the Azure ML identity endpoint",
        }
    }
}

impl fmt::Display for ManagedIdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The IMDS token endpoint.
pub(crate) const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// Path of the IMDS token endpoint below a host given by `AZURE_POD_IDENTITY_AUTHORITY_HOST`.
pub(crate) const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// The Arc agent's default endpoint, used when only the agent binary marks the host as Arc.
pub(crate) const ARC_DEFAULT_ENDPOINT: &str =
    "http://127.0.0.1:40342/metadata/identity/oauth2/token";
/// The Arc agent binary whose presence marks an Arc-enabled Linux server.
pub(crate) const ARC_HIMDS: &str = "/opt/azcmagent/bin/himds";

/// Environment variables read by detection.
pub(crate) mod env {
    pub(crate) const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
    pub(crate) const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
    pub(crate) const IDENTITY_SERVER_THUMBPRINT: &str = "IDENTITY_SERVER_THUMBPRINT";
    pub(crate) const IMDS_ENDPOINT: &str = "IMDS_ENDPOINT";
    pub(crate) const MSI_ENDPOINT: &str = "MSI_ENDPOINT";
    pub(crate) const MSI_SECRET: &str = "MSI_SECRET";
    pub(crate) const AZURE_POD_IDENTITY_AUTHORITY_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
}

/// A detected endpoint: where to send token requests and the secret (if any) that goes with them.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) source: ManagedIdentitySource,
    pub(crate) url: Url,
    /// `IDENTITY_HEADER` / `MSI_SECRET`.
    pub(crate) secret: Option<Secret>,
    /// Service Fabric: the SHA-1 of the server certificate.
    pub(crate) thumbprint: Option<[u8; 20]>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("source", &self.source)
            .field("url", &self.url.as_str())
            .field("secret", &self.secret)
            .field("thumbprint", &self.thumbprint.map(hex))
            .finish_non_exhaustive()
    }
}

pub(crate) fn hex(bytes: [u8; 20]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Detects the source in the order of docs/protocol.md §4 (first match wins). `exists` answers whether a
/// file exists (injected so that the Arc branch is testable off Arc).
pub(crate) fn detect(env: &EnvVars, exists: &dyn Fn(&Path) -> bool) -> Result<Endpoint> {
    let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty());
    let identity_endpoint = get(env::IDENTITY_ENDPOINT);
    let identity_header = get(env::IDENTITY_HEADER);
    let msi_endpoint = get(env::MSI_ENDPOINT);
    let secret = |v: &str| Some(Secret::new(v.trim()));

    if let (Some(endpoint), Some(header), Some(thumbprint)) = (
        identity_endpoint,
        identity_header,
        get(env::IDENTITY_SERVER_THUMBPRINT),
    ) {
        let url = parse_url(
            env::IDENTITY_ENDPOINT,
            endpoint,
            ManagedIdentitySource::ServiceFabric,
        )?;
        return Ok(Endpoint {
            source: ManagedIdentitySource::ServiceFabric,
            url,
            secret: secret(header),
            thumbprint: Some(parse_thumbprint(thumbprint)?),
        });
    }
    if let (Some(endpoint), Some(header)) = (identity_endpoint, identity_header) {
        return Ok(Endpoint {
            source: ManagedIdentitySource::AppService,
            url: parse_url(
                env::IDENTITY_ENDPOINT,
                endpoint,
                ManagedIdentitySource::AppService,
            )?,
            secret: secret(header),
            thumbprint: None,
        });
    }
    if let Some(endpoint) = msi_endpoint {
        return Ok(match get(env::MSI_SECRET) {
            Some(msi_secret) => Endpoint {
                source: ManagedIdentitySource::AzureMl,
                url: parse_url(env::MSI_ENDPOINT, endpoint, ManagedIdentitySource::AzureMl)?,
                secret: secret(msi_secret),
                thumbprint: None,
            },
            None => Endpoint {
                source: ManagedIdentitySource::CloudShell,
                url: parse_url(
                    env::MSI_ENDPOINT,
                    endpoint,
                    ManagedIdentitySource::CloudShell,
                )?,
                secret: None,
                thumbprint: None,
            },
        });
    }
    let arc_by_env = identity_endpoint.is_some() && get(env::IMDS_ENDPOINT).is_some();
    if arc_by_env || exists(Path::new(ARC_HIMDS)) {
        let url = match identity_endpoint.filter(|_| arc_by_env) {
            Some(endpoint) => parse_url(
                env::IDENTITY_ENDPOINT,
                endpoint,
                ManagedIdentitySource::AzureArc,
            )?,
            None => parse_url(
                env::IDENTITY_ENDPOINT,
                ARC_DEFAULT_ENDPOINT,
                ManagedIdentitySource::AzureArc,
            )?,
        };
        return Ok(Endpoint {
            source: ManagedIdentitySource::AzureArc,
            url,
            secret: None,
            thumbprint: None,
        });
    }
    let url = match get(env::AZURE_POD_IDENTITY_AUTHORITY_HOST) {
        Some(host) => {
            let base = parse_url(
                env::AZURE_POD_IDENTITY_AUTHORITY_HOST,
                host,
                ManagedIdentitySource::Imds,
            )?;
            let joined = format!("{}{IMDS_PATH}", base.as_str().trim_end_matches('/'));
            parse_url(
                env::AZURE_POD_IDENTITY_AUTHORITY_HOST,
                &joined,
                ManagedIdentitySource::Imds,
            )?
        }
        None => parse_url("imds", IMDS_ENDPOINT, ManagedIdentitySource::Imds)?,
    };
    Ok(Endpoint {
        source: ManagedIdentitySource::Imds,
        url,
        secret: None,
        thumbprint: None,
    })
}

/// Checks a managed identity endpoint URL.
///
/// Managed identity endpoints are served by the host itself, in plain HTTP by design: IMDS on the
/// link-local `169.254.169.254`, the App Service, Arc, Cloud Shell and Azure ML agents on loopback.
/// So, unlike Entra's authority (https, or http on loopback only), plain `http` is accepted for
/// loopback **and link-local** hosts, and nowhere else: a secret header (`X-IDENTITY-HEADER`,
/// `MSI_SECRET`) must never cross a real network in clear text. Service Fabric must be `https`,
/// because its certificate is pinned. User info, queries and fragments are refused.
pub(crate) fn parse_url(key: &str, value: &str, source: ManagedIdentitySource) -> Result<Url> {
    let bad = |why: &str| {
        Error::config(
            key,
            format!("is not a usable managed identity endpoint for {source}: {why}"),
        )
    };
    let url = Url::parse(value.trim()).map_err(|_| bad("it is not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not contain user information"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not contain a query or a fragment"));
    }
    let host_is_local = match url.host() {
        Some(url::Host::Ipv4(ip)) => is_local(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_local(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err(bad("it has no host")),
    };
    match (url.scheme(), source) {
        ("https", _) => Ok(url),
        ("http", ManagedIdentitySource::ServiceFabric) => Err(bad(
            "Service Fabric's endpoint must be https (its certificate is pinned by IDENTITY_SERVER_THUMBPRINT)",
        )),
        ("http", _) if host_is_local => Ok(url),
        ("http", _) => Err(bad(
            "plain http is allowed only for loopback and link-local hosts; use https",
        )),
        _ => Err(bad("the scheme must be http or https")),
    }
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Parses `IDENTITY_SERVER_THUMBPRINT`: 40 hex characters, any case, spaces and colons ignored.
pub(crate) fn parse_thumbprint(value: &str) -> Result<[u8; 20]> {
    let digits: Vec<u8> = value
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':'))
        .collect();
    let bad = || {
        Error::config(
            env::IDENTITY_SERVER_THUMBPRINT,
            "is not a SHA-1 certificate thumbprint: it must be 40 hexadecimal characters",
        )
    };
    if digits.len() != 40 {
        return Err(bad());
    }
    let mut out = [0u8; 20];
    for (i, pair) in digits.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(text, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The default directory Arc writes its challenge key files to.
pub(crate) fn default_arc_key_directory() -> PathBuf {
    if cfg!(windows) {
        let program_data =
            std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(program_data).join("AzureConnectedMachineAgent\\Tokens")
    } else {
        PathBuf::from("/var/opt/azcmagent/tokens")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::ErrorKind;

    fn env(vars: &[(&str, &str)]) -> EnvVars {
        vars.iter().map(|(k, v)| (*k, *v)).collect()
    }

    fn no_files(_: &Path) -> bool {
        false
    }

    fn detect_in(vars: &[(&str, &str)]) -> Endpoint {
        detect(&env(vars), &no_files).unwrap()
    }

    const TP: &str = "84E05C1D98BCE3A5421D225B140B36E86A3D5534";

    #[test]
    fn service_fabric_needs_all_three() {
        let e = detect_in(&[
            (
                "IDENTITY_ENDPOINT",
                "https://10.0.0.4:2377/metadata/identity/oauth2/token",
            ),
            ("IDENTITY_HEADER", "h"),
            ("IDENTITY_SERVER_THUMBPRINT", TP),
            ("MSI_ENDPOINT", "http://127.0.0.1:1/x"),
        ]);
        assert_eq!(e.source, ManagedIdentitySource::ServiceFabric);
        assert_eq!(e.secret.as_ref().map(Secret::expose_secret), Some("h"));
        assert_eq!(hex(e.thumbprint.unwrap()), TP);
    }

    #[test]
    fn app_service_without_thumbprint() {
        let e = detect_in(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token"),
            ("IDENTITY_HEADER", "h"),
            ("IMDS_ENDPOINT", "http://169.254.169.254"),
        ]);
        assert_eq!(e.source, ManagedIdentitySource::AppService);
        assert_eq!(e.url.as_str(), "http://127.0.0.1:41741/msi/token");
    }

    #[test]
    fn azure_ml_and_cloud_shell() {
        let e = detect_in(&[
            ("MSI_ENDPOINT", "http://127.0.0.1:46808/MSI/auth"),
            ("MSI_SECRET", "s"),
        ]);
        assert_eq!(e.source, ManagedIdentitySource::AzureMl);
        let e = detect_in(&[("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]);
        assert_eq!(e.source, ManagedIdentitySource::CloudShell);
        assert!(e.secret.is_none());
    }

    #[test]
    fn arc_by_environment_or_agent_file() {
        let e = detect_in(&[
            (
                "IDENTITY_ENDPOINT",
                "http://localhost:40342/metadata/identity/oauth2/token",
            ),
            ("IMDS_ENDPOINT", "http://localhost:40342"),
        ]);
        assert_eq!(e.source, ManagedIdentitySource::AzureArc);
        let e = detect(&env(&[]), &|p: &Path| p == Path::new(ARC_HIMDS)).unwrap();
        assert_eq!(e.source, ManagedIdentitySource::AzureArc);
        assert_eq!(e.url.as_str(), ARC_DEFAULT_ENDPOINT);
        // IDENTITY_ENDPOINT alone is neither App Service nor Arc.
        let e = detect_in(&[("IDENTITY_ENDPOINT", "http://localhost:40342/x")]);
        assert_eq!(e.source, ManagedIdentitySource::Imds);
    }

    #[test]
    fn imds_is_the_default_and_can_be_pointed_elsewhere() {
        let e = detect_in(&[]);
        assert_eq!(e.source, ManagedIdentitySource::Imds);
        assert_eq!(e.url.as_str(), IMDS_ENDPOINT);
        let e = detect_in(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9/")]);
        assert_eq!(
            e.url.as_str(),
            "http://127.0.0.1:9/metadata/identity/oauth2/token"
        );
    }

    #[test]
    fn blank_values_count_as_absent() {
        let e = detect_in(&[
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/x"),
            ("IDENTITY_HEADER", " "),
        ]);
        assert_eq!(e.source, ManagedIdentitySource::Imds);
    }

    #[test]
    fn endpoint_url_rules() {
        let key_of = |vars: &[(&str, &str)]| match detect(&env(vars), &no_files).unwrap_err() {
            Error::Config { key, .. } => key,
            other => panic!("{other:?}"),
        };
        // Plain http off the host would carry the secret header in clear text.
        assert_eq!(
            key_of(&[
                ("IDENTITY_ENDPOINT", "http://10.1.2.3/msi/token"),
                ("IDENTITY_HEADER", "h")
            ]),
            "IDENTITY_ENDPOINT"
        );
        // Service Fabric must be https.
        assert_eq!(
            key_of(&[
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:2377/x"),
                ("IDENTITY_HEADER", "h"),
                ("IDENTITY_SERVER_THUMBPRINT", TP),
            ]),
            "IDENTITY_ENDPOINT"
        );
        assert_eq!(
            key_of(&[("MSI_ENDPOINT", "http://user:pw@127.0.0.1/x")]),
            "MSI_ENDPOINT"
        );
        assert_eq!(
            key_of(&[("MSI_ENDPOINT", "ftp://127.0.0.1/x")]),
            "MSI_ENDPOINT"
        );
        assert_eq!(
            key_of(&[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "not a url")]),
            "AZURE_POD_IDENTITY_AUTHORITY_HOST"
        );
        // https anywhere, http on link-local and IPv6 loopback.
        for ok in [
            "https://10.1.2.3/msi/token",
            "http://169.254.1.1/x",
            "http://[::1]:5/x",
            "http://[fe80::1]/x",
        ] {
            assert!(
                parse_url("k", ok, ManagedIdentitySource::AppService).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn thumbprints() {
        let with_colons = "84:e0:5c:1d:98:bc:e3:a5:42:1d:22:5b:14:0b:36:e8:6a:3d:55:34";
        assert_eq!(hex(parse_thumbprint(with_colons).unwrap()), TP);
        for bad in ["84E0", "ZZE05C1D98BCE3A5421D225B140B36E86A3D5534", ""] {
            let e = parse_thumbprint(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(
                matches!(e, Error::Config { ref key, .. } if key == "IDENTITY_SERVER_THUMBPRINT")
            );
        }
    }
}
