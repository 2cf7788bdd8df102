//! A container: its stored record, its state machine, and `transition()`,
//! the one place its state changes, is saved, journaled and announced.
//!
//! Concurrency: each container has an async `op` lock that serialises the
//! operations on it and a short std `state` lock that guards its state. A
//! transition writes the record and the events that report it in one
//! transaction, under the state lock; the exit watcher takes only that
//! lock. So per container the events are in causal order (start before
//! die, kill before die, die before stop) and the journal always agrees
//! with the records. Waiting holds no lock; it watches `changed`.

use super::error::{Error, Result};
use super::host::Pid1;
pub use super::note::Note;
use crate::events::{now_nanos, Bus};
use crate::spec::Spec;
use crate::store::Batch;
use berth::pb::{self, Action};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;

/// Lifecycle status, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Created,
    Running,
    Paused,
    Exited,
    /// Exited, and its restart policy starts it again at `restart_due`.
    Restarting,
}

impl Status {
    /// Its process runs (frozen or not).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }

    /// Running, paused or restarting: what Docker calls running, and
    /// `ps` shows without `all`.
    pub fn is_up(self) -> bool {
        self != Status::Created && self != Status::Exited
    }

    /// Start is a no-op on a running container, as Docker's, and on one
    /// whose policy restarts it.
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }

    pub fn can_kill(self) -> bool {
        self.is_running()
    }

    /// Stop is a no-op on a container that is not running.
    pub fn can_stop(self) -> bool {
        self.is_running()
    }

    pub fn can_pause(self) -> bool {
        self == Status::Running
    }

    pub fn can_unpause(self) -> bool {
        self == Status::Paused
    }

    /// A running or restarting container is removed only by force
    /// (killing it first, or ending its wait).
    pub fn can_remove(self, force: bool) -> bool {
        force || !(self.is_running() || self == Status::Restarting)
    }
}

/// What is stored per container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub created_at: i64,
    pub spec: Spec,
    pub status: Status,
    pub pid: i32,
    pub monitor_pid: i32,
    pub exit_code: i32,
    pub signal: i32,
    pub started_at: i64,
    pub finished_at: i64,
    /// How many runs have ended.
    #[serde(default)]
    pub exits: u64,
    /// While a stop is in progress: when SIGKILL is due (unix nanos;
    /// i64::MAX for never). 0 otherwise.
    #[serde(default)]
    pub stop_deadline: i64,
    /// OOM kills of the current run journaled so far.
    #[serde(default)]
    pub oom_kills: u64,
    /// The kernel's OOM killer killed a process during the last run.
    #[serde(default)]
    pub oom_killed: bool,
    /// Restarts by its policy since the user last started it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_count: u64,
    /// The delay before the last restart by its policy, in ms (0: none
    /// since the user started it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_delay_ms: u64,
    /// While Restarting: when the restart is due (unix nanos).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub restart_due: i64,
    /// The user stopped or killed the run (its policy does not restart
    /// it); cleared by the user's next start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_by_user: bool,
    /// With a health check: its health, from the first start on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
    /// Its places on bridge networks while it runs, eth0 first.
    #[serde(
        default,
        alias = "network",
        deserialize_with = "attachments",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub networks: Vec<crate::network::Attachment>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// A record's attachments: a list, or the one a record written before a
/// container could be on several networks has.
fn attachments<'de, D>(d: D) -> std::result::Result<Vec<crate::network::Attachment>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Field {
        One(crate::network::Attachment),
        Many(Vec<crate::network::Attachment>),
    }
    Ok(match Field::deserialize(d)? {
        Field::One(a) => vec![a],
        Field::Many(a) => a,
    })
}

impl Record {
    /// A container just created.
    pub fn new(id: String, created_at: i64, spec: Spec) -> Record {
        Record {
            id,
            created_at,
            spec,
            status: Status::Created,
            pid: 0,
            monitor_pid: 0,
            exit_code: 0,
            signal: 0,
            started_at: 0,
            finished_at: 0,
            exits: 0,
            stop_deadline: 0,
            oom_kills: 0,
            oom_killed: false,
            restart_count: 0,
            restart_delay_ms: 0,
            restart_due: 0,
            stopped_by_user: false,
            health: None,
            networks: Vec::new(),
        }
    }
}

pub struct State {
    pub record: Record,
    /// PID 1 while it runs.
    pub pid1: Option<Box<dyn Pid1>>,
    pub removed: bool,
    /// The time of the container's last journaled event: a later event is
    /// never given an earlier time.
    pub last_event_at: i64,
}

impl State {
    /// Whether PID 1 has exited (zombies included), though its exit may
    /// not be recorded yet: a cgroup operation that failed then failed
    /// because the container is going away.
    pub fn pid1_exited(&self) -> bool {
        self.pid1.as_ref().is_none_or(|p| p.exited())
    }
}

/// Whether a change stands when the store cannot take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfUnsaved {
    /// Nothing happened yet (or the caller undoes it): the state stays as
    /// it was.
    Discard,
    /// It already happened (a signal went out, processes run again): the
    /// state follows what happened; the next change written carries it.
    Keep,
}

pub struct Container {
    pub id: String,
    /// The name as it is now (Rename changes it); apart from the state so
    /// that it can be read while the state is locked.
    name: std::sync::RwLock<String>,
    pub dir: PathBuf,
    /// The id of its image, if it runs one (never changes).
    pub image: Option<String>,
    /// Serialises the operations on this container.
    pub op: tokio::sync::Mutex<()>,
    /// How many Restarts are between their stop and their start: their
    /// exits are not ones auto_remove acts on.
    pub restarting: std::sync::atomic::AtomicU32,
    state: Mutex<State>,
    /// Sent after every transition.
    pub changed: watch::Sender<()>,
    /// True once the last run's monitor is gone (watch.rs).
    pub(super) monitor_gone: Mutex<watch::Receiver<bool>>,
}

impl Container {
    pub fn new(record: Record, dir: PathBuf) -> Container {
        Container {
            id: record.id.clone(),
            name: std::sync::RwLock::new(record.spec.name.clone()),
            image: record.spec.image.as_ref().map(|i| i.id.clone()),
            dir,
            op: tokio::sync::Mutex::new(()),
            restarting: std::sync::atomic::AtomicU32::new(0),
            state: Mutex::new(State {
                // The latest time the record knows of, after a restart.
                last_event_at: record
                    .created_at
                    .max(record.started_at)
                    .max(record.finished_at),
                record,
                pid1: None,
                removed: false,
            }),
            changed: watch::Sender::new(()),
            monitor_gone: Mutex::new(watch::channel(true).1),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spec(&self) -> Spec {
        self.state().record.spec.clone()
    }

    /// The one place a container's state changes. `change` edits a copy
    /// of the record and says what to journal; the record if it changed
    /// (deleted if a destroy is journaled) and the events are written in
    /// one transaction. Then the copy becomes the state and waiters are
    /// told; if the write failed, only with IfUnsaved::Keep. The caller holds the
    /// state lock, so nothing can come between the change and its events.
    /// A removed container is NotFound.
    pub fn transition(
        &self,
        st: &mut State,
        bus: &Bus,
        if_unsaved: IfUnsaved,
        change: impl FnOnce(&mut Record) -> Vec<Note>,
    ) -> Result<()> {
        // Nothing brings a removed container's record back, whoever held
        // it from before the remove.
        if st.removed {
            return Err(Error::NotFound(self.name().into()));
        }
        let mut r = st.record.clone();
        let notes = change(&mut r);
        let journals = |a: Action| notes.iter().any(|n| n.action == a);
        let destroyed = journals(Action::Destroy);
        // An event alone (a kill) leaves the record as it is: nothing to
        // write for it, and nobody to wake. A create writes it first.
        let changed = destroyed || journals(Action::Create) || r != st.record;
        // Each event has the time of what it reports (the signal sent, the
        // exit), or now; within one container time never goes back as seq
        // rises.
        let mut last = st.last_event_at;
        let events = notes
            .iter()
            .map(|n| {
                last = n.time.unwrap_or_else(now_nanos).max(last);
                n.event(&self.id, &r, last)
            })
            .collect();
        let mut batch = Batch::default();
        let put = match (destroyed, changed) {
            (true, _) => {
                batch.delete(&self.id);
                Ok(())
            }
            (false, true) => batch.put(&self.id, &r),
            (false, false) => Ok(()),
        };
        let saved = put
            .map_err(Error::from)
            .and_then(|()| commit(bus, batch, events));
        if saved.is_ok() {
            st.last_event_at = last;
        }
        if changed && (saved.is_ok() || if_unsaved == IfUnsaved::Keep) {
            st.record = r;
            st.removed |= destroyed && saved.is_ok();
            self.changed.send_replace(());
        }
        saved
    }

    pub fn name(&self) -> String {
        self.name.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the name (Rename, once the record holds the new one).
    pub fn set_name(&self, name: String) {
        *self.name.write().unwrap_or_else(|e| e.into_inner()) = name;
    }

    /// Waits until the time (unix nanos) `due` reads from the state has
    /// come, reading it again at each change: true then; false once `due`
    /// says the wait is over (None) or the daemon shuts down. Some(None):
    /// no time yet.
    pub async fn until_due(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        due: impl Fn(&State) -> Option<Option<i64>>,
    ) -> bool {
        let mut changed = self.changed.subscribe();
        loop {
            let Some(at) = due(&self.state()) else {
                return false;
            };
            let wait = async {
                match at {
                    None => std::future::pending().await,
                    Some(at) => {
                        let left = at.saturating_sub(now_nanos()).max(0) as u64;
                        tokio::time::sleep(std::time::Duration::from_nanos(left)).await
                    }
                }
            };
            tokio::select! {
                _ = wait => return true,
                r = changed.changed() => if r.is_err() { return false },
                _ = crate::shutdown::shutting_down(shutdown) => return false,
            }
        }
    }

    /// Resolves once the container has exited more than `exits` times, i.e.
    /// the run that was current when `exits` was read has ended. `changed`
    /// must have been subscribed before `exits` was read.
    pub async fn exited_after(&self, changed: &mut watch::Receiver<()>, exits: u64) {
        while self.state().record.exits == exits {
            if changed.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Writes `batch` with `events` through the bus. The write blocks on the
/// disk: the worker thread hands its other tasks on meanwhile, so other
/// containers' changes can join the same transaction.
fn commit(bus: &Bus, batch: Batch, events: Vec<pb::Event>) -> Result<()> {
    Ok(tokio::task::block_in_place(|| bus.commit(batch, events))?)
}
