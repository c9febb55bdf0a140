//! User tokens cached per (user, connection, channel) while at least 5 minutes remain
//! (docs/protocol.md §8: the service renews a token within 5 minutes of its expiry, so a token
//! closer to it is asked for again).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::types::TokenResponse;

/// Tokens with less than this left are not served from the cache.
pub(crate) const MIN_REMAINING: Duration = Duration::from_secs(300);

/// The most entries kept; past it, expired entries go, then the whole cache (a flood of distinct
/// users must not grow memory without bound).
const CAPACITY: usize = 10_000;

type Key = (String, String, String);

#[derive(Debug, Default)]
pub(crate) struct UserTokenCache {
    map: Mutex<HashMap<Key, TokenResponse>>,
}

fn key(user: &str, connection: &str, channel: &str) -> Key {
    (user.to_owned(), connection.to_owned(), channel.to_owned())
}

fn fresh(token: &TokenResponse, now: SystemTime) -> bool {
    let Some(at) = token.expires_at_unix() else {
        return false;
    };
    let now = botauth_core::internal::date::unix_seconds(now).max(0);
    at.saturating_sub(now) >= MIN_REMAINING.as_secs() as i64
}

impl UserTokenCache {
    pub(crate) fn get(
        &self,
        user: &str,
        connection: &str,
        channel: &str,
        now: SystemTime,
    ) -> Option<TokenResponse> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&key(user, connection, channel))
            .filter(|t| fresh(t, now))
            .cloned()
    }

    /// Keeps `token` when it says when it expires and has 5 minutes left.
    pub(crate) fn put(
        &self,
        user: &str,
        connection: &str,
        channel: &str,
        token: &TokenResponse,
        now: SystemTime,
    ) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if !fresh(token, now) {
            map.remove(&key(user, connection, channel));
            return;
        }
        if map.len() >= CAPACITY {
            map.retain(|_, t| fresh(t, now));
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key(user, connection, channel), token.clone());
    }

    /// Drops the user's token for `connection` (every connection when `None`) on `channel`.
    pub(crate) fn evict(&self, user: &str, connection: Option<&str>, channel: &str) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|(u, c, ch), _| {
            !(u == user && ch == channel && connection.is_none_or(|conn| conn == c))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::Secret;
    use std::time::UNIX_EPOCH;

    fn token(expires_unix: i64) -> TokenResponse {
        let mut r = TokenResponse::new("graph", Secret::new("t"));
        r.expiration =
            Some(botauth_core::internal::date::UtcDateTime::from_unix(expires_unix).to_string());
        r
    }

    #[test]
    fn kept_while_five_minutes_remain_and_evicted() {
        let cache = UserTokenCache::default();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        cache.put("u", "graph", "msteams", &token(1_000_000 + 301), now);
        assert!(cache.get("u", "graph", "msteams", now).is_some());
        assert!(cache.get("u", "graph", "webchat", now).is_none());
        assert!(
            cache
                .get("u", "graph", "msteams", now + Duration::from_secs(2))
                .is_none(),
            "under 5 minutes left"
        );
        cache.put("u", "other", "msteams", &token(1_000_000 + 3600), now);
        cache.evict("u", Some("graph"), "msteams");
        assert!(cache.get("u", "graph", "msteams", now).is_none());
        assert!(cache.get("u", "other", "msteams", now).is_some());
        cache.evict("u", None, "msteams");
        assert!(cache.get("u", "other", "msteams", now).is_none());
        let mut no_expiry = token(0);
        no_expiry.expiration = None;
        cache.put("u", "graph", "msteams", &no_expiry, now);
        assert!(cache.get("u", "graph", "msteams", now).is_none());
    }
}
