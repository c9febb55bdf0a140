//! Reading what an HTTP server answered: bodies with a limit, `Retry-After`, transport failures,
//! and the text of both made fit for errors and logs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use botauth_core::{Error, Result};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Parses `Retry-After`: delta-seconds or an HTTP date (measured against `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// A server's text made fit for an error message or a log line: at most `max_chars`
/// characters (then `…`), control characters replaced by spaces, so that a hostile body can
/// neither flood a log nor forge a line of it.
pub fn clean_text(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// The URL without query string: what errors and logs name (queries may carry identifiers).
pub fn display_endpoint(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// Maps a transport failure of a request to `endpoint` into an [`Error`].
pub fn transport_error(endpoint: &str, err: reqwest::Error, timeout: Duration) -> Error {
    if err.is_timeout() {
        Error::Timeout {
            endpoint: display_endpoint(endpoint),
            after: timeout,
        }
    } else {
        Error::Unavailable {
            endpoint: display_endpoint(endpoint),
            status: None,
            retry_after: None,
            // Strip the URL: reqwest errors print it, and ours is already in the message.
            source: Some(Arc::new(err.without_url())),
        }
    }
}

/// Reads a response body, refusing more than `limit` bytes.
pub async fn read_body(
    mut response: reqwest::Response,
    endpoint: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let status = response.status().as_u16();
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large(endpoint, status, limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(endpoint, e, timeout))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large(endpoint, status, limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(endpoint: &str, status: u16, limit: usize) -> Error {
    Error::InvalidResponse {
        endpoint: display_endpoint(endpoint),
        status,
        message: format!("the response body is larger than {limit} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_text_bounds_and_neutralises_controls() {
        assert_eq!(clean_text("a\nb\u{1b}[31m", 100), "a b [31m");
        assert_eq!(clean_text("abcdef", 3), "abc…");
        assert_eq!(clean_text("abc", 3), "abc");
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        h.insert(RETRY_AFTER, later.parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn endpoints_lose_their_query() {
        assert_eq!(display_endpoint("http://h/p?resource=x"), "http://h/p");
    }
}
