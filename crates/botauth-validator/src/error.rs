//! Why a token was rejected, or why it could not be judged.

use std::borrow::Cow;
use std::fmt;

use crate::check::ClaimsRejection;

/// The kind of an [`Error`]: a stable, machine-readable name (`Display` prints it in snake case,
/// as `botauth validate` does on its `rejected: <kind>` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No `Authorization` header.
    MissingToken,
    /// The header is not `Bearer <one token>`.
    BadScheme,
    /// The token, its JOSE header or the `Authorization` header is larger than the configured
    /// limit.
    TooLarge,
    /// Not a well-formed compact JWS (segments, base64url, JSON, UTF-8, duplicate members).
    Malformed,
    /// `alg` is not in the allow-list.
    Algorithm,
    /// The header carries `crit`.
    CriticalHeader,
    /// The header has no `kid`.
    MissingKeyId,
    /// `kid` names no key of the issuer's JWKS.
    UnknownKeyId,
    /// The key exists but may not be used (RSA below 2048 bits, or its `alg` differs).
    UnusableKey,
    /// The signature does not verify.
    BadSignature,
    /// `iss` is not a trusted issuer.
    Issuer,
    /// `aud` is not this bot.
    Audience,
    /// A required claim is absent.
    MissingClaim,
    /// A claim has the wrong JSON type or value format.
    ClaimType,
    /// `exp` (plus skew) has passed.
    Expired,
    /// `nbf` (minus skew) has not yet come.
    NotYetValid,
    /// The `serviceurl` claim differs from the activity's `serviceUrl`.
    ServiceUrl,
    /// The signing key's endorsements do not include the activity's `channelId`.
    Endorsement,
    /// `tid` does not match the tenant of `iss`.
    Tenant,
    /// The caller (`appid`/`azp`) is not allowed.
    Caller,
    /// The bot's own [claims check](crate::ValidatorBuilder::claims_check) refused the request.
    ClaimsCheck,
    /// The signing keys could not be obtained (never fetched, or stale beyond the bound).
    KeysUnavailable,
    /// The validator's configuration is invalid.
    Config,
}

impl ErrorKind {
    /// The snake-case name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MissingToken => "missing_token",
            ErrorKind::BadScheme => "bad_scheme",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Algorithm => "algorithm",
            ErrorKind::CriticalHeader => "critical_header",
            ErrorKind::MissingKeyId => "missing_key_id",
            ErrorKind::UnknownKeyId => "unknown_key_id",
            ErrorKind::UnusableKey => "unusable_key",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::Issuer => "issuer",
            ErrorKind::Audience => "audience",
            ErrorKind::MissingClaim => "missing_claim",
            ErrorKind::ClaimType => "claim_type",
            ErrorKind::Expired => "expired",
            ErrorKind::NotYetValid => "not_yet_valid",
            ErrorKind::ServiceUrl => "service_url",
            ErrorKind::Endorsement => "endorsement",
            ErrorKind::Tenant => "tenant",
            ErrorKind::Caller => "caller",
            ErrorKind::ClaimsCheck => "claims_check",
            ErrorKind::KeysUnavailable => "keys_unavailable",
            ErrorKind::Config => "config",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every validation: match on its [`kind`](Error::kind). No error holds the token or
/// any value taken from it: the token is attacker-controlled and may be a live credential. (The
/// one reason botauth does not write is a [claims check](crate::ValidatorBuilder::claims_check)'s,
/// which says what the bot's own check chose.)
#[derive(Clone, thiserror::Error)]
#[error(transparent)]
#[non_exhaustive]
pub struct Error(Repr);

/// What an [`Error`] holds, one variant per [`ErrorKind`] (private: the kind and the accessors
/// are the stable surface, so a detail can be added without breaking anyone).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Repr {
    /// No `Authorization` header.
    #[error(
        "the request has no Authorization header: Bot Service sends `Authorization: Bearer <JWT>`"
    )]
    MissingToken,
    /// The header is not `Bearer <one token>`.
    #[error(
        "the Authorization header is not `Bearer <one JWT>` (scheme Bearer, exactly one token)"
    )]
    BadScheme,
    /// The token, a decoded part of it, or the `Authorization` header exceeds the limit.
    #[error("the {part} is larger than the {limit}-byte limit")]
    TooLarge {
        /// `Authorization header`, `token` or `token header`.
        part: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// Not a well-formed compact JWS.
    #[error("the token is not a well-formed compact JWS: {problem}")]
    Malformed {
        /// What is wrong, in fixed words.
        problem: &'static str,
    },
    /// `alg` is not in the allow-list.
    #[error(
        "the token's `alg` is not in the allow-list (by default RS256, RS384, RS512; `none`, HMAC, \
         ECDSA and PSS are never accepted)"
    )]
    Algorithm,
    /// The header carries `crit`.
    #[error("the token header has a `crit` parameter; botauth understands no critical extensions")]
    CriticalHeader,
    /// The header has no `kid`.
    #[error(
        "the token header has no string `kid`: the key must be named and found in the issuer's JWKS"
    )]
    MissingKeyId,
    /// `kid` is not in the issuer's JWKS.
    #[error(
        "the token's `kid` is not in the issuer's key set (the keys are refetched for an unknown kid \
         at most once per cooldown)"
    )]
    UnknownKeyId,
    /// The key named by `kid` may not be used.
    #[error("the signing key named by `kid` is unusable: {problem}")]
    UnusableKey {
        /// Why, in fixed words.
        problem: &'static str,
    },
    /// The signature does not verify.
    #[error("the token's signature does not verify with the issuer's key")]
    BadSignature,
    /// `iss` is not trusted.
    #[error("claim `iss` is not an issuer of any enabled trust profile")]
    Issuer,
    /// `aud` is not this bot.
    #[error("claim `aud` is not this bot's app id (or a configured audience)")]
    Audience,
    /// A required claim is absent.
    #[error("claim `{claim}` is required but absent")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// A claim has the wrong type.
    #[error("claim `{claim}` has the wrong type or format")]
    ClaimType {
        /// The claim's name.
        claim: &'static str,
    },
    /// The token has expired.
    #[error("the token has expired (`exp` plus the allowed clock skew has passed)")]
    Expired,
    /// The token is not valid yet.
    #[error("the token is not valid yet (`nbf` minus the allowed clock skew is in the future)")]
    NotYetValid,
    /// `serviceurl` differs from the activity's `serviceUrl`.
    #[error("claim `serviceurl` does not match the activity's `serviceUrl`")]
    ServiceUrl,
    /// The key does not endorse the activity's channel.
    #[error(
        "the signing key's endorsements do not include the activity's `channelId` (or, in strict \
         mode, the key has no endorsements)"
    )]
    Endorsement,
    /// `tid` does not match the tenant in `iss`.
    #[error("claim `tid` does not match the tenant in `iss`")]
    Tenant,
    /// The caller is not allowed.
    #[error("the calling app (`appid`/`azp`) is not in the allowed callers")]
    Caller,
    /// The bot's own claims check refused the request.
    #[error(
        "the bot's claims check refused the request: {reason} (the check is the application's, \
         see ValidatorBuilder::claims_check)"
    )]
    ClaimsCheck {
        /// The reason the check gave.
        reason: Cow<'static, str>,
    },
    /// The signing keys could not be obtained.
    #[error("the signing keys from {endpoint} cannot be obtained; the endpoint must be reachable")]
    KeysUnavailable {
        /// The metadata or JWKS URL (without query).
        endpoint: String,
        /// What went wrong.
        #[source]
        source: botauth_core::Error,
    },
    /// The validator's configuration is invalid.
    #[error("validator configuration `{key}`: {message}")]
    Config {
        /// The setting at fault.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl From<Repr> for Error {
    fn from(repr: Repr) -> Self {
        Error(repr)
    }
}

impl Error {
    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        match &self.0 {
            Repr::MissingToken => ErrorKind::MissingToken,
            Repr::BadScheme => ErrorKind::BadScheme,
            Repr::TooLarge { .. } => ErrorKind::TooLarge,
            Repr::Malformed { .. } => ErrorKind::Malformed,
            Repr::Algorithm => ErrorKind::Algorithm,
            Repr::CriticalHeader => ErrorKind::CriticalHeader,
            Repr::MissingKeyId => ErrorKind::MissingKeyId,
            Repr::UnknownKeyId => ErrorKind::UnknownKeyId,
            Repr::UnusableKey { .. } => ErrorKind::UnusableKey,
            Repr::BadSignature => ErrorKind::BadSignature,
            Repr::Issuer => ErrorKind::Issuer,
            Repr::Audience => ErrorKind::Audience,
            Repr::MissingClaim { .. } => ErrorKind::MissingClaim,
            Repr::ClaimType { .. } => ErrorKind::ClaimType,
            Repr::Expired => ErrorKind::Expired,
            Repr::NotYetValid => ErrorKind::NotYetValid,
            Repr::ServiceUrl => ErrorKind::ServiceUrl,
            Repr::Endorsement => ErrorKind::Endorsement,
            Repr::Tenant => ErrorKind::Tenant,
            Repr::Caller => ErrorKind::Caller,
            Repr::ClaimsCheck { .. } => ErrorKind::ClaimsCheck,
            Repr::KeysUnavailable { .. } => ErrorKind::KeysUnavailable,
            Repr::Config { .. } => ErrorKind::Config,
        }
    }

    /// True when the token itself was judged and found bad (an HTTP 401), as opposed to keys
    /// being unavailable (503) or a configuration error.
    pub fn is_rejection(&self) -> bool {
        !matches!(self.0, Repr::KeysUnavailable { .. } | Repr::Config { .. })
    }

    /// True when trying again later may succeed (only when the keys could not be obtained).
    pub fn is_retryable(&self) -> bool {
        matches!(self.0, Repr::KeysUnavailable { .. })
    }

    /// The claim at fault, for [`ErrorKind::MissingClaim`] and [`ErrorKind::ClaimType`]: a
    /// claim's name (`exp`, `aud`, ...), never its value.
    pub fn claim(&self) -> Option<&'static str> {
        match self.0 {
            Repr::MissingClaim { claim } | Repr::ClaimType { claim } => Some(claim),
            _ => None,
        }
    }

    /// The reason the bot's own [claims check](crate::ValidatorBuilder::claims_check) gave, for
    /// [`ErrorKind::ClaimsCheck`].
    pub fn reason(&self) -> Option<&str> {
        match &self.0 {
            Repr::ClaimsCheck { reason } => Some(reason),
            _ => None,
        }
    }

    /// The setting at fault, for [`ErrorKind::Config`] (`client_id`, `inbound.allowed_callers`,
    /// ...); `Display` says what is wrong with it.
    pub fn config_key(&self) -> Option<&str> {
        match &self.0 {
            Repr::Config { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn config(key: &str, message: impl Into<String>) -> Self {
        Error(Repr::Config {
            key: key.to_owned(),
            message: message.into(),
        })
    }

    pub(crate) fn malformed(problem: &'static str) -> Self {
        Error(Repr::Malformed { problem })
    }

    /// The details, for the crate's own tests.
    #[cfg(test)]
    pub(crate) fn repr(&self) -> &Repr {
        &self.0
    }
}

impl From<ClaimsRejection> for Error {
    fn from(rejection: ClaimsRejection) -> Self {
        Error(Repr::ClaimsCheck {
            reason: rejection.into_reason(),
        })
    }
}

/// The result type of this crate's internals.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_classify() {
        let unavailable = Error::from(Repr::KeysUnavailable {
            endpoint: "https://login.botframework.com/v1/.well-known/keys".into(),
            source: botauth_core::Error::Timeout {
                endpoint: "x".into(),
                after: std::time::Duration::from_secs(1),
            },
        });
        assert!(unavailable.is_retryable());
        assert!(!unavailable.is_rejection());
        assert_eq!(unavailable.kind().to_string(), "keys_unavailable");
        assert!(Error::from(Repr::Expired).is_rejection());
        assert!(!Error::from(Repr::Expired).is_retryable());
        assert_eq!(
            Error::from(Repr::ClaimType { claim: "exp" }).kind(),
            ErrorKind::ClaimType
        );
        assert_eq!(
            Error::from(Repr::ClaimType { claim: "exp" }).to_string(),
            "claim `exp` has the wrong type or format"
        );
        let custom = Error::from(ClaimsRejection::new("not the Contoso tenant"));
        assert_eq!(custom.kind(), ErrorKind::ClaimsCheck);
        assert_eq!(custom.kind().to_string(), "claims_check");
        assert!(custom.is_rejection());
        assert!(!custom.is_retryable());
        assert!(
            custom.to_string().contains(": not the Contoso tenant ("),
            "{custom}"
        );
        // Display names the endpoint once; the cause travels in source().
        assert!(!unavailable.to_string().contains("did not answer"));
        assert!(std::error::Error::source(&unavailable).is_some());
    }
}
