//! Whether a token from a token endpoint can be sent in an `Authorization` header.

use botauth_core::{Error, Result};

use super::response::display_endpoint;

/// Why a token response with an unsendable `access_token` is refused (the text never quotes it).
pub const UNSENDABLE_TOKEN: &str = "the access_token cannot be sent in an Authorization header (it \
     is empty, or holds spaces, control characters, line breaks or non-ASCII): the endpoint is \
     misbehaving or is not a token endpoint; the token was not cached";

/// Whether `token` can be sent as `Authorization: Bearer <token>`: one or more visible ASCII
/// characters (`!` to `~`).
///
/// A token is pasted into a header for every Bot Connector call. One with a line break
/// (`tok\r\nX-Evil: 1`) or another control character fails every call for the token's lifetime
/// if it is cached, or injects a header where a client does not check; a space would split it
/// into two credentials. So it is refused when the token response is parsed, where the negative
/// cache and the retry policy apply. (RFC 6750's `b64token` is narrower still; visible ASCII is
/// what an HTTP header value can carry, and what any issuer's opaque token may use.)
pub fn is_sendable_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `token_type` can be sent as the scheme of an `Authorization` header: an HTTP `token`
/// (RFC 9110 §5.6.2: letters, digits and ``!#$%&'*+-.^_`|~``).
pub fn is_sendable_token_type(token_type: &str) -> bool {
    !token_type.is_empty()
        && token_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks a parsed `access_token` (see [`is_sendable_token`]): an
/// [`InvalidResponse`](botauth_core::ErrorKind::InvalidResponse) error naming `endpoint` and
/// `status` when it cannot be sent. For every credential that parses a token response itself.
pub fn check_access_token(token: &str, endpoint: &str, status: u16) -> Result<()> {
    if is_sendable_token(token) {
        return Ok(());
    }
    Err(Error::InvalidResponse {
        endpoint: display_endpoint(endpoint),
        status,
        message: UNSENDABLE_TOKEN.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::ErrorKind;

    #[test]
    fn only_visible_ascii_tokens_are_sendable() {
        for ok in [
            "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ4In0.c2ln",
            "a",
            "opaque~token+with/odd=chars_-.!",
        ] {
            assert!(is_sendable_token(ok), "{ok:?}");
            assert!(check_access_token(ok, "http://h/t", 200).is_ok());
        }
        for bad in [
            "",
            "zq\r\nX-Evil: 1",
            "zq\nX-Evil: 1",
            "zq\r",
            "zq\0",
            "zq\t",
            "zq\u{7f}",
            "zq\u{1b}[31m",
            "z q",
            " zq",
            "zqö",
            "zq\u{2028}",
        ] {
            assert!(!is_sendable_token(bad), "{bad:?}");
            let e = check_access_token(bad, "http://h/t?x=1", 200).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{bad:?}");
            assert!(
                matches!(e, Error::InvalidResponse { status: 200, ref endpoint, .. } if endpoint == "http://h/t")
            );
            assert!(!e.is_retryable());
            // The message never quotes the token.
            let message = e.to_string();
            assert!(
                !message.contains("zq") && !message.contains("z q"),
                "{message}"
            );
        }
        assert!(is_sendable_token_type("Bearer"));
        assert!(is_sendable_token_type("PoP"));
        for bad in ["", "Bearer x", "Bearer\r\nX: 1", "Béarer", "Bearer:"] {
            assert!(!is_sendable_token_type(bad), "{bad:?}");
        }
    }
}
