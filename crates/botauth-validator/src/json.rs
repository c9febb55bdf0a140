//! Strict JSON: the duplicate-refusing readers for a token's header and claims (only the members
//! the rules read, borrowed where they can be) and for activity bodies (the whole value, bounded
//! depth). serde_json keeps the last of two members with one name, while another parser may keep
//! the first, so a duplicate is refused wherever botauth reads JSON an attacker wrote.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// The value of a member the rules read, borrowed from the JSON text where it can be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Claim<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    /// An array: its length, and its first element when that is a string.
    Array {
        len: usize,
        first: Option<Cow<'a, str>>,
    },
    /// `null`, a boolean or an object.
    Other,
}

/// The members named in `names` of a JSON object, parsed into [`Claim`]s; every other member is
/// read (so the text is checked exactly as a full parse would) but not kept.
#[derive(Debug)]
pub(crate) struct Members<'a, const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<Claim<'a>>; N],
}

impl<'a, const N: usize> Members<'a, N> {
    pub(crate) fn get(&self, name: &str) -> Option<&Claim<'a>> {
        self.values[index_of(self.names, name)?].as_ref()
    }

    pub(crate) fn take(&mut self, name: &str) -> Option<Claim<'a>> {
        self.values[index_of(self.names, name)?].take()
    }
}

/// Where `name` is in `names`. Length and first byte first: most names the rules read have
/// three letters, and every member of every token is looked up here.
fn index_of(names: &[&str], name: &str) -> Option<usize> {
    let (len, first) = (name.len(), name.as_bytes().first());
    names
        .iter()
        .position(|n| n.len() == len && n.as_bytes().first() == first && *n == name)
}

/// The header members the rules read.
pub(crate) const HEADER_MEMBERS: [&str; 3] = ["alg", "kid", "crit"];

/// The claims the rules read (docs/protocol.md §6 rules 4, 5, 6 and 8). The others stay in the
/// text for [`BotClaims::claims`](crate::BotClaims::claims).
pub(crate) const CLAIM_MEMBERS: [&str; 9] = [
    "iss",
    "aud",
    "exp",
    "nbf",
    "serviceurl",
    "appid",
    "azp",
    "ver",
    "tid",
];

/// Parses a JSON object, refusing duplicate members: two parsers disagreeing on which `alg` or
/// `aud` counts is how confused-deputy bugs start. serde_json validates UTF-8 (the text is a
/// `str`) and caps nesting at 128 levels, so neither invalid text nor deeply nested JSON can
/// crash the parser; the members nobody reads are checked as strictly as a full parse into
/// `serde_json::Value` would (escapes, numbers, depth) without being built.
pub(crate) fn members<'a, const N: usize>(
    text: &'a str,
    names: &'static [&'static str; N],
    what: &'static str,
) -> Result<Members<'a, N>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let values = deserializer
        .deserialize_map(ObjectVisitor { names })
        .map_err(|_| Error::malformed(what))?;
    deserializer.end().map_err(|_| Error::malformed(what))?;
    Ok(Members { names, values })
}

struct ObjectVisitor<const N: usize> {
    names: &'static [&'static str; N],
}

impl<'de, const N: usize> Visitor<'de> for ObjectVisitor<N> {
    type Value = [Option<Claim<'de>>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut access: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut values: [Option<Claim<'de>>; N] = std::array::from_fn(|_| None);
        let mut others = Seen::default();
        while let Some(key) = access.next_key_seed(KeySeed)? {
            match index_of(self.names, &key) {
                Some(i) => {
                    if values[i].is_some() {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    values[i] = Some(access.next_value_seed(ClaimSeed)?);
                }
                None => {
                    if !others.insert(key) {
                        return Err(de::Error::custom("duplicate member"));
                    }
                    access.next_value_seed(Checked)?;
                }
            }
        }
        Ok(values)
    }
}

/// Member names seen so far: a short list of names as written (no escapes) scanned in place,
/// without allocating (tokens have a dozen members or so), then a hash set, so that a payload of
/// thousands of members, or names spelled with escapes, stay linear and are compared by value.
struct Seen<'a> {
    few: [&'a str; Seen::FEW],
    len: usize,
    many: Option<HashSet<Cow<'a, str>>>,
}

impl Default for Seen<'_> {
    fn default() -> Self {
        Seen {
            few: [""; Seen::FEW],
            len: 0,
            many: None,
        }
    }
}

impl<'a> Seen<'a> {
    const FEW: usize = 16;

    /// `false` when `name` was seen before.
    fn insert(&mut self, name: Cow<'a, str>) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(name);
        }
        match name {
            Cow::Borrowed(name) if self.len < Self::FEW => {
                if self.few[..self.len].contains(&name) {
                    return false;
                }
                self.few[self.len] = name;
                self.len += 1;
                true
            }
            name => {
                let mut many: HashSet<Cow<'a, str>> = self.few[..self.len]
                    .iter()
                    .map(|&n| Cow::Borrowed(n))
                    .collect();
                let new = many.insert(name);
                self.many = Some(many);
                new
            }
        }
    }
}

/// A member name, borrowed unless it had escapes (`\u0069d` and `id` are the same name).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A value the rules read.
struct ClaimSeed;

impl<'de> DeserializeSeed<'de> for ClaimSeed {
    type Value = Claim<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ClaimSeed {
    type Value = Claim<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Claim::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Claim::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(Claim::Str(Cow::Owned(v)))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(Claim::Num(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(Claim::Num(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Claim::Other, Claim::Num))
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(Claim::Other)
    }

    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(Claim::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut access: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let Some(first) = access.next_element_seed(FirstSeed)? else {
            return Ok(Claim::Array {
                len: 0,
                first: None,
            });
        };
        let mut len = 1;
        while access.next_element_seed(Checked)?.is_some() {
            len += 1;
        }
        Ok(Claim::Array { len, first })
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> std::result::Result<Self::Value, A::Error> {
        Checked.visit_map(access).map(|()| Claim::Other)
    }
}

/// An array's first element: kept when it is a string, checked otherwise.
struct FirstSeed;

impl<'de> DeserializeSeed<'de> for FirstSeed {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        match ClaimSeed.deserialize(d)? {
            Claim::Str(s) => Ok(Some(s)),
            _ => Ok(None),
        }
    }
}

/// A value nobody reads, checked as strictly as `serde_json::Value` would check it (every
/// string unescaped and validated, every number in range, nesting bounded) and then dropped.
#[derive(Clone, Copy)]
struct Checked;

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> std::result::Result<(), A::Error> {
        while access.next_element_seed(Checked)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<(), A::Error> {
        // Names of nested objects are strings like any other; `Value` keeps the last of two
        // equal ones, and so does nothing here.
        while access.next_key_seed(Checked)?.is_some() {
            access.next_value_seed(Checked)?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
