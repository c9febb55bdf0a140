//! Dates: Unix time and RFC 3339, in one place for every crate.
//!
//! botauth prints dates (a certificate's expiry, a token's `exp` in the CLI, the sandbox's
//! timestamps) and reads a few (the Token Service's `expiration`). A date-time crate would be
//! a dependency of every botauth crate for about a hundred lines of arithmetic, so the calendar
//! is done here: UTC only, proleptic Gregorian, exact for every day count (Howard Hinnant's
//! `civil_from_days` / `days_from_civil`).
//!
//! Conversions to Unix seconds round towards the past (a time half a second before the epoch is
//! second −1), as RFC 3339 truncation and JWT `NumericDate`s expect, and saturate instead of
//! overflowing.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use botauth_core::internal::date;
//! let t = UNIX_EPOCH + Duration::from_millis(951_825_661_123);
//! assert_eq!(date::rfc3339(t), "2000-02-29T12:01:01Z");
//! assert_eq!(date::rfc3339_millis(t), "2000-02-29T12:01:01.123Z");
//! assert_eq!(date::unix_seconds(t), 951_825_661);
//! assert_eq!(date::parse_rfc3339("2000-02-29T13:01:01.123+01:00"), Some(t));
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (negative before it), rounded towards the past.
#[inline]
pub fn unix_seconds(t: SystemTime) -> i64 {
    // The inbound validator reads the clock through this on every check: whole seconds straight
    // from the duration, no 128-bit millisecond arithmetic.
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -whole.saturating_add(i64::from(d.subsec_nanos() != 0))
        }
    }
}

/// Milliseconds since the Unix epoch (negative before it), rounded towards the past.
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            // A partial millisecond before the epoch still belongs to the millisecond before it.
            let partial = i64::from(d.subsec_nanos() % 1_000_000 != 0);
            -whole.saturating_add(partial)
        }
    }
}

/// The time `secs` seconds after the Unix epoch (before it when negative), or `None` when the
/// platform's `SystemTime` cannot hold it.
pub fn from_unix_seconds(secs: i64) -> Option<SystemTime> {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

/// `t` in RFC 3339, UTC, whole seconds: `2125-10-30T13:30:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    UtcDateTime::from_unix(unix_seconds(t)).to_string()
}

/// `t` in RFC 3339, UTC, with milliseconds: `2024-05-01T12:34:56.789Z` (the form the Bot
/// Service writes in activities).
pub fn rfc3339_millis(t: SystemTime) -> String {
    let millis = unix_millis(t);
    let d = UtcDateTime::from_unix(millis.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year,
        d.month,
        d.day,
        d.hour,
        d.minute,
        d.second,
        millis.rem_euclid(1000)
    )
}

/// Reads an RFC 3339 date-time: `2024-05-01T12:34:56Z`, with optional fractional seconds and a
/// `Z` or `±hh:mm` offset. Two leniencies for what services write: the separator may be `T`, `t`
/// or a space, and a missing offset is read as UTC (as .NET's serializer writes it). A leap
/// second (`:60`) is the next minute's first second, as in Unix time. Anything else, or a date
/// that does not exist (`2001-02-29`), is `None`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let year = number(d.next()?, 4)?;
    let month = number(d.next()?, 2)?;
    let day = number(d.next()?, 2)?;
    if d.next().is_some() {
        return None;
    }
    let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (clock, offset) = time.split_at(i);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        let (h, m) = (number(h, 2)?, number(m, 2)?);
        if h > 23 || m > 59 {
            return None;
        }
        (clock, sign * (h * 3600 + m * 60))
    } else {
        (time, 0)
    };
    let (clock, fraction) = match clock.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (clock, None),
    };
    let mut c = clock.split(':');
    let (hour, minute, second) = (
        number(c.next()?, 2)?,
        number(c.next()?, 2)?,
        number(c.next()?, 2)?,
    );
    if c.next().is_some() {
        return None;
    }
    let nanos = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            // Nanoseconds are the finest `SystemTime` keeps; further digits are dropped.
            let digits = &f[..f.len().min(9)];
            let value: u32 = digits.parse().ok()?;
            value * 10u32.pow(9 - digits.len() as u32)
        }
        Some(_) => return None,
    };
    let fields = UtcDateTime::new(
        year,
        month as u8,
        day as u8,
        hour as u8,
        minute as u8,
        second as u8,
    )?;
    from_unix_seconds(fields.to_unix() - offset)?
        .checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// `text` as a number of exactly `digits` ASCII digits.
fn number(text: &str, digits: usize) -> Option<i64> {
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A Unix time as UTC calendar fields (proleptic Gregorian calendar). `Display` prints it in
/// RFC 3339 (`2000-02-29T12:01:01Z`).
///
/// ```
/// use botauth_core::internal::date::UtcDateTime;
/// let t = UtcDateTime::from_unix(951_825_661);
/// assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
/// assert_eq!((t.hour, t.minute, t.second), (12, 1, 1));
/// assert_eq!(UtcDateTime::from_unix(-1).year, 1969);
/// assert_eq!(t.to_unix(), 951_825_661);
/// assert_eq!(t.to_string(), "2000-02-29T12:01:01Z");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UtcDateTime {
    /// The year (may be before 1970, or negative).
    pub year: i64,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 59 (Unix time has no leap seconds); [`new`](Self::new) also takes 60.
    pub second: u8,
}

impl UtcDateTime {
    /// The calendar fields of `secs` seconds since the Unix epoch (negative: before it).
    pub fn from_unix(secs: i64) -> Self {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days: exact for every day count, no tables, no loops.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        // Every value below is in range by construction (rem < 86 400, 1 <= month <= 12, …).
        UtcDateTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// Checked calendar fields: `None` unless the day exists in that month and year, the hour is
    /// 0 to 23, the minute 0 to 59 and the second 0 to 60 (60: a leap second, which
    /// [`to_unix`](Self::to_unix) counts as the next minute's first second).
    pub fn new(year: i64, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let days_in_month = match month {
            2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            _ => return None,
        };
        let valid = (1..=days_in_month).contains(&day) && hour < 24 && minute < 60 && second <= 60;
        valid.then_some(UtcDateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// Seconds since the Unix epoch (negative before it): the inverse of
    /// [`from_unix`](Self::from_unix).
    pub fn to_unix(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        let y = if month <= 2 { self.year - 1 } else { self.year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

impl fmt::Display for UtcDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn utc_date_time_at_the_edges() {
        let fields = |t: UtcDateTime| (t.year, t.month, t.day, t.hour, t.minute, t.second);
        assert_eq!(fields(UtcDateTime::from_unix(0)), (1970, 1, 1, 0, 0, 0));
        assert_eq!(
            fields(UtcDateTime::from_unix(-1)),
            (1969, 12, 31, 23, 59, 59)
        );
        assert_eq!(
            fields(UtcDateTime::from_unix(951_868_799)),
            (2000, 2, 29, 23, 59, 59)
        );
        assert_eq!(
            fields(UtcDateTime::from_unix(951_868_800)),
            (2000, 3, 1, 0, 0, 0)
        );
        // 2100 is not a leap year.
        assert_eq!(
            fields(UtcDateTime::from_unix(4_107_542_400)),
            (2100, 3, 1, 0, 0, 0)
        );
    }

    #[test]
    fn civil_round_trips() {
        // Every day across four centuries either side of the epoch, at a time of day that
        // changes from day to day.
        let mut secs = -12_622_780_800; // 1570-01-01
        while secs < 13_569_465_600 {
            // 2400-01-01
            let t = UtcDateTime::from_unix(secs);
            assert_eq!(t.to_unix(), secs, "{t:?}");
            let again = UtcDateTime::new(t.year, t.month, t.day, t.hour, t.minute, t.second);
            assert_eq!(again, Some(t));
            secs += 86_400 + 3_607;
        }
    }

    #[test]
    fn checked_fields() {
        assert!(UtcDateTime::new(2000, 2, 29, 0, 0, 0).is_some());
        assert!(UtcDateTime::new(2100, 2, 29, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2001, 4, 31, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2001, 13, 1, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2001, 0, 1, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2001, 1, 0, 0, 0, 0).is_none());
        assert!(UtcDateTime::new(2001, 1, 1, 24, 0, 0).is_none());
        assert!(UtcDateTime::new(2001, 1, 1, 0, 60, 0).is_none());
        assert!(UtcDateTime::new(2001, 1, 1, 0, 0, 61).is_none());
        let leap = UtcDateTime::new(2016, 12, 31, 23, 59, 60).unwrap();
        assert_eq!(leap.to_unix(), 1_483_228_800); // 2017-01-01T00:00:00Z
    }

    #[test]
    fn unix_conversions_round_towards_the_past() {
        assert_eq!(unix_seconds(UNIX_EPOCH), 0);
        assert_eq!(unix_seconds(at(1_700_000_000)), 1_700_000_000);
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1_999)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1)), -1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(1)), -1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1_001)), -2);
        assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_micros(1_999)), 1);
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_micros(1)), -1);
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_millis(5)), -5);
        assert_eq!(
            from_unix_seconds(-1),
            UNIX_EPOCH.checked_sub(Duration::from_secs(1))
        );
        assert_eq!(from_unix_seconds(90), Some(at(90)));
        for secs in [-86_401, -1, 0, 1, 951_825_661, 253_402_300_799] {
            assert_eq!(from_unix_seconds(secs).map(unix_seconds), Some(secs));
        }
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(1_609_459_200)), "2021-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(4_102_444_799)), "2099-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_999)),
            "1970-01-01T00:00:01Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn rfc3339_formats_with_millis() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_714_566_896_789);
        assert_eq!(rfc3339_millis(t), "2024-05-01T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_micros(951_782_400_007_999);
        assert_eq!(rfc3339_millis(t), "2000-02-29T00:00:00.007Z");
        let t = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(rfc3339_millis(t), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rfc3339_forms() {
        let secs = |s: &str| parse_rfc3339(s).map(unix_seconds);
        assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(secs("2000-02-29T12:01:01.123Z"), Some(951_825_661));
        assert_eq!(secs("2000-02-29T13:01:01+01:00"), Some(951_825_661));
        assert_eq!(secs("2000-02-29T11:31:01-00:30"), Some(951_825_661));
        assert_eq!(secs("2000-02-29T12:01:01"), Some(951_825_661));
        assert_eq!(secs("2000-02-29t12:01:01z"), Some(951_825_661));
        assert_eq!(secs(" 2000-02-29 12:01:01Z "), Some(951_825_661));
        assert_eq!(secs("2016-12-31T23:59:60Z"), Some(1_483_228_800));
        assert_eq!(
            parse_rfc3339("2000-02-29T12:01:01.123456789123Z"),
            Some(at(951_825_661) + Duration::from_nanos(123_456_789))
        );
        assert_eq!(
            parse_rfc3339("1969-12-31T23:59:59.5Z"),
            UNIX_EPOCH.checked_sub(Duration::from_millis(500))
        );
        for bad in [
            "yesterday",
            "",
            "2000-13-01T00:00:00Z",
            "2001-02-29T00:00:00Z",
            "2000-02-30T00:00:00Z",
            "2000-02-29",
            "2000-02-29T24:00:00Z",
            "2000-02-29T12:60:00Z",
            "2000-02-29T12:01Z",
            "2000-02-29T12:01:01.Z",
            "2000-02-29T12:01:01.1x",
            "2000-02-29T12:01:01+1:00",
            "2000-02-29T12:01:01+24:00",
            "2000-2-29T12:01:01Z",
            "+2000-02-29T12:01:01Z",
            "2000-02-29T12:01:01:01Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatting_and_parsing_agree() {
        for secs in [
            0,
            1,
            951_825_661,
            1_714_566_896,
            4_102_444_799,
            253_402_300_799,
        ] {
            let t = at(secs);
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
            let t = t + Duration::from_millis(789);
            assert_eq!(parse_rfc3339(&rfc3339_millis(t)), Some(t));
        }
    }
}
