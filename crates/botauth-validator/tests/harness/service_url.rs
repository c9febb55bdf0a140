//! The outbound service-URL guard (`botauth_core::service_url`, docs/protocol.md §6 "Outbound
//! guard") fed arbitrary allow-list entries and service URLs, shared by the cargo-fuzz target
//! `fuzz/fuzz_targets/service_url.rs` and the stable test `tests/service_url_guard.rs`.
//!
//! Nothing here may panic, and an accepted service URL is checked against an oracle that reads the
//! URL's text the simple way a reviewer would: its host, taken from between `://` and the first
//! `/`, `?` or `#` with the port removed, is the host the guard reports, and that host is the host
//! of an allowed entry or lies under an allowed wildcard. A URL whose parsed host differs from its
//! written host (user info, backslashes, percent-encoding, IPv4 shorthands) can therefore never
//! pass unnoticed.
#![allow(dead_code, unreachable_pub)]

use std::net::Ipv6Addr;

use botauth_core::service_url::{
    DEFAULT_ALLOWED_HOSTS, ServiceUrlAllowList, ServiceUrlError, ServiceUrlErrorKind,
};

/// The most entries one input adds.
const MAX_ENTRIES: usize = 8;

/// The guard's limit on a service URL's length.
const MAX_URL_BYTES: usize = 2048;

/// One decoded input: the service URL and the entries added to the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Start from [`DEFAULT_ALLOWED_HOSTS`] (otherwise from an empty list).
    pub defaults: bool,
    pub entries: Vec<String>,
    pub url: String,
}

impl Input {
    /// The first byte's low bit chooses the defaults; the rest is split at newlines: the service
    /// URL, then up to [`MAX_ENTRIES`] entries (lossy UTF-8, so any bytes reach the parser).
    pub fn decode(data: &[u8]) -> Input {
        let (flags, rest) = data.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        let mut pieces = rest
            .split(|&b| b == b'\n')
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let url = pieces.next().unwrap_or_default();
        Input {
            defaults: flags & 1 == 0,
            entries: pieces.take(MAX_ENTRIES).collect(),
            url,
        }
    }

    /// The bytes that [`decode`](Self::decode) turns back into this input (for seeds).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![u8::from(!self.defaults)];
        out.extend_from_slice(self.url.as_bytes());
        for entry in &self.entries {
            out.push(b'\n');
            out.extend_from_slice(entry.as_bytes());
        }
        out
    }
}

/// What the guard decided, when the oracle agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed { url: String, host: String },
    Refused(ServiceUrlErrorKind),
}

/// The host an entry names, read from its text: (`*.`-wildcard?, lower-case host).
fn entry_host(entry: &str) -> Option<(bool, String)> {
    let entry = entry.trim();
    let rest = entry.split_once("://").map_or(entry, |(_, r)| r);
    let (wildcard, rest) = match rest.strip_prefix("*.") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    Some((wildcard, written_host(authority)?))
}

/// The host of an authority as written: without the port, lower case; IPv6 in brackets and
/// canonical (its spellings vary harmlessly).
fn written_host(authority: &str) -> Option<String> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (inside, _) = v6.split_once(']')?;
        let ip: Ipv6Addr = inside.parse().ok()?;
        return Some(format!("[{ip}]"));
    }
    let host = authority.split_once(':').map_or(authority, |(h, _)| h);
    Some(host.to_ascii_lowercase())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks the guard's answer for `input` against the oracle. `Err` describes a disagreement.
pub fn run(input: &Input) -> Result<Verdict, String> {
    let mut list = if input.defaults {
        ServiceUrlAllowList::with_defaults()
    } else {
        ServiceUrlAllowList::empty()
    };
    let mut allowed: Vec<&str> = if input.defaults {
        DEFAULT_ALLOWED_HOSTS.to_vec()
    } else {
        Vec::new()
    };
    for entry in &input.entries {
        match list.allow(entry) {
            Ok(_) => {
                let Some((wildcard, host)) = entry_host(entry) else {
                    return Err(format!(
                        "entry {entry:?} was accepted without a readable host"
                    ));
                };
                // `*.com` would cover a whole public suffix.
                if wildcard && !host.contains('.') {
                    return Err(format!(
                        "wildcard entry {entry:?} covers a top-level domain"
                    ));
                }
                allowed.push(entry);
            }
            Err(e) => check_error(&e, entry)?,
        }
    }
    let url = input.url.as_str();
    let accepted = match list.check(url) {
        Ok(accepted) => accepted,
        Err(e) => {
            check_error(&e, url)?;
            return Ok(Verdict::Refused(e.kind()));
        }
    };
    let fail = |why: &str| {
        Err(format!(
            "{why}: {url:?} accepted as {accepted:?} by {allowed:?}"
        ))
    };
    // The text itself: plain ASCII, no tricks a second parser could read otherwise.
    if !url.bytes().all(|b| b.is_ascii_graphic()) || url.contains(['\\', '?', '#', ';']) {
        return fail("a URL with a trick character passed");
    }
    let Some((scheme, after)) = url.split_once("://") else {
        return fail("a URL without `://` passed");
    };
    let authority = &after[..after.find('/').unwrap_or(after.len())];
    // (`@` may appear in a path, where it is harmless; in the authority it is user info.)
    if authority.contains(['%', '@']) {
        return fail("user info or percent-encoding in the authority passed");
    }
    let Some(host) = written_host(authority) else {
        return fail("a URL without a readable host passed");
    };
    if accepted.host() != host {
        return fail("the guard's host is not the written host");
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        _ => return fail("neither https nor loopback http"),
    }
    let matched = allowed.iter().any(|entry| {
        entry_host(entry).is_some_and(|(wildcard, pattern)| {
            if wildcard {
                host.strip_suffix(pattern.as_str())
                    .and_then(|label| label.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty())
            } else {
                host == pattern
            }
        })
    });
    if !matched {
        return fail("the host matches no allowed entry");
    }
    let canonical = accepted.as_str();
    if !canonical.ends_with('/') {
        return fail("the canonical URL does not end in `/`");
    }
    if !host.starts_with('[')
        && !canonical.starts_with(&format!("{}://{host}", scheme.to_ascii_lowercase()))
    {
        return fail("the canonical URL names another host");
    }
    // The canonical form is a fixed point: checking it again gives the same answer. Except near
    // the length limit: the parser percent-encodes characters such as `<`, `"` or `{` in a path
    // (three bytes each), so a canonical form can outgrow the 2048 bytes its input kept within,
    // and is then refused as malformed (found by this target; the guard's own answer is kept).
    match list.check(canonical) {
        Ok(again) if again == accepted => {}
        Err(e) if canonical.len() > MAX_URL_BYTES && e.kind() == ServiceUrlErrorKind::Malformed => {
        }
        other => return Err(format!("{url:?} → {canonical:?} → {other:?}")),
    }
    Ok(Verdict::Allowed {
        url: canonical.to_owned(),
        host,
    })
}

/// A refusal never repeats a malformed value: it names a host only when there is a well-formed one.
fn check_error(error: &ServiceUrlError, value: &str) -> Result<(), String> {
    if error.kind() == ServiceUrlErrorKind::Malformed && error.host().is_some() {
        return Err(format!(
            "{value:?}: a malformed value's error names a host: {error:?}"
        ));
    }
    // Display must work for any error (it is what the logs carry).
    let _ = error.to_string();
    Ok(())
}
