//! The emulator's notion of "now": the system clock, a pinned time, or your own clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// A source of the current time.
///
/// ```
/// use chrono::{DateTime, TimeZone, Utc};
/// use threescale_emulator::Clock;
/// struct Frozen(DateTime<Utc>);
/// impl Clock for Frozen {
///     fn now(&self) -> DateTime<Utc> { self.0 }
/// }
/// let c = Frozen(Utc.with_ymd_and_hms(2010, 5, 15, 0, 0, 0).unwrap());
/// assert_eq!(c.now().timestamp(), 1273881600);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// How the emulator reads the time.
#[derive(Clone)]
pub(crate) enum ClockMode {
    System,
    Fixed(DateTime<Utc>),
    Custom(Arc<dyn Clock>),
}

impl ClockMode {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        match self {
            ClockMode::System => Utc::now(),
            ClockMode::Fixed(t) => *t,
            ClockMode::Custom(c) => c.now(),
        }
    }
}
