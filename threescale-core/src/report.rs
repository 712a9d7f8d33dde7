//! The report batcher: usage aggregated per application, sent in batches of at
//! most 1000 transactions, kept across backend outages, flushed on shutdown.
//!
//! Guarantees:
//! - every recorded usage is sent once the backend accepts it (202), and is
//!   removed only then; a failed batch is put back and retried, oldest first,
//!   with exponential backoff;
//! - memory is bounded by the number of distinct applications pending
//!   (`max_pending`); usage for a new application past that bound is dropped,
//!   counted in [`ReportStats::dropped`] and logged, never silently;
//! - a report whose answer is lost (a timeout after the backend applied it) is
//!   retried and may be counted twice: the backend API has no idempotency key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::{
    Secret, Usage,
    backend::{AppCredentials, BackendClient, BackendError, Transaction},
};

/// Which application a report is for (an app key is never reported).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReportKey {
    /// By user key.
    UserKey(Secret),
    /// By application id.
    AppId(String),
}

impl ReportKey {
    /// The key for `credentials`.
    pub fn of(credentials: &AppCredentials) -> Self {
        match credentials {
            AppCredentials::UserKey(key) => ReportKey::UserKey(key.clone()),
            AppCredentials::AppId { app_id, .. } => ReportKey::AppId(app_id.clone()),
        }
    }

    fn credentials(&self) -> AppCredentials {
        match self {
            ReportKey::UserKey(key) => AppCredentials::UserKey(key.clone()),
            ReportKey::AppId(id) => AppCredentials::app_id(id.clone()),
        }
    }
}

/// Counters of the batcher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportStats {
    /// Usage records accepted (one per allowed request).
    pub recorded: u64,
    /// Transactions the backend accepted.
    pub reported_transactions: u64,
    /// Report POSTs the backend accepted.
    pub batches: u64,
    /// Flushes that failed (and were kept for retry).
    pub failed_flushes: u64,
    /// Usage records dropped because the pending bound was reached.
    pub dropped: u64,
    /// Applications with usage waiting to be reported.
    pub pending_applications: u64,
}

/// Settings of a [`Reporter`].
#[derive(Clone, Copy, Debug)]
pub struct ReporterSettings {
    /// How often to send.
    pub flush_interval: Duration,
    /// Transactions per POST (≤ 1000).
    pub max_batch: usize,
    /// Applications kept pending at most.
    pub max_pending: usize,
}

#[derive(Default)]
struct Pending {
    next_seq: u64,
    waiting: HashMap<ReportKey, (u64, Usage)>,
    in_flight: HashMap<ReportKey, Usage>,
}

struct Shared {
    client: arc_swap::ArcSwap<BackendClient>,
    service_id: Option<String>,
    settings: ReporterSettings,
    pending: Mutex<Pending>,
    flush_lock: tokio::sync::Mutex<()>,
    commands: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Command>>>,
    stop: AtomicBool,
    recorded: AtomicU64,
    reported: AtomicU64,
    batches: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// Batches usage and reports it in the background. Cheap to clone.
#[derive(Clone)]
pub struct Reporter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("stats", &self.stats())
            .finish()
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl Reporter {
    /// A reporter sending through `client` for `service_id` (or the client's).
    /// The background task starts with the first record, on the current tokio runtime.
    pub fn new(
        client: BackendClient,
        service_id: Option<String>,
        settings: ReporterSettings,
    ) -> Self {
        let settings = ReporterSettings {
            max_batch: settings.max_batch.clamp(1, 1000),
            max_pending: settings.max_pending.max(1),
            ..settings
        };
        Reporter {
            shared: Arc::new(Shared {
                client: arc_swap::ArcSwap::from_pointee(client),
                service_id,
                settings,
                pending: Mutex::new(Pending::default()),
                flush_lock: tokio::sync::Mutex::new(()),
                commands: Mutex::new(None),
                stop: AtomicBool::new(false),
                recorded: AtomicU64::new(0),
                reported: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Sends later reports through `client` (after a configuration refresh).
    pub fn set_client(&self, client: BackendClient) {
        self.shared.client.store(Arc::new(client));
    }

    /// Records usage for `credentials`, to be reported with the next flush.
    pub fn record(&self, credentials: &AppCredentials, usage: &Usage) {
        if usage.is_empty() {
            return;
        }
        let key = ReportKey::of(credentials);
        let wake = {
            let mut pending = lock(&self.shared.pending);
            let seq = pending.next_seq;
            let len = pending.waiting.len();
            match pending.waiting.get_mut(&key) {
                Some((_, existing)) => existing.merge(usage),
                None if len >= self.shared.settings.max_pending => {
                    drop(pending);
                    let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if dropped.is_power_of_two() {
                        tracing::error!(
                            dropped,
                            "3scale report buffer full: usage dropped (backend unreachable for too long?)"
                        );
                    }
                    return;
                }
                None => {
                    pending.next_seq += 1;
                    pending.waiting.insert(key, (seq, usage.clone()));
                }
            }
            pending.waiting.len() >= self.shared.settings.max_batch
        };
        self.shared.recorded.fetch_add(1, Ordering::Relaxed);
        let commands = self.ensure_started();
        if wake && let Some(commands) = commands {
            let _ = commands.send(Command::Wake);
        }
    }

    /// Usage recorded for `key` and not yet accepted by the backend.
    pub fn unreported(&self, key: &ReportKey) -> Usage {
        let pending = lock(&self.shared.pending);
        let mut usage = Usage::new();
        if let Some((_, u)) = pending.waiting.get(key) {
            usage.merge(u);
        }
        if let Some(u) = pending.in_flight.get(key) {
            usage.merge(u);
        }
        usage
    }

    /// Sends everything pending now (on the reporter's own thread). On failure
    /// the unsent usage is kept.
    pub async fn flush(&self) -> Result<(), BackendError> {
        let commands = lock(&self.shared.commands).clone();
        if let Some(commands) = commands {
            let (reply, answer) = oneshot::channel();
            if commands.send(Command::Flush(reply)).is_ok()
                && let Ok(result) = answer.await
            {
                return result;
            }
        }
        self.flush_now().await
    }

    /// Sends everything pending, on the calling task. If this future is dropped
    /// half-way, what it had not seen accepted is put back.
    async fn flush_now(&self) -> Result<(), BackendError> {
        let _guard = self.shared.flush_lock.lock().await;
        let mut batch: Vec<(u64, ReportKey, Usage)> = {
            let mut pending = lock(&self.shared.pending);
            let taken: Vec<_> = pending.waiting.drain().collect();
            for (key, (_, usage)) in &taken {
                match pending.in_flight.get_mut(key) {
                    Some(existing) => existing.merge(usage),
                    None => {
                        pending.in_flight.insert(key.clone(), usage.clone());
                    }
                }
            }
            taken
                .into_iter()
                .map(|(key, (seq, usage))| (seq, key, usage))
                .collect()
        };
        batch.sort_by_key(|(seq, _, _)| *seq);
        let mut unsent = PutBack {
            reporter: self,
            rest: &batch,
        };
        while !unsent.rest.is_empty() {
            let rest = unsent.rest;
            let (chunk, tail) = rest.split_at(rest.len().min(self.shared.settings.max_batch));
            let transactions: Vec<Transaction> = chunk
                .iter()
                .map(|(_, key, usage)| Transaction {
                    credentials: key.credentials(),
                    usage: usage.clone(),
                    timestamp: None,
                    log_code: None,
                })
                .collect();
            let client = self.shared.client.load_full();
            match client
                .report(self.shared.service_id.as_deref(), &transactions)
                .await
            {
                Ok(_) => {
                    self.shared
                        .reported
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    self.shared.batches.fetch_add(1, Ordering::Relaxed);
                    let mut pending = lock(&self.shared.pending);
                    for (_, key, _) in chunk {
                        pending.in_flight.remove(key);
                    }
                    unsent.rest = tail;
                }
                Err(error) => {
                    self.shared.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, kept = rest.len(), "3scale report failed; usage kept for retry");
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Stops the background flusher and sends everything still held,
    /// retrying up to `attempts` times with a short backoff. Returns the stats after it.
    pub async fn shutdown(&self, attempts: u32) -> ReportStats {
        self.shared.stop.store(true, Ordering::SeqCst);
        let commands = lock(&self.shared.commands).take();
        if let Some(commands) = commands {
            let (reply, answer) = oneshot::channel();
            if commands.send(Command::Shutdown(attempts, reply)).is_ok()
                && let Ok(stats) = answer.await
            {
                return stats;
            }
        }
        self.final_flush(attempts).await
    }

    async fn final_flush(&self, attempts: u32) -> ReportStats {
        let mut backoff = Duration::from_millis(50);
        for attempt in 0..attempts.max(1) {
            match self.flush_now().await {
                Ok(()) => break,
                Err(error) if attempt + 1 < attempts => {
                    tracing::warn!(%error, "3scale report at shutdown failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(error) => {
                    tracing::error!(%error, pending = self.stats().pending_applications, "3scale usage could not be reported at shutdown");
                }
            }
        }
        self.stats()
    }

    /// The counters.
    pub fn stats(&self) -> ReportStats {
        let pending = lock(&self.shared.pending);
        let mut apps = pending.waiting.len();
        apps += pending
            .in_flight
            .keys()
            .filter(|k| !pending.waiting.contains_key(*k))
            .count();
        ReportStats {
            recorded: self.shared.recorded.load(Ordering::Relaxed),
            reported_transactions: self.shared.reported.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
            failed_flushes: self.shared.failed.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            pending_applications: apps as u64,
        }
    }

    /// Starts the background flusher on a thread of its own (with its own
    /// runtime and connections), so it neither depends on nor dies with the
    /// framework's runtimes; every report is sent from there.
    fn ensure_started(&self) -> Option<mpsc::UnboundedSender<Command>> {
        if self.shared.stop.load(Ordering::Relaxed) {
            return None;
        }
        let mut commands = lock(&self.shared.commands);
        if let Some(sender) = commands.as_ref().filter(|s| !s.is_closed()) {
            return Some(sender.clone());
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let reporter = Arc::downgrade(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("threescale-report".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(Reporter::run(reporter, receiver)),
                    Err(error) => {
                        tracing::error!(%error, "3scale reporter could not start its runtime")
                    }
                }
            });
        match spawned {
            Ok(_) => {
                *commands = Some(sender.clone());
                Some(sender)
            }
            Err(error) => {
                tracing::error!(%error, "3scale reporter could not start its thread");
                None
            }
        }
    }

    /// The flusher's loop. It holds the reporter weakly: once every engine
    /// handle is gone the channel closes and the thread ends.
    async fn run(shared: std::sync::Weak<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
        let Some(interval) = shared.upgrade().map(|s| s.settings.flush_interval) else {
            return;
        };
        let mut wait = interval;
        loop {
            let command = tokio::select! {
                _ = tokio::time::sleep(wait) => Command::Wake,
                command = commands.recv() => match command {
                    Some(command) => command,
                    None => return,
                },
            };
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let reporter = Reporter { shared };
            match command {
                Command::Wake => {
                    wait = match reporter.flush_now().await {
                        Ok(()) => interval,
                        Err(_) => (wait * 2).clamp(interval, MAX_BACKOFF.max(interval)),
                    };
                }
                Command::Flush(reply) => {
                    let result = reporter.flush_now().await;
                    let _ = reply.send(result);
                }
                Command::Shutdown(attempts, reply) => {
                    let stats = reporter.final_flush(attempts).await;
                    let _ = reply.send(stats);
                    return;
                }
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let pending = self
            .pending
            .get_mut()
            .map(|p| p.waiting.len() + p.in_flight.len());
        if let Ok(apps) = pending
            && apps > 0
        {
            tracing::error!(
                applications = apps,
                "3scale engine dropped without shutdown(): usage not reported"
            );
        }
    }
}

enum Command {
    Wake,
    Flush(oneshot::Sender<Result<(), BackendError>>),
    Shutdown(u32, oneshot::Sender<ReportStats>),
}

/// Puts what a flush has not seen accepted back into the waiting set, keeping
/// its age: on failure, and when the flush is dropped half-way.
struct PutBack<'a> {
    reporter: &'a Reporter,
    rest: &'a [(u64, ReportKey, Usage)],
}

impl Drop for PutBack<'_> {
    fn drop(&mut self) {
        if self.rest.is_empty() {
            return;
        }
        let mut pending = lock(&self.reporter.shared.pending);
        for (seq, key, usage) in self.rest {
            pending.in_flight.remove(key);
            match pending.waiting.get_mut(key) {
                Some((existing_seq, existing)) => {
                    *existing_seq = (*existing_seq).min(*seq);
                    existing.merge(usage);
                }
                None => {
                    pending.waiting.insert(key.clone(), (*seq, usage.clone()));
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
