//! Rate-limited outage logging: while the backend is down, one WARN line for
//! the first failure, then at most one summary line per interval saying how
//! many more failures there were, and one INFO line when the backend answers
//! again. Without it, 500 failing requests would write 500 lines.
//!
//! Lines carry the service id and the error (which never holds a secret: the
//! backend client redacts its errors), never credentials.

use std::fmt::Display;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// At most one outage line per this interval.
pub(crate) const OUTAGE_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The rate-limited outage logger of one engine.
#[derive(Debug)]
pub(crate) struct OutageLog {
    every: Duration,
    /// Set while failures are being counted: lets a success skip the lock.
    failing: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last line was written.
    last_line: Option<Instant>,
    /// Failures since the last line, not written.
    unlogged: u64,
    /// Failures since the backend last answered.
    total: u64,
}

/// What to write for one failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The first failure of an outage: write it.
    First,
    /// A later failure, after the interval: write it with the number of
    /// failures not written since the last line.
    Summary {
        /// Failures since the last line, not written.
        unlogged: u64,
    },
    /// Counted, not written.
    Quiet,
}

impl OutageLog {
    /// A logger writing at most one line per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        OutageLog {
            every,
            failing: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }
    }

    /// Counts one failure at `now` and says what to write.
    pub(crate) fn note(&self, now: Instant) -> Line {
        self.failing.store(true, Ordering::Relaxed);
        let mut state = crate::lock(&self.state);
        state.total = state.total.saturating_add(1);
        match state.last_line {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                state.unlogged = state.unlogged.saturating_add(1);
                Line::Quiet
            }
            last => {
                state.last_line = Some(now);
                let unlogged = std::mem::take(&mut state.unlogged);
                if last.is_none() {
                    Line::First
                } else {
                    Line::Summary { unlogged }
                }
            }
        }
    }

    /// The backend answered: ends the outage. Returns how many failures it
    /// had, when one was going on.
    pub(crate) fn note_recovery(&self) -> Option<u64> {
        if !self.failing.load(Ordering::Relaxed) {
            return None;
        }
        let mut state = crate::lock(&self.state);
        self.failing.store(false, Ordering::Relaxed);
        let total = std::mem::take(&mut state.total);
        *state = State::default();
        (total > 0).then_some(total)
    }

    /// Logs one backend failure of `service_id`, rate-limited.
    pub(crate) fn failed(&self, service_id: &str, error: &dyn Display, what: &str) {
        crate::metrics::outage(service_id, true);
        match self.note(Instant::now()) {
            Line::First => {
                tracing::warn!(%service_id, %error, "{what}");
            }
            Line::Summary { unlogged } => {
                tracing::warn!(
                    %service_id,
                    %error,
                    failures_not_logged = unlogged,
                    "{what}; {unlogged} more failures since the last message"
                );
            }
            Line::Quiet => {}
        }
    }

    /// Logs the end of an outage of `service_id`, if one was going on.
    pub(crate) fn recovered(&self, service_id: &str) {
        if let Some(failures) = self.note_recovery() {
            crate::metrics::outage(service_id, false);
            tracing::info!(
                %service_id,
                failures,
                "3scale backend answering again after {failures} failures"
            );
        }
    }
}

impl Default for OutageLog {
    fn default() -> Self {
        OutageLog::new(OUTAGE_LOG_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_first_failure_is_written_then_summaries_per_interval() {
        let log = OutageLog::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(log.note(t0), Line::First);
        for i in 1..=499u64 {
            // 499 more within the interval: all quiet
            assert_eq!(log.note(t0 + Duration::from_millis(i)), Line::Quiet);
        }
        assert_eq!(
            log.note(t0 + Duration::from_secs(5)),
            Line::Summary { unlogged: 499 }
        );
        assert_eq!(log.note(t0 + Duration::from_secs(6)), Line::Quiet);
        assert_eq!(
            log.note(t0 + Duration::from_secs(11)),
            Line::Summary { unlogged: 1 }
        );
        assert_eq!(log.note_recovery(), Some(503));
        assert_eq!(log.note_recovery(), None);
        // a new outage starts with a full line again
        assert_eq!(log.note(t0 + Duration::from_secs(12)), Line::First);
    }

    /// Counts the WARN lines written under a capturing subscriber.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<String>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn five_hundred_failures_write_one_line() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let log = OutageLog::default();
            for _ in 0..500 {
                log.failed("42", &"backend unreachable: connection refused", "down");
            }
            log.recovered("42");
        });
        let lines = lines.0.lock().unwrap();
        let warns: Vec<_> = lines.iter().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warns.len(), 1, "{lines:#?}");
        assert!(warns[0].contains("connection refused") && warns[0].contains("42"));
        let infos: Vec<_> = lines.iter().filter(|l| l.contains("INFO")).collect();
        assert_eq!(infos.len(), 1, "{lines:#?}");
        assert!(infos[0].contains("after 500 failures"), "{}", infos[0]);
    }
}
