//! App registrations: the client ids the token endpoint knows and the credentials they accept.

use openssl::asn1::{Asn1Object, Asn1ObjectRef};
use openssl::x509::X509NameRef;

/// Tenant of the demo app.
pub const DEMO_TENANT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// Client id of the demo app.
pub const DEMO_CLIENT_ID: &str = "00000000-0000-0000-0000-00000000b07a";

/// Client secret of the demo app. It contains `+ / = ~` so that form-encoding bugs show.
pub const DEMO_CLIENT_SECRET: &str = "sandbox~Secret+with/odd=chars_0123456789";

/// An app registration in the sandbox's directory.
#[derive(Clone)]
pub struct AppRegistration {
    /// Application (client) id.
    pub(crate) client_id: String,
    /// The tenant the app lives in; token requests for other tenants answer AADSTS700016.
    pub(crate) tenant_id: String,
    /// Accepted client secret values.
    pub(crate) secrets: Vec<String>,
    /// Registered certificates (DER X.509) for client assertions.
    pub(crate) certificates: Vec<Vec<u8>>,
    /// Federated identity credentials.
    pub(crate) federated: Vec<FederatedCredential>,
    /// Subject Name + Issuer trust, added with [`AppRegistration::with_trusted_subject`].
    pub(crate) trusted_subjects: Vec<TrustedSubject>,
}

impl AppRegistration {
    /// An app with no credentials yet.
    pub fn new(client_id: impl Into<String>, tenant_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            tenant_id: tenant_id.into(),
            secrets: Vec::new(),
            certificates: Vec::new(),
            federated: Vec::new(),
            trusted_subjects: Vec::new(),
        }
    }

    /// Adds an accepted client secret.
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Adds a certificate (DER X.509) whose key may sign client assertions.
    #[must_use]
    pub fn with_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.certificates.push(der.into());
        self
    }

    /// Trusts client certificates by Subject Name + Issuer (SNI): an assertion whose `x5c` leaf
    /// has subject `subject`, chains to `issuer_ca_der` (DER X.509, the trust anchor; the leaf
    /// may be issued by it directly or through intermediates sent in the rest of `x5c`) and is
    /// within its validity, is accepted without the leaf being registered. That is the point of
    /// SNI: a renewed certificate works without touching the app registration.
    ///
    /// `subject` is compared in RFC 4514 string order, i.e. the *last* RDN of the certificate's
    /// subject first, as `openssl x509 -noout -subject -nameopt RFC2253` and .NET's
    /// `X500DistinguishedName.Name` print it: a certificate made with
    /// `-subj "/CN=bot.contoso.com/O=Contoso"` has the subject `O=Contoso, CN=bot.contoso.com`.
    /// Attributes are separated by `,` (spaces around it are ignored); attribute types are
    /// OpenSSL short names (`CN`, `O`, `OU`, `C`, `L`, `ST`, `emailAddress`, …), .NET's
    /// `E`, `S` and `G`, or dotted OIDs (`2.5.4.3`, `OID.2.5.4.3`), in any case; values compare exactly except that ASCII letters
    /// ignore case, with RFC 4514 backslash escapes (`\,`, `\+`, `\\`, `\4C`) for special
    /// characters. Multi-valued RDNs (`+`) and quoted values are not supported: such a subject
    /// matches no certificate.
    #[must_use]
    pub(crate) fn with_trusted_subject(
        mut self,
        subject: impl Into<String>,
        issuer_ca_der: impl Into<Vec<u8>>,
    ) -> Self {
        self.trusted_subjects.push(TrustedSubject {
            subject: subject.into(),
            issuer_ca_der: issuer_ca_der.into(),
        });
        self
    }

    /// Adds a federated identity credential.
    #[must_use]
    pub fn with_federated(mut self, credential: FederatedCredential) -> Self {
        self.federated.push(credential);
        self
    }
}

impl std::fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("certificates", &self.certificates.len())
            .field("federated", &self.federated)
            .field("trusted_subjects", &self.trusted_subjects)
            .finish()
    }
}

/// A subject name trusted when issued under a CA, see [`AppRegistration::with_trusted_subject`].
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TrustedSubject {
    subject: String,
    /// The trust anchor (DER X.509).
    pub(crate) issuer_ca_der: Vec<u8>,
}

impl TrustedSubject {
    /// Whether a certificate's subject `name` is this subject, by the rules on
    /// [`AppRegistration::with_trusted_subject`].
    pub(crate) fn names(&self, name: &X509NameRef) -> bool {
        let Some(expected) = parse_rfc4514(&self.subject) else {
            return false;
        };
        let mut actual: Vec<_> = name.entries().collect();
        // RFC 4514 writes the RDN sequence backwards.
        actual.reverse();
        expected.len() == actual.len()
            && expected.iter().zip(actual).all(|((kind, value), entry)| {
                same_type(kind, entry.object())
                    && entry
                        .data()
                        .to_string()
                        .is_ok_and(|actual_value| actual_value.eq_ignore_ascii_case(value))
            })
    }
}

impl std::fmt::Debug for TrustedSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedSubject")
            .field("subject", &self.subject)
            .field("issuer_ca_der_len", &self.issuer_ca_der.len())
            .finish()
    }
}

/// Attribute type names that differ between .NET's `X500DistinguishedName` and OpenSSL.
const TYPE_ALIASES: &[(&str, &str)] = &[("E", "emailAddress"), ("S", "ST"), ("G", "GN")];

/// Whether the attribute type written as `kind` (a short name, a .NET alias, or a dotted OID
/// with or without .NET's `OID.` prefix) is `actual`.
fn same_type(kind: &str, actual: &Asn1ObjectRef) -> bool {
    let kind = match kind.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("OID.") => &kind[4..],
        _ => kind,
    };
    if kind.starts_with(|c: char| c.is_ascii_digit()) {
        return Asn1Object::from_str(kind)
            .is_ok_and(|oid| oid.as_slice() == actual.to_owned().as_slice());
    }
    let kind = TYPE_ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(kind))
        .map_or(kind, |(_, name)| name);
    actual
        .nid()
        .short_name()
        .is_ok_and(|name| name.eq_ignore_ascii_case(kind))
}

/// Splits an RFC 4514 distinguished name into `(type, value)` pairs, in the order written, with
/// escapes resolved and unescaped spaces around each part trimmed. `None` when it is malformed or
/// uses what [`TrustedSubject::names`] does not support (`+`, quotes, `#` values).
fn parse_rfc4514(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut kind = String::new();
        loop {
            match chars.next()? {
                '=' => break,
                c => kind.push(c),
            }
        }
        let kind = kind.trim();
        if kind.is_empty()
            || !kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return None;
        }
        let mut value = Vec::new();
        // Length of `value` up to its last escaped or non-space character: trailing spaces go.
        let mut significant = 0;
        let mut more = false;
        while let Some(c) = chars.next() {
            match c {
                ',' => {
                    more = true;
                    break;
                }
                '+' | '"' | ';' | '=' => return None,
                '#' if value.is_empty() => return None,
                ' ' if value.is_empty() => {}
                '\\' => {
                    let escaped = chars.next()?;
                    if escaped.is_ascii_hexdigit() {
                        let low = chars.next()?;
                        let pair = [escaped, low].iter().collect::<String>();
                        value.push(u8::from_str_radix(&pair, 16).ok()?);
                    } else {
                        value.extend_from_slice(escaped.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    significant = value.len();
                }
                c => {
                    value.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    if c != ' ' {
                        significant = value.len();
                    }
                }
            }
        }
        value.truncate(significant);
        pairs.push((kind.to_owned(), String::from_utf8(value).ok()?));
        if !more {
            return Some(pairs);
        }
    }
}

/// A federated identity credential: assertions with this issuer, subject and audience are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    /// Expected `iss` of the assertion.
    pub(crate) issuer: String,
    /// Expected `sub` of the assertion.
    pub(crate) subject: String,
    /// Expected `aud` of the assertion (e.g. `api://AzureADTokenExchange`).
    pub(crate) audience: String,
}

impl FederatedCredential {
    /// A credential for `issuer` / `subject` / `audience`.
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
            audience: audience.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let app = AppRegistration::new("id", "tenant").with_secret("hunter2");
        let debug = format!("{app:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("1 redacted"), "{debug}");
    }

    #[test]
    fn rfc_4514_subjects_parse_with_escapes_and_spaces() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let cases = [
            ("CN=bot.contoso.com", pairs(&[("CN", "bot.contoso.com")])),
            (
                " O = Contoso ,  CN=a ",
                pairs(&[("O", "Contoso"), ("CN", "a")]),
            ),
            (
                r"O=Contoso\, Ltd,CN=\ a\20",
                pairs(&[("O", "Contoso, Ltd"), ("CN", " a ")]),
            ),
            (r"CN=caf\C3\A9", pairs(&[("CN", "café")])),
            ("2.5.4.3=a", pairs(&[("2.5.4.3", "a")])),
            ("CN=", pairs(&[("CN", "")])),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc4514(text), Some(expected), "{text}");
        }
        for bad in [
            "",
            "CN",
            "CN=a,",
            "=a",
            "C N=a",
            r"O=Contoso, Ltd\, x",
            "CN=a+O=b",
            r#"CN="a""#,
            "CN=#0403",
            r"CN=a\",
            r"CN=\C3",
            r"CN=\FF",
        ] {
            assert_eq!(parse_rfc4514(bad), None, "{bad}");
        }
    }
}
