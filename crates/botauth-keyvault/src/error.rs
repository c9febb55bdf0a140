//! [`KeyVaultError`]: why a certificate could not be read from Key Vault, and what to do.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use botauth_certificate::{CertificateError, CertificateErrorKind};

/// What went wrong with Key Vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyVaultErrorKind {
    /// No token for the vault could be obtained (the managed identity or the configured
    /// credential failed).
    Token,
    /// The vault refused the token (HTTP 401).
    Unauthorized,
    /// The identity may not read the certificate or its secret (HTTP 403), or the secret is
    /// disabled.
    Forbidden,
    /// The certificate, the version or its secret does not exist (HTTP 404).
    NotFound,
    /// The vault is throttling (HTTP 429); [`KeyVaultError::retry_after`] says for how long.
    Throttled,
    /// The vault could not be reached, did not answer in time, or failed (HTTP 5xx).
    Unavailable,
    /// The vault answered with something that is not what Key Vault sends.
    InvalidResponse,
    /// The secret's content type is neither PKCS#12 nor PEM.
    ContentType,
    /// The certificate's policy marks its key as not exportable: the secret holds no private key.
    NotExportable,
    /// The secret holds no private key.
    NoPrivateKey,
    /// The certificate version is disabled.
    Disabled,
    /// The certificate's validity has not started (`nbf` in the future).
    NotYetValid,
    /// The certificate's validity has ended.
    Expired,
    /// The certificate or key could not be used (see the source: a [`CertificateError`]).
    Certificate,
}

impl fmt::Display for KeyVaultErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyVaultErrorKind::Token => "token",
            KeyVaultErrorKind::Unauthorized => "unauthorized",
            KeyVaultErrorKind::Forbidden => "forbidden",
            KeyVaultErrorKind::NotFound => "not_found",
            KeyVaultErrorKind::Throttled => "throttled",
            KeyVaultErrorKind::Unavailable => "unavailable",
            KeyVaultErrorKind::InvalidResponse => "invalid_response",
            KeyVaultErrorKind::ContentType => "content_type",
            KeyVaultErrorKind::NotExportable => "not_exportable",
            KeyVaultErrorKind::NoPrivateKey => "no_private_key",
            KeyVaultErrorKind::Disabled => "disabled",
            KeyVaultErrorKind::NotYetValid => "not_yet_valid",
            KeyVaultErrorKind::Expired => "expired",
            KeyVaultErrorKind::Certificate => "certificate",
        })
    }
}

type Source = Arc<dyn std::error::Error + Send + Sync>;

/// A Key Vault failure: its [`kind`](Self::kind), a message that says what to do, the HTTP
/// status and `Retry-After` when the vault answered, and the cause. It never holds a token, a
/// private key or a secret's value.
#[derive(Clone)]
#[non_exhaustive]
pub struct KeyVaultError {
    kind: KeyVaultErrorKind,
    message: String,
    status: Option<u16>,
    retry_after: Option<Duration>,
    source: Option<Source>,
}

impl fmt::Debug for KeyVaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVaultError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("status", &self.status)
            .field("retry_after", &self.retry_after)
            .field("source", &self.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl fmt::Display for KeyVaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KeyVaultError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl KeyVaultError {
    pub(crate) fn new(kind: KeyVaultErrorKind, message: impl Into<String>) -> Self {
        KeyVaultError {
            kind,
            message: message.into(),
            status: None,
            retry_after: None,
            source: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> KeyVaultErrorKind {
        self.kind
    }

    /// The vault's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// How long the vault asked to wait (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether trying again later may succeed (throttling, outages, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            KeyVaultErrorKind::Throttled | KeyVaultErrorKind::Unavailable
        ) || (self.kind == KeyVaultErrorKind::Token
            && self
                .source
                .as_deref()
                .and_then(|s| s.downcast_ref::<botauth_core::Error>())
                .is_some_and(botauth_core::Error::is_retryable))
    }

    /// A certificate that failed to load, with the kinds Key Vault users need told apart.
    pub(crate) fn certificate(what: &str, e: CertificateError) -> Self {
        let kind = match e.kind() {
            CertificateErrorKind::Expired => KeyVaultErrorKind::Expired,
            CertificateErrorKind::NoPrivateKey => KeyVaultErrorKind::NoPrivateKey,
            _ => KeyVaultErrorKind::Certificate,
        };
        KeyVaultError::new(kind, format!("{what} cannot be used: {e}")).with_source(e)
    }
}

impl From<KeyVaultError> for botauth_core::Error {
    fn from(e: KeyVaultError) -> Self {
        if e.is_retryable() && e.kind != KeyVaultErrorKind::Token {
            return botauth_core::Error::Unavailable {
                endpoint: "Azure Key Vault".into(),
                status: e.status,
                retry_after: e.retry_after,
                source: Some(Arc::new(e)),
            };
        }
        if e.kind == KeyVaultErrorKind::Token {
            if let Some(inner) = e
                .source
                .as_deref()
                .and_then(|s| s.downcast_ref::<botauth_core::Error>())
                .filter(|inner| inner.is_retryable())
            {
                return inner.clone();
            }
        }
        let message = e.message.clone();
        botauth_core::Error::credential_with_source(message, e)
    }
}
