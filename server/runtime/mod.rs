//! The daemon side of containers: the table of containers and every
//! lifecycle operation with Docker's event sequences, one operation per
//! file. Runs in tokio and never forks into namespaces: the monitor does
//! (monitor/), and `host` is how this side asks for it.
//!
//! An operation reads top to bottom: find the container, take its `op`
//! lock, check `Status::can_*()`, act through the host, then
//! `Container::transition()` (container.rs has the concurrency rules).
//!
//! A stop is a property of the container, not of the request: the first
//! stop sends the signal and records a deadline; later stops can only bring
//! the deadline forward; a driver task sends SIGKILL when it passes; the
//! exit that ends the run emits die and then stop. The deadline is stored,
//! so a stop in progress carries on after a daemon restart.

mod attach;
mod container;
mod create;
mod endpoints;
mod error;
mod exec;
mod exec_helper;
mod exec_sync;
mod export;
mod health;
pub mod host;
mod hosts;
mod inspect;
mod kill;
mod log_watch;
mod logs;
mod monitors;
mod names;
mod networks;
mod note;
mod pause;
mod policy;
mod prober;
mod prune;
mod records;
mod recover;
mod remove;
mod rename;
mod resolver;
mod restart;
mod start;
mod stats;
mod stop;
#[cfg(test)]
mod tests;
mod top;
mod update;
mod wait;
mod watch;

pub use attach::{AttachOutput, AttachReader};
pub use container::{Record, Status};
pub use error::{Error, Result};
pub use exec::{ExecProcess, Running, Signaller};
pub use logs::{LogLine, LogsQuery};
pub use networks::{network_pb, port_binding, settings, NetworkView, NewNetwork};
pub use stats::{Sample, Samples, StatsQuery};
pub use wait::WaitCondition;

use crate::events::Bus;
use crate::logs::Limits;
use crate::spec::{self, Input};
use crate::sys::seccomp;
use container::Container;
use host::Host;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Default)]
struct Index {
    by_id: HashMap<String, Arc<Container>>,
    /// name -> id; a name is reserved here before its container is added.
    names: HashMap<String, String>,
}

pub struct Runtime {
    root: PathBuf,
    host: Box<dyn Host>,
    bus: Arc<Bus>,
    /// The daemon's default log rotation.
    log_limits: Limits,
    /// What the host's cgroups can enforce.
    support: crate::sys::cgroup::Support,
    /// Seccomp filters, compiled once per capability set.
    filters: seccomp::Filters,
    machine: spec::Host,
    /// The host's memory, reported as the limit of unlimited containers.
    host_memory: u64,
    index: RwLock<Index>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Tells log followers of new output.
    log_watch: Arc<log_watch::LogWatch>,
    /// Networks by id.
    networks: RwLock<std::collections::BTreeMap<String, crate::network::NetworkRecord>>,
    /// Held by a start while it takes host ports.
    ports_lock: tokio::sync::Mutex<()>,
    /// The resolvers of user networks, if the daemon runs them.
    resolver: Option<crate::dns::Resolver>,
}

/// How the daemon runs containers.
pub struct Options {
    pub log_limits: Limits,
    /// Set the database aside and rebuild the records from the container
    /// directories.
    pub rebuild: bool,
    /// Serve DNS to the containers of user networks.
    pub dns: bool,
}

impl Runtime {
    pub fn bus(&self) -> Arc<Bus> {
        self.bus.clone()
    }

    fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Where containers' directories (and their writable layers) are.
    pub fn containers_root(&self) -> PathBuf {
        containers_dir(&self.root)
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        crate::monitor::protocol::container_dir(&self.root, id)
    }

    /// Adds a container to the index (its name was reserved, or is taken
    /// now).
    fn insert(&self, c: Arc<Container>) {
        let mut index = self.index_mut();
        index.names.insert(c.name(), c.id.clone());
        index.by_id.insert(c.id.clone(), c);
    }

    /// Every container, taken out of the index: whoever reads their states
    /// must not hold the index (remove takes the index under a state).
    fn all(&self) -> Vec<Arc<Container>> {
        self.index().by_id.values().cloned().collect()
    }

    /// Image id -> the names of the containers that use it.
    pub fn image_users(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for c in self.index().by_id.values() {
            if let Some(image) = &c.image {
                out.entry(image.clone()).or_default().push(c.name());
            }
        }
        out
    }

    /// Finds a container by full id, name or unique id prefix.
    fn find(&self, key: &str) -> Result<Arc<Container>> {
        if key.is_empty() {
            return Err(Error::InvalidArgument(
                "container id is empty: give an id, id prefix or name".into(),
            ));
        }
        let index = self.index();
        if let Some(c) = index.by_id.get(key) {
            return Ok(c.clone());
        }
        if let Some(c) = index.names.get(key).and_then(|id| index.by_id.get(id)) {
            return Ok(c.clone());
        }
        let mut found = index.by_id.iter().filter(|(id, _)| id.starts_with(key));
        match (found.next(), found.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
                "id prefix {:?} is ambiguous: give more characters or the name",
                Input::from(key)
            ))),
            _ => Err(Error::NotFound(key.into())),
        }
    }
}

/// The host's memory in bytes, from /proc/meminfo (0 if unreadable).
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// The root's directory of containers.
fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}
