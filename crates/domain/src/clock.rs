//! Time as a port, so expiry rules are testable with a fixed clock.

use chrono::{DateTime, SubsecRound as _, Utc};

/// The source of "now" for every use case.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock, at microsecond precision (what PostgreSQL stores), so a
/// time read back from storage equals the time written.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}
