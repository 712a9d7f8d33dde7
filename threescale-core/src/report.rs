//! The report batcher: usage aggregated per application, sent in batches of at
//! most 1000 transactions, kept across backend outages, flushed on shutdown.
//!
//! Guarantees:
//! - every recorded usage is sent until the backend accepts it (202), and is
//!   removed only then, with the exceptions below (each counted in
//!   [`ReportStats`] and logged, never silent);
//! - **the unit of retry is one POST**: when the client splits a report into
//!   several POSTs and one fails, the POSTs already accepted are done; the
//!   failed POST is kept as it is and retried alone, oldest first; what was not
//!   sent yet goes back to the waiting usage;
//! - **retries back off**: after a failed flush the next one waits
//!   `flush_interval`, then twice as long each time, up to a minute. Requests
//!   never skip the backoff: a full batch only wakes the flusher (one coalesced
//!   signal, not one message per request) when the last flush succeeded, so
//!   report attempts grow with time, not with the request rate;
//! - **duplicate bound**: the backend API has no idempotency key, so a POST
//!   whose answer did not arrive in time (a timeout after it was sent) may have
//!   been applied. Such a POST is retried once more, alone and with the longer
//!   `late_answer_timeout`; if that attempt times out too, it is given up
//!   ([`ReportStats::abandoned`]) instead of being sent a third time. So each
//!   timed-out POST is applied **at most twice** (one duplicate), and a POST
//!   that never timed out exactly once. Refused connections, error answers and
//!   connections closed without an answer are taken as not applied and retried
//!   without limit;
//! - **unconfirmed applications are reported apart**: usage admitted without a
//!   backend confirmation of the application (a degraded admission during an
//!   outage) never shares a POST with other usage, because the backend drops a
//!   whole batch for one unknown application without telling the caller. Before
//!   it is batched, each such application is checked with an `authorize`
//!   carrying its usage as predicted usage (checked, not stored); one the
//!   backend does not know (`application_not_found`, `user_key_invalid`), or
//!   whose usage names a metric or value it refuses (`metric_invalid`,
//!   `usage_value_invalid`), loses its own usage only
//!   ([`ReportStats::unknown_applications`]);
//! - memory is bounded: by the number of distinct applications waiting
//!   (`max_pending`) and by the approximate bytes of keys and usage held,
//!   waiting or in flight (`max_pending_bytes`). Usage past either bound is
//!   dropped, counted in [`ReportStats::dropped`] and logged (rate-limited).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::{
    Secret, Usage,
    backend::{
        AppCredentials, AuthRequest, BackendClient, BackendError, ReportFailure, Transaction,
    },
    lock,
};

/// Which application a report is for (an app key is never reported).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ReportKey {
    /// By user key.
    UserKey(Secret),
    /// By application id.
    AppId(String),
}

impl ReportKey {
    /// The key for `credentials`.
    pub(crate) fn of(credentials: &AppCredentials) -> Self {
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

    fn len(&self) -> usize {
        match self {
            ReportKey::UserKey(key) => key.expose().len(),
            ReportKey::AppId(id) => id.len(),
        }
    }
}

/// Counters of the batcher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportStats {
    /// Usage records accepted (one per allowed request).
    pub recorded: u64,
    /// Transactions the backend accepted.
    pub reported_transactions: u64,
    /// Report POSTs the backend accepted.
    pub batches: u64,
    /// Flushes that failed (and were kept for retry).
    pub failed_flushes: u64,
    /// Usage records dropped because a pending bound (applications or bytes)
    /// was reached.
    pub dropped: u64,
    /// Applications with usage waiting to be reported (waiting, unconfirmed,
    /// in flight or kept for retry).
    pub pending_applications: u64,
    /// Approximate bytes of keys and usage held (waiting and in flight).
    pub pending_bytes: u64,
    /// Report POSTs that timed out after being sent (each may have been applied).
    pub timed_out_posts: u64,
    /// Transactions given up after their POST timed out twice (each may have
    /// been applied once, twice or not at all).
    pub abandoned: u64,
    /// Applications admitted without a backend confirmation (during an outage)
    /// that the backend does not know: their usage was dropped.
    pub unknown_applications: u64,
}

/// Settings of a [`Reporter`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReporterSettings {
    /// How often to send.
    pub flush_interval: Duration,
    /// Transactions per POST (≤ 1000).
    pub max_batch: usize,
    /// Applications kept waiting at most.
    pub max_pending: usize,
    /// Approximate bytes of keys and usage held at most (waiting and in flight).
    pub max_pending_bytes: usize,
    /// The timeout of the one retry of a POST that timed out (longer than the
    /// client's, so that a slow backend's answer is waited for).
    pub late_answer_timeout: Duration,
}

impl Default for ReporterSettings {
    fn default() -> Self {
        ReporterSettings {
            flush_interval: Duration::from_secs(5),
            max_batch: 1000,
            max_pending: 1_000_000,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            late_answer_timeout: Duration::from_secs(30),
        }
    }
}

/// The default bound of the report buffer in bytes (64 MiB).
pub(crate) const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;

/// Usage of one application not sent yet.
struct Entry {
    /// Order of arrival (oldest sent first).
    seq: u64,
    /// Usage without a response code, aggregated into one transaction.
    usage: Usage,
    /// Usage of responses reported with their status (`log[code]`): one
    /// transaction each, because the backend counts a response code once per
    /// transaction whatever its usage.
    coded: Vec<(u16, Usage)>,
    /// Approximate size, counted in `Pending::bytes`.
    bytes: usize,
}

/// Usage taken out of the waiting set into one report POST, until the backend
/// accepts it or it is given up.
struct Post {
    id: u64,
    items: Vec<Item>,
    /// It timed out once after being sent: the next attempt is the last one.
    timed_out: bool,
    bytes: usize,
}

#[derive(Default)]
struct Pending {
    next_seq: u64,
    next_post: u64,
    /// Usage of applications the backend confirmed.
    waiting: HashMap<ReportKey, Entry>,
    /// Usage admitted without a backend confirmation of the application.
    unconfirmed: HashMap<ReportKey, Entry>,
    /// Usage in POSTs being sent or kept for retry, by application.
    held: HashMap<ReportKey, Vec<(u64, Usage)>>,
    /// Failed POSTs, retried one by one, oldest first.
    retry: VecDeque<Post>,
    /// Approximate bytes of all of the above.
    bytes: usize,
    /// Transactions in `waiting` (to wake the flusher when a batch is full).
    waiting_transactions: usize,
    /// Usage of allowed requests waiting for their response's status (see
    /// [`Reporter::hold`]), by application: counted as unreported already.
    awaiting: HashMap<ReportKey, Vec<(u64, Usage)>>,
    next_awaiting: u64,
    /// Counts accepted POSTs; the usage of the latest ones is kept in
    /// `released`, so that a cache fill can tell what the backend accepted
    /// while its own call was on the way ([`Reporter::unreported_since`]).
    generation: u64,
    released: VecDeque<(u64, ReportKey, Usage)>,
}

/// Accepted transactions remembered for [`Reporter::unreported_since`].
const RELEASED_LOG: usize = 4096;

/// One transaction of a report POST: its age, application, usage and response code.
type Item = (u64, ReportKey, Usage, Option<u16>);

/// The approximate memory of one application's pending usage.
fn entry_bytes(key: &ReportKey, usage: &Usage) -> usize {
    ENTRY_OVERHEAD + key.len() + usage_bytes(usage)
}

fn usage_bytes(usage: &Usage) -> usize {
    usage.iter().map(|(m, _)| metric_bytes(m)).sum::<usize>()
}

/// The approximate memory of one coded transaction (one response) of an
/// application, counted as an entry of its own.
fn coded_bytes(key: &ReportKey, usage: &Usage) -> usize {
    ENTRY_OVERHEAD + CODED_OVERHEAD + key.len() + usage_bytes(usage)
}

fn metric_bytes(metric: &str) -> usize {
    METRIC_OVERHEAD + metric.len()
}

const ENTRY_OVERHEAD: usize = 96;
const METRIC_OVERHEAD: usize = 32;
const CODED_OVERHEAD: usize = 48;

/// What merging `usage` into `existing` adds.
fn growth(existing: &Usage, usage: &Usage) -> usize {
    usage
        .iter()
        .filter(|(m, _)| existing.get(m).is_none())
        .map(|(m, _)| metric_bytes(m))
        .sum()
}

impl Pending {
    /// Adds usage to `waiting` (or `unconfirmed`), with its response code when
    /// it has one; `false` when a bound refuses it.
    fn add(
        &mut self,
        confirmed: bool,
        key: ReportKey,
        seq: Option<u64>,
        usage: &Usage,
        code: Option<u16>,
        limits: Option<(usize, usize)>,
    ) -> bool {
        let Pending {
            next_seq,
            waiting,
            unconfirmed,
            bytes,
            waiting_transactions,
            ..
        } = self;
        let apps = waiting.len() + unconfirmed.len();
        let map = if confirmed { waiting } else { unconfirmed };
        match map.get_mut(&key) {
            Some(entry) => {
                let more = match code {
                    Some(_) => coded_bytes(&key, usage),
                    None => growth(&entry.usage, usage),
                };
                if let Some((_, max_bytes)) = limits
                    && more > 0
                    && *bytes + more > max_bytes
                {
                    return false;
                }
                let new_transaction = code.is_some() || entry.usage.is_empty();
                match code {
                    Some(code) => entry.coded.push((code, usage.clone())),
                    None => entry.usage.merge(usage),
                }
                if confirmed && new_transaction {
                    *waiting_transactions += 1;
                }
                entry.bytes += more;
                *bytes += more;
                if let Some(seq) = seq {
                    entry.seq = entry.seq.min(seq);
                }
            }
            None => {
                let size = match code {
                    Some(_) => coded_bytes(&key, usage),
                    None => entry_bytes(&key, usage),
                };
                if let Some((max_apps, max_bytes)) = limits
                    && (apps >= max_apps || *bytes + size > max_bytes)
                {
                    return false;
                }
                let seq = seq.unwrap_or_else(|| {
                    *next_seq += 1;
                    *next_seq - 1
                });
                *bytes += size;
                if confirmed {
                    *waiting_transactions += 1;
                }
                let (usage, coded) = match code {
                    Some(code) => (Usage::new(), vec![(code, usage.clone())]),
                    None => (usage.clone(), Vec::new()),
                };
                map.insert(
                    key,
                    Entry {
                        seq,
                        usage,
                        coded,
                        bytes: size,
                    },
                );
            }
        }
        true
    }

    /// Notes transactions the backend accepted (a new generation).
    fn accepted(&mut self, items: &[Item]) {
        self.generation += 1;
        for (_, key, usage, _) in items {
            if self.released.len() == RELEASED_LOG {
                self.released.pop_front();
            }
            self.released
                .push_back((self.generation, key.clone(), usage.clone()));
        }
    }

    /// Publishes the queue's depth (applications waiting, unconfirmed or in
    /// flight, counted once per map; bytes).
    fn publish_depth(&self) {
        crate::metrics::report_queue(
            self.waiting.len() + self.unconfirmed.len() + self.held.len(),
            self.bytes,
        );
    }

    /// Moves a whole entry (taken out of `unconfirmed`) to the waiting usage.
    fn add_entry(&mut self, key: ReportKey, entry: Entry) {
        if !entry.usage.is_empty() {
            self.add(true, key.clone(), Some(entry.seq), &entry.usage, None, None);
        }
        for (code, usage) in &entry.coded {
            self.add(true, key.clone(), Some(entry.seq), usage, Some(*code), None);
        }
    }

    /// Moves the waiting usage into POSTs of at most `max_batch` transactions,
    /// oldest first.
    fn take_waiting(&mut self, max_batch: usize) -> Vec<Post> {
        let mut taken: Vec<_> = self.waiting.drain().collect();
        self.waiting_transactions = 0;
        taken.sort_by_key(|(_, e)| e.seq);
        // One transaction for each entry's usage without a code, one for each
        // coded response, oldest entry first.
        let mut transactions = taken.into_iter().flat_map(|(key, entry)| {
            let Entry {
                seq, usage, coded, ..
            } = entry;
            let plain = (!usage.is_empty()).then(|| (seq, key.clone(), usage, None));
            plain.into_iter().chain(
                coded
                    .into_iter()
                    .map(move |(code, usage)| (seq, key.clone(), usage, Some(code))),
            )
        });
        let mut posts = Vec::new();
        loop {
            let items: Vec<Item> = transactions.by_ref().take(max_batch).collect();
            if items.is_empty() {
                break;
            }
            let id = self.next_post;
            self.next_post += 1;
            for (_, key, usage, _) in &items {
                self.held
                    .entry(key.clone())
                    .or_default()
                    .push((id, usage.clone()));
            }
            posts.push(Post {
                id,
                bytes: items_bytes(&items),
                items,
                timed_out: false,
            });
        }
        posts
    }

    /// Forgets `items` of post `id` (accepted, given up, or moved back).
    fn release(&mut self, id: u64, items: &[Item], bytes: usize) {
        for (_, key, _, _) in items {
            if let Some(list) = self.held.get_mut(key) {
                list.retain(|(post, _)| *post != id);
                if list.is_empty() {
                    self.held.remove(key);
                }
            }
        }
        self.bytes = self.bytes.saturating_sub(bytes);
    }

    /// A new post of `items` taken from post `old` (their `held` entries move to it).
    fn part(&mut self, old: u64, items: &[Item], timed_out: bool) -> Post {
        let id = self.next_post;
        self.next_post += 1;
        for (_, key, _, _) in items {
            if let Some(list) = self.held.get_mut(key) {
                for (post, _) in list.iter_mut().filter(|(post, _)| *post == old) {
                    *post = id;
                }
            }
        }
        Post {
            id,
            items: items.to_vec(),
            timed_out,
            bytes: items_bytes(items),
        }
    }

    /// Puts `items` of post `id` back among the waiting usage, keeping their age.
    fn put_back(&mut self, id: u64, items: &[Item]) {
        self.release(id, items, items_bytes(items));
        for (seq, key, usage, code) in items {
            self.add(true, key.clone(), Some(*seq), usage, *code, None);
        }
    }
}

fn items_bytes(items: &[Item]) -> usize {
    items
        .iter()
        .map(|(_, k, u, code)| match code {
            Some(_) => coded_bytes(k, u),
            None => entry_bytes(k, u),
        })
        .sum()
}

struct Shared {
    client: arc_swap::ArcSwap<BackendClient>,
    service_id: Option<String>,
    settings: ReporterSettings,
    pending: Mutex<Pending>,
    flush_lock: tokio::sync::Mutex<()>,
    commands: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Command>>>,
    /// Wakes the flusher when a batch is full; wakes coalesce.
    wake: Arc<Notify>,
    stop: AtomicBool,
    recorded: AtomicU64,
    reported: AtomicU64,
    batches: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    timed_out: AtomicU64,
    abandoned: AtomicU64,
    unknown: AtomicU64,
    unconfirmed_refusals: AtomicU64,
}

/// Batches usage and reports it in the background. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Reporter {
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

/// Error codes with which the backend refuses an application or its usage
/// (an unknown application, an unknown metric, an invalid value): usage that
/// would make the backend discard a whole batch.
const UNKNOWN_APPLICATION: [&str; 4] = [
    "application_not_found",
    "user_key_invalid",
    "metric_invalid",
    "usage_value_invalid",
];

/// How many applications are confirmed at once.
const CONFIRM_CONCURRENCY: usize = 8;

impl Reporter {
    /// A reporter sending through `client` for `service_id` (or the client's).
    /// The background task starts with the first record, on the current tokio runtime.
    pub(crate) fn new(
        client: BackendClient,
        service_id: Option<String>,
        settings: ReporterSettings,
    ) -> Self {
        let settings = ReporterSettings {
            max_batch: settings.max_batch.clamp(1, 1000),
            max_pending: settings.max_pending.max(1),
            max_pending_bytes: settings.max_pending_bytes.max(1),
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
                wake: Arc::new(Notify::new()),
                stop: AtomicBool::new(false),
                recorded: AtomicU64::new(0),
                reported: AtomicU64::new(0),
                batches: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                timed_out: AtomicU64::new(0),
                abandoned: AtomicU64::new(0),
                unknown: AtomicU64::new(0),
                unconfirmed_refusals: AtomicU64::new(0),
            }),
        }
    }

    /// Sends later reports through `client` (after a configuration refresh).
    pub(crate) fn set_client(&self, client: BackendClient) {
        self.shared.client.store(Arc::new(client));
    }

    /// Records usage for `credentials` (an application the backend confirmed),
    /// to be reported with the next flush.
    pub(crate) fn record(&self, credentials: &AppCredentials, usage: &Usage) {
        self.record_as(credentials, usage, None, true);
    }

    /// Records usage admitted without a backend confirmation of the
    /// application (during an outage). It joins a report batch only once the
    /// backend has accepted the application and this usage (an `authorize`
    /// carrying it as predicted usage), so an unknown application or metric
    /// loses its own usage only.
    pub(crate) fn record_unconfirmed(&self, credentials: &AppCredentials, usage: &Usage) {
        self.record_as(credentials, usage, None, false);
    }

    /// Records usage, with the response's status when `code` is set (a
    /// transaction of its own, with `log[code]`), for an application the
    /// backend confirmed or not (see [`Reporter::record_unconfirmed`]).
    pub(crate) fn record_as(
        &self,
        credentials: &AppCredentials,
        usage: &Usage,
        code: Option<u16>,
        confirmed: bool,
    ) {
        if usage.is_empty() {
            return;
        }
        self.record_key(ReportKey::of(credentials), usage, code, confirmed);
    }

    /// [`Reporter::record_as`] for the application `key`.
    pub(crate) fn record_key(
        &self,
        key: ReportKey,
        usage: &Usage,
        code: Option<u16>,
        confirmed: bool,
    ) {
        if usage.is_empty() {
            return;
        }
        self.add_locked(lock(&self.shared.pending), key, usage, code, confirmed);
    }

    /// Holds the usage of an allowed request until its response's status is
    /// known ([`Reporter::settle`]). It counts as unreported usage meanwhile,
    /// so a cache refill sees it. Returns the handle to settle it with.
    pub(crate) fn hold(&self, key: &ReportKey, usage: &Usage) -> u64 {
        let mut pending = lock(&self.shared.pending);
        let id = pending.next_awaiting;
        pending.next_awaiting += 1;
        pending
            .awaiting
            .entry(key.clone())
            .or_default()
            .push((id, usage.clone()));
        id
    }

    /// Records held usage `id` of `key`, with `more` usage merged into it and
    /// the response's `code`, in one step (it is never absent from the
    /// unreported usage in between).
    pub(crate) fn settle(
        &self,
        key: ReportKey,
        id: u64,
        more: &Usage,
        code: Option<u16>,
        confirmed: bool,
    ) {
        let mut pending = lock(&self.shared.pending);
        let mut usage = Usage::new();
        if let Some(list) = pending.awaiting.get_mut(&key) {
            if let Some(at) = list.iter().position(|(held, _)| *held == id) {
                usage = list.swap_remove(at).1;
            }
            if list.is_empty() {
                pending.awaiting.remove(&key);
            }
        }
        usage.merge(more);
        if usage.is_empty() {
            return;
        }
        self.add_locked(pending, key, &usage, code, confirmed);
    }

    fn add_locked(
        &self,
        mut pending: std::sync::MutexGuard<'_, Pending>,
        key: ReportKey,
        usage: &Usage,
        code: Option<u16>,
        confirmed: bool,
    ) {
        let settings = &self.shared.settings;
        let (added, full) = {
            let added = pending.add(
                confirmed,
                key,
                None,
                usage,
                code,
                Some((settings.max_pending, settings.max_pending_bytes)),
            );
            pending.publish_depth();
            let full = pending.waiting_transactions >= settings.max_batch;
            drop(pending);
            (added, full)
        };
        if !added {
            crate::metrics::transactions("dropped", 1);
            let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::error!(
                    dropped,
                    "3scale report buffer full: usage dropped (backend unreachable for too long?)"
                );
            }
            return;
        }
        self.shared.recorded.fetch_add(1, Ordering::Relaxed);
        if self.ensure_started() && full {
            self.shared.wake.notify_one();
        }
    }

    /// The generation of accepted reports now (see [`Reporter::unreported_since`]).
    pub(crate) fn generation(&self) -> u64 {
        lock(&self.shared.pending).generation
    }

    /// [`Reporter::unreported`] plus the usage of `key` the backend accepted
    /// after generation `since`: for a reader of the backend's counters that
    /// asked at `since`, whose answer may or may not hold that usage (it is
    /// then counted twice, never missed).
    pub(crate) fn unreported_since(&self, key: &ReportKey, since: u64) -> Usage {
        let pending = lock(&self.shared.pending);
        let mut usage = Pending::unreported(&pending, key);
        if pending.generation != since {
            for (_, _, released) in pending
                .released
                .iter()
                .rev()
                .take_while(|(generation, _, _)| *generation > since)
                .filter(|(_, k, _)| k == key)
            {
                usage.merge(released);
            }
        }
        usage
    }

    /// Usage recorded for `key` and not yet accepted by the backend.
    #[cfg(test)]
    pub(crate) fn unreported(&self, key: &ReportKey) -> Usage {
        Pending::unreported(&lock(&self.shared.pending), key)
    }
}

impl Pending {
    fn unreported(pending: &Pending, key: &ReportKey) -> Usage {
        let mut usage = Usage::new();
        for (_, held) in pending.awaiting.get(key).into_iter().flatten() {
            usage.merge(held);
        }
        for entry in [pending.waiting.get(key), pending.unconfirmed.get(key)]
            .into_iter()
            .flatten()
        {
            usage.merge(&entry.usage);
            for (_, coded) in &entry.coded {
                usage.merge(coded);
            }
        }
        for (_, u) in pending.held.get(key).into_iter().flatten() {
            usage.merge(u);
        }
        usage
    }
}

impl Reporter {
    /// Sends everything pending now (on the reporter's own thread). On failure
    /// the unsent usage is kept.
    pub(crate) async fn flush(&self) -> Result<(), BackendError> {
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

    /// Sends everything pending, on the calling task: confirms the unconfirmed
    /// applications, retries the failed POSTs, then sends the waiting usage.
    /// Stops at the first failure. If this future is dropped half-way, what it
    /// had not seen accepted is kept.
    async fn flush_now(&self) -> Result<(), BackendError> {
        let _guard = self.shared.flush_lock.lock().await;
        let client = self.shared.client.load_full();
        self.confirm(&client).await?;
        loop {
            let post = lock(&self.shared.pending).retry.pop_front();
            let Some(post) = post else { break };
            self.send(&client, post, false).await?;
        }
        let posts = lock(&self.shared.pending).take_waiting(self.shared.settings.max_batch);
        let mut unsent = Unsent {
            reporter: self,
            posts: posts.into(),
        };
        while let Some(post) = unsent.posts.pop_front() {
            self.send(&client, post, true).await?;
        }
        Ok(())
    }

    /// Sends one post and settles it: accepted parts are forgotten, the failed
    /// POST is kept for retry as it is (or given up after a second timeout),
    /// the unsent rest goes back (to the waiting usage when `fresh`).
    async fn send(
        &self,
        client: &BackendClient,
        post: Post,
        fresh: bool,
    ) -> Result<(), BackendError> {
        let transactions: Vec<Transaction> = post
            .items
            .iter()
            .map(|(_, key, usage, code)| Transaction {
                credentials: key.credentials(),
                usage: usage.clone(),
                timestamp: None,
                log_code: *code,
            })
            .collect();
        let timeout = post
            .timed_out
            .then_some(self.shared.settings.late_answer_timeout);
        let guard = KeepPost {
            reporter: self,
            post: Some(post),
        };
        let result = client
            .report_partial(self.shared.service_id.as_deref(), &transactions, timeout)
            .await;
        let mut guard = guard;
        let Some(post) = guard.post.take() else {
            return Ok(());
        };
        let shared = &self.shared;
        let mut pending = lock(&shared.pending);
        match result {
            Ok(accepted) => {
                crate::metrics::transactions("reported", post.items.len());
                shared
                    .reported
                    .fetch_add(post.items.len() as u64, Ordering::Relaxed);
                shared
                    .batches
                    .fetch_add(accepted.batches as u64, Ordering::Relaxed);
                pending.accepted(&post.items);
                pending.release(post.id, &post.items, post.bytes);
                pending.publish_depth();
                Ok(())
            }
            Err(ReportFailure {
                accepted,
                failed_transactions,
                maybe_applied,
                error,
            }) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                let items = &post.items;
                let done = accepted.transactions.min(items.len());
                let failed_end = (done + failed_transactions).min(items.len());
                let (ok, rest) = items.split_at(done);
                let (failed, rest) = rest.split_at(failed_end - done);
                crate::metrics::transactions("reported", ok.len());
                shared
                    .reported
                    .fetch_add(ok.len() as u64, Ordering::Relaxed);
                shared
                    .batches
                    .fetch_add(accepted.batches as u64, Ordering::Relaxed);
                if !ok.is_empty() {
                    pending.accepted(ok);
                }
                pending.release(post.id, ok, items_bytes(ok));
                if !rest.is_empty() {
                    if fresh {
                        pending.put_back(post.id, rest);
                    } else {
                        let part = pending.part(post.id, rest, post.timed_out);
                        pending.retry.push_front(part);
                    }
                }
                if maybe_applied {
                    shared.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                if post.timed_out && maybe_applied {
                    crate::metrics::transactions("dropped", failed.len());
                    pending.release(post.id, failed, items_bytes(failed));
                    pending.publish_depth();
                    let abandoned = shared
                        .abandoned
                        .fetch_add(failed.len() as u64, Ordering::Relaxed)
                        + failed.len() as u64;
                    drop(pending);
                    tracing::error!(
                        %error,
                        transactions = failed.len(),
                        abandoned,
                        "3scale report timed out twice: given up (it may have been applied; sending it again could count it a third time)"
                    );
                } else {
                    crate::metrics::transactions("failed", failed.len());
                    let part = pending.part(post.id, failed, post.timed_out || maybe_applied);
                    pending.retry.push_front(part);
                    let kept = pending.retry.len();
                    drop(pending);
                    tracing::warn!(%error, kept_posts = kept, "3scale report failed; usage kept for retry");
                }
                Err(error)
            }
        }
    }

    /// Asks the backend about each application admitted without its
    /// confirmation: known ones join the waiting usage, unknown ones are
    /// dropped (counted and logged). Stops when the backend is unavailable.
    async fn confirm(&self, client: &BackendClient) -> Result<(), BackendError> {
        let keys: Vec<(ReportKey, Usage)> = lock(&self.shared.pending)
            .unconfirmed
            .iter()
            .map(|(key, entry)| {
                let mut usage = entry.usage.clone();
                for (_, coded) in &entry.coded {
                    usage.merge(coded);
                }
                (key.clone(), usage)
            })
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let service_id = self.shared.service_id.clone();
        let mut answers = futures_util::stream::iter(keys)
            .map(|(key, usage)| {
                let mut request = AuthRequest::new(key.credentials());
                // Predicted usage: the backend checks its metrics and values
                // (and stores nothing), so an unknown metric admitted during
                // the outage is found here too, not in a batch it would sink.
                request.usage = Some(usage);
                request.service_id = service_id.clone();
                async move { (key, client.authorize(&request).await) }
            })
            .buffer_unordered(CONFIRM_CONCURRENCY);
        let mut outcome = Ok(());
        while let Some((key, answer)) = answers.next().await {
            let known = match answer {
                Ok(_) => true,
                Err(BackendError::Api { code, .. })
                    if UNKNOWN_APPLICATION.contains(&code.as_str()) =>
                {
                    false
                }
                Err(error @ BackendError::Api { .. }) => {
                    // Neither a confirmation nor a "no such application" (e.g.
                    // the service's credentials refused): kept unconfirmed,
                    // and the confirmed usage still goes out.
                    let refused = self
                        .shared
                        .unconfirmed_refusals
                        .fetch_add(1, Ordering::Relaxed)
                        + 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(%error, refused, "3scale: application admitted during an outage could not be confirmed; its usage is kept");
                    }
                    continue;
                }
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            };
            let mut pending = lock(&self.shared.pending);
            let Some(entry) = pending.unconfirmed.remove(&key) else {
                continue;
            };
            pending.bytes = pending.bytes.saturating_sub(entry.bytes);
            if known {
                pending.add_entry(key, entry);
            } else {
                crate::metrics::transactions(
                    "dropped",
                    usize::from(!entry.usage.is_empty()) + entry.coded.len(),
                );
                pending.publish_depth();
                drop(pending);
                let unknown = self.shared.unknown.fetch_add(1, Ordering::Relaxed) + 1;
                if unknown.is_power_of_two() {
                    tracing::error!(
                        unknown_applications = unknown,
                        "3scale: usage admitted during an outage for an application the backend does not know: dropped"
                    );
                }
            }
        }
        if outcome.is_err() {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// Stops the background flusher and sends everything still held,
    /// retrying up to `attempts` times with a short backoff. Returns the stats after it.
    pub(crate) async fn shutdown(&self, attempts: u32) -> ReportStats {
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

    /// Flushes until nothing is pending (usage recorded during a flush is sent
    /// by the next round), at most `attempts` failed rounds.
    async fn final_flush(&self, attempts: u32) -> ReportStats {
        let mut backoff = Duration::from_millis(50);
        let mut failures = 0;
        // Bounded: every round either fails (counted) or sends what it found.
        for _ in 0..attempts.max(1).saturating_mul(4) {
            match self.flush_now().await {
                Ok(()) if self.stats().pending_applications == 0 => break,
                Ok(()) => {}
                Err(error) if failures + 1 < attempts.max(1) => {
                    failures += 1;
                    tracing::warn!(%error, "3scale report at shutdown failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(error) => {
                    tracing::error!(%error, pending = self.stats().pending_applications, "3scale usage could not be reported at shutdown");
                    break;
                }
            }
        }
        self.stats()
    }

    /// The counters.
    pub(crate) fn stats(&self) -> ReportStats {
        let pending = lock(&self.shared.pending);
        let mut apps = pending.waiting.len();
        apps += pending
            .unconfirmed
            .keys()
            .filter(|k| !pending.waiting.contains_key(*k))
            .count();
        apps += pending
            .held
            .keys()
            .filter(|k| !pending.waiting.contains_key(*k) && !pending.unconfirmed.contains_key(*k))
            .count();
        ReportStats {
            recorded: self.shared.recorded.load(Ordering::Relaxed),
            reported_transactions: self.shared.reported.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
            failed_flushes: self.shared.failed.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            pending_applications: apps as u64,
            pending_bytes: pending.bytes as u64,
            timed_out_posts: self.shared.timed_out.load(Ordering::Relaxed),
            abandoned: self.shared.abandoned.load(Ordering::Relaxed),
            unknown_applications: self.shared.unknown.load(Ordering::Relaxed),
        }
    }

    /// Starts the background flusher on a thread of its own (with its own
    /// runtime and connections), so it neither depends on nor dies with the
    /// framework's runtimes; every report is sent from there. `false` once
    /// stopped or when it cannot start.
    fn ensure_started(&self) -> bool {
        if self.shared.stop.load(Ordering::Relaxed) {
            return false;
        }
        let mut commands = lock(&self.shared.commands);
        if commands.as_ref().is_some_and(|s| !s.is_closed()) {
            return true;
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let reporter = Arc::downgrade(&self.shared);
        let wake = self.shared.wake.clone();
        let spawned = std::thread::Builder::new()
            .name("threescale-report".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(Reporter::run(reporter, receiver, wake)),
                    Err(error) => {
                        tracing::error!(%error, "3scale reporter could not start its runtime")
                    }
                }
            });
        match spawned {
            Ok(_) => {
                *commands = Some(sender);
                true
            }
            Err(error) => {
                tracing::error!(%error, "3scale reporter could not start its thread");
                false
            }
        }
    }

    /// The flusher's loop. It holds the reporter weakly: once every engine
    /// handle is gone the channel closes and the thread ends. A flush runs
    /// every `flush_interval`, or earlier when a full batch wakes it, except
    /// after a failure: then only the backoff timer (doubling up to a minute)
    /// or an explicit flush starts the next one.
    async fn run(
        shared: std::sync::Weak<Shared>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        wake: Arc<Notify>,
    ) {
        let Some(interval) = shared.upgrade().map(|s| s.settings.flush_interval) else {
            return;
        };
        let mut wait = interval;
        let mut failing = false;
        let mut deadline = tokio::time::Instant::now() + wait;
        loop {
            let command = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => None,
                _ = wake.notified() => {
                    if failing {
                        // The backoff holds; the timer will flush.
                        continue;
                    }
                    None
                }
                command = commands.recv() => match command {
                    Some(command) => Some(command),
                    None => return,
                },
            };
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let reporter = Reporter { shared };
            match command {
                None => {
                    match reporter.flush_now().await {
                        Ok(()) => {
                            failing = false;
                            wait = interval;
                        }
                        Err(_) => {
                            wait = if failing {
                                (wait * 2).clamp(interval, MAX_BACKOFF.max(interval))
                            } else {
                                interval
                            };
                            failing = true;
                        }
                    }
                    deadline = tokio::time::Instant::now() + wait;
                }
                Some(Command::Flush(reply)) => {
                    let result = reporter.flush_now().await;
                    if result.is_ok() {
                        failing = false;
                        wait = interval;
                    }
                    let _ = reply.send(result);
                }
                Some(Command::Shutdown(attempts, reply)) => {
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
            .map(|p| p.waiting.len() + p.unconfirmed.len() + p.held.len());
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
    Flush(oneshot::Sender<Result<(), BackendError>>),
    Shutdown(u32, oneshot::Sender<ReportStats>),
}

/// Keeps a post for retry when its send is dropped half-way (its outcome is
/// unknown: it counts as timed out).
struct KeepPost<'a> {
    reporter: &'a Reporter,
    post: Option<Post>,
}

impl Drop for KeepPost<'_> {
    fn drop(&mut self) {
        if let Some(mut post) = self.post.take() {
            post.timed_out = true;
            lock(&self.reporter.shared.pending).retry.push_front(post);
        }
    }
}

/// Puts the posts a flush has not sent back among the waiting usage when the
/// flush stops (on failure, or when it is dropped half-way).
struct Unsent<'a> {
    reporter: &'a Reporter,
    posts: VecDeque<Post>,
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if self.posts.is_empty() {
            return;
        }
        let mut pending = lock(&self.reporter.shared.pending);
        for post in self.posts.drain(..) {
            pending.put_back(post.id, &post.items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ProviderAuth;
    use std::sync::atomic::AtomicU64;

    /// A report endpoint on 127.0.0.1: POST number `n` (from 1) waits
    /// `answer(n).0`, then answers status `answer(n).1`. Returns its URL and
    /// the number of POSTs received.
    async fn fake(
        answer: impl Fn(u64) -> (Duration, u16) + Clone + Send + Sync + 'static,
    ) -> (String, Arc<AtomicU64>) {
        let posts = Arc::new(AtomicU64::new(0));
        let counter = posts.clone();
        let app = axum::Router::new().route(
            "/transactions.xml",
            axum::routing::post(move || {
                let (counter, answer) = (counter.clone(), answer.clone());
                async move {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let (delay, status) = answer(n);
                    tokio::time::sleep(delay).await;
                    http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, posts)
    }

    fn reporter(url: &str, timeout: Duration, settings: ReporterSettings) -> Reporter {
        let client = BackendClient::builder(ProviderAuth::service_token("tok", "42"))
            .url(url)
            .timeout(timeout)
            .build()
            .unwrap();
        Reporter::new(client, None, settings)
    }

    fn quiet() -> ReporterSettings {
        ReporterSettings {
            flush_interval: Duration::from_secs(3600),
            late_answer_timeout: Duration::from_millis(300),
            ..ReporterSettings::default()
        }
    }

    fn key(i: usize) -> AppCredentials {
        AppCredentials::UserKey(Secret::new(format!("key-{i}")))
    }

    #[test]
    fn coded_usage_is_one_transaction_per_response_split_across_posts() {
        let mut pending = Pending::default();
        let a = ReportKey::of(&key(1));
        let b = ReportKey::of(&key(2));
        // a: two responses without a code (one transaction), three with codes.
        pending.add(true, a.clone(), None, &Usage::hits(), None, None);
        pending.add(true, a.clone(), None, &Usage::hits(), None, None);
        for code in [200, 200, 404] {
            pending.add(true, a.clone(), None, &Usage::hits(), Some(code), None);
        }
        pending.add(true, b.clone(), None, &Usage::hits(), Some(500), None);
        assert_eq!(pending.waiting_transactions, 5);
        let held = pending.bytes;
        let posts = pending.take_waiting(2);
        let items: Vec<(ReportKey, u64, Option<u16>)> = posts
            .iter()
            .flat_map(|p| &p.items)
            .map(|(_, k, u, c)| (k.clone(), u.get("hits").unwrap(), *c))
            .collect();
        assert_eq!(
            items,
            [
                (a.clone(), 2, None),
                (a.clone(), 1, Some(200)),
                (a.clone(), 1, Some(200)),
                (a.clone(), 1, Some(404)),
                (b.clone(), 1, Some(500)),
            ]
        );
        assert_eq!(
            posts.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert_eq!(posts.iter().map(|p| p.bytes).sum::<usize>(), held);
        // Put back as they were: the same transactions again.
        for post in &posts {
            pending.put_back(post.id, &post.items);
        }
        assert_eq!(pending.bytes, held);
        let again: usize = pending
            .take_waiting(1000)
            .iter()
            .map(|p| p.items.len())
            .sum();
        assert_eq!(again, 5);
    }

    #[tokio::test]
    async fn usage_held_for_its_status_is_unreported_usage_throughout() {
        let reporter = reporter("http://127.0.0.1:9", Duration::from_secs(1), quiet());
        let key = ReportKey::of(&key(7));
        let unreported = || reporter.unreported(&key).get("hits");
        let first = reporter.hold(&key, &Usage::hits());
        let second = reporter.hold(&key, &Usage::hits());
        assert_eq!(unreported(), Some(2));
        reporter.settle(
            key.clone(),
            first,
            &Usage::new().with("hits", 3),
            Some(200),
            true,
        );
        assert_eq!(unreported(), Some(5));
        // Settling again (or an unknown handle) adds only what it carries.
        reporter.settle(key.clone(), first, &Usage::new(), Some(200), true);
        assert_eq!(unreported(), Some(5));
        reporter.settle(key.clone(), second, &Usage::new(), None, true);
        assert_eq!(unreported(), Some(5));
        let posts = lock(&reporter.shared.pending).take_waiting(1000);
        let items: Vec<(u64, Option<u16>)> = posts
            .iter()
            .flat_map(|p| &p.items)
            .map(|(_, _, u, c)| (u.get("hits").unwrap(), *c))
            .collect();
        assert_eq!(items, [(1, None), (4, Some(200))]);
        reporter.shared.stop.store(true, Ordering::SeqCst);
    }

    #[test]
    fn usage_accepted_after_a_generation_still_counts_for_that_reader() {
        let mut pending = Pending::default();
        let a = ReportKey::of(&key(1));
        let b = ReportKey::of(&key(2));
        pending.add(true, a.clone(), None, &Usage::hits(), None, None);
        pending.add(true, b.clone(), None, &Usage::hits(), None, None);
        let since = pending.generation;
        let posts = pending.take_waiting(1000);
        for post in &posts {
            pending.accepted(&post.items);
            pending.release(post.id, &post.items, post.bytes);
        }
        let shared = Reporter::new(
            BackendClient::builder(ProviderAuth::service_token("tok", "42"))
                .url("http://127.0.0.1:9")
                .build()
                .unwrap(),
            None,
            quiet(),
        );
        *lock(&shared.shared.pending) = pending;
        assert_eq!(shared.unreported(&a).get("hits"), None);
        // A fill that asked before the report was accepted counts it.
        assert_eq!(shared.unreported_since(&a, since).get("hits"), Some(1));
        assert_eq!(shared.unreported_since(&b, since).get("hits"), Some(1));
        // One that asked after does not.
        let now = shared.generation();
        assert_eq!(shared.unreported_since(&a, now).get("hits"), None);
    }

    #[tokio::test]
    async fn coded_usage_counts_in_unreported_usage() {
        let reporter = reporter("http://127.0.0.1:9", Duration::from_secs(1), quiet());
        reporter.record(&key(0), &Usage::hits());
        reporter.record_as(&key(0), &Usage::hits(), Some(200), true);
        reporter.record_as(&key(0), &Usage::hits(), Some(503), false);
        assert_eq!(
            reporter.unreported(&ReportKey::of(&key(0))).get("hits"),
            Some(3)
        );
        reporter.shared.stop.store(true, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn usage_past_the_byte_bound_is_dropped_and_counted() {
        let settings = ReporterSettings {
            max_pending_bytes: 4096,
            ..quiet()
        };
        // Nothing listens there; nothing is sent within the test anyway.
        let reporter = reporter("http://127.0.0.1:9", Duration::from_secs(1), settings);
        for i in 0..100 {
            reporter.record(&key(i), &Usage::hits());
        }
        let stats = reporter.stats();
        assert!(stats.dropped > 0, "{stats:?}");
        assert_eq!(stats.recorded + stats.dropped, 100);
        assert!(stats.pending_bytes <= 4096, "{stats:?}");
        assert_eq!(stats.pending_applications, stats.recorded);
        // More of a metric already held takes no more room.
        let before = reporter.stats();
        reporter.record(&key(0), &Usage::hits());
        let after = reporter.stats();
        assert_eq!(after.pending_bytes, before.pending_bytes);
        assert_eq!(after.recorded, before.recorded + 1);
        assert_eq!(
            reporter.unreported(&ReportKey::of(&key(0))).get("hits"),
            Some(2)
        );
        reporter.shared.stop.store(true, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn usage_in_flight_counts_against_the_byte_bound() {
        // The first POST hangs for a while; the bound still counts it.
        let (url, posts) = fake(|n| {
            if n == 1 {
                (Duration::from_millis(800), 202)
            } else {
                (Duration::ZERO, 202)
            }
        })
        .await;
        let settings = ReporterSettings {
            max_pending_bytes: 2048,
            ..quiet()
        };
        let reporter = reporter(&url, Duration::from_secs(5), settings);
        let mut i = 0;
        while reporter.stats().dropped == 0 {
            reporter.record(&key(i), &Usage::hits());
            i += 1;
        }
        let held = reporter.stats().pending_bytes;
        let flushing = tokio::spawn({
            let reporter = reporter.clone();
            async move { reporter.flush().await }
        });
        while posts.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // All of it is in flight now: a new application still does not fit.
        reporter.record(&key(10_000), &Usage::hits());
        assert_eq!(reporter.stats().dropped, 2, "{:?}", reporter.stats());
        assert_eq!(reporter.stats().pending_bytes, held);
        flushing.await.unwrap().unwrap();
        let stats = reporter.stats();
        assert_eq!(stats.pending_bytes, 0, "{stats:?}");
        assert_eq!(stats.pending_applications, 0, "{stats:?}");
        reporter.record(&key(10_000), &Usage::hits());
        assert_eq!(reporter.stats().dropped, 2);
        reporter.shutdown(1).await;
    }

    #[tokio::test]
    async fn a_failed_post_is_kept_and_released_once_accepted() {
        let (url, posts) = fake(|n| (Duration::ZERO, if n == 1 { 503 } else { 202 })).await;
        let reporter = reporter(&url, Duration::from_secs(5), quiet());
        for i in 0..3 {
            reporter.record(&key(i), &Usage::hits().with("search", 2));
        }
        assert!(reporter.flush().await.is_err());
        let stats = reporter.stats();
        assert_eq!(stats.pending_applications, 3, "{stats:?}");
        assert!(stats.pending_bytes > 0);
        // Kept usage still counts for the cache, with what came since.
        reporter.record(&key(0), &Usage::hits());
        let unreported = reporter.unreported(&ReportKey::of(&key(0)));
        assert_eq!(unreported.get("hits"), Some(2));
        assert_eq!(unreported.get("search"), Some(2));
        reporter.flush().await.unwrap();
        let stats = reporter.stats();
        assert_eq!(stats.pending_applications, 0, "{stats:?}");
        assert_eq!(stats.pending_bytes, 0, "{stats:?}");
        assert_eq!(
            stats.reported_transactions, 4,
            "3 retried + 1 new: {stats:?}"
        );
        assert_eq!(
            posts.load(Ordering::SeqCst),
            3,
            "failed, its retry, the new usage"
        );
        reporter.shutdown(1).await;
    }

    #[tokio::test]
    async fn a_post_that_timed_out_twice_is_given_up() {
        // Never answers in time (the handler sleeps past both timeouts).
        let (url, posts) = fake(|_| (Duration::from_secs(3), 202)).await;
        let reporter = reporter(&url, Duration::from_millis(100), quiet());
        reporter.record(&key(1), &Usage::hits());
        assert!(matches!(
            reporter.flush().await,
            Err(BackendError::Timeout(_))
        ));
        let stats = reporter.stats();
        assert_eq!(stats.timed_out_posts, 1, "{stats:?}");
        assert_eq!(stats.pending_applications, 1, "kept for one more attempt");
        assert!(reporter.flush().await.is_err());
        let stats = reporter.stats();
        assert_eq!(stats.abandoned, 1, "{stats:?}");
        assert_eq!(stats.pending_applications, 0, "{stats:?}");
        assert_eq!(stats.pending_bytes, 0, "{stats:?}");
        reporter.flush().await.unwrap();
        assert_eq!(
            posts.load(Ordering::SeqCst),
            2,
            "sent twice, never a third time"
        );
        reporter.shutdown(1).await;
    }

    #[tokio::test]
    async fn full_batches_do_not_skip_the_backoff() {
        let (url, posts) = fake(|_| (Duration::ZERO, 503)).await;
        let settings = ReporterSettings {
            flush_interval: Duration::from_millis(200),
            max_batch: 1,
            ..quiet()
        };
        let reporter = reporter(&url, Duration::from_secs(5), settings);
        let started = std::time::Instant::now();
        let mut i = 0;
        while started.elapsed() < Duration::from_millis(1500) {
            reporter.record(&key(i % 500), &Usage::hits());
            i += 1;
            if i % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let sent = posts.load(Ordering::SeqCst);
        // 200 ms, 200, 400, 800: a handful, whatever the record rate.
        assert!((1..=8).contains(&sent), "{sent} POSTs for {i} records");
        assert!(i > 1000);
        reporter.shared.stop.store(true, Ordering::SeqCst);
    }

    #[tokio::test]
    async fn unconfirmed_applications_are_checked_before_they_are_batched() {
        let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = bodies.clone();
        let app = axum::Router::new()
            .route(
                "/transactions/authorize.xml",
                axum::routing::get(|query: axum::extract::RawQuery| async move {
                    let query = query.0.unwrap_or_default();
                    let error = |code: &str| {
                        (
                            http::StatusCode::FORBIDDEN,
                            format!(
                                r#"<?xml version="1.0" encoding="UTF-8"?><error code="{code}">refused</error>"#
                            ),
                        )
                    };
                    if query.contains("user_key=key-bad") {
                        error("user_key_invalid")
                    } else if query.contains("user_key=key-odd") {
                        error("something_else")
                    } else {
                        (
                            http::StatusCode::OK,
                            r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><plan>P</plan></status>"#
                                .to_string(),
                        )
                    }
                }),
            )
            .route(
                "/transactions.xml",
                axum::routing::post(move |body: String| {
                    let seen = seen.clone();
                    async move {
                        seen.lock().unwrap().push(body);
                        http::StatusCode::ACCEPTED
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let reporter = reporter(&url, Duration::from_secs(5), quiet());
        let named = |name: &str| AppCredentials::UserKey(Secret::new(format!("key-{name}")));
        reporter.record(&named("known"), &Usage::hits());
        reporter.record_unconfirmed(&named("good"), &Usage::hits());
        reporter.record_unconfirmed(&named("bad"), &Usage::hits());
        reporter.record_unconfirmed(&named("odd"), &Usage::hits());
        reporter.flush().await.unwrap();
        let stats = reporter.stats();
        assert_eq!(stats.unknown_applications, 1, "{stats:?}");
        assert_eq!(stats.reported_transactions, 2, "{stats:?}");
        // The one neither confirmed nor refused is kept, and did not block the rest.
        assert_eq!(stats.pending_applications, 1, "{stats:?}");
        let bodies = bodies.lock().unwrap().join("\n");
        assert!(
            bodies.contains("key-known") && bodies.contains("key-good"),
            "{bodies}"
        );
        assert!(
            !bodies.contains("key-bad") && !bodies.contains("key-odd"),
            "{bodies}"
        );
        reporter.shared.stop.store(true, Ordering::SeqCst);
    }
}
