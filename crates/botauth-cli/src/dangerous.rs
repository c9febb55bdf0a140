//! Reading a JWT **without verifying it**, for `botauth decode`.
//!
//! Kept apart, under this name, so that nothing mistakes it for validation: a token decoded here
//! may have been written by anyone. It answers "what does this token say", never "may I trust
//! it"; that is `botauth validate` (botauth-validator), which checks the signature, the issuer,
//! the audience and the times before it reads a claim (docs/protocol.md §6).
//!
//! It goes as far as the token goes: each segment is decoded on its own, and every defect found is
//! named, so that a token with a bad signature segment still shows its header and claims, and a
//! token with bad claims still shows its header.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// A token read without verification: what could be decoded, and what is wrong with the rest.
#[derive(Debug)]
pub(crate) struct UnverifiedToken {
    /// The JOSE header, when its segment decodes to a JSON object.
    pub(crate) header: Option<JsonObject>,
    /// The claims, when their segment decodes to a JSON object.
    pub(crate) claims: Option<JsonObject>,
    /// Whether there is a signature segment with content.
    pub(crate) signature_present: bool,
    /// The signature's length in bytes, when its segment decodes.
    pub(crate) signature_bytes: Option<usize>,
    /// Each defect, as `<part>: <what is wrong>`; empty when the token is well formed.
    pub(crate) malformed: Vec<String>,
}

/// Splits and decodes a compact JWS (`header.claims.signature`) without checking anything that
/// would make it trustworthy.
pub(crate) fn decode_unverified(token: &str) -> UnverifiedToken {
    let segments: Vec<&str> = token.split('.').collect();
    let mut malformed = Vec::new();
    let header = object_segment("header", segments[0], &mut malformed);
    if segments.len() == 5 {
        // A JWE: its header is readable, the rest is encrypted for its recipient.
        malformed.push(
            "5 segments: an encrypted token (JWE), whose claims only its recipient can read"
                .to_owned(),
        );
        return UnverifiedToken {
            header,
            claims: None,
            signature_present: false,
            signature_bytes: None,
            malformed,
        };
    }
    if segments.len() != 3 {
        let n = segments.len();
        malformed.push(format!(
            "{n} segment{}, where a signed token (JWS) has 3: header.claims.signature",
            if n == 1 { "" } else { "s" }
        ));
    }
    let claims = match segments.get(1) {
        Some(s) => object_segment("claims", s, &mut malformed),
        None => None,
    };
    let (signature_present, signature_bytes) = match segments.get(2).copied() {
        // An unsecured token (`alg: none`) has an empty signature segment: well formed, unsigned.
        Some("") => (false, Some(0)),
        Some(s) => (
            true,
            base64url("signature", s, &mut malformed).map(|b| b.len()),
        ),
        None => (false, None),
    };
    UnverifiedToken {
        header,
        claims,
        signature_present,
        signature_bytes,
        malformed,
    }
}

/// Decodes one segment as base64url without padding, as JWS requires; a segment with padding or
/// stray trailing bits is decoded anyway, and reported.
fn base64url(part: &str, segment: &str, malformed: &mut Vec<String>) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    match URL_SAFE_NO_PAD.decode(segment) {
        Ok(bytes) => Some(bytes),
        Err(strict) => match LENIENT.decode(segment) {
            Ok(bytes) => {
                malformed.push(format!(
                    "{part}: not canonical base64url ({strict}); decoded anyway"
                ));
                Some(bytes)
            }
            Err(_) => {
                let hint = if general_purpose::STANDARD_NO_PAD
                    .decode(segment.trim_end_matches('='))
                    .is_ok()
                {
                    " (it is standard base64, with + and /; JWS uses - and _)"
                } else {
                    ""
                };
                malformed.push(format!("{part}: not base64url ({strict}){hint}"));
                None
            }
        },
    }
}

/// Decodes a header or claims segment to a JSON object.
fn object_segment(part: &str, segment: &str, malformed: &mut Vec<String>) -> Option<JsonObject> {
    if segment.is_empty() {
        malformed.push(format!("{part}: empty segment"));
        return None;
    }
    let bytes = base64url(part, segment, malformed)?;
    // Parsed as a `Value` first: its errors name only positions, never the token's text.
    match serde_json::from_slice::<Value>(&bytes) {
        Err(e) => {
            malformed.push(format!("{part}: not JSON ({e})"));
            None
        }
        Ok(Value::Object(_)) => match serde_json::from_slice::<JsonObject>(&bytes) {
            Ok(object) => {
                for name in object.duplicates() {
                    malformed.push(format!(
                        "{part}: member {} appears more than once (a validator refuses such a token)",
                        crate::to_json(&name, false).unwrap_or_default()
                    ));
                }
                Some(object)
            }
            Err(e) => {
                malformed.push(format!("{part}: not JSON ({e})"));
                None
            }
        },
        Ok(other) => {
            malformed.push(format!(
                "{part}: JSON, but {} instead of an object",
                kind(&other)
            ));
            None
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object as the token has it: members in the token's order, duplicates kept (a
/// `serde_json::Map` would sort them and keep only the last of a duplicate name, hiding exactly
/// what a diagnostic should show).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonObject(Vec<(String, Value)>);

impl JsonObject {
    /// The value of `name` (the last one, as most JSON parsers would read a duplicate).
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The string value of `name`, if it is a string.
    pub(crate) fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// Member names that appear more than once, each named once, in order of first appearance.
    fn duplicates(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        let mut duplicates = Vec::new();
        for (name, _) in &self.0 {
            if !seen.insert(name.as_str()) && !duplicates.contains(&name.as_str()) {
                duplicates.push(name.as_str());
            }
        }
        duplicates
    }
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = JsonObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<JsonObject, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = access.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(JsonObject(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn a_well_formed_token_decodes_in_the_tokens_order() {
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"typ":"JWT","alg":"RS256"}"#),
            b64(r#"{"sub":"x","aud":"a"}"#),
            URL_SAFE_NO_PAD.encode([7u8; 256])
        );
        let t = decode_unverified(&token);
        assert_eq!(t.malformed, Vec::<String>::new());
        assert_eq!(
            serde_json::to_string(&t.header).unwrap(),
            r#"{"typ":"JWT","alg":"RS256"}"#
        );
        assert_eq!(
            serde_json::to_string(&t.claims).unwrap(),
            r#"{"sub":"x","aud":"a"}"#
        );
        assert!(t.signature_present);
        assert_eq!(t.signature_bytes, Some(256));
    }

    /// Each defect, and what is still shown.
    #[test]
    fn malformed_tokens_go_as_far_as_they_go() {
        let header = b64(r#"{"alg":"RS256"}"#);
        let claims = b64(r#"{"aud":"a"}"#);
        // (token, header decoded, claims decoded, signature (present, bytes), malformed)
        type Case = (String, bool, bool, (bool, Option<usize>), Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (
                format!("{header}.{claims}.!!"),
                true,
                true,
                (true, None),
                vec!["signature: not base64url (Invalid symbol 33, offset 0.)"],
            ),
            (
                format!("{header}.{}.c2ln", b64("{\"aud\":")),
                true,
                false,
                (true, Some(3)),
                vec!["claims: not JSON (EOF while parsing a value at line 1 column 7)"],
            ),
            (
                format!("{header}.{}.c2ln", b64("[1,2]")),
                true,
                false,
                (true, Some(3)),
                vec!["claims: JSON, but an array instead of an object"],
            ),
            (
                format!("{}.{claims}.c2ln", b64("\"secret-looking text\"")),
                false,
                true,
                (true, Some(3)),
                vec!["header: JSON, but a string instead of an object"],
            ),
            (
                format!("{header}.{claims}"),
                true,
                true,
                (false, None),
                vec!["2 segments, where a signed token (JWS) has 3: header.claims.signature"],
            ),
            (
                "not-a-token".to_owned(),
                false,
                false,
                (false, None),
                vec![
                    "header: not canonical base64url (Invalid last symbol 110, offset 10.); decoded anyway",
                    "header: not JSON (expected value at line 1 column 1)",
                    "1 segment, where a signed token (JWS) has 3: header.claims.signature",
                ],
            ),
            (
                format!("{header}.{claims}.c2ln.eA.eA"),
                true,
                false,
                (false, None),
                vec![
                    "5 segments: an encrypted token (JWE), whose claims only its recipient can read",
                ],
            ),
            (
                format!("{header}..c2ln"),
                true,
                false,
                (true, Some(3)),
                vec!["claims: empty segment"],
            ),
            (
                format!("{header}.{claims}="),
                true,
                true,
                (false, None),
                vec![
                    "2 segments, where a signed token (JWS) has 3: header.claims.signature",
                    "claims: not canonical base64url (Invalid padding); decoded anyway",
                ],
            ),
            (
                format!("{header}.{}.", b64(r#"{"aud":"a","aud":"b"}"#)),
                true,
                true,
                (false, Some(0)),
                vec![
                    "claims: member \"aud\" appears more than once (a validator refuses such a token)",
                ],
            ),
            (
                format!("{header}.{claims}.a+b/"),
                true,
                true,
                (true, None),
                vec![
                    "signature: not base64url (Invalid symbol 43, offset 1.) (it is standard base64, with + and /; JWS uses - and _)",
                ],
            ),
        ];
        for (token, has_header, has_claims, signature, malformed) in cases {
            let t = decode_unverified(&token);
            assert_eq!(t.header.is_some(), has_header, "{token}");
            assert_eq!(t.claims.is_some(), has_claims, "{token}");
            assert_eq!(
                (t.signature_present, t.signature_bytes),
                signature,
                "{token}"
            );
            assert_eq!(t.malformed, malformed, "{token}");
        }
    }

    #[test]
    fn a_duplicate_reads_as_its_last_value_and_is_shown_twice() {
        let token = format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(r#"{"aud":"a","aud":"b"}"#)
        );
        let claims = decode_unverified(&token).claims.unwrap();
        assert_eq!(claims.get_str("aud"), Some("b"));
        assert_eq!(
            serde_json::to_string(&claims).unwrap(),
            r#"{"aud":"a","aud":"b"}"#
        );
    }
}
