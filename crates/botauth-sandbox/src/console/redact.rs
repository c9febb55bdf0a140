//! What the console may show of a credential: JWTs decoded with the signature elided, secrets
//! replaced by their length, certificates by subject and thumbprint, and a last scrub of every
//! string the feed sends.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Map, Value};

/// The placeholder for anything withheld from the page.
pub(crate) const REDACTED: &str = "[redacted]";

/// A JWT as the console shows it: header and claims, never the signature (with the signature, a
/// bearer token is as good as the original to anyone who reads the page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Decoded {
    pub(crate) header: Value,
    pub(crate) claims: Value,
    pub(crate) signature: String,
}

impl Decoded {
    /// Decodes `token` without verifying it. Something that is not a compact JWS with JSON
    /// header and claims is shown as its length only: it may be an opaque secret.
    pub(crate) fn of(token: &str) -> Self {
        let mut parts = token.trim().split('.');
        let decoded = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(c), Some(s), None) => json_segment(h)
                .zip(json_segment(c))
                .map(|(header, claims)| (header, claims, s.len())),
            _ => None,
        };
        match decoded {
            Some((mut header, claims, signature_len)) => {
                summarise_x5c(&mut header);
                Self {
                    header: Value::Object(header),
                    claims: Value::Object(claims),
                    signature: format!("[elided: {signature_len} characters]"),
                }
            }
            None => Self {
                header: Value::Null,
                claims: Value::Null,
                signature: format!("[not a JWT: {} characters, redacted]", token.len()),
            },
        }
    }

    /// A claim as text, for summaries.
    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A header parameter as text.
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }
}

fn json_segment(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Replaces each `x5c` certificate (public, but a kilobyte of base64 that tells a person
/// nothing) by its subject, expiry and SHA-1 thumbprint.
fn summarise_x5c(header: &mut Map<String, Value>) {
    if let Some(Value::Array(chain)) = header.get_mut("x5c") {
        for entry in chain.iter_mut() {
            let summary = entry
                .as_str()
                .map(|text| text.split_ascii_whitespace().collect::<String>())
                .and_then(|text| STANDARD.decode(text).ok())
                .map_or_else(
                    || Value::String("[not a base64 DER certificate]".into()),
                    |der| certificate_summary(&der),
                );
            *entry = summary;
        }
    }
}

/// Subject, expiry and SHA-1 thumbprint (upper-case hex) of a DER certificate.
pub(crate) fn certificate_summary(der: &[u8]) -> Value {
    let sha1: String = openssl::sha::sha1(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    match openssl::x509::X509::from_der(der) {
        Ok(cert) => {
            let subject = cert
                .subject_name()
                .entries()
                .filter_map(|e| {
                    let name = e.object().nid().short_name().ok()?;
                    let value = e.data().to_string().ok()?;
                    Some(format!("{name}={value}"))
                })
                .collect::<Vec<_>>()
                .join(", ");
            serde_json::json!({
                "subject": subject,
                "not_after": cert.not_after().to_string(),
                "sha1": sha1,
            })
        }
        Err(_) => serde_json::json!({ "sha1": sha1, "subject": "[not an X.509 certificate]" }),
    }
}

/// The last line of defence, run over every event before it is sent: whatever a bug upstream
/// let through, a registered secret, a PEM private key or a JWS signature does not reach the page.
pub(crate) fn scrub(value: &mut Value, secrets: &[String]) {
    match value {
        Value::String(text) => {
            if let Some(clean) = scrub_text(text, secrets) {
                *text = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scrub(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| scrub(v, secrets)),
        _ => {}
    }
}

/// `None` when `text` is clean.
fn scrub_text(text: &str, secrets: &[String]) -> Option<String> {
    let mut out = text.to_owned();
    let mut changed = false;
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
            changed = true;
        }
    }
    if out.contains("-----BEGIN") {
        return Some(format!("{REDACTED} (PEM)"));
    }
    if let Some(clean) = elide_signatures(&out) {
        return Some(clean);
    }
    changed.then_some(out)
}

/// Cuts the signature off anything shaped like a compact JWS (three base64url runs joined by
/// dots, the last one long enough to be a signature).
fn elide_signatures(text: &str) -> Option<String> {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(is_b64).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest
            .find(|c: char| !(is_b64(c) || c == '.'))
            .unwrap_or(rest.len());
        let run = &rest[..end];
        let parts: Vec<&str> = run.split('.').collect();
        if parts.len() == 3 && parts[2].len() >= 16 && parts[..2].iter().all(|p| !p.is_empty()) {
            out.push_str(parts[0]);
            out.push('.');
            out.push_str(parts[1]);
            out.push_str(".[signature elided]");
            changed = true;
        } else {
            out.push_str(run);
        }
        rest = &rest[end..];
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn jwt(header: &Value, claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2lnbmF0dXJlLWJ5dGVzLXRoYXQtbXVzdC1ub3QtbGVhaw",
            part(header),
            part(claims)
        )
    }

    #[test]
    fn decodes_without_the_signature() {
        let token = jwt(&json!({"alg": "RS256"}), &json!({"aud": "x"}));
        let decoded = Decoded::of(&token);
        assert_eq!(decoded.header, json!({"alg": "RS256"}));
        assert_eq!(decoded.claim_str("aud"), Some("x"));
        let shown = serde_json::to_string(&decoded).unwrap();
        assert!(!shown.contains("c2lnbmF0dXJl"), "{shown}");
        assert_eq!(decoded.signature, "[elided: 46 characters]");
    }

    #[test]
    fn opaque_values_show_only_their_length() {
        let decoded = Decoded::of("not-a-jwt~secret");
        assert_eq!(decoded.claims, Value::Null);
        assert!(!serde_json::to_string(&decoded).unwrap().contains("secret"));
    }

    #[test]
    fn x5c_becomes_a_summary() {
        let generated = crate::certificate::GeneratedCertificate::generate("console test").unwrap();
        let b64 = STANDARD.encode(generated.der());
        let token = jwt(&json!({"alg": "RS256", "x5c": [b64]}), &json!({}));
        let decoded = Decoded::of(&token);
        assert_eq!(decoded.header["x5c"][0]["subject"], "CN=console test");
        assert_eq!(decoded.header["x5c"][0]["sha1"].as_str().unwrap().len(), 40);
    }

    #[test]
    fn scrub_removes_secrets_keys_and_signatures() {
        let token = jwt(&json!({"alg": "RS256"}), &json!({"aud": "x"}));
        let mut value = json!({
            "a": format!("Bearer {token} trailing"),
            "b": ["the secret is s3cr3t~value"],
            "c": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
            "d": "plain text, version 1.2.3 and example.com stay",
        });
        scrub(&mut value, &["s3cr3t~value".to_owned()]);
        let text = value.to_string();
        assert!(!text.contains("c2lnbmF0dXJl"), "{text}");
        assert!(!text.contains("s3cr3t~value"), "{text}");
        assert!(!text.contains("MIIE"), "{text}");
        assert!(text.contains(".[signature elided] trailing"), "{text}");
        assert_eq!(value["d"], "plain text, version 1.2.3 and example.com stay");
    }
}
