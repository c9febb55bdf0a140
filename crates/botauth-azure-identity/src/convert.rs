//! Tokens and scopes across the bridge.
//!
//! The expiry carries over exactly (both sides keep nanoseconds), so the token manager refreshes
//! an Azure credential's token on its usual schedule, and an Azure SDK client's own refresh
//! (five minutes before expiry) sees botauth's real expiry. The token text is copied from one
//! secret type into the other; neither prints it.
//!
//! Scopes pass through unchanged in both directions. The Azure SDK asks in v2 form
//! (`https://vault.azure.net/.default`, one scope per resource), which is what botauth's
//! providers take: the client-credentials flow sends it as `scope`, and managed identity turns it
//! into the endpoint's `resource` by dropping `/.default` (docs/protocol.md §4). Rewriting a scope
//! here would change the token's audience behind the caller's back.

use std::time::SystemTime;

use azure_core::credentials::{AccessToken as AzureToken, Secret as AzureSecret};
use azure_core::error::ErrorKind as AzureKind;
use azure_core::time::OffsetDateTime;
use botauth_core::{AccessToken, TokenRequest};

/// A botauth token from an Azure one: always a bearer token (Azure's `AccessToken` has no type).
pub(crate) fn from_azure(token: AzureToken) -> AccessToken {
    AccessToken::bearer(
        token.token.secret().to_owned(),
        SystemTime::from(token.expires_on),
    )
}

/// An Azure token from a botauth one. Azure SDK clients send every token as
/// `Authorization: Bearer …`, so a token of another type (a proof-of-possession token, say)
/// is refused rather than sent under the wrong scheme.
pub(crate) fn to_azure(token: &AccessToken, kind: &str) -> azure_core::Result<AzureToken> {
    if !token.token_type.eq_ignore_ascii_case("bearer") {
        return Err(azure_core::Error::with_message(
            AzureKind::Credential,
            format!(
                "BotTokenCredential authentication failed. botauth credential `{kind}` issued a \
                 `{}` token, and Azure SDK clients send only bearer tokens",
                token.token_type
            ),
        ));
    }
    Ok(AzureToken::new(
        AzureSecret::new(token.token.expose_secret().to_owned()),
        OffsetDateTime::from(token.expires_on),
    ))
}

/// The botauth request for an Azure SDK `get_token(scopes, …)`.
pub(crate) fn request(scopes: &[&str]) -> TokenRequest {
    TokenRequest::with_scopes(scopes.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::time::Duration;

    #[test]
    fn the_expiry_carries_over_both_ways_to_the_nanosecond() {
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_900_000_000, 123_456_789);
        let azure = to_azure(&AccessToken::bearer("eyJ.a.b", at), "k").expect("bearer");
        assert_eq!(azure.token.secret(), "eyJ.a.b");
        assert_eq!(
            azure.expires_on.unix_timestamp_nanos(),
            1_900_000_000_123_456_789
        );
        let back = from_azure(azure);
        assert_eq!(back.expires_on, at);
        assert_eq!(back.token.expose_secret(), "eyJ.a.b");
        assert_eq!(back.token_type, "Bearer");
        assert_eq!(back.refresh_on, None);
    }

    #[test]
    fn only_bearer_tokens_cross_to_azure() {
        let mut token = AccessToken::bearer("t", SystemTime::now());
        token.token_type = Cow::Borrowed("bearer");
        assert!(
            to_azure(&token, "k").is_ok(),
            "the scheme is case-insensitive"
        );
        token.token_type = Cow::Borrowed("PoP");
        let e = to_azure(&token, "sidecar").expect_err("not bearer");
        assert_eq!(e.kind(), &AzureKind::Credential);
        assert!(
            e.to_string().contains("`sidecar` issued a `PoP` token"),
            "{e}"
        );
        assert!(!format!("{e:?}").contains("\"t\""));
    }

    #[test]
    fn scopes_pass_through() {
        let r = request(&["https://vault.azure.net/.default"]);
        assert_eq!(r.scopes, ["https://vault.azure.net/.default"]);
        assert_eq!(r.tenant_id, None);
        let r = request(&["https://b/.default", "https://a/.default"]);
        assert_eq!(
            r.normalized_scopes(),
            ["https://a/.default", "https://b/.default"]
        );
    }
}
