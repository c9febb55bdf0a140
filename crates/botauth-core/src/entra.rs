//! Entra ID (`AADSTS…`) errors and the hint botauth gives for each code (docs/protocol.md §2).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// An error answer from an Entra ID token endpoint.
///
/// botauth branches on [`error`](Self::error) and the numeric [`error_codes`](Self::error_codes)
/// (never on the free-text description) and adds a hint saying what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntraError {
    /// HTTP status of the answer.
    status: u16,
    /// The OAuth2 `error` value, e.g. `invalid_client`.
    error: String,
    /// The first line of `error_description` (the `AADSTSnnn: …` sentence, without the trace block).
    description: String,
    /// The numeric `AADSTS` codes, most specific first.
    error_codes: Vec<u32>,
    /// Entra's `trace_id`: quote it to Microsoft support.
    trace_id: Option<String>,
    /// Entra's `correlation_id` (botauth sends its own `client-request-id`, which Entra echoes here).
    correlation_id: Option<String>,
    /// How long the server asked us to wait (`Retry-After`).
    retry_after: Option<Duration>,
}

#[derive(Deserialize)]
struct Wire {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
}

/// What to do about an error code, and whether reloading the credential once may cure it.
struct CodeInfo {
    codes: &'static [u32],
    hint: &'static str,
    reload_once: bool,
}

/// The table of docs/protocol.md §2, plus the codes a misconfigured request commonly meets.
const CODES: &[CodeInfo] = &[
    CodeInfo {
        codes: &[7000215],
        hint: "the client secret is wrong: check you used the secret's value, not its Secret ID, and that it belongs to this app registration",
        reload_once: false,
    },
    CodeInfo {
        codes: &[7000222],
        hint: "the client secret has expired: create a new one under Certificates & secrets in the app registration and update your configuration",
        reload_once: false,
    },
    CodeInfo {
        codes: &[700016],
        hint: "the application was not found in this tenant: check the client id and use the bot's own tenant id (single-tenant apps cannot use `botframework.com`)",
        reload_once: false,
    },
    CodeInfo {
        codes: &[90002],
        hint: "the tenant was not found: check the tenant id (a GUID or a verified domain of your directory)",
        reload_once: false,
    },
    CodeInfo {
        codes: &[700027],
        hint: "the certificate is not registered on the app (key was not found): upload its public part under Certificates & secrets, or check the thumbprint",
        reload_once: true,
    },
    CodeInfo {
        codes: &[7000274],
        hint: "the client assertion's signature is invalid: the private key does not match the registered certificate",
        reload_once: true,
    },
    CodeInfo {
        codes: &[700024],
        hint: "the client assertion is outside its validity window: check this host's clock (NTP)",
        reload_once: true,
    },
    CodeInfo {
        codes: &[1000502, 7000214, 7000277],
        hint: "the certificate has expired or been revoked: register a new certificate and configure it",
        reload_once: true,
    },
    CodeInfo {
        codes: &[700021],
        hint: "the client assertion's `iss`/`sub` do not equal the client id: check the client id in your configuration",
        reload_once: false,
    },
    CodeInfo {
        codes: &[700023],
        hint: "the client assertion's audience is wrong: it must be the exact token endpoint URL of the tenant",
        reload_once: false,
    },
    CodeInfo {
        codes: &[70021, 700211, 700212, 700213],
        hint: "no federated identity credential on the app matches the presented assertion: check the issuer, subject and audience of the app's federated credentials",
        reload_once: false,
    },
    CodeInfo {
        codes: &[1002012, 70011],
        hint: "the scope is not valid: the client-credentials grant needs exactly one `<resource>/.default` scope, e.g. https://api.botframework.com/.default",
        reload_once: false,
    },
    CodeInfo {
        codes: &[7000216],
        hint: "the request carried no client credential: configure a secret, a certificate or a federated credential",
        reload_once: false,
    },
    CodeInfo {
        codes: &[50027],
        hint: "the client assertion is not a well-formed JWT",
        reload_once: false,
    },
];

impl EntraError {
    /// Parses an Entra error body. Returns `None` when the body is not an Entra error document,
    /// so the caller can report an unusable response instead.
    pub fn from_body(status: u16, body: &[u8], retry_after: Option<Duration>) -> Option<Self> {
        let wire: Wire = serde_json::from_slice(body).ok()?;
        let description = wire
            .error_description
            .as_deref()
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut error_codes = wire.error_codes;
        if error_codes.is_empty() {
            // Some proxies and older endpoints only carry the code inside the description.
            if let Some(code) = description
                .strip_prefix("AADSTS")
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse().ok())
            {
                error_codes.push(code);
            }
        }
        Some(EntraError {
            status,
            error: wire.error,
            description,
            error_codes,
            trace_id: wire.trace_id,
            correlation_id: wire.correlation_id,
            retry_after,
        })
    }

    /// HTTP status of the answer.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The OAuth2 `error` value, e.g. `invalid_client`.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The first line of `error_description` (the `AADSTSnnn: …` sentence, without the trace block).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The numeric `AADSTS` codes, most specific first.
    pub fn error_codes(&self) -> &[u32] {
        &self.error_codes
    }

    /// Entra's `trace_id`: quote it to Microsoft support.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// Entra's `correlation_id` (botauth sends its own `client-request-id`, which Entra echoes here).
    pub fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// How long the server asked us to wait (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The most specific `AADSTS` code, if any.
    pub fn code(&self) -> Option<u32> {
        self.error_codes.first().copied()
    }

    fn info(&self) -> Option<&'static CodeInfo> {
        self.error_codes
            .iter()
            .find_map(|code| CODES.iter().find(|i| i.codes.contains(code)))
    }

    /// What to do about this error, when botauth knows the code.
    pub fn hint(&self) -> Option<&'static str> {
        self.info().map(|i| i.hint)
    }

    /// Whether reloading the credential (a rotated certificate, a fresh assertion) and retrying once
    /// may cure this error (Microsoft.Identity.Web does the same for these codes).
    pub fn is_reload_once(&self) -> bool {
        self.info().is_some_and(|i| i.reload_once)
    }

    /// Whether trying again later, unchanged, may succeed.
    pub fn is_retryable(&self) -> bool {
        self.status == 429
            || self.status >= 500
            || matches!(
                self.error.as_str(),
                "temporarily_unavailable" | "server_error"
            )
    }
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entra ID rejected the token request ({}", self.error)?;
        if let Some(code) = self.code() {
            write!(f, ", AADSTS{code}")?;
        }
        f.write_str(")")?;
        match self.hint() {
            Some(hint) => write!(f, ": {hint}")?,
            None if !self.description.is_empty() => write!(f, ": {}", self.description)?,
            None => {}
        }
        if let Some(t) = &self.trace_id {
            write!(f, " [trace id {t}")?;
            if let Some(c) = &self.correlation_id {
                write!(f, ", correlation id {c}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

impl std::error::Error for EntraError {}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t1\r\nCorrelation ID: c1\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[7000215],"timestamp":"2026-01-01 00:00:00Z","trace_id":"t1","correlation_id":"c1"}"#;

    #[test]
    fn parses_an_entra_error_and_hints() {
        let e = EntraError::from_body(401, BODY.as_bytes(), None).unwrap();
        assert_eq!(e.error, "invalid_client");
        assert_eq!(e.code(), Some(7000215));
        assert_eq!(
            e.description,
            "AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(e.trace_id.as_deref(), Some("t1"));
        assert_eq!(e.correlation_id.as_deref(), Some("c1"));
        assert!(!e.is_retryable());
        assert!(!e.is_reload_once());
        assert_eq!(
            e.to_string(),
            "Entra ID rejected the token request (invalid_client, AADSTS7000215): the client secret is \
             wrong: check you used the secret's value, not its Secret ID, and that it belongs to this \
             app registration [trace id t1, correlation id c1]"
        );
    }

    #[test]
    fn every_protocol_code_has_a_hint() {
        for code in [
            7000215, 7000222, 700016, 700027, 7000274, 700024, 1000502, 7000214, 7000277, 700021,
            700023, 70021, 700211, 700212, 700213, 1002012, 70011,
        ] {
            let e = EntraError {
                status: 400,
                error: "invalid_request".into(),
                description: String::new(),
                error_codes: vec![code],
                trace_id: None,
                correlation_id: None,
                retry_after: None,
            };
            assert!(e.hint().is_some(), "no hint for {code}");
        }
    }

    #[test]
    fn reload_once_codes_follow_the_protocol_table() {
        let reload = |code| {
            EntraError::from_body(
                401,
                format!(r#"{{"error":"invalid_client","error_codes":[{code}]}}"#).as_bytes(),
                None,
            )
            .unwrap()
            .is_reload_once()
        };
        for code in [700027, 7000274, 700024, 1000502, 7000214, 7000277] {
            assert!(reload(code), "{code} should reload once");
        }
        for code in [7000215, 7000222, 700016, 700021, 700023, 70021, 1002012] {
            assert!(!reload(code), "{code} should not reload");
        }
    }

    #[test]
    fn only_the_six_protocol_codes_reload_once() {
        let mut reload: Vec<u32> = CODES
            .iter()
            .filter(|i| i.reload_once)
            .flat_map(|i| i.codes.iter().copied())
            .collect();
        reload.sort_unstable();
        assert_eq!(reload, [700024, 700027, 1000502, 7000214, 7000274, 7000277]);
    }

    #[test]
    fn code_from_description_when_codes_are_absent() {
        let e = EntraError::from_body(
            400,
            br#"{"error":"invalid_scope","error_description":"AADSTS1002012: The provided value for scope x is not valid."}"#,
            None,
        )
        .unwrap();
        assert_eq!(e.code(), Some(1002012));
        assert!(e.hint().unwrap().contains("/.default"));
    }

    #[test]
    fn unknown_codes_fall_back_to_the_description() {
        let e = EntraError::from_body(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS12345: Something odd.\r\nTrace ID: x","error_codes":[12345]}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "Entra ID rejected the token request (invalid_request, AADSTS12345): AADSTS12345: Something odd."
        );
    }

    #[test]
    fn not_an_entra_body() {
        assert!(EntraError::from_body(500, b"<html>oops</html>", None).is_none());
        assert!(EntraError::from_body(500, br#"{"message":"x"}"#, None).is_none());
    }

    #[test]
    fn server_errors_are_retryable() {
        let e =
            EntraError::from_body(503, br#"{"error":"temporarily_unavailable"}"#, None).unwrap();
        assert!(e.is_retryable());
    }
}
