//! Injectable wall-clock time, so expiry and refresh decisions are testable.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// The future returned by [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of the current wall-clock time, and of waits measured on it.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Waits for `duration`. Retry loops wait through their clock rather than calling
    /// `tokio::time::sleep` directly, so a test clock can make the waits virtual while the I/O
    /// between them stays real: [`ManualClock`] advances itself by `duration` and returns at once.
    /// The default is `tokio::time::sleep`.
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
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

    /// Advances the clock by `duration` and returns at once: code that waits on this clock runs
    /// through its waits without waiting, and reads the times it would have seen.
    fn sleep(&self, duration: Duration) -> Sleep {
        self.advance(duration);
        Box::pin(std::future::ready(()))
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

    #[tokio::test]
    async fn manual_clock_sleeps_by_advancing() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        clock.sleep(Duration::from_secs(70)).await;
        assert_eq!(
            clock.now().duration_since(t0).unwrap(),
            Duration::from_secs(70)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn default_sleep_is_tokio_sleep() {
        let start = tokio::time::Instant::now();
        SystemClock.sleep(Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[test]
    fn system_clock_is_now() {
        let before = SystemTime::now();
        let t = SystemClock.now();
        assert!(t >= before);
    }
}
