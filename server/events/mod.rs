//! The event bus and its journal. Every event is numbered, written to the
//! journal in the database (in the same transaction as the state change it
//! reports) and only then handed to live subscribers.
//!
//! A subscriber is a task that reads the journal from its cursor and then
//! switches to live delivery; the switch happens under the lock that
//! numbers events, so there is no gap and no duplicate. Live delivery is one
//! bounded ring shared by every subscriber (a broadcast channel): appending
//! an event costs the same however many subscribers there are, and each
//! subscriber filters for itself. One that falls a whole ring behind goes
//! back to reading the journal from its cursor. Nothing is dropped and a
//! slow subscriber costs a bounded amount of memory.

use crate::store::{self, Batch, Entry, Store};
pub use crate::sys::time::now_nanos;
use berth::pb::{Action, Event};
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

mod subscription;
pub use subscription::Subscription;

/// Events the live ring holds: a subscriber further behind than this is
/// sent back to the journal.
const LIVE_RING: usize = 256;
/// Events removed per retention transaction.
const PRUNE_CHUNK: u64 = 5000;
const PRUNE_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("event journal: {0}")]
    Store(#[from] store::Error),
    #[error("event journal: {0}")]
    Journal(String),
    /// The journal's filesystem is full.
    #[error("{0}")]
    Full(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("the daemon is shutting down")]
    Closed,
}

pub fn timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

pub fn nanos(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.nanos as i64)
}

/// How long events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_events: u64,
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_events: 1_000_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl std::str::FromStr for Retention {
    type Err = String;

    /// "1000000", "7d", "500000,24h": a plain number limits the count, a
    /// number with a unit (s, m, h, d) the age; what is not given keeps its
    /// default.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut r = Retention::default();
        for part in s.split(',').map(str::trim) {
            if let Ok(n) = part.parse::<u64>() {
                if n == 0 {
                    return Err("the event count limit must be at least 1".into());
                }
                r.max_events = n;
                continue;
            }
            let (num, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit()).unwrap_or(0));
            let n: u64 = num
                .parse()
                .map_err(|_| format!("invalid retention {part:?}: use a count (1000000) or an age (7d, 12h, 30m, 90s)"))?;
            let secs = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => {
                    return Err(format!(
                        "invalid retention unit in {part:?}: use s, m, h or d"
                    ))
                }
            };
            if n == 0 {
                return Err("the event age limit must be at least 1s".into());
            }
            r.max_age = Duration::from_secs(n.saturating_mul(secs));
        }
        Ok(r)
    }
}

/// What a subscriber wants to see.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub containers: Vec<String>,
    pub actions: Vec<i32>,
    pub labels: BTreeMap<String, String>,
    pub types: Vec<i32>,
    /// Image ids or references.
    pub images: Vec<String>,
}

impl Filter {
    pub fn matches(&self, ev: &Event) -> bool {
        let daemon = ev.action == Action::DaemonStart as i32;
        let image = ev.r#type == berth::pb::EventType::Image as i32;
        if !self.types.is_empty() && !self.types.contains(&ev.r#type) {
            return false;
        }
        let container_ok = if image {
            self.containers.is_empty()
                && (self.images.is_empty()
                    || self.images.iter().any(|i| *i == ev.id || *i == ev.name))
                && self
                    .labels
                    .iter()
                    .all(|(k, v)| ev.labels.get(k).is_some_and(|x| x == v))
        } else if !self.images.is_empty() {
            false
        } else if daemon {
            self.containers.is_empty() && self.labels.is_empty()
        } else {
            (self.containers.is_empty()
                || self.containers.iter().any(|c| *c == ev.id || *c == ev.name))
                && self
                    .labels
                    .iter()
                    .all(|(k, v)| ev.labels.get(k).is_some_and(|x| x == v))
        };
        container_ok && (self.actions.is_empty() || self.actions.contains(&ev.action))
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// With the next event.
    Now,
    /// After this seq.
    After(u64),
    /// With the first event recorded at or after this time (unix nanos).
    At(i64),
}

pub(super) type Live = Arc<(i64, Event)>;

struct Inner {
    next_seq: u64,
    last_recorded: i64,
    closed: bool,
    /// Group commit: changes waiting to be written, in ticket order.
    queue: Vec<(Batch, Vec<Event>)>,
    /// Whether a caller is writing a group now.
    committing: bool,
    /// The ticket of the newest queued change, and of the newest written.
    last_ticket: u64,
    finished: u64,
    /// Tickets whose write failed, with the error and whether the
    /// filesystem was full.
    failed: HashMap<u64, (String, bool)>,
}

pub struct Bus {
    store: Arc<Store>,
    inner: Mutex<Inner>,
    /// Live events, in seq order; sent to under `inner`'s lock.
    live: broadcast::Sender<Live>,
    /// Signalled when a group is written.
    wake: Condvar,
    /// True once the daemon shuts down: ends every subscription, also one
    /// waiting for a client that does not read.
    closed: watch::Sender<bool>,
}

pub(super) enum Register {
    Live(broadcast::Receiver<Live>),
    Behind,
    /// `until` has passed.
    Done,
    /// The daemon is shutting down.
    Closed,
}

impl Bus {
    /// A bus that numbers on from where the journal left off.
    pub fn open(store: Arc<Store>) -> Result<Bus, Error> {
        let next_seq = store.bounds()?.next;
        Ok(Bus {
            store,
            live: broadcast::Sender::new(LIVE_RING),
            inner: Mutex::new(Inner {
                next_seq,
                last_recorded: 0,
                closed: false,
                queue: Vec::new(),
                committing: false,
                last_ticket: 0,
                finished: 0,
                failed: HashMap::new(),
            }),
            wake: Condvar::new(),
            closed: watch::Sender::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The database the journal is in (images keep their records there).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The seq of the newest event, 0 if there has been none.
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Numbers `events`, writes them with `batch` durably, and then
    /// delivers them; returns once that is done. An event without a time
    /// gets the current time. If the write fails nothing is delivered and
    /// no seq is used.
    ///
    /// Group commit: callers queue their changes; whoever finds no commit
    /// in progress numbers everything queued and writes it in one
    /// transaction while the others wait. Each caller's events keep their
    /// order, and a caller's commit is done before it can queue another.
    pub fn commit(&self, batch: Batch, events: Vec<Event>) -> Result<(), Error> {
        let mut inner = self.lock();
        inner.last_ticket += 1;
        let ticket = inner.last_ticket;
        inner.queue.push((batch, events));
        loop {
            if inner.finished >= ticket {
                return match inner.failed.remove(&ticket) {
                    Some((e, true)) => Err(Error::Full(e)),
                    Some((e, false)) => Err(Error::Journal(e)),
                    None => Ok(()),
                };
            }
            if inner.committing {
                inner = self.wake.wait(inner).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            inner.committing = true;
            let group = std::mem::take(&mut inner.queue);
            let first = inner.finished + 1;
            let n = group.len() as u64;
            let now = now_nanos();
            let recorded_at = now.max(inner.last_recorded);
            let mut seq = inner.next_seq;
            let mut batches = Vec::with_capacity(group.len());
            let mut stamped = Vec::new();
            for (mut batch, events) in group {
                for mut ev in events {
                    ev.seq = seq;
                    seq += 1;
                    ev.time.get_or_insert_with(|| timestamp(now));
                    batch.event(Entry {
                        seq: ev.seq,
                        recorded_at,
                        data: ev.encode_to_vec(),
                    });
                    stamped.push(ev);
                }
                batches.push(batch);
            }
            drop(inner);
            let written = self.store.write_all(&batches);
            inner = self.lock();
            match written {
                Ok(()) => {
                    inner.next_seq = seq;
                    inner.last_recorded = recorded_at;
                    for ev in stamped {
                        tracing::debug!(seq = ev.seq, container = %ev.id, action = ?Action::try_from(ev.action), "event");
                        // No receiver is not an error: nobody is live.
                        let _ = self.live.send(Arc::new((recorded_at, ev)));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, changes = n, "cannot write to the journal");
                    for t in first..first + n {
                        let full = matches!(e, store::Error::Full { .. });
                        inner.failed.insert(t, (e.to_string(), full));
                    }
                }
            }
            inner.finished += n;
            inner.committing = false;
            self.wake.notify_all();
        }
    }

    pub fn publish(&self, ev: Event) -> Result<(), Error> {
        self.commit(Batch::default(), vec![ev])
    }

    /// Starts a subscription: the stored events from `start` on, then live
    /// ones, until `until` (unix nanos) or shutdown. Fails at once if
    /// `start` is outside what the journal holds.
    pub fn subscribe(
        self: &Arc<Self>,
        filter: Filter,
        start: Start,
        until: Option<i64>,
    ) -> Result<Subscription, Error> {
        let cursor = match start {
            Start::Now => {
                let inner = self.lock();
                if inner.closed {
                    return Err(Error::Closed);
                }
                inner.next_seq - 1
            }
            Start::After(0) => self.store.bounds()?.oldest - 1,
            Start::After(seq) => {
                let b = self.store.bounds()?;
                if seq >= b.next {
                    return Err(Error::OutOfRange(format!(
                        "since_seq {seq} is ahead of the journal: the newest event is {}",
                        b.next - 1
                    )));
                }
                if seq + 1 < b.oldest {
                    return Err(Error::OutOfRange(format!(
                        "events after seq {seq} are no longer held: the oldest event held is {}",
                        b.oldest
                    )));
                }
                seq
            }
            Start::At(t) => {
                let b = self.store.bounds()?;
                if b.pruned_until > 0 && t <= b.pruned_until {
                    return Err(Error::OutOfRange(format!(
                        "events from that time are no longer held: the oldest event held is {}",
                        b.oldest
                    )));
                }
                self.store.first_at_or_after(t)? - 1
            }
        };
        // "From the oldest event held" stays true if retention removes
        // events before the first read.
        let from_oldest = matches!(start, Start::After(0));
        Ok(Subscription::new(
            self.clone(),
            filter,
            cursor,
            from_oldest,
            until,
        ))
    }

    /// Joins the live ring if nothing was published after `cursor`; Done
    /// if `until` has passed (any later event is recorded after now),
    /// Closed on shutdown.
    pub(super) fn register(&self, cursor: u64, until: Option<i64>) -> Register {
        let inner = self.lock();
        if inner.closed {
            return Register::Closed;
        }
        if inner.next_seq - 1 != cursor {
            return Register::Behind;
        }
        if until.is_some_and(|u| u < now_nanos()) {
            return Register::Done;
        }
        // Under the lock that sends: the receiver starts right after
        // `cursor`.
        Register::Live(self.live.subscribe())
    }

    /// Ends every subscription (daemon shutdown) with Error::Closed, so a
    /// subscriber can tell it from the end it asked for.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        self.closed.send_replace(true);
    }

    /// Removes events beyond `retention` now and every few seconds.
    pub fn spawn_retention(
        self: &Arc<Self>,
        retention: Retention,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let bus = self.clone();
        tokio::spawn(async move {
            loop {
                loop {
                    let store = bus.store.clone();
                    let before = now_nanos().saturating_sub(retention.max_age.as_nanos() as i64);
                    let pruned = tokio::task::spawn_blocking(move || {
                        store.prune(retention.max_events, before, PRUNE_CHUNK)
                    })
                    .await;
                    match pruned {
                        Ok(Ok(0)) => break,
                        Ok(Ok(n)) => tracing::debug!(removed = n, "event retention"),
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "event retention failed");
                            break;
                        }
                        Err(_) => return,
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(PRUNE_EVERY) => {}
                    _ = crate::shutdown::shutting_down(&mut shutdown) => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
