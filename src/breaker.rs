//! The batch's circuit breaker (the design's threshold 3, reset time and
//! half-open state).
//!
//! Only failures that point at the environment count (a tool crashing or
//! missing, a full disk, a work folder that cannot be written; see
//! [`crate::error::Error::is_environmental`]): a bad rip fails alone and the
//! batch goes on. After [`THRESHOLD`] of them in a row the breaker opens:
//! no file starts until the reset time has passed; then one file is tried
//! (half-open). Its success closes the breaker, its failure opens it for
//! good and the batch stops.

use std::time::{Duration, Instant};

/// Environmental failures in a row that open the breaker.
pub const THRESHOLD: usize = 3;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Files run.
    Closed { failures: usize },
    /// No file runs until `since + reset`.
    Open { since: Instant },
    /// One file runs as a trial.
    HalfOpen,
    /// The trial failed: the batch stops.
    Tripped,
}

/// What the batch may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Run,
    /// Wait this long, then ask again.
    Wait(Duration),
    Stop,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    pub state: State,
    reset: Duration,
}

impl Breaker {
    pub fn new(reset: Duration) -> Breaker {
        Breaker { state: State::Closed { failures: 0 }, reset }
    }

    /// Whether the next file may start at `now`.
    pub fn next(&mut self, now: Instant) -> Verdict {
        match self.state {
            State::Closed { .. } | State::HalfOpen => Verdict::Run,
            State::Open { since } => {
                let waited = now.saturating_duration_since(since);
                if waited >= self.reset {
                    self.state = State::HalfOpen;
                    Verdict::Run
                } else {
                    Verdict::Wait(self.reset - waited)
                }
            }
            State::Tripped => Verdict::Stop,
        }
    }

    /// A file finished (encoded or skipped), or failed for a reason of its
    /// own: the environment works.
    pub fn success(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    /// A file failed because of the environment, at `now`.
    pub fn failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed { failures } if failures + 1 >= THRESHOLD => State::Open { since: now },
            State::Closed { failures } => State::Closed { failures: failures + 1 },
            State::HalfOpen | State::Tripped => State::Tripped,
            open @ State::Open { .. } => open,
        };
    }

    /// Just opened (for the warning).
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_three_waits_then_tries_one() {
        let t0 = Instant::now();
        let mut b = Breaker::new(Duration::from_secs(300));
        for _ in 0..2 {
            b.failure(t0);
            assert_eq!(b.next(t0), Verdict::Run);
        }
        b.failure(t0);
        assert!(b.is_open());
        assert_eq!(b.next(t0 + Duration::from_secs(100)), Verdict::Wait(Duration::from_secs(200)));
        assert_eq!(b.next(t0 + Duration::from_secs(300)), Verdict::Run);
        assert_eq!(b.state, State::HalfOpen);
        // The trial works: closed again, with a fresh count.
        b.success();
        assert_eq!(b.state, State::Closed { failures: 0 });
    }

    #[test]
    fn a_failed_trial_stops_the_batch() {
        let t0 = Instant::now();
        let mut b = Breaker::new(Duration::ZERO);
        for _ in 0..3 {
            b.failure(t0);
        }
        assert_eq!(b.next(t0), Verdict::Run, "no reset time: the trial at once");
        b.failure(t0);
        assert_eq!(b.next(t0 + Duration::from_secs(9999)), Verdict::Stop);
    }

    #[test]
    fn a_success_in_between_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(Duration::from_secs(300));
        b.failure(t0);
        b.failure(t0);
        b.success();
        b.failure(t0);
        b.failure(t0);
        assert_eq!(b.next(t0), Verdict::Run);
    }
}
