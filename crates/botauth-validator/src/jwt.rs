//! Strict compact-JWS parsing: exactly three base64url segments, size limits, JSON objects without
//! duplicate members, and the header rules that must hold before any key is looked up.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Repr, Result};
use crate::json::{CLAIM_MEMBERS, Claim, HEADER_MEMBERS, Members, members};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::md::{Md, MdRef};

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
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "RS384" => Some(Algorithm::Rs384),
            "RS512" => Some(Algorithm::Rs512),
            _ => None,
        }
    }

    pub(crate) fn md(self) -> &'static MdRef {
        match self {
            Algorithm::Rs256 => Md::sha256(),
            Algorithm::Rs384 => Md::sha384(),
            Algorithm::Rs512 => Md::sha512(),
        }
    }

    /// A dense index, for per-algorithm tables.
    pub(crate) fn index(self) -> usize {
        match self {
            Algorithm::Rs256 => 0,
            Algorithm::Rs384 => 1,
            Algorithm::Rs512 => 2,
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

fn decode_segment(segment: &str, what: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Error::malformed(what))
}

/// A segment's JSON text: base64url, then UTF-8.
fn decode_text(segment: &str, base64: &'static str, json: &'static str) -> Result<String> {
    String::from_utf8(decode_segment(segment, base64)?).map_err(|_| Error::malformed(json))
}

/// A parsed, not yet verified, token: the header judged, the payload decoded to text (into
/// the caller's [`PayloadBuf`]).
#[derive(Debug)]
pub(crate) struct Parsed<'t, 'b> {
    pub(crate) signed: Signed<'t>,
    /// The payload's JSON text, not parsed yet: see [`Parsed::claims`].
    pub(crate) payload: &'b str,
}

impl<'t> std::ops::Deref for Parsed<'t, '_> {
    type Target = Signed<'t>;

    fn deref(&self) -> &Signed<'t> {
        &self.signed
    }
}

/// What the signature check needs of a parsed token: the judged header and the signed text.
#[derive(Debug)]
pub(crate) struct Signed<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Arc<str>,
    pub(crate) signing_input: &'t [u8],
    signature: &'t str,
    header_segment: &'t str,
    /// Whether the header was the known one (not parsed again).
    header_known: bool,
}

/// Payloads up to this many bytes are decoded on the stack.
const PAYLOAD_ON_STACK: usize = 2048;

/// Where [`parse`] decodes a payload: on the stack when it is small, as channel tokens are
/// (about 500 bytes), so that a new token costs no allocation for text that is read once.
pub(crate) struct PayloadBuf {
    stack: [u8; PAYLOAD_ON_STACK],
    heap: Vec<u8>,
}

impl PayloadBuf {
    pub(crate) fn new() -> Self {
        PayloadBuf {
            stack: [0; PAYLOAD_ON_STACK],
            heap: Vec::new(),
        }
    }

    /// The payload segment decoded: base64url, then UTF-8.
    fn decode(&mut self, segment: &str) -> Result<&str> {
        const NOT_BASE64: &str = "the payload is not base64url";
        let bytes = if segment.len() <= PAYLOAD_ON_STACK / 3 * 4 {
            let len = URL_SAFE_NO_PAD
                .decode_slice(segment, &mut self.stack)
                .map_err(|_| Error::malformed(NOT_BASE64))?;
            &self.stack[..len]
        } else {
            self.heap = decode_segment(segment, NOT_BASE64)?;
            &self.heap[..]
        };
        std::str::from_utf8(bytes).map_err(|_| Error::malformed(PAYLOAD_NOT_JSON))
    }
}

/// A header the rules have judged before, with what they made of it: the segment as sent, the
/// algorithm (in the validator's allow-list) and the `kid`. Bot Service signs every token with
/// the same header while a key is current, so a validator remembers the header of the last
/// token whose signature verified and does not decode and parse the same text again for the
/// next one (0.3 µs of a distinct token's 2 µs beyond the RSA operation). The rules are a pure
/// function of the text and the allow-list, the text is compared in full, and only a header
/// that came with a good signature is remembered, so a stream of made-up headers only ever
/// meets the full parse.
#[derive(Debug)]
pub(crate) struct KnownHeader {
    segment: Box<str>,
    alg: Algorithm,
    kid: Arc<str>,
}

const PAYLOAD_NOT_JSON: &str = "the payload is not a JSON object (UTF-8, no duplicate members)";

impl<'b> Parsed<'_, 'b> {
    /// The claims the rules read, from the payload (a strict parse of all of it: malformed JSON
    /// or a duplicate member anywhere at the top level is refused).
    pub(crate) fn claims(&self) -> Result<Members<'b, 9>> {
        members(self.payload, &CLAIM_MEMBERS, PAYLOAD_NOT_JSON)
    }
}

impl Signed<'_> {
    /// Where the payload segment is in the token.
    pub(crate) fn payload_range(&self) -> std::ops::Range<usize> {
        self.header_segment.len() + 1..self.signing_input.len()
    }

    /// The decoded signature.
    pub(crate) fn signature(&self) -> Result<Signature> {
        const NOT_BASE64: &str = "the signature is not base64url";
        let signature = if self.signature.len() <= SIGNATURE_ON_STACK / 3 * 4 {
            // Up to RSA-8192: decoded on the stack, no allocation per token.
            let mut bytes = [0; SIGNATURE_ON_STACK];
            let len = URL_SAFE_NO_PAD
                .decode_slice(self.signature, &mut bytes)
                .map_err(|_| Error::malformed(NOT_BASE64))?;
            Signature::Stack(bytes, len)
        } else {
            Signature::Heap(decode_segment(self.signature, NOT_BASE64)?)
        };
        if signature.is_empty() {
            return Err(Error::malformed("the signature is empty"));
        }
        Ok(signature)
    }

    /// The header to remember once the signature has verified; `None` when it was the known
    /// one already.
    pub(crate) fn header_to_remember(&self) -> Option<KnownHeader> {
        (!self.header_known).then(|| KnownHeader {
            segment: self.header_segment.into(),
            alg: self.alg,
            kid: Arc::clone(&self.kid),
        })
    }
}

/// Signatures up to this many bytes (RSA-8192) are decoded on the stack.
const SIGNATURE_ON_STACK: usize = 1024;

/// A decoded signature.
#[expect(
    clippy::large_enum_variant,
    reason = "on the stack on purpose: boxing it would be the allocation this avoids"
)]
pub(crate) enum Signature {
    Stack([u8; SIGNATURE_ON_STACK], usize),
    Heap(Vec<u8>),
}

impl std::ops::Deref for Signature {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Signature::Stack(bytes, len) => &bytes[..*len],
            Signature::Heap(bytes) => bytes,
        }
    }
}

/// Parses a compact JWS and applies the header rules (docs/protocol.md §6 rules 2 and 3): `alg` in
/// `allowed` and `crit` absent are decided here, before any key is looked up; `kid` must be
/// present; `jku`, `x5u`, `jwk`, `x5c` are never read. The payload is decoded here; its JSON
/// ([`Parsed::claims`]) and then the signature ([`Parsed::signature`]) are read next, in that
/// order. A header equal to `known` (judged under the same allow-list) is taken as judged.
pub(crate) fn parse<'t, 'b>(
    token: &'t str,
    allowed: &[Algorithm],
    limits: &Limits,
    known: Option<&KnownHeader>,
    buf: &'b mut PayloadBuf,
) -> Result<Parsed<'t, 'b>> {
    if token.len() > limits.max_token_bytes {
        return Err(Error::from(Repr::TooLarge {
            part: "token",
            limit: limits.max_token_bytes,
        }));
    }
    let Some((first, second)) = two_dots(token.as_bytes()) else {
        return Err(Error::malformed(
            "a compact JWS has exactly three dot-separated segments",
        ));
    };
    // Both cuts are next to an ASCII `.`, so on char boundaries.
    let (header_segment, payload, signature) = (
        &token[..first],
        &token[first + 1..second],
        &token[second + 1..],
    );
    // base64 turns 4 characters into 3 bytes.
    if header_segment.len() / 4 * 3 > limits.max_header_bytes {
        return Err(Error::from(Repr::TooLarge {
            part: "token header",
            limit: limits.max_header_bytes,
        }));
    }
    let known = known.filter(|k| *k.segment == *header_segment);
    let (alg, kid) = match known {
        Some(k) => (k.alg, Arc::clone(&k.kid)),
        None => header_rules(header_segment, allowed)?,
    };
    let payload_text = buf.decode(payload)?;
    let signing_input = &token.as_bytes()[..header_segment.len() + 1 + payload.len()];
    Ok(Parsed {
        signed: Signed {
            alg,
            kid,
            signing_input,
            signature,
            header_segment,
            header_known: known.is_some(),
        },
        payload: payload_text,
    })
}

/// Where the two dots of a compact JWS are, when it has exactly two. A 32-byte block is first
/// asked whether it holds a dot at all, in a loop the compiler turns into vector instructions,
/// and only a block that does is searched: `str::split('.')` searched byte by byte (core's
/// `memchr` has no vector path), 1 % of a new token's verification.
fn two_dots(bytes: &[u8]) -> Option<(usize, usize)> {
    const BLOCK: usize = 32;
    let mut found = [0usize; 2];
    let mut count = 0;
    let mut note = |start: usize, block: &[u8]| -> Option<()> {
        for (i, _) in block.iter().enumerate().filter(|&(_, &c)| c == b'.') {
            *found.get_mut(count)? = start + i;
            count += 1;
        }
        Some(())
    };
    let blocks = bytes.chunks_exact(BLOCK);
    let rest = blocks.remainder();
    for (b, block) in blocks.enumerate() {
        if has_dot(block.try_into().ok()?) {
            note(b * BLOCK, block)?;
        }
    }
    note(bytes.len() - rest.len(), rest)?;
    (count == 2).then_some((found[0], found[1]))
}

/// Whether a block holds a dot: with no early exit and a known length, one vector compare.
fn has_dot(block: &[u8; 32]) -> bool {
    block.iter().fold(false, |dot, &c| dot | (c == b'.'))
}

/// The header rules: the algorithm (in `allowed`) and the `kid`.
fn header_rules(segment: &str, allowed: &[Algorithm]) -> Result<(Algorithm, Arc<str>)> {
    const HEADER_NOT_JSON: &str = "the header is not a JSON object (UTF-8, no duplicate members)";
    let header_text = decode_text(segment, "the header is not base64url", HEADER_NOT_JSON)?;
    let mut header = members(&header_text, &HEADER_MEMBERS, HEADER_NOT_JSON)?;
    if header.get("crit").is_some() {
        return Err(Error::from(Repr::CriticalHeader));
    }
    let alg = match header.get("alg") {
        Some(Claim::Str(name)) => Algorithm::from_name(name).filter(|a| allowed.contains(a)),
        _ => None,
    }
    .ok_or(Repr::Algorithm)?;
    let kid = match header.take("kid") {
        Some(Claim::Str(kid)) if !kid.is_empty() => Arc::from(&*kid),
        _ => return Err(Error::from(Repr::MissingKeyId)),
    };
    Ok((alg, kid))
}

/// Extracts the token from an `Authorization` header value: scheme `Bearer` in any case, one
/// space-separated token, nothing else (docs/protocol.md §6 rule 1).
///
/// Byte by byte: blanks and commas are ASCII, and an ASCII byte in UTF-8 is always that
/// character, so this is the same as a search by `char` — which cost more than the rest of a
/// verified-token cache hit, run over a whole token on every request.
pub(crate) fn bearer(header: &str) -> Result<&str> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let bytes = header.as_bytes();
    // Blanks around the value; every cut below is next to an ASCII byte, so on a char boundary.
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    let header = &header[start..end];
    let gap = header
        .as_bytes()
        .iter()
        .position(blank)
        .ok_or(Repr::BadScheme)?;
    if !header[..gap].eq_ignore_ascii_case("bearer") {
        return Err(Error::from(Repr::BadScheme));
    }
    let rest = &header[gap..];
    let token = &rest[rest.bytes().take_while(|b| blank(b)).count()..];
    if token.is_empty() || has_blank_or_comma(token.as_bytes()) {
        return Err(Error::from(Repr::BadScheme));
    }
    Ok(token)
}

/// Whether `bytes` hold a blank or a comma. One pass with no early exit, which the compiler
/// turns into vector instructions (a search that stops at the first hit cannot be): 50 ns for a
/// 708-byte token where `str::contains` with a `char` array took 900 ns. The header is bounded
/// (the token limit) before this runs. Not inlined: inlined into `bearer`, the loop was left
/// scalar.
#[inline(never)]
fn has_blank_or_comma(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| {
        found | (b == b' ') | (b == b'\t') | (b == b',')
    })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::{Map, Number, Value};

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

    /// Everything `Validator::verify` reads before the rules: header, claims, signature.
    fn full(t: &str) -> Result<()> {
        let mut buf = PayloadBuf::new();
        let p = parse(t, &Algorithm::DEFAULT, &Limits::default(), None, &mut buf)?;
        p.claims()?;
        p.signature()?;
        Ok(())
    }

    fn kind(t: &str) -> ErrorKind {
        full(t).unwrap_err().kind()
    }

    /// The dots are found wherever they are, and only exactly two make a JWS.
    #[test]
    fn two_dots_are_found_anywhere() {
        for len in [0usize, 1, 2, 3, 31, 32, 33, 64, 65, 100, 700] {
            // Every pair of places in short texts; every 11th in long ones.
            let step = if len > 70 { 11 } else { 1 };
            for i in (0..len).step_by(step) {
                for j in (i + 1..len).step_by(step) {
                    let mut t = vec![b'a'; len];
                    t[i] = b'.';
                    t[j] = b'.';
                    assert_eq!(two_dots(&t), Some((i, j)), "{len} {i} {j}");
                    for k in [0, len / 2, len - 1] {
                        if k != i && k != j {
                            let mut three = t.clone();
                            three[k] = b'.';
                            assert_eq!(two_dots(&three), None, "{len} {i} {j} {k}");
                        }
                    }
                }
                let mut one = vec![b'a'; len];
                one[i] = b'.';
                assert_eq!(two_dots(&one), None);
            }
            assert_eq!(two_dots(&vec![b'a'; len]), None);
        }
        assert_eq!(two_dots(b".."), Some((0, 1)));
        assert_eq!(two_dots(&[b'.'; 40]), None);
    }

    /// Payloads and signatures are decoded on the stack up to a size and on the heap beyond it,
    /// with the same result either side of the line.
    #[test]
    fn large_payloads_and_signatures_decode_alike() {
        let header = b64(br#"{"alg":"RS256","kid":"k"}"#);
        // `{"p":"…"}` is 8 bytes around the filler.
        // The stack takes a segment whose decoded length cannot exceed it: up to 2,046 bytes of
        // payload (2,728 characters) and 1,023 of signature (1,364 characters).
        let payloads = [
            2_045,
            2_046,
            2_047,
            PAYLOAD_ON_STACK,
            PAYLOAD_ON_STACK + 1,
            10_000,
        ];
        for len in payloads {
            let json = format!(r#"{{"p":"{}"}}"#, "x".repeat(len - 8));
            assert_eq!(json.len(), len);
            for sig_len in [
                256,
                1_022,
                1_023,
                SIGNATURE_ON_STACK,
                SIGNATURE_ON_STACK + 1,
                2_000,
            ] {
                let sig: Vec<u8> = (0..sig_len).map(|i| (i % 251) as u8).collect();
                let t = format!("{header}.{}.{}", b64(json.as_bytes()), b64(&sig));
                let mut buf = PayloadBuf::new();
                let p = parse(&t, &Algorithm::DEFAULT, &Limits::default(), None, &mut buf).unwrap();
                assert_eq!(p.payload, json);
                let signature = p.signature().unwrap();
                assert_eq!(&*signature, &sig[..], "{len} {sig_len}");
                let on_stack = matches!(signature, Signature::Stack(..));
                assert_eq!(on_stack, sig_len <= 1_023, "{sig_len}");
                assert_eq!(&t[p.payload_range()], b64(json.as_bytes()));
                // The heap buffer is used exactly when the stack one could not be.
                assert_eq!(buf.heap.is_empty(), len <= 2_046, "{len}");
            }
            // Bad base64 in a large payload or signature is refused as in a small one.
            let bad = format!("{header}.{}!.c2ln", b64(json.as_bytes()));
            assert_eq!(kind(&bad), ErrorKind::Malformed);
            let bad_sig = format!("{header}.{}.{}!", b64(json.as_bytes()), "A".repeat(2_000));
            assert_eq!(kind(&bad_sig), ErrorKind::Malformed);
        }
    }

    #[test]
    fn well_formed_parses() {
        let t = token(
            &json!({"alg": "RS384", "kid": "k", "typ": "JWT"}),
            &json!({"iss": "i"}),
        );
        let mut buf = PayloadBuf::new();
        let p = parse(&t, &Algorithm::DEFAULT, &Limits::default(), None, &mut buf).unwrap();
        assert_eq!(p.alg, Algorithm::Rs384);
        assert_eq!(&*p.kid, "k");
        assert_eq!(
            p.claims().unwrap().get("iss"),
            Some(&Claim::Str(Cow::Borrowed("i")))
        );
        assert_eq!(&*p.signature().unwrap(), b"sig");
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
        let e = parse(
            &t,
            &[Algorithm::Rs256],
            &Limits::default(),
            None,
            &mut PayloadBuf::new(),
        )
        .unwrap_err();
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

    /// The typed parse refuses exactly what a full parse into `serde_json::Value` refused, at
    /// the top level duplicates included, whether the member is one the rules read or not.
    #[test]
    fn typed_claims_refuse_what_the_full_parse_refused() {
        let h = b64(br#"{"alg":"RS256","kid":"k"}"#);
        let refused: &[&str] = &[
            r#"{"iss":"a","iss":"b"}"#,
            r#"{"jti":"a","jti":"b"}"#,
            // The same name spelled with an escape is the same member.
            r#"{"iss":"a","\u0069ss":"b"}"#,
            r#"{"x":1,"\u0078":2}"#,
            r#"{"\u0078":1,"x":2}"#,
            r#"{"\u0078":1,"y":0,"\u0078":2}"#,
            r#"{"a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":0,"h":0,"i":0,"j":0,"k":0,"l":0,"m":0,"n":0,"o":0,"p":0,"q":0,"\u0061":1}"#,
            r#"{"a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":0,"h":0,"i":0,"j":0,"k":0,"l":0,"m":0,"n":0,"o":0,"p":0,"p":1}"#,
            // Unread members are still checked: a lone surrogate, a number out of range,
            // nesting past the limit, a control character, trailing text.
            r#"{"x":"\ud800"}"#,
            r#"{"x":["\udc00"]}"#,
            r#"{"x":{"y":"\ud800"}}"#,
            r#"{"x":1e999}"#,
            r#"{"aud":[1e999]}"#,
            "{\"x\":\"a\u{1}b\"}",
            r#"{"x":1} x"#,
            r#"{"x":tru}"#,
        ];
        for claims in refused {
            let t = format!("{h}.{}.AA", b64(claims.as_bytes()));
            assert_eq!(kind(&t), ErrorKind::Malformed, "{claims}");
            // And serde_json's own parse agrees that the text is no strict object.
            let strict = serde_json::from_str::<Map<String, Value>>(claims)
                .ok()
                .filter(|m| m.len() == claims.matches("\":").count());
            assert!(strict.is_none(), "{claims}");
        }
        let many: String = (0..1_000).map(|i| format!("\"m{i}\":{i},")).collect();
        let accepted = [
            r#"{"iss":"a","x":{"y":1,"y":2},"l":[{"id":1},{"id":2}],"s":"\ud83d\ude00"}"#
                .to_owned(),
            format!("{{{many}\"iss\":\"a\"}}"),
            r#"{"\u0078":1,"y":2,"x\u0079":3}"#.to_owned(),
        ];
        for claims in &accepted {
            let t = format!("{h}.{}.AA", b64(claims.as_bytes()));
            full(&t).unwrap();
        }
        // Many members with one duplicate at the end: still found, in linear time.
        let t = format!("{h}.{}.AA", b64(format!("{{{many}\"m7\":1}}").as_bytes()));
        assert_eq!(kind(&t), ErrorKind::Malformed);
    }

    #[test]
    fn typed_claims_keep_the_values_the_rules_read() {
        let t = token(
            &json!({"alg": "RS256", "kid": "k\u{e9}"}),
            &json!({"iss": "i\"s", "aud": ["a", 1], "exp": 1.5, "nbf": null, "tid": {"x": 1},
                "azp": [], "ver": [7], "jti": "j"}),
        );
        let mut buf = PayloadBuf::new();
        let p = parse(&t, &Algorithm::DEFAULT, &Limits::default(), None, &mut buf).unwrap();
        assert_eq!(&*p.kid, "k\u{e9}");
        let c = p.claims().unwrap();
        assert_eq!(c.get("iss"), Some(&Claim::Str("i\"s".into())));
        assert_eq!(
            c.get("aud"),
            Some(&Claim::Array {
                len: 2,
                first: Some("a".into())
            })
        );
        assert_eq!(
            c.get("exp"),
            Some(&Claim::Num(Number::from_f64(1.5).unwrap()))
        );
        assert_eq!(c.get("nbf"), Some(&Claim::Other));
        assert_eq!(c.get("tid"), Some(&Claim::Other));
        assert_eq!(
            c.get("azp"),
            Some(&Claim::Array {
                len: 0,
                first: None
            })
        );
        assert_eq!(
            c.get("ver"),
            Some(&Claim::Array {
                len: 1,
                first: None
            })
        );
        assert_eq!(c.get("appid"), None);
        // Unread members are not kept, but the text is, whole.
        assert_eq!(c.get("jti"), None);
        let full: Map<String, Value> = serde_json::from_str(p.payload).unwrap();
        assert_eq!(full["jti"], "j");
    }

    #[test]
    fn size_limits() {
        let big = format!("{}.e30.AA", "A".repeat(20_000));
        assert_eq!(
            parse(
                &big,
                &Algorithm::DEFAULT,
                &Limits::default(),
                None,
                &mut PayloadBuf::new()
            )
            .unwrap_err()
            .to_string(),
            "the token is larger than the 16384-byte limit"
        );
        let huge_header = token(
            &json!({"alg": "RS256", "kid": "k", "pad": "x".repeat(2000)}),
            &json!({}),
        );
        let e = parse(
            &huge_header,
            &Algorithm::DEFAULT,
            &Limits::default(),
            None,
            &mut PayloadBuf::new(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e.repr(),
                Repr::TooLarge {
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
    fn a_known_header_is_taken_as_judged_only_when_it_is_the_same_text() {
        let header = json!({"alg": "RS256", "kid": "k", "typ": "JWT"});
        let t = token(&header, &json!({"iss": "i"}));
        let limits = Limits::default();
        let mut buf = PayloadBuf::new();
        let p = parse(&t, &Algorithm::DEFAULT, &limits, None, &mut buf).unwrap();
        let known = p.header_to_remember().unwrap();
        assert_eq!(&*known.segment, t.split('.').next().unwrap());
        // The same text: taken as judged (the answer is the known one's), nothing new to
        // remember.
        let marked = KnownHeader {
            kid: "remembered".into(),
            ..known
        };
        let mut buf = PayloadBuf::new();
        let p = parse(&t, &Algorithm::DEFAULT, &limits, Some(&marked), &mut buf).unwrap();
        assert_eq!((p.alg, &*p.kid), (Algorithm::Rs256, "remembered"));
        assert!(p.header_to_remember().is_none());
        // Any other header is judged in full, even one that decodes to the same JSON.
        for other in [
            token(
                &json!({"alg": "RS256", "kid": "k", "typ": "JWT", "crit": ["x"]}),
                &json!({}),
            ),
            token(
                &json!({"alg": "none", "kid": "k", "typ": "JWT"}),
                &json!({}),
            ),
            token(
                &json!({"alg": "RS256", "kid": "k2", "typ": "JWT"}),
                &json!({}),
            ),
            format!(
                "{}=.{}",
                t.split('.').next().unwrap(),
                &t[t.find('.').unwrap() + 1..]
            ),
        ] {
            let full = parse(
                &other,
                &Algorithm::DEFAULT,
                &limits,
                None,
                &mut PayloadBuf::new(),
            )
            .map(|p| p.signed.kid);
            let mut buf = PayloadBuf::new();
            let with_known = parse(
                &other,
                &Algorithm::DEFAULT,
                &limits,
                Some(&marked),
                &mut buf,
            );
            assert_eq!(
                with_known.map(|p| p.signed.kid).map_err(|e| e.kind()),
                full.map_err(|e| e.kind()),
                "{other}"
            );
        }
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

    /// The byte-wise `bearer` gives exactly the answers of the `char`-wise one it replaced, on
    /// header values built from blanks, commas, letters of the scheme and non-ASCII text.
    #[test]
    fn bearer_agrees_with_the_char_wise_rules() {
        fn by_char(header: &str) -> Option<&str> {
            let header = header.trim_matches(|c| c == ' ' || c == '\t');
            let (scheme, rest) = header.split_once([' ', '\t'])?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            let token = rest.trim_start_matches([' ', '\t']);
            if token.is_empty() || token.contains([' ', '\t', ',']) {
                return None;
            }
            Some(token)
        }
        let pieces = [
            " ", "\t", ",", "Bearer", "bEaReR", "bearer", "b", "x", "é", "\u{3000}", "\u{a0}",
            "日本", "eyJ0", ".", "\n", "\r", "ß",
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..50_000 {
            let len = (next() % 8) as usize;
            let header: String = (0..len)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            assert_eq!(bearer(&header).ok(), by_char(&header), "{header:?}");
        }
        // A long token with a separator at every position of a block, and none.
        let long = "a".repeat(300);
        assert_eq!(bearer(&format!("Bearer {long}")).unwrap(), long);
        for at in 0..long.len() {
            for sep in [" ", "\t", ","] {
                let mut t = long.clone();
                t.replace_range(at..=at, sep);
                let header = format!("Bearer {t}");
                assert_eq!(bearer(&header).ok(), by_char(&header), "{at} {sep:?}");
            }
        }
    }
}
