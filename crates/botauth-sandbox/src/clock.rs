//! Wall-clock helpers: JWT times are Unix seconds and Entra stamps errors with UTC date-times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use botauth_core::UtcDateTime;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_entra() {
        assert_eq!(entra_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(entra_timestamp(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(entra_timestamp(1_714_566_896), "2024-05-01 12:34:56Z");
    }
}
