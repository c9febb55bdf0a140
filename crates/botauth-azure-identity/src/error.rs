//! Errors across the bridge, both ways.
//!
//! Azure → botauth: an `azure_core::Error` carries the HTTP answer it came from (status, headers,
//! body) somewhere in its chain; botauth's typed errors are made from that answer with the same
//! rules botauth's own clients apply (docs/protocol.md §2, §4 and §5): 429 is `Throttled` with
//! the server's `Retry-After`, 5xx (and the statuses an identity endpoint sends while it starts)
//! is `Unavailable`, an Entra error document is `Rejected` with the `AADSTS` hint, another 400,
//! 401 or 403 (an identity endpoint's refusal) is a `Credential` error, and a transport failure
//! is `Unavailable`. The Azure error stays in the chain as the cause, with its
//! troubleshooting link.
//!
//! botauth → Azure: every failure is `ErrorKind::Credential`, the kind azure_identity's own
//! credentials report, so an Azure SDK client's retry policy does not repeat the request: the
//! token manager has already retried and honoured `Retry-After`. The botauth error is the
//! source (`downcast_ref::<botauth_core::Error>()` gives it back); the message repeats its whole
//! chain, because Azure SDK callers print only the message.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azure_core::error::ErrorKind as AzureKind;
use azure_core::http::RawResponse;
use azure_core::http::headers::RETRY_AFTER;
use botauth_core::{CredentialInfo, EntraError, Error, ErrorSource, Report};

/// The botauth error for a failed `TokenCredential::get_token` of the credential `info` describes.
pub(crate) fn from_azure(error: azure_core::Error, info: &CredentialInfo) -> Error {
    let endpoint = endpoint_name(info);
    if let Some((status, raw)) = http_answer(&error) {
        return from_answer(error_source(error), &endpoint, status, raw);
    }
    if let Some(code) = aadsts_code(&error) {
        let hint = entra_hint(code)
            .map(|h| format!(": {h}"))
            .unwrap_or_default();
        return Error::Credential {
            message: format!(
                "Entra ID refused the Azure credential `{}` (AADSTS{code}){hint}; the Azure SDK \
                 could not read the rest of Entra's answer, whose text follows",
                info.kind
            ),
            source: Some(error_source(error)),
        };
    }
    if kinds(&error).any(|k| matches!(k, AzureKind::Connection | AzureKind::Io)) {
        return Error::Unavailable {
            endpoint,
            status: None,
            retry_after: None,
            source: Some(error_source(error)),
        };
    }
    let message = format!(
        "the Azure credential `{}` could not get a token: the Azure SDK's reason and \
         troubleshooting link follow (for a developer-tools credential, sign in with `az login` or \
         `azd auth login`; for a managed identity, check it is enabled on this resource)",
        info.kind
    );
    Error::Credential {
        message,
        source: Some(error_source(error)),
    }
}

/// The `AADSTS` code in the text of `error`'s chain, when the HTTP answer itself is gone.
///
/// azure_identity 1.0 reads Entra's error document into a borrowed `&str`, which fails on any
/// JSON escape, and Entra's `error_description` always has some (`\r\nTrace ID: …`). So a real
/// Entra rejection reaches us as a `DataConversion` error whose text quotes the description,
/// without the status or the rest of the document. The code leads the description
/// (`AADSTS7000215: Invalid client secret provided.`), so it is still known, and with it the hint;
/// the status is not (a 400 and a 503 look alike), so this is a `Credential` error, not an
/// `Rejected` one with a made-up status.
fn aadsts_code(error: &azure_core::Error) -> Option<u32> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if let Some(at) = text.find("AADSTS") {
            let digits: String = text[at + "AADSTS".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(code) = digits.parse() {
                return Some(code);
            }
        }
        next = e.source();
    }
    None
}

/// botauth's hint for an `AADSTS` code: botauth's Entra error table, asked with a document that
/// holds only the code.
fn entra_hint(code: u32) -> Option<&'static str> {
    let body = format!(r#"{{"error":"","error_codes":[{code}]}}"#);
    EntraError::from_body(400, body.as_bytes(), None).and_then(|e| e.hint())
}

/// `error` as the cause of a botauth error: reference counted, since botauth errors are `Clone`.
fn error_source(error: azure_core::Error) -> ErrorSource {
    Arc::new(error)
}

/// The botauth error for a non-success HTTP answer, as botauth's own token clients map it.
fn from_answer(cause: ErrorSource, endpoint: &str, status: u16, raw: Option<AnswerParts>) -> Error {
    let retry_after = raw.as_ref().and_then(|r| r.retry_after);
    // Only a document with an `AADSTS` code is Entra's: identity endpoints answer OAuth-shaped
    // errors too (`{"error":"invalid_request","error_description":"Identity not found"}`), and
    // those are refusals of the identity, not of an app registration.
    let entra = raw
        .as_ref()
        .and_then(|r| EntraError::from_body(status, &r.body, retry_after))
        .filter(|e| e.code().is_some());
    match status {
        429 => Error::Throttled {
            endpoint: endpoint.to_owned(),
            retry_after,
        },
        // 404, 408 and 410 are what identity endpoints answer while the platform's agent starts
        // (docs/protocol.md §4); like 5xx, worth another try later.
        404 | 408 | 410 | 500..=599 => Error::Unavailable {
            endpoint: endpoint.to_owned(),
            status: Some(status),
            retry_after,
            source: Some(entra.map_or(cause, |e| Arc::new(e) as ErrorSource)),
        },
        _ => match entra {
            Some(e) => e.into(),
            None if matches!(status, 400 | 401 | 403) => Error::Credential {
                message: format!(
                    "{endpoint} refused the token request (HTTP {status}): check that the identity \
                     exists and is assigned to this resource, and the credential's settings; the \
                     Azure SDK's reason follows"
                ),
                source: Some(cause),
            },
            None => Error::InvalidResponse {
                endpoint: endpoint.to_owned(),
                status,
                message: "an unexpected status from the Azure credential's token endpoint".into(),
            },
        },
    }
}

/// What botauth reads of an HTTP answer: the body (an Entra error document, maybe) and
/// `Retry-After`.
struct AnswerParts {
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl AnswerParts {
    fn new(raw: &RawResponse) -> Self {
        AnswerParts {
            body: raw.body().as_ref().to_vec(),
            retry_after: retry_after(raw),
        }
    }
}

/// The first HTTP answer in `error`'s chain: its status and, when the Azure SDK kept it, its
/// parts.
fn http_answer(error: &azure_core::Error) -> Option<(u16, Option<AnswerParts>)> {
    chain(error).find_map(|e| match e.kind() {
        AzureKind::HttpResponse {
            status,
            raw_response,
            ..
        } => Some((
            u16::from(*status),
            raw_response.as_deref().map(AnswerParts::new),
        )),
        _ => None,
    })
}

/// The Azure errors in `error`'s chain, outermost first (azure_identity wraps the transport's
/// error in a `Credential` error of its own).
fn chain(error: &azure_core::Error) -> impl Iterator<Item = &azure_core::Error> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    std::iter::from_fn(move || {
        while let Some(e) = next {
            next = e.source();
            if let Some(azure) = e.downcast_ref::<azure_core::Error>() {
                return Some(azure);
            }
        }
        None
    })
}

fn kinds(error: &azure_core::Error) -> impl Iterator<Item = &AzureKind> {
    chain(error).map(azure_core::Error::kind)
}

/// `Retry-After` of an Azure answer, read as botauth reads its own (delta-seconds or an HTTP
/// date).
fn retry_after(raw: &RawResponse) -> Option<Duration> {
    let value = raw.headers().get_optional_str(&RETRY_AFTER)?;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_str(value).ok()?,
    );
    // The Azure SDK's credentials read the system clock for expiry, so a date here is measured
    // against the same clock.
    botauth_http::internal::retry_after(&headers, SystemTime::now())
}

/// How errors name the credential's endpoint when the Azure SDK does not say: its authority
/// host, when the caller described one, else the credential.
fn endpoint_name(info: &CredentialInfo) -> String {
    match &info.authority_host {
        Some(host) => host.clone(),
        None => format!("the Azure credential `{}`", info.kind),
    }
}

/// The Azure error for a failed botauth token request of the credential `kind`.
pub(crate) fn to_azure(error: Error, kind: &str) -> azure_core::Error {
    let message = format!(
        "BotTokenCredential authentication failed. botauth credential `{kind}`: {}",
        Report::new(&error)
    );
    azure_core::Error::with_error(AzureKind::Credential, error, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::StatusCode;
    use azure_core::http::headers::Headers;
    use botauth_core::ErrorKind;

    fn answer(
        status: u16,
        headers: &[(&'static str, &'static str)],
        body: &str,
    ) -> azure_core::Error {
        let mut h = Headers::new();
        for (name, value) in headers {
            h.insert(*name, *value);
        }
        let raw = RawResponse::from_bytes(StatusCode::from(status), h, body.to_owned());
        let inner = azure_core::Error::new(
            AzureKind::HttpResponse {
                status: StatusCode::from(status),
                error_code: None,
                raw_response: Some(Box::new(raw)),
            },
            "the service's description",
        );
        // As azure_identity's `authentication_error` wraps it.
        azure_core::Error::with_error(
            AzureKind::Credential,
            inner,
            "ClientSecretCredential authentication failed. the service's description",
        )
    }

    fn info() -> CredentialInfo {
        CredentialInfo {
            authority_host: Some("https://login.example".into()),
            ..CredentialInfo::new("azure_client_secret")
        }
    }

    #[test]
    fn an_entra_rejection_keeps_its_code_and_hint() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1","error_codes":[7000215]}"#;
        let e = from_azure(answer(401, &[], body), &info());
        assert_eq!(e.kind(), ErrorKind::Rejected);
        let entra = e.as_entra().expect("an Entra error");
        assert_eq!(entra.code(), Some(7000215));
        assert_eq!(entra.status(), 401);
        assert!(e.to_string().contains("the client secret is wrong"), "{e}");
        assert!(!e.is_retryable());
    }

    #[test]
    fn throttling_carries_retry_after_in_both_forms() {
        let e = from_azure(answer(429, &[("retry-after", "7")], "{}"), &info());
        assert_eq!(e.kind(), ErrorKind::Throttled);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(
            e.to_string()
                .starts_with("https://login.example is throttling"),
            "{e}"
        );

        let e = from_azure(
            answer(
                429,
                &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
                "{}",
            ),
            &info(),
        );
        assert_eq!(
            e.retry_after(),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
    }

    #[test]
    fn server_errors_and_starting_agents_are_unavailable() {
        for status in [404, 408, 410, 500, 503] {
            let e = from_azure(answer(status, &[("retry-after", "3")], ""), &info());
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{status}");
            assert!(e.is_retryable());
            assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
            assert!(matches!(e, Error::Unavailable { status: Some(s), .. } if s == status));
        }
        // A 5xx with an Entra document keeps the document as the cause.
        let body = r#"{"error":"temporarily_unavailable","error_codes":[50196]}"#;
        let e = from_azure(answer(503, &[], body), &info());
        let cause = StdError::source(&e).expect("a cause");
        assert_eq!(
            cause
                .downcast_ref::<EntraError>()
                .and_then(EntraError::code),
            Some(50196)
        );
    }

    #[test]
    fn an_identity_endpoint_refusal_is_a_credential_error_with_the_azure_reason() {
        let e = from_azure(
            answer(
                400,
                &[],
                r#"{"statusCode":400,"message":"Identity not found"}"#,
            ),
            &info(),
        );
        assert_eq!(e.kind(), ErrorKind::Credential);
        let line = Report::new(&e).to_string();
        assert!(
            line.starts_with("https://login.example refused the token request (HTTP 400)"),
            "{line}"
        );
        assert!(
            line.ends_with(
                "ClientSecretCredential authentication failed. the service's description"
            ),
            "{line}"
        );

        // An identity endpoint's OAuth-shaped refusal has no AADSTS code: not Entra's.
        let imds = r#"{"error":"invalid_request","error_description":"Identity not found"}"#;
        let e = from_azure(answer(400, &[], imds), &info());
        assert_eq!(e.kind(), ErrorKind::Credential);

        let e = from_azure(answer(302, &[], ""), &info());
        assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    }

    #[test]
    fn an_answer_azure_identity_could_not_parse_still_names_the_code_and_hint() {
        // What azure_identity 1.0 returns for Entra's AADSTS7000215 (its serde error, wrapped).
        let serde = azure_core::Error::with_message(
            AzureKind::DataConversion,
            r#"invalid type: string "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1", expected a borrowed string at line 1 column 479"#,
        );
        let wrapped = azure_core::Error::with_error(
            AzureKind::Credential,
            serde,
            "ClientSecretCredential authentication failed. invalid type: string …",
        );
        let e = from_azure(wrapped, &info());
        assert_eq!(e.kind(), ErrorKind::Credential);
        assert!(!e.is_retryable());
        assert!(
            e.to_string().starts_with(
                "Entra ID refused the Azure credential `azure_client_secret` (AADSTS7000215): the \
                 client secret is wrong"
            ),
            "{e}"
        );
        // A code botauth has no hint for is still named.
        let other =
            azure_core::Error::with_message(AzureKind::DataConversion, "\"AADSTS90099: x\"");
        let e = from_azure(other, &info());
        assert!(
            e.to_string().contains("(AADSTS90099); the Azure SDK"),
            "{e}"
        );
    }

    #[test]
    fn transport_failures_are_unavailable_and_local_ones_credential_errors() {
        let refused = azure_core::Error::with_error(
            AzureKind::Credential,
            azure_core::Error::with_message(AzureKind::Connection, "connection refused"),
            "ManagedIdentityCredential authentication failed. connection refused",
        );
        let e = from_azure(refused, &CredentialInfo::new("azure_managed_identity"));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(
            e.to_string(),
            "the Azure credential `azure_managed_identity` is unavailable"
        );

        let no_cli = azure_core::Error::with_message(
            AzureKind::Credential,
            "AzureCliCredential authentication failed. Azure CLI not found on path",
        );
        let e = from_azure(no_cli, &CredentialInfo::new("azure_cli"));
        assert_eq!(e.kind(), ErrorKind::Credential);
        let line = Report::new(&e).to_string();
        assert!(line.contains("`az login`"), "{line}");
        assert!(line.ends_with("Azure CLI not found on path"), "{line}");
    }

    #[test]
    fn botauth_errors_reach_azure_as_credential_errors_with_the_whole_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "bot.pem: no such file");
        let e = to_azure(
            Error::credential_with_source("cannot read the certificate", io),
            "certificate",
        );
        assert_eq!(e.kind(), &AzureKind::Credential);
        assert_eq!(
            e.to_string(),
            "BotTokenCredential authentication failed. botauth credential `certificate`: cannot \
             read the certificate: bot.pem: no such file"
        );
        let inner = e.downcast_ref::<Error>().expect("the botauth error");
        assert_eq!(inner.kind(), ErrorKind::Credential);
    }
}
