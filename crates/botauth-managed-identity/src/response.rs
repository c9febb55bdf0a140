//! Managed identity token responses: values usually arrive as strings, `expires_on` as epoch
//! seconds or (older endpoints) as `MM/dd/yyyy HH:mm:ss +00:00` (docs/protocol.md §4).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use botauth_core::internal::date::{self, UtcDateTime};
use botauth_core::{AccessToken, Error, Result, Secret};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_on: Option<Value>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_in: Option<Value>,
}

/// Parses a 200 answer of `endpoint` received at `now`. Never quotes the body: it holds a token.
pub(crate) fn parse(endpoint: &str, body: &[u8], now: SystemTime) -> Result<AccessToken> {
    let invalid = |message: &str| Error::InvalidResponse {
        endpoint: endpoint.to_owned(),
        status: 200,
        message: message.to_owned(),
    };
    let wire: Wire = serde_json::from_slice(body)
        .map_err(|_| invalid("the body is not a JSON token response"))?;
    let token = wire
        .access_token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| invalid("the response has no access_token"))?;
    let token_type: Cow<'static, str> = match wire.token_type.as_deref() {
        None => Cow::Borrowed("Bearer"),
        Some(t) if t.eq_ignore_ascii_case("bearer") => Cow::Borrowed("Bearer"),
        Some(_) => return Err(invalid("token_type is not Bearer")),
    };
    let expires_on = match (&wire.expires_on, &wire.expires_in) {
        (Some(on), _) => expires_on(on)
            .ok_or_else(|| invalid("expires_on is neither epoch seconds nor a date"))?,
        (None, Some(v)) => {
            let secs =
                seconds(v).ok_or_else(|| invalid("expires_in is not a number of seconds"))?;
            // Checked: a hostile endpoint's huge number must be an error, not a panic.
            now.checked_add(Duration::from_secs(secs))
                .ok_or_else(|| invalid("expires_in is out of range"))?
        }
        (None, None) => {
            return Err(invalid(
                "the response has neither expires_on nor expires_in",
            ));
        }
    };
    if expires_on <= now {
        return Err(invalid(
            "the token has already expired (check this host's clock)",
        ));
    }
    let refresh_on = wire
        .refresh_in
        .as_ref()
        .and_then(seconds)
        .and_then(|r| now.checked_add(Duration::from_secs(r)))
        .filter(|r| *r < expires_on);
    Ok(AccessToken {
        token: Secret::new(token),
        token_type,
        expires_on,
        refresh_on,
    })
}

/// A number or a string holding one.
fn seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn expires_on(v: &Value) -> Option<SystemTime> {
    if let Some(epoch) = seconds(v) {
        return UNIX_EPOCH.checked_add(Duration::from_secs(epoch));
    }
    v.as_str().and_then(parse_date)
}

/// `MM/dd/yyyy HH:mm:ss +00:00` (App Service's 2017 API, Azure ML). The offset may be any
/// `±HH:MM`; a 12-hour clock with `AM`/`PM` is accepted too, as .NET hosts sometimes print it.
pub(crate) fn parse_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let mut rest: Vec<&str> = parts.collect();
    let mut meridiem = None;
    if let Some(first) = rest.first() {
        if first.eq_ignore_ascii_case("AM") || first.eq_ignore_ascii_case("PM") {
            meridiem = Some(first.eq_ignore_ascii_case("PM"));
            rest.remove(0);
        }
    }
    let offset = match rest.as_slice() {
        [] => 0,
        [offset] => parse_offset(offset)?,
        _ => return None,
    };
    let mut d = date.split('/').map(|p| p.parse::<i64>().ok());
    let (month, day, year) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() {
        return None;
    }
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (mut hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if t.next().is_some() {
        return None;
    }
    if let Some(pm) = meridiem {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let field = |v: i64| u8::try_from(v).ok();
    let fields = UtcDateTime::new(
        year,
        field(month)?,
        field(day)?,
        field(hour)?,
        field(minute)?,
        field(second)?,
    )?;
    let unix = fields.to_unix() - offset;
    date::from_unix_seconds(unix).filter(|_| unix >= 0)
}

/// `+HH:MM` / `-HH:MM` (or `+HHMM`) as seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => return None,
    };
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::ErrorKind;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_700_000_000;

    fn ok(body: &str) -> AccessToken {
        parse("e", body.as_bytes(), at(NOW)).unwrap()
    }

    fn message(body: &str) -> String {
        match parse("e", body.as_bytes(), at(NOW)).unwrap_err() {
            Error::InvalidResponse {
                message, status, ..
            } => {
                assert_eq!(status, 200);
                message
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn strings_numbers_epochs_and_dates() {
        let t = ok(r#"{"access_token":"a","expires_on":"1700003600","token_type":"Bearer"}"#);
        assert_eq!(t.expires_on, at(1_700_003_600));
        let t = ok(r#"{"access_token":"a","expires_on":1700003600}"#);
        assert_eq!(t.expires_on, at(1_700_003_600));
        let t = ok(r#"{"access_token":"a","expires_in":"3599"}"#);
        assert_eq!(t.expires_on, at(NOW + 3599));
        let t = ok(r#"{"access_token":"a","expires_in":86399,"token_type":"bearer"}"#);
        assert_eq!(t.expires_on, at(NOW + 86399));
        // 2023-11-14 22:13:20 UTC is 1_700_000_000.
        let t = ok(r#"{"access_token":"a","expires_on":"11/14/2023 23:13:20 +00:00"}"#);
        assert_eq!(t.expires_on, at(NOW + 3600));
        let t = ok(r#"{"access_token":"a","expires_on":"11/14/2023 11:13:20 PM +00:00"}"#);
        assert_eq!(t.expires_on, at(NOW + 3600));
        let t = ok(r#"{"access_token":"a","expires_on":"11/15/2023 01:13:20 +02:00"}"#);
        assert_eq!(t.expires_on, at(NOW + 3600));
        let t = ok(r#"{"access_token":"a","expires_in":"3600","refresh_in":"1800"}"#);
        assert_eq!(t.refresh_on, Some(at(NOW + 1800)));
    }

    #[test]
    fn huge_numbers_are_invalid_responses_not_panics() {
        assert_eq!(
            message(r#"{"access_token":"a","expires_on":"18446744073709551615"}"#),
            "expires_on is neither epoch seconds nor a date"
        );
        assert_eq!(
            message(r#"{"access_token":"a","expires_in":18446744073709551615}"#),
            "expires_in is out of range"
        );
        // An absurd refresh_in is dropped rather than trusted.
        let t = ok(r#"{"access_token":"a","expires_in":3600,"refresh_in":18446744073709551615}"#);
        assert_eq!(t.refresh_on, None);
    }

    #[test]
    fn bad_answers_are_invalid_responses() {
        assert_eq!(
            message(r#"{"expires_on":"1700003600"}"#),
            "the response has no access_token"
        );
        assert_eq!(
            message(r#"{"access_token":"","expires_on":"1700003600"}"#),
            "the response has no access_token"
        );
        assert_eq!(
            message(r#"{"access_token":"a"}"#),
            "the response has neither expires_on nor expires_in"
        );
        assert_eq!(
            message(r#"{"access_token":"a","expires_on":"tomorrow"}"#),
            "expires_on is neither epoch seconds nor a date"
        );
        assert_eq!(
            message(r#"{"access_token":"a","expires_on":"13/01/2024 00:00:00 +00:00"}"#),
            "expires_on is neither epoch seconds nor a date"
        );
        assert_eq!(
            message(r#"{"access_token":"a","expires_in":"-5"}"#),
            "expires_in is not a number of seconds"
        );
        assert_eq!(
            message(r#"{"access_token":"a","expires_on":"1000"}"#),
            "the token has already expired (check this host's clock)"
        );
        assert_eq!(
            message(r#"{"access_token":"a","expires_in":60,"token_type":"pop"}"#),
            "token_type is not Bearer"
        );
        assert_eq!(
            message("{\"access_tok"),
            "the body is not a JSON token response"
        );
        let e = parse("e", b"[]", at(NOW)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("01/01/1970 00:00:00 +00:00"), Some(at(0)));
        assert_eq!(
            parse_date("02/29/2024 00:00:00 +00:00"),
            Some(at(1_709_164_800))
        );
        assert_eq!(parse_date("02/29/2023 00:00:00 +00:00"), None);
        assert_eq!(
            parse_date("02/28/2023 00:00:00 -0100"),
            Some(at(1_677_546_000))
        );
        assert_eq!(parse_date("02/28/2023 24:00:00 +00:00"), None);
        assert_eq!(parse_date("02/28/2023"), None);
        assert_eq!(parse_date("02/28/2023 00:00:00 +00:00 extra"), None);
    }
}
