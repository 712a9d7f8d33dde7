//! What the engine does once the response is known: report its status with
//! the request's usage (`log[code]`, see [`ConfigBuilder::response_codes`]),
//! and report usage the handler added after doing the work ([`AddedUsage`]).
//!
//! An adapter gets a [`Completion`] with every forwarded request
//! ([`Action::Forward`](crate::Action::Forward)) and calls
//! [`Completion::finish`] with the response's status and the [`AddedUsage`]
//! it found in the response's extensions (removed from them, so that nothing
//! is counted twice). A completion dropped without `finish` (the handler
//! panicked, the request was cancelled) still reports the request's own
//! usage, without a code: a hit the backend allowed is never lost.
//!
//! ```
//! use threescale_core::{AddedUsage, Usage};
//! // In a handler: two documents returned, reported after the response with
//! // the request's own hit, for the application the request was allowed for.
//! let added = AddedUsage::new(Usage::new().with("documents", 2));
//! assert_eq!(added.usage().get("documents"), Some(2));
//! ```
//!
//! [`ConfigBuilder::response_codes`]: crate::ConfigBuilder::response_codes

use crate::{
    Usage,
    engine::{CheckInFlight, ThreeScale},
    report::ReportKey,
    usage::UsageValue,
};

/// Usage a handler adds to its request once it knows the work done (documents
/// returned, bytes sent). Put it into the **response's** extensions; the
/// adapter reports it with the request, for the application the request was
/// allowed for, exactly once. Only increments count: a set value (`#N`) or a
/// zero is left out. On a bypassed or denied request it is ignored.
///
/// In axum: return `(Extension(AddedUsage::new(usage)), body)`; in actix-web:
/// `response.extensions_mut().insert(AddedUsage::new(usage))`.
///
/// ```
/// use threescale_core::{AddedUsage, Usage};
/// let mut added = AddedUsage::new(Usage::new().with("documents", 3));
/// added.add("bytes", 512);
/// assert_eq!(added.usage().get("bytes"), Some(512));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddedUsage(Usage);

impl AddedUsage {
    /// Usage to add.
    pub fn new(usage: Usage) -> Self {
        AddedUsage(usage)
    }

    /// Adds `delta` to `metric`.
    pub fn add(&mut self, metric: &str, delta: u64) -> &mut Self {
        self.0.add(metric, delta);
        self
    }

    /// The usage.
    pub fn usage(&self) -> &Usage {
        &self.0
    }

    /// The increments only (no set values, no zeros).
    fn increments(&self) -> Usage {
        self.0
            .iter()
            .filter_map(|(metric, value)| match value {
                UsageValue::Add(n) if n > 0 => Some((metric, n)),
                _ => None,
            })
            .collect()
    }
}

/// The part of a check that waits for the response. See the module docs.
///
/// Cloning gives an empty completion (it reports nothing): only the original
/// reports, so that a request is never counted twice.
#[derive(Default)]
pub struct Completion {
    /// Unboxed: an allowed request's completion costs no allocation.
    pending: Option<Pending>,
}

struct Pending {
    engine: ThreeScale,
    /// The application the request was allowed for.
    key: ReportKey,
    /// The request's usage held in the batcher until the response (see
    /// `Reporter::hold`), reported then with its code; it keeps `shutdown`
    /// waiting until then.
    base: Option<(u64, CheckInFlight)>,
    /// Whether the backend confirmed the application (not a degraded admission).
    confirmed: bool,
}

impl Clone for Completion {
    fn clone(&self) -> Self {
        Completion::default()
    }
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("pending", &self.pending.is_some())
            .field(
                "waits_for_status",
                &self.pending.as_ref().is_some_and(|p| p.base.is_some()),
            )
            .finish()
    }
}

impl Completion {
    /// A completion for an allowed request of the application `key`; `base`
    /// holds its usage in the batcher when that waits for the response.
    pub(crate) fn new(
        engine: ThreeScale,
        key: ReportKey,
        base: Option<(u64, CheckInFlight)>,
        confirmed: bool,
    ) -> Self {
        Completion {
            pending: Some(Pending {
                engine,
                key,
                base,
                confirmed,
            }),
        }
    }

    /// Whether anything is left to report (an allowed request).
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The response is known: reports the request's usage with `status` (when
    /// response codes are on) and the `added` usage, as one transaction when
    /// both go out now. Does nothing for a bypassed request.
    pub fn finish(mut self, status: u16, added: Option<&AddedUsage>) {
        let Some(pending) = self.pending.take() else {
            if added.is_some() {
                tracing::debug!("usage added to a request that was not checked: ignored");
            }
            return;
        };
        pending.report(Some(status), added);
    }
}

impl Pending {
    fn report(self, status: Option<u16>, added: Option<&AddedUsage>) {
        let Pending {
            engine,
            key,
            base,
            confirmed,
        } = self;
        let added = added.map(AddedUsage::increments).unwrap_or_default();
        // Usage of metrics the service's mapping rules do not name goes
        // through the backend's check first, on its own (an unknown metric
        // would make the backend discard a whole report batch).
        let (known, unknown) = if added.is_empty() {
            (added, Usage::new())
        } else {
            let service = engine.service();
            let rules = service.mapping_rules.rules();
            let named = |m: &str| rules.iter().any(|r| r.metric_system_name == m);
            let known = added
                .iter()
                .filter(|(m, _)| named(m))
                .map(|(m, v)| (m, v.amount()))
                .collect();
            let unknown = added
                .iter()
                .filter(|(m, _)| !named(m))
                .map(|(m, v)| (m, v.amount()))
                .collect();
            (known, unknown)
        };
        let reporter = engine.reporter();
        match base {
            Some((held, _in_flight)) => {
                reporter.settle(key.clone(), held, &known, status, confirmed);
            }
            None => reporter.record_key(key.clone(), &known, None, confirmed),
        }
        if !unknown.is_empty() {
            if confirmed {
                reporter.record_key(key, &unknown, None, false);
            } else {
                // Checked together with the request's own unconfirmed usage,
                // an unknown metric would lose that too.
                tracing::warn!(
                    usage = %unknown,
                    "3scale: usage added to a request admitted during an outage, for metrics the mapping rules do not name: dropped"
                );
            }
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take()
            && pending.base.is_some()
        {
            // No response: the request's own usage still counts, without a code.
            pending.report(None, None);
        }
    }
}
