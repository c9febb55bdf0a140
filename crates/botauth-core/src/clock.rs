//! Injectable wall-clock time, so expiry and refresh decisions are testable.

use std::fmt::Debug;
use std::time::SystemTime;

/// A source of the current wall-clock time.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock. The default everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that follows tokio's clock from the moment it was created, so that tests running with
/// paused time (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) move it too.
///
/// Production code should keep [`SystemClock`]: a monotonic clock does not advance while a machine
/// sleeps and ignores NTP corrections.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: SystemTime,
    mono: tokio::time::Instant,
}

impl TokioClock {
    /// Anchors the clock at the current wall time. Must be called inside a tokio runtime when time
    /// is paused.
    pub fn new() -> Self {
        TokioClock {
            wall: SystemTime::now(),
            mono: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.wall + self.mono.elapsed()
    }
}

/// A clock that stands still until told to move: for tests that drive expiry by hand.
///
/// ```
/// use std::time::Duration;
/// use botauth_core::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now().duration_since(t0).unwrap(), Duration::from_secs(60));
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now: std::sync::Mutex<Option<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at the current wall time.
    pub fn new() -> Self {
        ManualClock {
            now: std::sync::Mutex::new(Some(SystemTime::now())),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut SystemTime) -> R) -> R {
        let mut guard = self.now.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.get_or_insert_with(SystemTime::now))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        self.with(|t| *t += by);
    }

    /// Sets the clock.
    pub fn set(&self, to: SystemTime) {
        self.with(|t| *t = to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.with(|t| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new();
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(
            clock.now().duration_since(t0).unwrap(),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn system_clock_is_now() {
        let before = SystemTime::now();
        let t = SystemClock.now();
        assert!(t >= before);
    }
}
