//! The claim rules of docs/protocol.md §6, as pure functions over parsed claims.

use std::sync::Arc;

use serde_json::{Map, Number, Value};

use crate::error::{Error, Repr, Result};
use crate::json::{Claim, Members};

/// A claim as the rules see it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ClaimRef<'a> {
    Str(&'a str),
    Num(&'a Number),
    /// An array: its length, and its first element when that is a string.
    Array {
        len: usize,
        first: Option<&'a str>,
    },
    Other,
}

/// Where the rules read claims from: the members a token's payload was parsed into, or (in
/// tests and for callers with a map) a JSON map.
pub(crate) trait Claims {
    fn claim(&self, name: &str) -> Option<ClaimRef<'_>>;
}

impl<const N: usize> Claims for Members<'_, N> {
    fn claim(&self, name: &str) -> Option<ClaimRef<'_>> {
        Some(match self.get(name)? {
            Claim::Str(s) => ClaimRef::Str(s),
            Claim::Num(n) => ClaimRef::Num(n),
            Claim::Array { len, first } => ClaimRef::Array {
                len: *len,
                first: first.as_deref(),
            },
            Claim::Other => ClaimRef::Other,
        })
    }
}

impl Claims for Map<String, Value> {
    fn claim(&self, name: &str) -> Option<ClaimRef<'_>> {
        Some(match self.get(name)? {
            Value::String(s) => ClaimRef::Str(s),
            Value::Number(n) => ClaimRef::Num(n),
            Value::Array(items) => ClaimRef::Array {
                len: items.len(),
                first: items.first().and_then(Value::as_str),
            },
            _ => ClaimRef::Other,
        })
    }
}

/// A NumericDate claim (`exp`, `nbf`): a JSON number, possibly fractional (RFC 7519 §2). A string
/// or any other type is a rejection, not "absent".
pub(crate) fn numeric_date(claims: &impl Claims, claim: &'static str) -> Result<Option<i64>> {
    match claims.claim(claim) {
        None => Ok(None),
        Some(ClaimRef::Num(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else {
                match n.as_f64() {
                    // Floor: a fractional exp expires at the start of its second.
                    #[allow(clippy::cast_possible_truncation)]
                    Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                    _ => Err(Error::from(Repr::ClaimType { claim })),
                }
            }
        }
        Some(_) => Err(Error::from(Repr::ClaimType { claim })),
    }
}

/// `exp` required, `nbf` honoured, both with `skew` seconds of tolerance (docs/protocol.md §6 rule 5).
/// Valid while `nbf - skew <= now < exp + skew`.
pub(crate) fn check_time(now: i64, nbf: Option<i64>, exp: i64, skew: i64) -> Result<()> {
    if now >= exp.saturating_add(skew) {
        return Err(Error::from(Repr::Expired));
    }
    if nbf.is_some_and(|nbf| now < nbf.saturating_sub(skew)) {
        return Err(Error::from(Repr::NotYetValid));
    }
    Ok(())
}

/// A string claim: `Ok(None)` when absent, a rejection when present with another type.
pub(crate) fn string_claim<'a>(
    claims: &'a impl Claims,
    claim: &'static str,
) -> Result<Option<&'a str>> {
    match claims.claim(claim) {
        None => Ok(None),
        Some(ClaimRef::Str(s)) => Ok(Some(s)),
        Some(_) => Err(Error::from(Repr::ClaimType { claim })),
    }
}

pub(crate) fn required_string<'a>(claims: &'a impl Claims, claim: &'static str) -> Result<&'a str> {
    string_claim(claims, claim)?.ok_or(Error::from(Repr::MissingClaim { claim }))
}

/// `aud`: a string, or an array of exactly one string, equal to one of `accepted` (docs/protocol.md §6
/// rule 4). Returns the audience that matched.
pub(crate) fn audience<'a>(claims: &impl Claims, accepted: &'a [Arc<str>]) -> Result<&'a Arc<str>> {
    let aud = match claims.claim("aud") {
        None => return Err(Error::from(Repr::MissingClaim { claim: "aud" })),
        Some(ClaimRef::Str(s)) => s,
        Some(ClaimRef::Array { len, first }) => match (len, first) {
            (1, Some(s)) => s,
            (0 | 1, _) => return Err(Error::from(Repr::ClaimType { claim: "aud" })),
            // Several audiences: the token was meant for more than this bot.
            _ => return Err(Error::from(Repr::Audience)),
        },
        Some(_) => return Err(Error::from(Repr::ClaimType { claim: "aud" })),
    };
    accepted
        .iter()
        .find(|a| ***a == *aud)
        .ok_or(Error::from(Repr::Audience))
}

/// `serviceurl` equals the activity's `serviceUrl`, ignoring ASCII case and one trailing `/`
/// (docs/protocol.md §6 rule 6).
pub(crate) fn same_service_url(claim: &str, activity: &str) -> bool {
    fn trim(s: &str) -> &str {
        s.strip_suffix('/').unwrap_or(s)
    }
    trim(claim).eq_ignore_ascii_case(trim(activity))
}

/// Endorsements (docs/protocol.md §6 rule 7): a key that lists endorsements must list the channel; in
/// strict mode a key without endorsements is refused too. `channel: None` means the caller chose
/// not to check the channel (diagnostics), which only strict mode's missing-list rule survives.
pub(crate) fn check_endorsements(
    endorsements: Option<&[String]>,
    channel: Option<&str>,
    strict: bool,
) -> Result<()> {
    match (endorsements, channel) {
        (None, _) if strict => Err(Error::from(Repr::Endorsement)),
        (None, _) | (Some(_), None) => Ok(()),
        (Some(list), Some(channel)) => {
            if !channel.is_empty() && list.iter().any(|e| e == channel) {
                Ok(())
            } else {
                Err(Error::from(Repr::Endorsement))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn numeric_dates() {
        let c = map(json!({"a": 5, "b": 5.9, "c": "5", "d": null, "e": true, "f": 1e300, "g": -3}));
        assert_eq!(numeric_date(&c, "a").unwrap(), Some(5));
        assert_eq!(numeric_date(&c, "b").unwrap(), Some(5));
        assert_eq!(numeric_date(&c, "g").unwrap(), Some(-3));
        assert_eq!(numeric_date(&c, "zz").unwrap(), None);
        for bad in ["c", "d", "e", "f"] {
            let e = numeric_date(&c, if bad == "c" { "c" } else { bad }).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ClaimType, "{bad}");
        }
    }

    #[test]
    fn time_window_edges() {
        // exp = 1000, skew = 300: valid through 1299, expired from 1300.
        assert!(check_time(1299, None, 1000, 300).is_ok());
        assert_eq!(
            check_time(1300, None, 1000, 300).unwrap_err().kind(),
            ErrorKind::Expired
        );
        // nbf = 1000, skew = 300: valid from 700, not yet at 699.
        assert!(check_time(700, Some(1000), 5000, 300).is_ok());
        assert_eq!(
            check_time(699, Some(1000), 5000, 300).unwrap_err().kind(),
            ErrorKind::NotYetValid
        );
        assert_eq!(
            check_time(i64::MAX, None, i64::MAX, 300)
                .unwrap_err()
                .kind(),
            ErrorKind::Expired
        );
        assert!(check_time(0, Some(i64::MIN), 10, 300).is_ok());
    }

    #[test]
    fn audiences() {
        let ok: [Arc<str>; 2] = ["app".into(), "api://app".into()];
        assert_eq!(
            &**audience(&map(json!({"aud": "app"})), &ok).unwrap(),
            "app"
        );
        assert_eq!(
            &**audience(&map(json!({"aud": ["api://app"]})), &ok).unwrap(),
            "api://app"
        );
        let cases = [
            (json!({}), ErrorKind::MissingClaim),
            (json!({"aud": "other"}), ErrorKind::Audience),
            (json!({"aud": "APP"}), ErrorKind::Audience),
            (json!({"aud": ["app", "other"]}), ErrorKind::Audience),
            (json!({"aud": ["app", "app"]}), ErrorKind::Audience),
            (json!({"aud": []}), ErrorKind::ClaimType),
            (json!({"aud": [1]}), ErrorKind::ClaimType),
            (json!({"aud": 1}), ErrorKind::ClaimType),
            (json!({"aud": null}), ErrorKind::ClaimType),
        ];
        for (claims, kind) in cases {
            assert_eq!(
                audience(&map(claims.clone()), &ok).unwrap_err().kind(),
                kind,
                "{claims}"
            );
        }
    }

    #[test]
    fn service_urls() {
        let teams = "https://smba.trafficmanager.net/teams/";
        assert!(same_service_url(
            teams,
            "https://SMBA.trafficmanager.net/teams"
        ));
        assert!(same_service_url("https://a/", "https://a/"));
        assert!(!same_service_url("https://a//", "https://a"));
        assert!(!same_service_url(
            teams,
            "https://smba.trafficmanager.net/teams/x"
        ));
        assert!(!same_service_url(teams, "https://evil.example/teams/"));
        assert!(!same_service_url(teams, ""));
    }

    #[test]
    fn endorsements() {
        let list = ["msteams".to_owned(), "webchat".to_owned()];
        assert!(check_endorsements(Some(&list), Some("msteams"), false).is_ok());
        assert!(check_endorsements(None, Some("msteams"), false).is_ok());
        for (e, c, strict) in [
            (Some(&list[..]), Some("slack"), false),
            (Some(&list[..]), Some("MSTEAMS"), false),
            (Some(&list[..]), Some(""), false),
            (Some(&[][..]), Some("msteams"), false),
            (None, Some("msteams"), true),
            (None, None, true),
        ] {
            assert_eq!(
                check_endorsements(e, c, strict).unwrap_err().kind(),
                ErrorKind::Endorsement,
                "{e:?} {c:?} {strict}"
            );
        }
        assert!(check_endorsements(Some(&list), Some("webchat"), true).is_ok());
    }

    #[test]
    fn string_claims() {
        let c = map(json!({"s": "x", "n": 1}));
        assert_eq!(required_string(&c, "s").unwrap(), "x");
        assert_eq!(
            required_string(&c, "n").unwrap_err().kind(),
            ErrorKind::ClaimType
        );
        assert_eq!(
            required_string(&c, "m").unwrap_err().kind(),
            ErrorKind::MissingClaim
        );
        assert_eq!(string_claim(&c, "m").unwrap(), None);
    }
}
