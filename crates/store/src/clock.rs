//! Where the store reads the time. Leases, due times and the rows' timestamps all come from
//! one [`Clock`], so a test can let a lease expire by moving the clock instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The system clock (the default), or a clock that moves only when told (tests).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock standing at `start_ms` (Unix milliseconds) until [`Clock::advance`] moves it.
    /// Clones share it.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => crate::now_ms(),
        }
    }

    /// Moves a manual clock forward by `by`. The system clock moves by itself: this does
    /// nothing to it.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            t.fetch_add(crate::duration_ms(by), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        shared.advance(Duration::from_millis(400));
        assert_eq!(clock.now_ms(), 1_400);
        let system = Clock::system();
        system.advance(Duration::from_secs(3600));
        assert!((system.now_ms() - crate::now_ms()).abs() < 60_000);
    }
}
