//! Wall-clock helpers: JWT times are Unix seconds and Entra stamps errors with UTC date-times.

use std::time::{Duration, SystemTime};

use botauth_core::internal::date::{self, UtcDateTime};

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    date::unix_seconds(SystemTime::now())
}

/// A duration as whole seconds, saturating.
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Entra's timestamp format, e.g. `2024-05-01 12:34:56Z`.
pub(crate) fn entra_timestamp(unix: i64) -> String {
    let t = UtcDateTime::from_unix(unix);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// An RFC 3339 UTC timestamp with milliseconds, as Bot Service stamps activities:
/// `2024-05-01T12:34:56.789Z` (core's formatter).
pub(crate) use botauth_core::internal::date::rfc3339_millis;

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn formats_rfc3339_with_millis() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let at = UNIX_EPOCH + Duration::from_millis(1_714_566_896_789);
        assert_eq!(rfc3339_millis(at), "2024-05-01T12:34:56.789Z");
        let at = UNIX_EPOCH + Duration::from_micros(951_782_400_007_999);
        assert_eq!(rfc3339_millis(at), "2000-02-29T00:00:00.007Z");
    }

    #[test]
    fn formats_like_entra() {
        assert_eq!(entra_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(entra_timestamp(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(entra_timestamp(1_714_566_896), "2024-05-01 12:34:56Z");
    }
}
