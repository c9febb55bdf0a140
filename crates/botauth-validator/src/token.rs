//! Strict compact-JWS parsing: exactly three base64url segments, size limits, JSON objects without
//! duplicate members, and the header rules that must hold before any key is looked up.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// The signature algorithms botauth can verify: RSASSA-PKCS1-v1_5, the only family Microsoft's
/// Bot Service and Entra keys use. `none`, HMAC, ECDSA and PSS have no variant, so no
/// configuration can let them in (docs/protocol.md §6 rule 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
}

impl Algorithm {
    /// The default allow-list.
    pub const DEFAULT: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Rs384, Algorithm::Rs512];

    /// The JOSE name, e.g. `RS256`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
        }
    }

    /// The algorithm with this exact JOSE name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "RS384" => Some(Algorithm::Rs384),
            "RS512" => Some(Algorithm::Rs512),
            _ => None,
        }
    }

    pub(crate) fn digest(self) -> MessageDigest {
        match self {
            Algorithm::Rs256 => MessageDigest::sha256(),
            Algorithm::Rs384 => MessageDigest::sha384(),
            Algorithm::Rs512 => MessageDigest::sha512(),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Size limits for tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_token_bytes: usize,
    pub(crate) max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // Bot Service tokens are about 1.5 KB and Entra tokens rarely exceed 4 KB; 16 KiB leaves
        // room for large group claims while bounding the work an unauthenticated caller can cause.
        Limits {
            max_token_bytes: 16 * 1024,
            max_header_bytes: 1024,
        }
    }
}

/// A JSON object that refuses duplicate members: two parsers disagreeing on which `alg` or `aud`
/// counts is how confused-deputy bugs start.
struct StrictObject(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut access: A,
            ) -> std::result::Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(V)
    }
}

fn decode_segment(segment: &str, what: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Error::malformed(what))
}

fn json_object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>> {
    // serde_json validates UTF-8 and caps nesting at 128 levels, so neither invalid text nor
    // deeply nested JSON can crash the parser.
    serde_json::from_slice::<StrictObject>(bytes)
        .map(|o| o.0)
        .map_err(|_| Error::malformed(what))
}

/// The deepest nesting an activity body may have, counting the body itself as level 1. Bounding
/// it here keeps the duplicate check's recursion bounded whatever the parser's own limit; it is
/// the same limit serde_json applies (127 levels of arrays or objects pass, 128 do not), so no
/// activity that used to parse is refused for its depth.
const MAX_ACTIVITY_DEPTH: usize = 127;

/// Builds a JSON value in one pass over the text, refusing an object that names a member twice at
/// any depth (`\u0069d` and `id` are the same name). serde_json's own `Value` keeps the last of
/// two members; a handler reading the raw body with a first-wins parser would see the other.
#[derive(Clone, Copy)]
struct StrictValue {
    /// The nesting level of the value this seed reads (the body itself is 1).
    depth: usize,
}

impl StrictValue {
    /// The seed for the members of the array or object this seed is reading, once the depth
    /// bound allows that container.
    fn inner<E: de::Error>(self) -> std::result::Result<StrictValue, E> {
        if self.depth > MAX_ACTIVITY_DEPTH {
            return Err(E::custom("nested too deeply"));
        }
        Ok(StrictValue {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without duplicate members")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        // As serde_json's own `Value` does (JSON text cannot spell a non-finite number anyway).
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> std::result::Result<Value, A::Error> {
        let inner = self.inner()?;
        // The hint comes from the input: never let it size an allocation beyond a small bound.
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
        while let Some(item) = access.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<Value, A::Error> {
        let inner = self.inner()?;
        let mut members = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            match members.entry(name) {
                Entry::Occupied(_) => return Err(de::Error::custom("duplicate member")),
                Entry::Vacant(slot) => {
                    slot.insert(access.next_value_seed(inner)?);
                }
            }
        }
        Ok(Value::Object(members))
    }
}

/// An activity body: a JSON object whose members appear once, at every depth. A duplicate
/// `serviceUrl` would let the layer check one value while a handler reading the raw body, or a
/// parser that keeps the first member, replies to the other; a duplicate `conversation.id` or
/// `from.id` is the same confusion one level down.
pub(crate) fn activity_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    // `deserialize_map` refuses anything but an object at the top.
    let value = deserializer
        .deserialize_map(StrictValue { depth: 1 })
        .ok()?;
    // Nothing but whitespace may follow the object.
    deserializer.end().ok()?;
    match value {
        Value::Object(members) => Some(members),
        _ => None,
    }
}

/// A parsed, not yet verified, token.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
    pub(crate) claims: Map<String, Value>,
    pub(crate) signing_input: &'a [u8],
    pub(crate) signature: Vec<u8>,
}

/// Parses a compact JWS and applies the header rules (docs/protocol.md §6 rules 2 and 3): `alg` in
/// `allowed` and `crit` absent are decided here, before any key is looked up; `kid` must be
/// present; `jku`, `x5u`, `jwk`, `x5c` are never read.
pub(crate) fn parse<'a>(
    token: &'a str,
    allowed: &[Algorithm],
    limits: &Limits,
) -> Result<Parsed<'a>> {
    if token.len() > limits.max_token_bytes {
        return Err(Error::TooLarge {
            part: "token",
            limit: limits.max_token_bytes,
        });
    }
    let mut parts = token.split('.');
    let (Some(header_segment), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::malformed(
            "a compact JWS has exactly three dot-separated segments",
        ));
    };
    // base64 turns 4 characters into 3 bytes.
    if header_segment.len() / 4 * 3 > limits.max_header_bytes {
        return Err(Error::TooLarge {
            part: "token header",
            limit: limits.max_header_bytes,
        });
    }
    let header = json_object(
        &decode_segment(header_segment, "the header is not base64url")?,
        "the header is not a JSON object (UTF-8, no duplicate members)",
    )?;
    if header.contains_key("crit") {
        return Err(Error::CriticalHeader);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .filter(|a| allowed.contains(a))
        .ok_or(Error::Algorithm)?;
    let kid = match header.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        _ => return Err(Error::MissingKeyId),
    };
    let claims = json_object(
        &decode_segment(payload, "the payload is not base64url")?,
        "the payload is not a JSON object (UTF-8, no duplicate members)",
    )?;
    let signature = decode_segment(signature, "the signature is not base64url")?;
    if signature.is_empty() {
        return Err(Error::malformed("the signature is empty"));
    }
    let signing_input = &token.as_bytes()[..header_segment.len() + 1 + payload.len()];
    Ok(Parsed {
        alg,
        kid,
        claims,
        signing_input,
        signature,
    })
}

/// Extracts the token from an `Authorization` header value: scheme `Bearer` in any case, one
/// space-separated token, nothing else (docs/protocol.md §6 rule 1).
pub(crate) fn bearer(header: &str) -> Result<&str> {
    let header = header.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = header.split_once([' ', '\t']).ok_or(Error::BadScheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::BadScheme);
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() || token.contains([' ', '\t', ',']) {
        return Err(Error::BadScheme);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    fn token(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes()),
            b64(b"sig")
        )
    }

    fn kind(t: &str) -> ErrorKind {
        parse(t, &Algorithm::DEFAULT, &Limits::default())
            .unwrap_err()
            .kind()
    }

    #[test]
    fn well_formed_parses() {
        let t = token(
            &json!({"alg": "RS384", "kid": "k", "typ": "JWT"}),
            &json!({"iss": "i"}),
        );
        let p = parse(&t, &Algorithm::DEFAULT, &Limits::default()).unwrap();
        assert_eq!(p.alg, Algorithm::Rs384);
        assert_eq!(p.kid, "k");
        assert_eq!(p.claims["iss"], "i");
        assert_eq!(p.signature, b"sig");
        let dot = t.rfind('.').unwrap();
        assert_eq!(p.signing_input, &t.as_bytes()[..dot]);
    }

    #[test]
    fn algorithms_outside_the_allow_list_are_rejected() {
        for alg in [
            json!("none"),
            json!("HS256"),
            json!("ES256"),
            json!("PS256"),
            json!("rs256"),
            json!(1),
            Value::Null,
        ] {
            let t = token(&json!({"alg": alg, "kid": "k"}), &json!({}));
            assert_eq!(kind(&t), ErrorKind::Algorithm, "{alg}");
        }
        let t = token(&json!({"kid": "k"}), &json!({}));
        assert_eq!(kind(&t), ErrorKind::Algorithm);
        let t = token(&json!({"alg": "RS512", "kid": "k"}), &json!({}));
        let e = parse(&t, &[Algorithm::Rs256], &Limits::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Algorithm);
    }

    #[test]
    fn header_rules() {
        let t = token(
            &json!({"alg": "RS256", "kid": "k", "crit": ["exp"]}),
            &json!({}),
        );
        assert_eq!(kind(&t), ErrorKind::CriticalHeader);
        for kid in [None, Some(json!(7)), Some(json!("")), Some(Value::Null)] {
            let mut h = json!({"alg": "RS256"});
            if let Some(kid) = kid {
                h["kid"] = kid;
            }
            assert_eq!(kind(&token(&h, &json!({}))), ErrorKind::MissingKeyId, "{h}");
        }
        // alg is judged before kid and before the payload is even decoded.
        let t = format!("{}.!!.!!", b64(br#"{"alg":"none"}"#));
        assert_eq!(kind(&t), ErrorKind::Algorithm);
    }

    #[test]
    fn malformed_tokens() {
        let h = b64(br#"{"alg":"RS256","kid":"k"}"#);
        let c = b64(b"{}");
        let cases = [
            String::new(),
            "abc".into(),
            format!("{h}.{c}"),
            format!("{h}.{c}.AA.AA"),
            format!("{h}.{c}.AA."),
            format!("{h}!.{c}.AA"),
            format!("{h}.{c}!.AA"),
            format!("{h}.{c}.A+/"),
            format!("{h}=.{c}.AA"),
            format!("{h}.{c}."),
            format!("{}.{c}.AA", b64(b"[1]")),
            format!("{h}.{}.AA", b64(b"\"str\"")),
            format!("{h}.{}.AA", b64(b"{\"a\":1,\"a\":2}")),
            format!(
                "{}.{c}.AA",
                b64(br#"{"alg":"RS256","kid":"k","alg":"none"}"#)
            ),
            format!(
                "{h}.{}.AA",
                b64(&[b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'])
            ),
            format!(
                "{h}.{}.AA",
                b64(format!("{}{}", "[".repeat(200), "]".repeat(200)).as_bytes())
            ),
            format!(
                "{h}.{}.AA",
                b64(format!("{{\"a\":{}1{}}}", "[".repeat(1000), "]".repeat(1000)).as_bytes())
            ),
        ];
        for t in &cases {
            assert_eq!(kind(t), ErrorKind::Malformed, "{t}");
        }
    }

    #[test]
    fn size_limits() {
        let big = format!("{}.e30.AA", "A".repeat(20_000));
        assert_eq!(
            parse(&big, &Algorithm::DEFAULT, &Limits::default())
                .unwrap_err()
                .to_string(),
            "the token is larger than the 16384-byte limit"
        );
        let huge_header = token(
            &json!({"alg": "RS256", "kid": "k", "pad": "x".repeat(2000)}),
            &json!({}),
        );
        let e = parse(&huge_header, &Algorithm::DEFAULT, &Limits::default()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::TooLarge {
                    part: "token header",
                    limit: 1024
                }
            ),
            "{e:?}"
        );
    }

    /// Issue 13 §4: only top-level members were checked, so `conversation.id` given twice was
    /// accepted with its last value while a first-wins reader saw the other.
    #[test]
    fn activity_duplicate_members_are_refused_at_any_depth() {
        let deep_duplicate = format!(
            "{{\"type\":\"message\",\"a\":{}{{\"id\":1,\"id\":2}}{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        let refused = [
            r#"{"conversation":{"id":"a","id":"../x"}}"#,
            r#"{"serviceUrl":"https://a/","serviceUrl":"https://b/"}"#,
            // The same name spelled with an escape is the same member.
            r#"{"conversation":{"id":"a","\u0069d":"b"}}"#,
            r#"{"entities":[{"type":"mention"},{"type":"a","type":"b"}]}"#,
            r#"{"attachments":[[1,[{"content":{"body":[{"x":{"y":1,"y":1}}]}}]]]}"#,
            r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{},"h":[]}}}}}}}}"#,
            r#"{"value":{"":1,"":2}}"#,
            deep_duplicate.as_str(),
        ];
        for body in refused {
            assert_eq!(activity_object(body.as_bytes()), None, "{body:.80}");
        }
    }

    #[test]
    fn activities_without_duplicates_parse_as_serde_json_does() {
        let activity = r#"{"type":"message","id":"1:abc","timestamp":"2024-01-01T00:00:00.000Z",
            "serviceUrl":"https://smba.trafficmanager.net/teams/","channelId":"msteams",
            "from":{"id":"29:1","name":"A","aadObjectId":"x"},
            "conversation":{"id":"a:1","conversationType":"personal","tenantId":"t"},
            "recipient":{"id":"28:bot","name":"Bot"},"text":"hi \u00e9\ud83d\ude00 \"q\"",
            "entities":[{"type":"clientInfo","locale":"en-US"},{"type":"mention","text":"x",
            "mentioned":{"id":"28:bot","name":"Bot"}}],
            "channelData":{"tenant":{"id":"t"},"settings":{"id":"s"},"n":[0,-1,1.5,-0.0,1e308,
            18446744073709551615,-9223372036854775808,null,true,false,{},[]]},
            "attachments":[]}"#;
        let ours = Value::Object(activity_object(activity.as_bytes()).unwrap());
        let theirs: Value = serde_json::from_str(activity).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(ours["conversation"]["id"], "a:1");
        assert_eq!(ours["text"], "hi \u{e9}\u{1f600} \"q\"");
        assert_eq!(ours["channelData"]["n"][4], json!(1e308));
        assert_eq!(ours["channelData"]["n"][5], json!(u64::MAX));
        assert_eq!(ours["channelData"]["n"][6], json!(i64::MIN));
        // The same name in sibling objects, or in each element of an array, is not a duplicate.
        let siblings = r#"{"from":{"id":"a"},"recipient":{"id":"b"},"l":[{"id":1},{"id":2}]}"#;
        assert!(activity_object(siblings.as_bytes()).is_some());
        let nested_ok = format!(
            "{{\"a\":{}{{\"id\":1}}{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(activity_object(nested_ok.as_bytes()).is_some());
    }

    #[test]
    fn activity_bodies_that_are_not_one_bounded_object_are_refused() {
        // 127 levels of containers pass (the body is the first), 128 do not.
        let levels = |n: usize| format!("{{\"a\":{}1{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
        assert!(activity_object(levels(127).as_bytes()).is_some());
        let too_deep = levels(128);
        let too_deep_objects = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
        let refused: [&[u8]; 12] = [
            b"",
            b"[]",
            b"\"x\"",
            b"1",
            b"null",
            b"{} x",
            b"{}{}",
            b"{\"a\":1,}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":1e999}",
            too_deep.as_bytes(),
            too_deep_objects.as_bytes(),
        ];
        for body in refused {
            assert_eq!(
                activity_object(body),
                None,
                "{:.60}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(activity_object(b" {} \n"), Some(Map::new()));
    }

    /// The depth bound is the duplicate check's own, not only the parser's: a deserializer
    /// without a recursion limit (a `Value`) is still stopped at the 128th level.
    #[test]
    fn the_depth_bound_does_not_rely_on_the_parser() {
        let nested = |levels: usize| {
            (1..levels).fold(json!({"leaf": 1}), |inner, _| json!({ "a": [inner] }))
        };
        // Each step adds an object and an array: 2 levels.
        let within = nested(64); // 1 + 63 * 2 = 127 levels
        assert!(StrictValue { depth: 1 }.deserialize(within.clone()).is_ok());
        let beyond = json!([within]); // 128 levels
        let error = StrictValue { depth: 1 }.deserialize(beyond).unwrap_err();
        assert_eq!(error.to_string(), "nested too deeply");
    }

    #[test]
    fn bearer_scheme() {
        assert_eq!(bearer("Bearer abc").unwrap(), "abc");
        assert_eq!(bearer("bearer abc").unwrap(), "abc");
        assert_eq!(bearer("BEARER   abc ").unwrap(), "abc");
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearerabc",
            "Bearer a b",
            "Bearer a,b",
            "Token abc",
            "abc",
        ] {
            assert_eq!(
                bearer(bad).unwrap_err().kind(),
                ErrorKind::BadScheme,
                "{bad:?}"
            );
        }
    }
}
