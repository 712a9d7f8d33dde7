//! Fault injection on the `/transactions` endpoints: latency, 5xx answers, malformed
//! XML and dropped connections. Off by default.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Faults to inject. Each kind fires on every `*_every_nth` request (counted from the
/// moment the faults were set) or, failing that, on a `*_share` (0.0–1.0) of requests
/// drawn from an RNG seeded with `seed` (0 when unset), so runs are reproducible.
/// A request gets at most one of drop, error, malformed (in that order of priority),
/// after the latency. Faulted requests change no counter.
///
/// ```
/// use threescale_emulator::Faults;
/// let faults = Faults { error_every_nth: Some(2), latency_ms: 10, ..Faults::default() };
/// let json = serde_json::to_string(&faults).unwrap();
/// assert!(json.contains("\"error_every_nth\":2"));
/// let back: Faults = serde_json::from_str(r#"{"drop_share": 0.5, "seed": 7}"#).unwrap();
/// assert_eq!(back.seed, Some(7));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fixed delay before answering, in milliseconds.
    pub latency_ms: u64,
    /// An extra random delay in `[min, max]` milliseconds.
    pub latency_range_ms: Option<[u64; 2]>,
    /// Share of requests answered with a 5xx.
    pub error_share: f64,
    /// Answer every n-th request with a 5xx.
    pub error_every_nth: Option<u64>,
    /// The 5xx status (default 503).
    pub error_status: Option<u16>,
    /// Share of requests answered 200 with a malformed XML body.
    pub malformed_share: f64,
    /// Answer every n-th request with a malformed XML body.
    pub malformed_every_nth: Option<u64>,
    /// Share of requests whose connection is closed without an answer.
    pub drop_share: f64,
    /// Close the connection of every n-th request without an answer.
    pub drop_every_nth: Option<u64>,
    /// RNG seed for the shares and the random latency.
    pub seed: Option<u64>,
}

impl Faults {
    /// Whether nothing would be injected.
    pub fn is_off(&self) -> bool {
        self.latency_ms == 0
            && self.latency_range_ms.is_none()
            && self.error_share <= 0.0
            && self.error_every_nth.is_none()
            && self.malformed_share <= 0.0
            && self.malformed_every_nth.is_none()
            && self.drop_share <= 0.0
            && self.drop_every_nth.is_none()
    }
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultAction {
    None,
    Error(u16),
    Malformed(u64),
    Drop,
}

#[derive(Debug)]
pub(crate) struct FaultState {
    faults: Faults,
    count: u64,
    rng: StdRng,
}

impl Default for FaultState {
    fn default() -> Self {
        Self::new(Faults::default())
    }
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed.unwrap_or(0));
        Self {
            faults,
            count: 0,
            rng,
        }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    fn fires(&mut self, every_nth: Option<u64>, share: f64, n: u64) -> bool {
        if let Some(k) = every_nth.filter(|&k| k > 0) {
            return n.is_multiple_of(k);
        }
        share > 0.0 && self.rng.random::<f64>() < share
    }

    /// Decides the delay and the action for the next request.
    pub(crate) fn next(&mut self) -> (Duration, FaultAction) {
        if self.faults.is_off() {
            return (Duration::ZERO, FaultAction::None);
        }
        self.count += 1;
        let n = self.count;
        let mut delay = self.faults.latency_ms;
        if let Some([lo, hi]) = self.faults.latency_range_ms {
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            delay = delay.saturating_add(self.rng.random_range(lo..=hi));
        }
        let f = self.faults.clone();
        let action = if self.fires(f.drop_every_nth, f.drop_share, n) {
            FaultAction::Drop
        } else if self.fires(f.error_every_nth, f.error_share, n) {
            let status = f
                .error_status
                .filter(|s| (500..=599).contains(s))
                .unwrap_or(503);
            FaultAction::Error(status)
        } else if self.fires(f.malformed_every_nth, f.malformed_share, n) {
            FaultAction::Malformed(n)
        } else {
            FaultAction::None
        };
        (Duration::from_millis(delay), action)
    }
}

/// A malformed body: a truncated status document, or plain garbage.
pub(crate) fn malformed_body(n: u64) -> &'static str {
    match n % 3 {
        0 => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><status><authorized>tr",
        1 => "<<<this is not xml>>>",
        _ => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><status><authorized>true</plan></status",
    }
}

/// Reads a JSON [`Faults`] body; a share outside `0.0..=1.0` is refused.
pub(crate) fn parse_faults(body: &[u8]) -> Result<Faults, String> {
    let faults = serde_json::from_slice::<Faults>(body).map_err(|e| e.to_string())?;
    if [
        faults.error_share,
        faults.malformed_share,
        faults.drop_share,
    ]
    .iter()
    .any(|s| !(0.0..=1.0).contains(s))
    {
        return Err("shares must be within 0.0..=1.0".into());
    }
    Ok(faults)
}

/// A response whose body fails before its first byte: hyper then closes the
/// connection without sending anything.
pub(crate) fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection dropped by threescale-emulator fault injection",
        ))
    });
    Response::new(Body::from_stream(failing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_is_deterministic() {
        let mut s = FaultState::new(Faults {
            error_every_nth: Some(3),
            ..Faults::default()
        });
        let actions: Vec<FaultAction> = (0..6).map(|_| s.next().1).collect();
        assert_eq!(actions[2], FaultAction::Error(503));
        assert_eq!(actions[5], FaultAction::Error(503));
        assert_eq!(
            actions.iter().filter(|a| **a != FaultAction::None).count(),
            2
        );
    }

    #[test]
    fn shares_are_reproducible_with_a_seed() {
        let f = Faults {
            malformed_share: 0.5,
            seed: Some(42),
            ..Faults::default()
        };
        let run = |f: &Faults| {
            let mut s = FaultState::new(f.clone());
            (0..100).map(|_| s.next().1).collect::<Vec<_>>()
        };
        let a = run(&f);
        assert_eq!(a, run(&f));
        let hits = a
            .iter()
            .filter(|x| matches!(x, FaultAction::Malformed(_)))
            .count();
        assert!((30..=70).contains(&hits), "{hits}");
    }

    #[test]
    fn priority_and_latency() {
        let mut s = FaultState::new(Faults {
            drop_every_nth: Some(1),
            error_every_nth: Some(1),
            latency_ms: 5,
            latency_range_ms: Some([1, 1]),
            ..Faults::default()
        });
        assert_eq!(s.next(), (Duration::from_millis(6), FaultAction::Drop));
        let mut off = FaultState::default();
        assert_eq!(off.next(), (Duration::ZERO, FaultAction::None));
    }
}
