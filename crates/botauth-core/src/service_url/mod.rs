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
//!   `SHARED_SUFFIXES` list of `wildcard.rs`: `azurewebsites.net`, `cloudapp.azure.com`, `amazonaws.com.cn`,
//!   `trycloudflare.com`, registry suffixes such as `uk.com`, …) — the suffix itself, any name
//!   under it (`*.mybot.azurewebsites.net`), **and any name above it** (`*.azure.com` covers
//!   `cloudapp.azure.com`, `*.windows.net` covers `blob.core.windows.net`).
//!
//! Exact hosts under those suffixes stay allowed (`smba.trafficmanager.net`, the Teams Connector,
//! or a bot's own `mybot.azurewebsites.net`): one named host is a decision about one owner.

use std::fmt;

mod parse;
mod wildcard;

use parse::{Checked, parse_checked};
use wildcard::check_wildcard;

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
#[non_exhaustive]
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

    #[cfg(test)]
    /// The defaults plus `entries`.
    ///
    /// # Errors
    ///
    /// The first entry that is not a valid host, wildcard host or URL.
    pub(crate) fn with_defaults_and<I, S>(entries: I) -> Result<Self, ServiceUrlError>
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

fn path_has_prefix(path: &str, prefix: &str) -> bool {
    // The prefix ends with `/`: `/teams/` matches `/teams` and `/teams/x`, not `/teamsx`. Paths
    // are case-sensitive, as most servers route them.
    prefix == "/" || path == prefix.trim_end_matches('/') || path.starts_with(prefix)
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

    pub(super) fn kind(list: &ServiceUrlAllowList, url: &str) -> ServiceUrlErrorKind {
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
