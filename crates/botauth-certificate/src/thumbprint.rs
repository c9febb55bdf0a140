//! Certificate thumbprints (docs/protocol.md §3): SHA-1 (`x5t`) and SHA-256 (`x5t#S256`) of the DER.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::sha::{sha1, sha256};

use crate::error::{CertificateError, CertificateErrorKind};

/// The thumbprints of one certificate, computed from its DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Thumbprints {
    sha1: [u8; 20],
    sha256: Option<[u8; 32]>,
}

impl Thumbprints {
    /// The thumbprints of the certificate whose DER encoding is `der`.
    pub(crate) fn of_der(der: &[u8]) -> Self {
        Thumbprints {
            sha1: sha1(der),
            sha256: Some(sha256(der)),
        }
    }

    /// Only a SHA-1 thumbprint, as given by a user who has no certificate file (Bot Framework's
    /// thumbprint-only mode). Accepts any case, spaces and colons.
    pub fn from_sha1_hex(hex: &str) -> Result<Self, CertificateError> {
        Ok(Thumbprints {
            sha1: parse_sha1_hex(hex)?,
            sha256: None,
        })
    }

    /// The raw SHA-1 digest.
    pub(crate) fn sha1(&self) -> &[u8; 20] {
        &self.sha1
    }

    /// The SHA-1 thumbprint as 40 upper-case hex characters, as the Azure portal shows it.
    pub fn sha1_hex(&self) -> String {
        self.sha1.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// `x5t`: unpadded base64url of the **raw** 20-byte SHA-1 digest (never of the hex text).
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha1)
    }

    /// `x5t#S256`: unpadded base64url of the raw SHA-256 digest; `None` when only a SHA-1
    /// thumbprint is known.
    pub fn x5t_s256(&self) -> Option<String> {
        self.sha256.map(|d| URL_SAFE_NO_PAD.encode(d))
    }
}

impl fmt::Debug for Thumbprints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thumbprints")
            .field("sha1", &self.sha1_hex())
            .field("x5t#S256", &self.x5t_s256())
            .finish()
    }
}

/// Parses a user-supplied SHA-1 thumbprint: 40 hex characters, any case, spaces and colons
/// ignored (docs/protocol.md §3). The error never echoes the value: a value in the wrong key can be a
/// secret.
pub(crate) fn parse_sha1_hex(text: &str) -> Result<[u8; 20], CertificateError> {
    // Copying from the Windows certificate dialog adds an invisible U+200E mark at the front.
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'\t'))
        .collect();
    let digits = match std::str::from_utf8(&digits) {
        Ok(s) => s.trim_start_matches('\u{200e}'),
        Err(_) => "",
    };
    let invalid = |problem: String| {
        CertificateError::new(
            CertificateErrorKind::InvalidThumbprint,
            format!(
                "the configured thumbprint is not a SHA-1 thumbprint ({problem}): it must be 40 \
                 hexadecimal characters, as shown in the app registration's Certificates & secrets page"
            ),
        )
    };
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(invalid(format!("it contains `{}`", c.escape_debug())));
    }
    if digits.len() != 40 {
        return Err(invalid(format!("it has {} hex digits", digits.len())));
    }
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16)
            .map_err(|_| invalid("it is not hexadecimal".to_owned()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/protocol.md §3's vector.
    #[test]
    fn protocol_vector() {
        let t = Thumbprints::from_sha1_hex("84E05C1D98BCE3A5421D225B140B36E86A3D5534").unwrap();
        assert_eq!(t.x5t(), "hOBcHZi846VCHSJbFAs26Go9VTQ");
        assert_eq!(t.sha1_hex(), "84E05C1D98BCE3A5421D225B140B36E86A3D5534");
        assert_eq!(t.x5t_s256(), None);
    }

    #[test]
    fn any_case_spaces_and_colons() {
        let want = Thumbprints::from_sha1_hex("84E05C1D98BCE3A5421D225B140B36E86A3D5534").unwrap();
        for spelled in [
            "84e05c1d98bce3a5421d225b140b36e86a3d5534",
            "84 e0 5c 1d 98 bc e3 a5 42 1d 22 5b 14 0b 36 e8 6a 3d 55 34",
            "84:E0:5C:1D:98:BC:E3:A5:42:1D:22:5B:14:0B:36:E8:6A:3D:55:34",
            "\u{200e}84E05C1D98BCE3A5421D225B140B36E86A3D5534",
        ] {
            assert_eq!(
                Thumbprints::from_sha1_hex(spelled).unwrap(),
                want,
                "{spelled}"
            );
        }
    }

    #[test]
    fn bad_thumbprints_are_invalid_thumbprint() {
        for bad in [
            "",
            "84E05C1D98BCE3A5421D225B140B36E86A3D553",
            "84E05C1D98BCE3A5421D225B140B36E86A3D553400",
            "84E05C1D98BCE3A5421D225B140B36E86A3D553G",
            "s3cret~value",
        ] {
            let e = Thumbprints::from_sha1_hex(bad).unwrap_err();
            assert_eq!(e.kind(), CertificateErrorKind::InvalidThumbprint, "{bad:?}");
            if !bad.is_empty() {
                assert!(!e.to_string().contains(bad), "the value is echoed: {e}");
            }
        }
    }

    #[test]
    fn x5t_is_of_the_raw_digest() {
        let t = Thumbprints::of_der(b"not really DER");
        assert_eq!(t.x5t().len(), 27);
        assert_eq!(t.x5t_s256().unwrap().len(), 43);
        assert_ne!(t.x5t(), URL_SAFE_NO_PAD.encode(t.sha1_hex()));
    }
}
