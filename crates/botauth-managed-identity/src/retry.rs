//! The retry schedules of docs/protocol.md §4.
//!
//! - IMDS: 404, 408, 429, 5xx and timeouts → 3 retries after 1 s, 2 s, 4 s; 410 (IMDS is being
//!   updated) → a retry every 10 s for as long as the next attempt starts within 70 s of the
//!   first; 400, 401, 403 → never.
//! - Every other source: 404, 408, 429, 500, 503, 504 and timeouts → 3 retries 1 s apart.
//! - `Retry-After` lengthens the wait when the server sends it, never shortens it (a `Retry-After: 0`
//!   on a 410 would otherwise turn 70 s of patience into thousands of requests); one longer than
//!   [`RetryOptions::max_retry_after`] ends the attempts at once (the caller gets the throttling
//!   error with the server's wait, and its token cache holds off).
//!
//! Waits go through the credential's [`Clock`](botauth_core::Clock), never `tokio::time::sleep`
//! directly, and elapsed time is read from the same clock. That is what makes the schedule testable
//! exactly: a test gives the credential a `ManualClock`, whose `sleep` advances it at once, while the
//! HTTP exchanges with the sandbox stay on real time. (Pausing tokio's clock instead would be
//! unsound here: a paused runtime auto-advances to the next timer whenever it is idle, including
//! while it waits for a real socket, and reqwest's own timeouts would then fire spuriously.)

use std::time::{Duration, SystemTime};

use crate::source::ManagedIdentitySource;

/// Tuning of the retry schedules. The defaults are docs/protocol.md §4's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryOptions {
    /// IMDS waits before its retries (default 1 s, 2 s, 4 s).
    pub imds_backoff: Vec<Duration>,
    /// IMDS: the wait between attempts while it answers 410 (default 10 s).
    pub imds_gone_interval: Duration,
    /// IMDS: how long 410 answers are retried, from the first attempt (default 70 s).
    pub imds_gone_budget: Duration,
    /// Other sources: retries (default 3).
    pub retries: u32,
    /// Other sources: the wait between attempts (default 1 s).
    pub delay: Duration,
    /// The longest `Retry-After` waited for (default 60 s).
    pub max_retry_after: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            imds_backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
            ],
            imds_gone_interval: Duration::from_secs(10),
            imds_gone_budget: Duration::from_secs(70),
            retries: 3,
            delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryOptions {
    /// No retries at all.
    pub fn none() -> Self {
        RetryOptions {
            imds_backoff: Vec::new(),
            imds_gone_budget: Duration::ZERO,
            retries: 0,
            ..RetryOptions::default()
        }
    }
}

/// What an attempt ended with, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Status(u16, Option<Duration>),
    Timeout,
}

/// The decision after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Retry(Duration),
    GiveUp,
}

/// The state of one `get_token` call's attempts.
#[derive(Debug)]
pub(crate) struct Schedule<'a> {
    options: &'a RetryOptions,
    source: ManagedIdentitySource,
    started: SystemTime,
    retries: usize,
}

impl<'a> Schedule<'a> {
    pub(crate) fn new(
        options: &'a RetryOptions,
        source: ManagedIdentitySource,
        started: SystemTime,
    ) -> Self {
        Schedule {
            options,
            source,
            started,
            retries: 0,
        }
    }

    /// Whether (and after how long) to try again after `outcome`, observed at `now`.
    pub(crate) fn next(&mut self, outcome: Outcome, now: SystemTime) -> Decision {
        let o = self.options;
        let (status, retry_after) = match outcome {
            Outcome::Status(s, ra) => (Some(s), ra),
            Outcome::Timeout => (None, None),
        };
        if retry_after.is_some_and(|ra| ra > o.max_retry_after) {
            return Decision::GiveUp;
        }
        if self.source == ManagedIdentitySource::Imds {
            if status == Some(410) {
                let wait = at_least(retry_after, o.imds_gone_interval);
                let next_start = now + wait;
                let elapsed = next_start.duration_since(self.started).unwrap_or_default();
                return if elapsed <= o.imds_gone_budget {
                    Decision::Retry(wait)
                } else {
                    Decision::GiveUp
                };
            }
            let retryable = match status {
                None => true,
                Some(s) => matches!(s, 404 | 408 | 429) || (500..=599).contains(&s),
            };
            match o.imds_backoff.get(self.retries) {
                Some(backoff) if retryable => {
                    self.retries += 1;
                    Decision::Retry(at_least(retry_after, *backoff))
                }
                _ => Decision::GiveUp,
            }
        } else {
            let retryable = match status {
                None => true,
                Some(s) => matches!(s, 404 | 408 | 429 | 500 | 503 | 504),
            };
            if retryable && self.retries < o.retries as usize {
                self.retries += 1;
                Decision::Retry(at_least(retry_after, o.delay))
            } else {
                Decision::GiveUp
            }
        }
    }
}

/// The schedule's own wait, or the server's `Retry-After` when that is longer.
fn at_least(retry_after: Option<Duration>, wait: Duration) -> Duration {
    retry_after.map_or(wait, |ra| ra.max(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// Runs the schedule against a server that always answers `outcome`; returns attempt times.
    fn attempts(source: ManagedIdentitySource, outcome: Outcome) -> Vec<u64> {
        let options = RetryOptions::default();
        let t0 = SystemTime::UNIX_EPOCH;
        let mut schedule = Schedule::new(&options, source, t0);
        let mut now = t0;
        let mut times = vec![0];
        while let Decision::Retry(wait) = schedule.next(outcome, now) {
            now += wait;
            times.push(now.duration_since(t0).unwrap().as_secs());
        }
        times
    }

    #[test]
    fn imds_schedules() {
        use ManagedIdentitySource::Imds;
        for status in [404, 408, 429, 500, 503, 599] {
            assert_eq!(
                attempts(Imds, Outcome::Status(status, None)),
                [0, 1, 3, 7],
                "{status}"
            );
        }
        assert_eq!(attempts(Imds, Outcome::Timeout), [0, 1, 3, 7]);
        assert_eq!(
            attempts(Imds, Outcome::Status(410, None)),
            [0, 10, 20, 30, 40, 50, 60, 70]
        );
        for status in [400, 401, 403, 405, 418] {
            assert_eq!(
                attempts(Imds, Outcome::Status(status, None)),
                [0],
                "{status}"
            );
        }
        assert_eq!(
            attempts(Imds, Outcome::Status(429, Some(secs(5)))),
            [0, 5, 10, 15]
        );
        assert_eq!(attempts(Imds, Outcome::Status(429, Some(secs(61)))), [0]);
        // A zero (or short) Retry-After never shortens the schedule into a request loop.
        assert_eq!(
            attempts(Imds, Outcome::Status(410, Some(secs(0)))),
            [0, 10, 20, 30, 40, 50, 60, 70]
        );
        assert_eq!(
            attempts(Imds, Outcome::Status(429, Some(secs(0)))),
            [0, 1, 3, 7]
        );
    }

    #[test]
    fn other_sources() {
        use ManagedIdentitySource::*;
        for source in [AppService, AzureArc, CloudShell, ServiceFabric, AzureMl] {
            for status in [404, 408, 429, 500, 503, 504] {
                assert_eq!(
                    attempts(source, Outcome::Status(status, None)),
                    [0, 1, 2, 3]
                );
            }
            for status in [400, 401, 403, 410, 501, 502] {
                assert_eq!(
                    attempts(source, Outcome::Status(status, None)),
                    [0],
                    "{status}"
                );
            }
            assert_eq!(attempts(source, Outcome::Timeout), [0, 1, 2, 3]);
            assert_eq!(
                attempts(source, Outcome::Status(429, Some(secs(7)))),
                [0, 7, 14, 21]
            );
            assert_eq!(
                attempts(source, Outcome::Status(503, Some(secs(0)))),
                [0, 1, 2, 3]
            );
        }
    }

    #[test]
    fn none_means_one_attempt() {
        let options = RetryOptions::none();
        let mut s = Schedule::new(
            &options,
            ManagedIdentitySource::Imds,
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(
            s.next(Outcome::Status(410, None), SystemTime::UNIX_EPOCH),
            Decision::GiveUp
        );
        assert_eq!(
            s.next(Outcome::Timeout, SystemTime::UNIX_EPOCH),
            Decision::GiveUp
        );
    }
}
