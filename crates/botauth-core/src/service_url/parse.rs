//! The raw parse every service URL and allow-list entry goes through: the authority is split
//! out by hand before `url` parses it, so that the parser's leniency never decides the host.

use super::{ServiceUrlError, ServiceUrlErrorKind};
use crate::endpoint::is_loopback;

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
pub(super) struct Checked {
    pub(super) url: url::Url,
    /// Lower case; IPv6 in brackets.
    pub(super) host: String,
    pub(super) loopback: bool,
    /// As written.
    pub(super) port: Option<u16>,
}

/// The one parse both service URLs and allow-list entries go through, so an entry means exactly
/// what a service URL with that host would.
pub(super) fn parse_checked(value: &str) -> Result<Checked, ServiceUrlError> {
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
#[cfg(test)]
mod tests {
    use super::super::ServiceUrlAllowList;
    use super::super::tests::kind;
    use super::*;

    #[test]
    fn host_tricks_are_refused() {
        let list = ServiceUrlAllowList::with_defaults();
        for (url, want) in [
            // The named tricks.
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
}
