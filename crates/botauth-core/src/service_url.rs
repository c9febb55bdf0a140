//! The outbound service-URL guard (docs/protocol.md §6, "Outbound guard"): the bot's Bot Connector token is
//! sent only to a `serviceUrl` whose **parsed host** is allowed.
//!
//! A `serviceUrl` arrives inside an activity. Even when the activity was verified, the check is the
//! last line of defence against sending a bearer token to a host the attacker picked, so it is
//! deliberately narrower than a URL parser: the authority must be plain ASCII host characters.
//! Every trick that makes two URL parsers (or a parser and a human) disagree on the host — user
//! info (`https://botframework.com@evil.example/`), a query or fragment that looks like a host
//! suffix (`https://evil.example?.botframework.com/`), backslashes, percent-encoding, IDN
//! look-alikes, a trailing dot — is refused before any parsing decides what the host "really" is.
//!
//! The allow-list itself is the other target. An operator writes `*.azure.com` meaning "our Azure
//! hosts"; an attacker reads it as "any VM": `anything.<region>.cloudapp.azure.com` is a DNS label
//! anyone with a subscription can claim, and the bot then hands its token to whichever of them a
//! verified caller names (Entra and skill tokens carry no `serviceurl` claim, so for those callers
//! the activity alone picks the host). A wildcard entry is therefore refused when it covers a
//! name anyone can register:
//!
//! - a public suffix (`*.com`), a generic second level under a country code (`*.co.uk`,
//!   `*.com.au`, `*.com.cn`);
//! - a suffix that a cloud, tunnel or hosting service hands out to its customers (the
//!   `SHARED_SUFFIXES` list below: `azurewebsites.net`, `cloudapp.azure.com`, `amazonaws.com.cn`,
//!   `trycloudflare.com`, registry suffixes such as `uk.com`, …) — the suffix itself, any name
//!   under it (`*.mybot.azurewebsites.net`), **and any name above it** (`*.azure.com` covers
//!   `cloudapp.azure.com`, `*.windows.net` covers `blob.core.windows.net`).
//!
//! Exact hosts under those suffixes stay allowed (`smba.trafficmanager.net`, the Teams Connector,
//! or a bot's own `mybot.azurewebsites.net`): one named host is a decision about one owner.

use std::fmt;

use crate::endpoint::is_loopback;

/// The hosts every bot may send its token to (docs/protocol.md §6): the Bot Connector of the three clouds
/// and the Teams service.
pub const DEFAULT_ALLOWED_HOSTS: [&str; 4] = [
    "*.botframework.com",
    "smba.trafficmanager.net",
    "*.botframework.us",
    "*.botframework.azure.cn",
];

/// Why a service URL or an allow-list entry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceUrlErrorKind {
    /// Not an absolute `scheme://host/…` URL made of plain ASCII host characters (this includes
    /// user info, percent-encoding, backslashes, non-ASCII host names, whitespace).
    Malformed,
    /// Plain `http` for a host that is not loopback.
    NotHttps,
    /// A query string or fragment: a service URL is a base URL, and `?`/`#` tricks hide the host.
    QueryOrFragment,
    /// The host (or port, or path) is not in the allow-list.
    NotAllowed,
    /// An allow-list wildcard that covers names anyone can register: a public suffix (`*.com`,
    /// `*.co.uk`) or a shared hosting suffix, or a name above one (`*.azure.com` covers
    /// `cloudapp.azure.com`). List the exact hosts instead.
    BroadWildcard,
}

/// A refused service URL or allow-list entry. The message names the host when there is a
/// well-formed one (it helps to fix the allow-list), and never repeats a malformed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrlError {
    kind: ServiceUrlErrorKind,
    host: Option<String>,
    detail: &'static str,
    /// For [`ServiceUrlErrorKind::BroadWildcard`]: the shared suffix the wildcard reaches (one of
    /// our constants, never the configured text).
    shared_suffix: Option<&'static str>,
}

impl ServiceUrlError {
    fn new(kind: ServiceUrlErrorKind, detail: &'static str) -> Self {
        Self {
            kind,
            host: None,
            detail,
            shared_suffix: None,
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> ServiceUrlErrorKind {
        self.kind
    }

    /// The parsed host, when the URL was well-formed enough to have one.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// For a [`BroadWildcard`](ServiceUrlErrorKind::BroadWildcard): the shared hosting suffix
    /// that made the wildcard too broad (`cloudapp.azure.com` for `*.azure.com`,
    /// `azurewebsites.net` for `*.azurewebsites.net`), when there was one.
    pub fn shared_suffix(&self) -> Option<&'static str> {
        self.shared_suffix
    }
}

impl fmt::Display for ServiceUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.host) {
            (ServiceUrlErrorKind::NotAllowed, Some(host)) => write!(
                f,
                "the service URL host `{host}` is not allowed ({}): the bot's token is only sent to \
                 the Bot Service hosts and the hosts configured in ALLOWED_SERVICE_URLS / \
                 BOTAUTH_ALLOWED_SERVICE_URLS",
                self.detail
            ),
            (ServiceUrlErrorKind::NotHttps, Some(host)) => write!(
                f,
                "the service URL for `{host}` uses plain http: only https is allowed, except for \
                 loopback hosts"
            ),
            (ServiceUrlErrorKind::BroadWildcard, _) => {
                write!(f, "the allow-list wildcard is refused: {}", self.detail)?;
                if let Some(suffix) = self.shared_suffix {
                    write!(
                        f,
                        " (under `{suffix}` anyone can get a host name, and with it the bot's \
                         token)"
                    )?;
                }
                f.write_str("; list the exact hosts instead")
            }
            _ => write!(f, "the service URL is refused: {}", self.detail),
        }
    }
}

impl std::error::Error for ServiceUrlError {}

/// A service URL that passed the guard: canonical, `https` (or loopback `http`), and ending in `/`
/// so that `v3/…` can be appended to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceUrl {
    url: String,
    host: String,
}

impl ServiceUrl {
    /// The canonical URL, ending in `/`.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The parsed host, lower case.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.suffix`: any host with at least one label before `.suffix`; not `suffix` itself.
    Subdomains(String),
}

/// One allow-list entry: a host pattern, optionally with scheme, port and path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// `None`: `https` (and also `http` when the host is loopback).
    scheme: Option<String>,
    host: HostPattern,
    /// `None`: the scheme's default port only.
    port: Option<u16>,
    /// Always starts and ends with `/`; `/` matches every path.
    path: String,
}

/// The hosts a bot may send its token to: the Bot Service defaults ([`DEFAULT_ALLOWED_HOSTS`]) plus
/// configured entries.
///
/// Entries are a host (`bots.contoso.com`), a wildcard host (`*.contoso.com`, which matches
/// subdomains only), optionally with a port (`bots.contoso.com:8443`), or a URL
/// (`https://bots.contoso.com/teams/`, whose path becomes a prefix the service URL's path must
/// start with). Plain `http` is accepted only for loopback hosts (local development).
///
/// ```
/// use botauth_core::service_url::{ServiceUrlAllowList, ServiceUrlErrorKind};
///
/// let allow = ServiceUrlAllowList::with_defaults();
/// assert_eq!(
///     allow.check("https://smba.trafficmanager.net/teams").unwrap().as_str(),
///     "https://smba.trafficmanager.net/teams/"
/// );
/// for trick in [
///     "https://evil.example?.botframework.com/",
///     "https://botframework.com@evil.example/",
///     "https://evil.example#.botframework.com",
/// ] {
///     assert!(allow.check(trick).is_err());
/// }
/// let err = allow.check("https://evil.example/").unwrap_err();
/// assert_eq!(err.kind(), ServiceUrlErrorKind::NotAllowed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrlAllowList {
    patterns: Vec<Pattern>,
}

impl Default for ServiceUrlAllowList {
    fn default() -> Self {
        Self::with_defaults()
    }
}

impl ServiceUrlAllowList {
    /// The Bot Service defaults of docs/protocol.md §6.
    pub fn with_defaults() -> Self {
        let patterns = DEFAULT_ALLOWED_HOSTS
            .iter()
            .filter_map(|entry| parse_pattern(entry).ok())
            .collect();
        Self { patterns }
    }

    /// An empty list: nothing is allowed until [`allow`](Self::allow) adds entries. For bots that
    /// only ever talk to hosts they name themselves (e.g. a skill replying to one parent).
    pub fn empty() -> Self {
        Self {
            patterns: Vec::new(),
        }
    }

    /// The defaults plus `entries`.
    ///
    /// # Errors
    ///
    /// The first entry that is not a valid host, wildcard host or URL.
    pub fn with_defaults_and<I, S>(entries: I) -> Result<Self, ServiceUrlError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Self::with_defaults();
        for entry in entries {
            list.allow(entry.as_ref())?;
        }
        Ok(list)
    }

    /// Adds one entry.
    ///
    /// # Errors
    ///
    /// The entry is not a valid host, wildcard host or URL (see the type's documentation).
    pub fn allow(&mut self, entry: &str) -> Result<&mut Self, ServiceUrlError> {
        let pattern = parse_pattern(entry)?;
        if !self.patterns.contains(&pattern) {
            self.patterns.push(pattern);
        }
        Ok(self)
    }

    /// Adds configuration entries (`key` names the setting they came from).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) naming `key` and the position of the first unusable
    /// entry (not its text, which may be a mistyped secret).
    pub fn allow_entries(&mut self, key: &str, entries: &[String]) -> crate::Result<()> {
        for (i, entry) in entries.iter().enumerate() {
            self.allow(entry).map_err(|e| {
                let hint = match (e.kind(), e.shared_suffix()) {
                    (ServiceUrlErrorKind::NotHttps, _) => {
                        "plain http is accepted only for loopback hosts".to_owned()
                    }
                    // The covered suffix is one of our constants, never the configured text.
                    (ServiceUrlErrorKind::BroadWildcard, Some(suffix)) => format!(
                        "the wildcard reaches into `{suffix}`, where anyone can get a host name \
                         and with it the bot's token: list the exact hosts instead"
                    ),
                    (ServiceUrlErrorKind::BroadWildcard, None) => {
                        "the wildcard covers a public suffix (like `*.com` or `*.co.uk`), where \
                         anyone can register a name: list the exact hosts instead"
                            .to_owned()
                    }
                    _ => "give a host (`bots.contoso.com`), a wildcard host (`*.contoso.com`, not \
                          under a shared hosting suffix), optionally with `:port`, or an https URL"
                        .to_owned(),
                };
                crate::Error::config(key, format!("entry {} is not usable: {hint}", i + 1))
            })?;
        }
        Ok(())
    }

    /// Checks a service URL and returns its canonical form (ending in `/`).
    ///
    /// # Errors
    ///
    /// [`ServiceUrlErrorKind::Malformed`], [`NotHttps`](ServiceUrlErrorKind::NotHttps),
    /// [`QueryOrFragment`](ServiceUrlErrorKind::QueryOrFragment) or
    /// [`NotAllowed`](ServiceUrlErrorKind::NotAllowed).
    pub fn check(&self, service_url: &str) -> Result<ServiceUrl, ServiceUrlError> {
        let Checked {
            url,
            host,
            loopback,
            ..
        } = parse_checked(service_url)?;
        let port = url.port_or_known_default();
        let explicit_port = url.port();
        let path = url.path();
        let allowed = self.patterns.iter().any(|p| {
            let scheme_ok = match &p.scheme {
                Some(s) => s == url.scheme(),
                None => url.scheme() == "https" || loopback,
            };
            let host_ok = match &p.host {
                HostPattern::Exact(h) => *h == host,
                HostPattern::Subdomains(suffix) => host
                    .strip_suffix(suffix.as_str())
                    .and_then(|rest| rest.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty()),
            };
            let port_ok = match p.port {
                Some(want) => port == Some(want),
                None => explicit_port.is_none(),
            };
            scheme_ok && host_ok && port_ok && path_has_prefix(path, &p.path)
        });
        if !allowed {
            return Err(ServiceUrlError {
                kind: ServiceUrlErrorKind::NotAllowed,
                host: Some(host),
                detail: "host, port or path not in the allow-list",
                shared_suffix: None,
            });
        }
        let mut canonical = url.to_string();
        if !canonical.ends_with('/') {
            canonical.push('/');
        }
        Ok(ServiceUrl {
            url: canonical,
            host,
        })
    }
}

fn malformed() -> ServiceUrlError {
    ServiceUrlError::new(
        ServiceUrlErrorKind::Malformed,
        "not an absolute http(s) URL whose host is plain ASCII letters, digits, dots and hyphens \
         (user info, percent-encoding, backslashes and non-ASCII host names are refused)",
    )
}

/// The raw pieces of `scheme://authority…`, found without a URL parser so that the parser's
/// leniency (backslashes as slashes, percent-decoding, IDNA mapping) never decides the host.
struct RawParts<'a> {
    scheme: &'a str,
    authority: &'a str,
    /// The port exactly as written (the parser drops a default one).
    port: Option<u16>,
    query_or_fragment: bool,
}

fn split(value: &str) -> Result<RawParts<'_>, ServiceUrlError> {
    if value.is_empty()
        || value.len() > 2048
        || !value.bytes().all(|b| b.is_ascii_graphic())
        || value.contains('\\')
    {
        return Err(malformed());
    }
    let (scheme, after) = value.split_once("://").ok_or_else(malformed)?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let host_chars = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    // `host`, `host:port`, `[v6]`, `[v6]:port`, and nothing else: no `@`, no `%`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (inside, after) = v6.split_once(']').ok_or_else(malformed)?;
            if !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return Err(malformed());
            }
            if !after.is_empty() && !after.starts_with(':') {
                return Err(malformed());
            }
            (inside, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let host_ok = authority.starts_with('[') || host_chars(host);
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| malformed())?)
        }
        Some(_) => return Err(malformed()),
    };
    if !host_ok || host.ends_with('.') || host.starts_with('.') || host.contains("..") {
        return Err(malformed());
    }
    let (path, query_or_fragment) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], true),
        None => (rest, false),
    };
    // Encoded slashes, backslashes and dots, and `;` path parameters, are read differently by
    // different servers: with a path-prefix entry they could reach a path outside the prefix.
    // Real service URLs never contain them.
    let lower = path.to_ascii_lowercase();
    if path.contains(';') || ["%2f", "%5c", "%2e"].iter().any(|e| lower.contains(e)) {
        return Err(ServiceUrlError::new(
            ServiceUrlErrorKind::Malformed,
            "the path contains `;`, or an encoded slash, backslash or dot",
        ));
    }
    Ok(RawParts {
        scheme,
        authority,
        port,
        query_or_fragment,
    })
}

/// A URL that passed the raw checks, the parser, and the https-or-loopback rule.
struct Checked {
    url: url::Url,
    /// Lower case; IPv6 in brackets.
    host: String,
    loopback: bool,
    /// As written.
    port: Option<u16>,
}

/// The one parse both service URLs and allow-list entries go through, so an entry means exactly
/// what a service URL with that host would.
fn parse_checked(value: &str) -> Result<Checked, ServiceUrlError> {
    let parts = split(value)?;
    if parts.query_or_fragment {
        return Err(ServiceUrlError::new(
            ServiceUrlErrorKind::QueryOrFragment,
            "a service URL may not carry a query string or fragment",
        ));
    }
    let url = url::Url::parse(value).map_err(|_| malformed())?;
    let host = canonical_host(&url, &parts)?;
    let loopback = is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(ServiceUrlError {
                kind: ServiceUrlErrorKind::NotHttps,
                host: Some(host),
                detail: "plain http",
                shared_suffix: None,
            });
        }
        _ => return Err(malformed()),
    }
    Ok(Checked {
        url,
        host,
        loopback,
        port: parts.port,
    })
}

/// The parsed host, lower case, after checking that the parser saw the same host as the raw text.
fn canonical_host(url: &url::Url, parts: &RawParts<'_>) -> Result<String, ServiceUrlError> {
    if !url.username().is_empty() || url.password().is_some() || url.cannot_be_a_base() {
        return Err(malformed());
    }
    if !url.scheme().eq_ignore_ascii_case(parts.scheme) {
        return Err(malformed());
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => return Err(malformed()),
    };
    let raw_host = match parts.authority.strip_prefix('[') {
        Some(_) => parts.authority,
        None => parts
            .authority
            .split_once(':')
            .map_or(parts.authority, |(h, _)| h),
    };
    // IPv4 shorthands (`127.1`, `0x7f.1`) are canonicalised by the parser: refuse them, and any
    // domain that does not come out exactly as written (modulo case). IPv6 spellings vary
    // harmlessly and are compared canonical.
    match url.host() {
        Some(url::Host::Domain(_)) if !host.eq_ignore_ascii_case(raw_host) => {
            return Err(malformed());
        }
        Some(url::Host::Ipv4(_)) if host != raw_host => return Err(malformed()),
        _ => {}
    }
    Ok(host.to_ascii_lowercase())
}

fn path_has_prefix(path: &str, prefix: &str) -> bool {
    // The prefix ends with `/`: `/teams/` matches `/teams` and `/teams/x`, not `/teamsx`. Paths
    // are case-sensitive, as most servers route them.
    prefix == "/" || path == prefix.trim_end_matches('/') || path.starts_with(prefix)
}

/// Suffixes under which anyone can get a host name: what clouds, tunnels, hosting services and
/// second-level registries hand out to their customers (the "private domains" of the Public Suffix
/// List, and a few it does not list yet). A wildcard entry equal to one, under one, or above one
/// would send the bot's token to strangers ([`check_wildcard`]). `*.trafficmanager.net` is the
/// likely slip, next to the default `smba.trafficmanager.net`; `*.azure.com` the subtle one.
///
/// Entries that lie under another entry (`blob.core.windows.net` under `windows.net`) are kept so
/// the list reads as the services it stands for, and so that an error names the specific one.
const SHARED_SUFFIXES: &[&str] = &[
    // Azure, public cloud.
    "cloudapp.azure.com",
    "cloudapp.net",
    "azurewebsites.net",
    "azure-mobile.net",
    "azurecontainer.io",
    "azurecontainerapps.io",
    "azurecr.io",
    "azurestaticapps.net",
    "azurefd.net",
    "azureedge.net",
    "azure-api.net",
    "trafficmanager.net",
    "blob.core.windows.net",
    "web.core.windows.net",
    "core.windows.net",
    "servicebus.windows.net",
    "windows.net",
    "devtunnels.ms",
    // Azure, US Government and China clouds.
    "azurewebsites.us",
    "usgovcloudapp.net",
    "usgovcloudapi.net",
    "usgovtrafficmanager.net",
    "chinacloudapp.cn",
    "chinacloudsites.cn",
    "chinacloudapi.cn",
    // AWS.
    "amazonaws.com",
    "amazonaws.com.cn",
    "cloudfront.net",
    "elasticbeanstalk.com",
    "awsapprunner.com",
    "amplifyapp.com",
    "on.aws",
    // Google Cloud and Firebase.
    "appspot.com",
    "cloudfunctions.net",
    "run.app",
    "web.app",
    "firebaseapp.com",
    "googleapis.com",
    "googleusercontent.com",
    "gateway.dev",
    // Tunnels.
    "ngrok.io",
    "ngrok.app",
    "ngrok.dev",
    "ngrok-free.app",
    "ngrok-free.dev",
    "trycloudflare.com",
    "loca.lt",
    "localtunnel.me",
    "serveo.net",
    "lhr.life",
    "localhost.run",
    "pinggy.link",
    // DNS that resolves any name to any address.
    "nip.io",
    "sslip.io",
    "xip.io",
    "duckdns.org",
    // Hosting and developer platforms.
    "github.io",
    "githubusercontent.com",
    "gitlab.io",
    "herokuapp.com",
    "netlify.app",
    "vercel.app",
    "now.sh",
    "pages.dev",
    "workers.dev",
    "onrender.com",
    "fly.dev",
    "railway.app",
    "glitch.me",
    "repl.co",
    "replit.app",
    "replit.dev",
    "deno.dev",
    "surge.sh",
    "csb.app",
    // Second-level registries (CentralNic and others) that sell names under a gTLD.
    "uk.com",
    "uk.net",
    "us.com",
    "us.org",
    "eu.com",
    "gb.net",
    "br.com",
    "cn.com",
    "de.com",
    "jpn.com",
    "jp.net",
    "hu.net",
    "hu.com",
    "ru.com",
    "sa.com",
    "se.net",
    "za.com",
    "za.bz",
    "ae.org",
    "ar.com",
    "kr.com",
    "no.com",
    "qc.com",
    "uy.com",
    "mex.com",
    "gr.com",
    "africa.com",
];

/// Refuses a wildcard suffix (the part after `*.`) that covers names anyone can register: a
/// single label (`*.com`), a country code's generic second level (`*.co.uk`), or a name equal to,
/// under, or above a [`SHARED_SUFFIXES`] entry.
fn check_wildcard(suffix: &str) -> Result<(), ServiceUrlError> {
    let broad = |detail, shared_suffix| ServiceUrlError {
        kind: ServiceUrlErrorKind::BroadWildcard,
        host: None,
        detail,
        shared_suffix,
    };
    if !suffix.contains('.') {
        return Err(broad(
            "a wildcard needs at least two labels after `*.` (`*.com` is every host of a top-level \
             domain)",
            None,
        ));
    }
    if is_country_second_level(suffix) {
        return Err(broad(
            "it is a public suffix under a country code (like `*.co.uk`)",
            None,
        ));
    }
    // `s` under the wildcard (`*.azure.com` ⊇ `cloudapp.azure.com`), equal to it, or the wildcard
    // under `s` (`*.mybot.azurewebsites.net`): labels are compared whole, so `*.notazure.com` is
    // not caught by `azure.com`-looking text.
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_suffix(outer)
                .is_some_and(|rest| rest.ends_with('.'))
    };
    for shared in SHARED_SUFFIXES {
        if within(suffix, shared) {
            return Err(broad(
                "its names are handed out by a cloud, tunnel or hosting service",
                Some(shared),
            ));
        }
        if within(shared, suffix) {
            return Err(broad(
                "a cloud, tunnel or hosting suffix lies under it",
                Some(shared),
            ));
        }
    }
    Ok(())
}

/// `co.uk`, `com.au`, `org.nz`, …: a generic second-level label under a two-letter country code.
fn is_country_second_level(suffix: &str) -> bool {
    let labels: Vec<&str> = suffix.split('.').collect();
    matches!(labels.as_slice(), [second, cc]
        if cc.len() == 2 && ["co", "com", "org", "net", "gov", "ac", "edu", "ne", "or", "go"].contains(second))
}

fn parse_pattern(entry: &str) -> Result<Pattern, ServiceUrlError> {
    let entry = entry.trim();
    let bad = || {
        ServiceUrlError::new(
            ServiceUrlErrorKind::Malformed,
            "an allow-list entry must be a host (`bots.contoso.com`), a wildcard host \
             (`*.contoso.com`, not under a shared hosting suffix), optionally with `:port`, or an \
             https URL (http only for loopback)",
        )
    };
    let (scheme, rest) = match entry.split_once("://") {
        Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
        None => (None, entry),
    };
    let (wildcard, rest) = match rest.strip_prefix("*.") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let as_url = format!("{}://{rest}", scheme.as_deref().unwrap_or("https"));
    let checked = parse_checked(&as_url).map_err(|e| match e.kind {
        ServiceUrlErrorKind::NotHttps => e,
        _ => bad(),
    })?;
    let host = if wildcard {
        if matches!(
            checked.url.host(),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))
        ) {
            return Err(bad());
        }
        check_wildcard(&checked.host)?;
        HostPattern::Subdomains(checked.host)
    } else {
        HostPattern::Exact(checked.host)
    };
    let mut path = checked.url.path().to_owned();
    if !path.ends_with('/') {
        path.push('/');
    }
    Ok(Pattern {
        scheme,
        host,
        port: checked.port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(list: &ServiceUrlAllowList, url: &str) -> ServiceUrlErrorKind {
        match list.check(url) {
            Ok(ok) => panic!("{url} was accepted as {ok}"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn bot_service_hosts_are_allowed_by_default() {
        let list = ServiceUrlAllowList::with_defaults();
        for (url, canonical) in [
            (
                "https://smba.trafficmanager.net/teams/",
                "https://smba.trafficmanager.net/teams/",
            ),
            (
                "https://smba.trafficmanager.net/amer",
                "https://smba.trafficmanager.net/amer/",
            ),
            (
                "https://SMBA.TrafficManager.NET/emea/",
                "https://smba.trafficmanager.net/emea/",
            ),
            (
                "https://webchat.botframework.com/",
                "https://webchat.botframework.com/",
            ),
            (
                "https://directline.botframework.com",
                "https://directline.botframework.com/",
            ),
            (
                "https://a.b.botframework.us/",
                "https://a.b.botframework.us/",
            ),
            (
                "https://webchat.botframework.azure.cn/",
                "https://webchat.botframework.azure.cn/",
            ),
            (
                "https://smba.trafficmanager.net:443/teams/",
                "https://smba.trafficmanager.net/teams/",
            ),
        ] {
            let ok = list.check(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(ok.as_str(), canonical, "{url}");
        }
        assert_eq!(
            list.check("https://WebChat.botframework.com/")
                .unwrap()
                .host(),
            "webchat.botframework.com"
        );
    }

    #[test]
    fn host_tricks_are_refused() {
        let list = ServiceUrlAllowList::with_defaults();
        for (url, want) in [
            // The issue's named tricks.
            (
                "https://evil.example?.botframework.com/",
                ServiceUrlErrorKind::QueryOrFragment,
            ),
            (
                "https://botframework.com@evil.example/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://evil.example#.botframework.com",
                ServiceUrlErrorKind::QueryOrFragment,
            ),
            // User info in every spelling.
            (
                "https://smba.trafficmanager.net:pw@evil.example/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://evil.example@smba.trafficmanager.net/",
                ServiceUrlErrorKind::Malformed,
            ),
            // Percent-encoding in the host.
            ("https://evil%2eexample/", ServiceUrlErrorKind::Malformed),
            (
                "https://smba%2etrafficmanager%2enet/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://evil.example%2f.botframework.com/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://evil.example%23.botframework.com/",
                ServiceUrlErrorKind::Malformed,
            ),
            // IDN: full-width letters and an ideographic full stop map to ASCII under IDNA.
            (
                "https://ｓｍｂａ.trafficmanager.net/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://evil.example\u{3002}botframework.com/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://webchat.botframework.com\u{3002}evil.example/",
                ServiceUrlErrorKind::Malformed,
            ),
            // Punycode of a look-alike is a different host.
            (
                "https://xn--smb-8cd.trafficmanager.net/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            // Backslashes: WHATWG reads them as `/`, other parsers do not.
            (
                "https://evil.example\\.botframework.com/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https:\\\\smba.trafficmanager.net/",
                ServiceUrlErrorKind::Malformed,
            ),
            // Suffix, apex and trailing-dot games.
            (
                "https://evilbotframework.com/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            ("https://botframework.com/", ServiceUrlErrorKind::NotAllowed),
            (
                "https://smba.trafficmanager.net.evil.example/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            (
                "https://x.smba.trafficmanager.net/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            (
                "https://webchat.botframework.com./",
                ServiceUrlErrorKind::Malformed,
            ),
            ("https://.botframework.com/", ServiceUrlErrorKind::Malformed),
            // Query/fragment after a good host.
            (
                "https://smba.trafficmanager.net/teams/?x=1",
                ServiceUrlErrorKind::QueryOrFragment,
            ),
            (
                "https://smba.trafficmanager.net/#frag",
                ServiceUrlErrorKind::QueryOrFragment,
            ),
            // Scheme and port.
            (
                "http://smba.trafficmanager.net/",
                ServiceUrlErrorKind::NotHttps,
            ),
            (
                "ftp://smba.trafficmanager.net/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://smba.trafficmanager.net:8443/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            // Whitespace, control characters, relative and empty values.
            (
                " https://smba.trafficmanager.net/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://smba.trafficmanager.net/\n",
                ServiceUrlErrorKind::Malformed,
            ),
            ("//smba.trafficmanager.net/", ServiceUrlErrorKind::Malformed),
            ("smba.trafficmanager.net", ServiceUrlErrorKind::Malformed),
            ("", ServiceUrlErrorKind::Malformed),
            ("https://", ServiceUrlErrorKind::Malformed),
            // IP literals are not Bot Service hosts, and loopback is not allowed by default.
            ("https://10.0.0.1/", ServiceUrlErrorKind::NotAllowed),
            ("http://127.0.0.1:3978/", ServiceUrlErrorKind::NotAllowed),
        ] {
            assert_eq!(kind(&list, url), want, "{url}");
        }
    }

    #[test]
    fn errors_name_the_host_only_when_well_formed() {
        let list = ServiceUrlAllowList::with_defaults();
        let err = list.check("https://evil.example/").unwrap_err();
        assert_eq!(err.host(), Some("evil.example"));
        assert!(
            err.to_string().contains("`evil.example` is not allowed"),
            "{err}"
        );
        let err = list.check("https://user:s3cret@evil.example/").unwrap_err();
        assert_eq!(err.host(), None);
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn configured_entries() {
        let list = ServiceUrlAllowList::with_defaults_and([
            "bots.contoso.com",
            "*.fabrikam.com",
            "https://edge.example:8443",
            "https://gateway.example/teams/",
            "http://127.0.0.1:3978",
            "localhost:9000",
        ])
        .unwrap();
        for ok in [
            "https://bots.contoso.com/",
            "https://BOTS.contoso.com/x/",
            "https://a.fabrikam.com/",
            "https://a.b.fabrikam.com/",
            "https://edge.example:8443/",
            "https://gateway.example/teams",
            "https://gateway.example/teams/",
            "http://127.0.0.1:3978/",
            "http://localhost:9000/",
            "https://localhost:9000/",
            "https://smba.trafficmanager.net/teams/",
        ] {
            assert!(list.check(ok).is_ok(), "{ok}: {:?}", list.check(ok));
        }
        for (bad, want) in [
            (
                "https://x.bots.contoso.com/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            ("https://fabrikam.com/", ServiceUrlErrorKind::NotAllowed),
            ("https://edge.example/", ServiceUrlErrorKind::NotAllowed),
            (
                "https://edge.example:9443/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            ("https://gateway.example/", ServiceUrlErrorKind::NotAllowed),
            (
                "https://gateway.example/teamsx/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            // Paths are case-sensitive; encoded separators and `;` parameters never pass.
            (
                "https://gateway.example/TEAMS/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            (
                "https://gateway.example/teams/..%2fadmin/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://gateway.example/teams/..%2Fadmin/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://gateway.example/teams/..;/admin/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://gateway.example/teams/%2e%2e/admin/",
                ServiceUrlErrorKind::Malformed,
            ),
            (
                "https://gateway.example/teams/..%5cadmin/",
                ServiceUrlErrorKind::Malformed,
            ),
            // Dot segments are resolved before the prefix is compared.
            (
                "https://gateway.example/teams/../admin/",
                ServiceUrlErrorKind::NotAllowed,
            ),
            ("http://127.0.0.1:3979/", ServiceUrlErrorKind::NotAllowed),
            ("http://127.0.0.2:3978/", ServiceUrlErrorKind::NotAllowed),
            ("http://bots.contoso.com/", ServiceUrlErrorKind::NotHttps),
        ] {
            assert_eq!(kind(&list, bad), want, "{bad}");
        }
    }

    fn entry_kind(entry: &str) -> ServiceUrlErrorKind {
        match ServiceUrlAllowList::with_defaults_and([entry]) {
            Ok(_) => panic!("{entry} was accepted"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        use ServiceUrlErrorKind::{BroadWildcard, Malformed, NotHttps};
        for (bad, want) in [
            ("*", Malformed),
            ("*.", Malformed),
            ("", Malformed),
            ("http://bots.contoso.com", NotHttps),
            ("https://user@bots.contoso.com", Malformed),
            ("https://bots.contoso.com/?x", Malformed),
            ("https://bots.contoso.com/#x", Malformed),
            ("bots%2econtoso.com", Malformed),
            ("ｂots.contoso.com", Malformed),
            ("bots.contoso.com.", Malformed),
            ("ftp://bots.contoso.com", Malformed),
            ("*.127.0.0.1", Malformed),
            ("bots.contoso.com:port", Malformed),
            ("bots.contoso.com:99999", Malformed),
            // Wildcards over names anyone can get.
            ("*.com", BroadWildcard),
            ("*.trafficmanager.net", BroadWildcard),
            ("*.azurewebsites.net", BroadWildcard),
            ("*.x.cloudapp.azure.com", BroadWildcard),
            ("*.blob.core.windows.net", BroadWildcard),
            ("*.devtunnels.ms", BroadWildcard),
            ("*.github.io", BroadWildcard),
            ("*.co.uk", BroadWildcard),
            ("*.com.au", BroadWildcard),
            ("*.com.cn", BroadWildcard),
        ] {
            assert_eq!(entry_kind(bad), want, "{bad}");
        }
    }

    /// Issue 13: a wildcard *above* a shared suffix was accepted (`*.azure.com` covers
    /// `anything.<region>.cloudapp.azure.com`, a VM DNS label anyone can claim).
    #[test]
    fn wildcards_above_shared_suffixes_are_refused() {
        for (entry, shared) in [
            ("*.azure.com", Some("cloudapp.azure.com")),
            ("*.azurecontainer.io", Some("azurecontainer.io")),
            ("*.trycloudflare.com", Some("trycloudflare.com")),
            ("*.uk.com", Some("uk.com")),
            ("*.amazonaws.com.cn", Some("amazonaws.com.cn")),
            ("*.cn-north-1.amazonaws.com.cn", Some("amazonaws.com.cn")),
            ("*.core.windows.net", Some("blob.core.windows.net")),
            ("*.windows.net", Some("blob.core.windows.net")),
            ("*.usgovcloudapi.net", Some("usgovcloudapi.net")),
            ("https://*.azure.com/teams/", Some("cloudapp.azure.com")),
            ("*.azure.com:8443", Some("cloudapp.azure.com")),
            ("*.AZURE.com", Some("cloudapp.azure.com")),
        ] {
            let err = ServiceUrlAllowList::with_defaults_and([entry]).unwrap_err();
            assert_eq!(err.kind(), ServiceUrlErrorKind::BroadWildcard, "{entry}");
            assert_eq!(err.shared_suffix(), shared, "{entry}");
            let text = err.to_string();
            assert!(text.contains("list the exact hosts instead"), "{text}");
            if let Some(c) = shared {
                assert!(text.contains(&format!("`{c}`")), "{text}");
            }
        }
        // Every listed suffix, and every name under it, is refused as a wildcard. Spot-check the
        // services the issue named, so a list edit cannot drop them silently.
        for suffix in SHARED_SUFFIXES {
            assert_eq!(suffix.to_ascii_lowercase(), *suffix);
            assert!(suffix.contains('.'), "{suffix}");
            for entry in [format!("*.{suffix}"), format!("*.tenant.{suffix}")] {
                assert_eq!(
                    entry_kind(&entry),
                    ServiceUrlErrorKind::BroadWildcard,
                    "{entry}"
                );
            }
        }
        let unique: std::collections::HashSet<_> = SHARED_SUFFIXES.iter().collect();
        assert_eq!(unique.len(), SHARED_SUFFIXES.len(), "duplicate suffix");
        for named in [
            "cloudapp.azure.com",
            "cloudapp.net",
            "azurewebsites.net",
            "azurecontainer.io",
            "azurestaticapps.net",
            "azurefd.net",
            "trafficmanager.net",
            "blob.core.windows.net",
            "web.core.windows.net",
            "servicebus.windows.net",
            "azure-api.net",
            "azurecontainerapps.io",
            "azureedge.net",
            "amazonaws.com",
            "amazonaws.com.cn",
            "cloudfront.net",
            "elasticbeanstalk.com",
            "appspot.com",
            "cloudfunctions.net",
            "run.app",
            "web.app",
            "firebaseapp.com",
            "herokuapp.com",
            "ngrok.io",
            "ngrok-free.app",
            "ngrok.app",
            "trycloudflare.com",
            "loca.lt",
            "devtunnels.ms",
            "github.io",
            "githubusercontent.com",
            "netlify.app",
            "vercel.app",
            "pages.dev",
            "workers.dev",
            "onrender.com",
            "fly.dev",
            "glitch.me",
            "repl.co",
            "uk.com",
            "us.com",
            "eu.com",
        ] {
            assert!(SHARED_SUFFIXES.contains(&named), "{named} is not listed");
        }
    }

    #[test]
    fn a_broad_wildcard_in_configuration_names_the_key_not_the_entry() {
        let mut list = ServiceUrlAllowList::with_defaults();
        let err = list
            .allow_entries(
                "ALLOWED_SERVICE_URLS",
                &["bots.contoso.com".into(), "*.azure.com".into()],
            )
            .unwrap_err();
        assert!(err.is_config());
        let text = err.to_string();
        assert!(
            text.starts_with("configuration `ALLOWED_SERVICE_URLS`: entry 2"),
            "{text}"
        );
        assert!(text.contains("cloudapp.azure.com"), "{text}");
        assert!(!text.contains("*.azure.com"), "{text}");
    }

    #[test]
    fn the_bot_service_defaults_pass_the_wildcard_guard() {
        for entry in DEFAULT_ALLOWED_HOSTS {
            assert!(parse_pattern(entry).is_ok(), "{entry}");
        }
        // `with_defaults` drops an entry that does not parse: none may be dropped.
        assert_eq!(
            ServiceUrlAllowList::with_defaults().patterns.len(),
            DEFAULT_ALLOWED_HOSTS.len()
        );
        let list = ServiceUrlAllowList::with_defaults_and(DEFAULT_ALLOWED_HOSTS).unwrap();
        for url in [
            "https://smba.trafficmanager.net/teams/",
            "https://webchat.botframework.com/",
            "https://a.b.botframework.us/",
            "https://webchat.botframework.azure.cn/",
        ] {
            assert!(list.check(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn exact_hosts_under_shared_suffixes_are_allowed() {
        let list = ServiceUrlAllowList::with_defaults_and([
            "smba.trafficmanager.net",
            "mybot.azurewebsites.net",
            "vm1.westeurope.cloudapp.azure.com",
            "bots.azure.com",
            "relay.servicebus.windows.net",
            "fixed.trycloudflare.com",
            "bots.uk.com",
            "gw.cn-north-1.amazonaws.com.cn",
        ])
        .unwrap();
        for ok in [
            "https://smba.trafficmanager.net/teams/",
            "https://mybot.azurewebsites.net/",
            "https://vm1.westeurope.cloudapp.azure.com/",
            "https://bots.azure.com/",
            "https://relay.servicebus.windows.net/",
            "https://fixed.trycloudflare.com/",
            "https://bots.uk.com/",
            "https://gw.cn-north-1.amazonaws.com.cn/",
        ] {
            assert!(list.check(ok).is_ok(), "{ok}: {:?}", list.check(ok));
        }
        // Only the named host: its neighbours under the same suffix get nothing.
        for bad in [
            "https://evil.trafficmanager.net/",
            "https://evil.azurewebsites.net/",
            "https://evil.westeurope.cloudapp.azure.com/",
            "https://x.bots.azure.com/",
            "https://evil.trycloudflare.com/",
            "https://evil.uk.com/",
        ] {
            assert_eq!(kind(&list, bad), ServiceUrlErrorKind::NotAllowed, "{bad}");
        }
        // Wildcards near, but not over, a shared suffix are a company's own domains.
        let list = ServiceUrlAllowList::with_defaults_and([
            "*.contoso.com",
            "*.notazure.com",
            "*.bots.contoso.co.uk",
            "*.teams.microsoft.com",
            "*.contoso.uk.com.example",
        ])
        .unwrap();
        assert!(list.check("https://eu.bots.contoso.co.uk/").is_ok());
        assert!(list.check("https://a.notazure.com/").is_ok());
    }

    #[test]
    fn an_entry_port_is_kept_as_written() {
        let list =
            ServiceUrlAllowList::with_defaults_and(["localhost:443", "*.contoso.co.uk"]).unwrap();
        assert!(list.check("https://localhost/").is_ok());
        assert!(list.check("https://localhost:443/").is_ok());
        // Port 443 written in the entry does not admit plain http on port 80.
        assert_eq!(
            kind(&list, "http://localhost/"),
            ServiceUrlErrorKind::NotAllowed
        );
        assert!(list.check("https://bots.contoso.co.uk/").is_ok());
    }

    #[test]
    fn empty_list_allows_nothing_until_told() {
        let mut list = ServiceUrlAllowList::empty();
        assert_eq!(
            kind(&list, "https://smba.trafficmanager.net/"),
            ServiceUrlErrorKind::NotAllowed
        );
        list.allow("parent.example").unwrap();
        assert!(list.check("https://parent.example/api/skills/").is_ok());
    }

    #[test]
    fn ipv6_loopback_entry() {
        let list = ServiceUrlAllowList::with_defaults_and(["http://[::1]:3978"]).unwrap();
        assert_eq!(
            list.check("http://[::1]:3978/").unwrap().as_str(),
            "http://[::1]:3978/"
        );
        assert_eq!(
            kind(&list, "http://[::1]:3979/"),
            ServiceUrlErrorKind::NotAllowed
        );
    }
}
