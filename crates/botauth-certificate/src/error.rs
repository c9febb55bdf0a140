//! [`CertificateError`]: why a certificate could not be loaded or used.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use botauth_core::config::CertificateConfig;
use botauth_core::{Error, ErrorSource};

use CertificateErrorKind as Kind;

/// What went wrong with a certificate, coarsely: branch on this rather than on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateErrorKind {
    /// A file could not be read (missing, unreadable).
    Io,
    /// The data is not a valid PEM or PFX file, or it is corrupt or truncated.
    Malformed,
    /// The key or PFX is encrypted and no password was configured.
    PasswordRequired,
    /// The password does not open the PFX or the encrypted key.
    WrongPassword,
    /// The PEM data holds no private key (and no key file was given).
    NoPrivateKey,
    /// The data holds no certificate.
    NoCertificate,
    /// The private key is not RSA (Entra ID accepts RSA keys only).
    NotRsa,
    /// The RSA key is shorter than 2048 bits.
    KeyTooSmall,
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// The certificate's validity ended.
    Expired,
    /// A configured thumbprint is not 40 hexadecimal characters.
    InvalidThumbprint,
    /// A configured thumbprint differs from the certificate's computed SHA-1 thumbprint.
    ThumbprintMismatch,
    /// An option cannot be honoured with this kind of source (e.g. `x5c` without a certificate).
    Unsupported,
    /// OpenSSL failed to sign an assertion.
    Signing,
}

impl fmt::Display for CertificateErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertificateErrorKind::Io => "io",
            CertificateErrorKind::Malformed => "malformed",
            CertificateErrorKind::PasswordRequired => "password_required",
            CertificateErrorKind::WrongPassword => "wrong_password",
            CertificateErrorKind::NoPrivateKey => "no_private_key",
            CertificateErrorKind::NoCertificate => "no_certificate",
            CertificateErrorKind::NotRsa => "not_rsa",
            CertificateErrorKind::KeyTooSmall => "key_too_small",
            CertificateErrorKind::KeyMismatch => "key_mismatch",
            CertificateErrorKind::Expired => "expired",
            CertificateErrorKind::InvalidThumbprint => "invalid_thumbprint",
            CertificateErrorKind::ThumbprintMismatch => "thumbprint_mismatch",
            CertificateErrorKind::Unsupported => "unsupported",
            CertificateErrorKind::Signing => "signing",
        })
    }
}

/// Why a certificate could not be loaded or used. `Display` says what to fix; the cause (an
/// OpenSSL or I/O error) is in [`source`](std::error::Error::source). It never holds key material
/// or a password.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct CertificateError {
    kind: CertificateErrorKind,
    message: String,
    #[source]
    source: Option<ErrorSource>,
}

impl CertificateError {
    pub(crate) fn new(kind: CertificateErrorKind, message: impl Into<String>) -> Self {
        CertificateError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        // A key pasted where its path belongs must not end up in a message or a log.
        let text = path.to_string_lossy();
        if text.contains("-----BEGIN") || text.contains('\n') {
            return Self::new(
                Kind::Malformed,
                "a configured certificate or key path holds PEM text, not a file path: save the \
                 PEM in a file and configure its path",
            );
        }
        let what = match e.kind() {
            std::io::ErrorKind::NotFound => "does not exist: check the configured path",
            std::io::ErrorKind::PermissionDenied => {
                "cannot be read (permission denied): let the bot's user read it"
            }
            _ => "cannot be read",
        };
        Self::new(
            Kind::Io,
            format!("certificate file {} {what}", path.display()),
        )
        .with_source(e)
    }

    /// The kind of failure.
    pub fn kind(&self) -> CertificateErrorKind {
        self.kind
    }

    /// The certificate error behind a botauth [`Error`], if it has one: branch on its
    /// [`kind`](Self::kind) after a credential failed to load.
    pub fn find_in(error: &Error) -> Option<&CertificateError> {
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            if let Some(e) = s.downcast_ref::<CertificateError>() {
                return Some(e);
            }
            source = s.source();
        }
        None
    }

    /// Whether trying again unchanged may succeed: only reading a file (it may be mid-rotation).
    pub fn is_retryable(&self) -> bool {
        self.kind == CertificateErrorKind::Io
    }
}

impl CertificateError {
    /// The botauth error for a certificate configured by `config` that failed to load, naming
    /// the configuration key the user wrote (`CertificateThumbprint`, `…__CertPemFile`,
    /// `AzureAd__ClientCredentials__0__CertificatePassword`) rather than botauth's own field.
    /// Thumbprint problems are configuration errors; the others keep this error as their source.
    pub(crate) fn for_config(self, config: &CertificateConfig) -> Error {
        let keys = &config.keys;
        let mentions = |path: &Option<std::path::PathBuf>| {
            path.as_ref()
                .is_some_and(|p| self.message.contains(&p.display().to_string()))
        };
        let key = match self.kind {
            CertificateErrorKind::InvalidThumbprint | CertificateErrorKind::ThumbprintMismatch => {
                return Error::config(keys.thumbprint(), self.message);
            }
            CertificateErrorKind::PasswordRequired | CertificateErrorKind::WrongPassword => {
                keys.password()
            }
            _ if config.base64_pfx.is_some() => keys.base64_pfx(),
            _ if mentions(&config.key_path) && !mentions(&config.certificate_path) => {
                keys.key_path()
            }
            _ if config.certificate_path.is_none() => keys.key_path(),
            _ => keys.certificate_path(),
        };
        Error::Credential {
            message: format!("the certificate configured by {key} cannot be loaded"),
            source: Some(Arc::new(self)),
        }
    }
}

impl From<CertificateError> for Error {
    /// Thumbprint problems are configuration errors (docs/protocol.md §3); everything else is a
    /// credential that cannot be loaded, with the certificate error as its source so that
    /// [`CertificateError::kind`] stays reachable by downcasting.
    fn from(e: CertificateError) -> Self {
        match e.kind {
            CertificateErrorKind::InvalidThumbprint | CertificateErrorKind::ThumbprintMismatch => {
                Error::config("thumbprint", e.message)
            }
            _ => Error::Credential {
                message: "the certificate credential cannot be loaded".to_owned(),
                source: Some(Arc::new(e)),
            },
        }
    }
}
