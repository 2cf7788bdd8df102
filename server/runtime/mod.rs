//! The runtime core: the table of containers, their state machine, and
//! every lifecycle operation with Docker's event sequences.
//!
//! Concurrency: each container has an async `op` lock that serialises the
//! operations on it (create/start/pause/unpause/kill/remove and the signal
//! phases of stop) and a short std `state` lock that guards its state.
//! Every state change is written to the store together with the events
//! that report it, in one transaction, under the state lock; the exit
//! watcher takes only that lock. So per container the events are in causal
//! order (start before die, kill before die, die before stop) and the
//! journal always agrees with the records. Waiting (stop's grace period,
//! wait) holds no lock; it watches `changed`.
//!
//! A stop is a property of the container, not of the request: the first
//! stop sends the signal and records a deadline; later stops can only bring
//! the deadline forward; a driver task sends SIGKILL when it passes; the
//! exit that ends the run emits die and then stop. The deadline is stored,
//! so a stop in progress carries on after a daemon restart.

pub mod cgroup;
mod confine;
mod init;
pub mod linux;
mod log_reader;
mod log_watch;
pub mod logs;
pub mod monitor;
mod names;
mod records;
mod seccomp;
mod setup;
pub mod spec;
mod stats;

pub use stats::StatsQuery;

use crate::events::{self, now_nanos, timestamp, Bus};
use crate::store::{self, Batch};
use berth::pb::{self, Action};
use monitor::{container_dir, ExitRecord, Handshake};
use serde::{Deserialize, Serialize};
use spec::Spec;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

/// Errors of the runtime; `api` maps each variant to a gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0}")]
    NotFound(spec::Input),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Internal(String),
    /// A filesystem berthd writes to is full.
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

impl From<spec::Error> for Error {
    fn from(e: spec::Error) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Full { .. } => Error::ResourceExhausted(e.to_string()),
            e => Error::Internal(format!("store: {e}")),
        }
    }
}

impl From<cgroup::Error> for Error {
    fn from(e: cgroup::Error) -> Self {
        match e {
            cgroup::Error::Unsupported(_) => Error::FailedPrecondition(e.to_string()),
            e => Error::Internal(e.to_string()),
        }
    }
}

impl From<events::Error> for Error {
    fn from(e: events::Error) -> Self {
        match e {
            events::Error::Full(_) | events::Error::Store(store::Error::Full { .. }) => {
                Error::ResourceExhausted(e.to_string())
            }
            e => Error::Internal(e.to_string()),
        }
    }
}

fn internal(step: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{step}: {e}"))
}

/// A failed file operation under `dir`: RESOURCE_EXHAUSTED naming the
/// filesystem if it is full, else what failed.
fn io_failed(step: &str, dir: &Path, e: std::io::Error) -> Error {
    if store::is_full(&e) {
        return Error::ResourceExhausted(format!(
            "the filesystem of {} is full ({step}: {e}): free space there; berthd carries on once there is",
            store::filesystem_of(dir).display()
        ));
    }
    internal(step, e)
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// Lifecycle status, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Created,
    Running,
    Paused,
    Exited,
}

impl Status {
    fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }

    fn to_pb(self) -> pb::Status {
        match self {
            Status::Created => pb::Status::Created,
            Status::Running => pb::Status::Running,
            Status::Paused => pb::Status::Paused,
            Status::Exited => pb::Status::Exited,
        }
    }
}

/// What is stored per container.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

struct State {
    record: Record,
    /// pidfd of PID 1 while it runs.
    pidfd: Option<OwnedFd>,
    removed: bool,
}

pub struct Container {
    id: String,
    name: String,
    dir: PathBuf,
    op: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    changed: watch::Sender<()>,
}

impl Container {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spec(&self) -> Spec {
        self.state().record.spec.clone()
    }

    /// Resolves once the container has exited more than `exits` times, i.e.
    /// the run that was current when `exits` was read has ended. `changed`
    /// must have been subscribed before `exits` was read.
    async fn exited_after(&self, changed: &mut watch::Receiver<()>, exits: u64) {
        while self.state().record.exits == exits {
            if changed.changed().await.is_err() {
                return;
            }
        }
    }
}

#[derive(Default)]
struct Index {
    by_id: HashMap<String, Arc<Container>>,
    /// name -> id; a name is reserved here before its container is added.
    names: HashMap<String, String>,
}

pub struct Runtime {
    root: PathBuf,
    exe: PathBuf,
    bus: Arc<Bus>,
    /// The daemon's default log rotation.
    log_limits: logs::Limits,
    /// What the host's cgroups can enforce.
    support: cgroup::Support,
    /// Seccomp filters, compiled once per capability set.
    filters: seccomp::Filters,
    host: spec::Host,
    /// The host's memory, reported as the limit of unlimited containers.
    host_memory: u64,
    index: RwLock<Index>,
    shutdown: watch::Receiver<bool>,
    /// Tells log followers of new output.
    log_watch: Arc<log_watch::LogWatch>,
}

/// What `Wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

fn running_msg(name: &str) -> String {
    format!("container {name} is not running")
}

impl Runtime {
    /// Opens the root (creating it) and its database, records the daemon's
    /// start, loads every stored container and re-attaches to those whose
    /// monitor still runs.
    pub async fn open(
        root: &Path,
        log_limits: logs::Limits,
        shutdown: watch::Receiver<bool>,
        rebuild: bool,
    ) -> Result<Arc<Runtime>> {
        let containers = root.join("containers");
        std::fs::create_dir_all(&containers)
            .map_err(|e| internal(&format!("create root {}", root.display()), e))?;
        let exe =
            std::fs::read_link("/proc/self/exe").map_err(|e| internal("find own binary", e))?;
        let monitors = scan_monitors(&containers);
        let (store, records) = match rebuild {
            true => records::rebuild(root, &monitors)?,
            false => records::open(root)?,
        };
        // Every copy written again from the database: one a crash cut short
        // (they are not fsynced), or a container made before copies existed.
        for r in &records {
            let dir = container_dir(root, &r.id);
            if dir.is_dir() {
                if let Err(e) = records::write_copy(&dir, r) {
                    tracing::warn!(container = %r.id, error = %e, "cannot write the record copy");
                }
            }
        }
        let bus = Arc::new(Bus::open(store.clone())?);
        let support = cgroup::Support::probe();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        tracing::info!(?support, cpus, "cgroup support");
        let rt = Arc::new(Runtime {
            root: root.to_path_buf(),
            exe,
            bus,
            log_limits,
            support,
            filters: seccomp::Filters::new(),
            host: spec::Host {
                cpus,
                swap: support.swap,
            },
            host_memory: host_memory(),
            index: RwLock::new(Index::default()),
            shutdown,
            log_watch: log_watch::LogWatch::start()
                .map_err(|e| internal("watch container logs (inotify)", e))?,
        });
        let resumed_from = rt.bus.last_seq();
        rt.bus.publish(pb::Event {
            action: Action::DaemonStart as i32,
            resumed_from_seq: resumed_from,
            ..Default::default()
        })?;
        tracing::info!(
            resumed_from_seq = resumed_from,
            containers = records.len(),
            "daemon start recorded"
        );
        let known: std::collections::HashSet<String> =
            records.iter().map(|r| r.id.clone()).collect();
        for record in records {
            let monitor = monitors.get(&record.id).copied();
            rt.recover(record, monitor).await;
        }
        records::set_aside_orphans(root, &known);
        Ok(rt)
    }

    pub fn bus(&self) -> Arc<Bus> {
        self.bus.clone()
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, record: Record) -> Arc<Container> {
        let c = self.new_container(record);
        let mut index = self.index_mut();
        index.names.insert(c.name.clone(), c.id.clone());
        index.by_id.insert(c.id.clone(), c.clone());
        c
    }

    fn new_container(&self, record: Record) -> Arc<Container> {
        Arc::new(Container {
            id: record.id.clone(),
            name: record.spec.name.clone(),
            dir: container_dir(&self.root, &record.id),
            op: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                record,
                pidfd: None,
                removed: false,
            }),
            changed: watch::Sender::new(()),
        })
    }

    /// Brings a stored container back after a daemon restart. `monitor` is
    /// the pid of a monitor process found for its directory.
    async fn recover(self: &Arc<Self>, record: Record, monitor: Option<i32>) {
        let dir = container_dir(&self.root, &record.id);
        let monitor = monitor.and_then(|pid| attach_monitor(&dir, pid).map(|fd| (pid, fd)));
        let was_running = record.status.is_running();
        let c = self.insert(record);
        match monitor {
            Some((pid, fd)) if was_running => {
                let (pid1, exits, stopping, status) = {
                    let st = c.state();
                    let r = &st.record;
                    (r.pid, r.exits, r.stop_deadline != 0, r.status)
                };
                c.state().pidfd = attach_pid1(pid1, pid);
                // A pause or unpause the daemon did not get to record is
                // undone: the freezer follows the record.
                let cg = cgroup::Cgroup::load(&c.id);
                let matched = if status == Status::Paused {
                    tokio::task::block_in_place(|| cg.freeze())
                } else {
                    cg.thaw()
                };
                if let Err(e) = matched {
                    tracing::warn!(container = %c.id, error = %e, "cannot bring the freezer in line with the record");
                }
                tracing::info!(container = %c.id, monitor = pid, "re-attached to running container");
                self.spawn_watcher(c.clone(), fd);
                self.spawn_oom_watcher(c.clone(), exits);
                if stopping {
                    self.spawn_stop_driver(c, exits);
                }
            }
            Some((pid, fd)) => {
                // A start the daemon never recorded: the monitor saw the
                // daemon go before it confirmed, and ends its container.
                tracing::warn!(container = %c.id, monitor = pid, "ending a start that was never recorded");
                if !matches!(linux::wait_exit(&fd, Duration::from_secs(10)), Ok(true)) {
                    let _ = linux::pidfd_send_signal(&fd, libc::SIGKILL);
                    let _ = cgroup::Cgroup::load(&c.id).kill_all();
                    let _ = linux::wait_exit(&fd, Duration::from_secs(10));
                }
                let _ = cgroup::Cgroup::load(&c.id).delete();
                let _ = std::fs::remove_file(c.dir.join(monitor::EXIT_FILE));
            }
            None if was_running => {
                // Recorded before the daemon serves, if the store takes it.
                if let Err(e) = self.record_exit(&c) {
                    tracing::error!(container = %c.id, error = %e, "cannot record the exit; trying again");
                    tokio::spawn(self.clone().finish_run(c));
                }
            }
            None => {}
        }
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
                spec::Input::from(key)
            ))),
            _ => Err(Error::NotFound(key.into())),
        }
    }

    fn event(
        c: &Container,
        r: &Record,
        action: Action,
        signal: i32,
        exit_code: Option<i32>,
    ) -> pb::Event {
        pb::Event {
            id: c.id.clone(),
            name: c.name.clone(),
            action: action as i32,
            signal,
            exit_code,
            labels: r
                .spec
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    /// Writes `record` and journals `events` in one transaction.
    fn save(&self, record: &Record, events: Vec<pb::Event>) -> Result<()> {
        let mut batch = Batch::default();
        batch.put(&record.id, record)?;
        self.commit(batch, events)
    }

    /// Writes `batch` with `events` through the bus. The write blocks on
    /// the disk: the worker thread hands its other tasks on meanwhile, so
    /// other containers' changes can join the same transaction.
    fn commit(&self, batch: Batch, events: Vec<pb::Event>) -> Result<()> {
        Ok(tokio::task::block_in_place(|| {
            self.bus.commit(batch, events)
        })?)
    }

    pub async fn create(&self, req: spec::Request) -> Result<(String, String)> {
        let mut raw = [0u8; 32];
        linux::random_bytes(&mut raw).map_err(|e| internal("generate id", e))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        if req.rootfs.contains([',', ':', '\\']) {
            return Err(Error::InvalidArgument(format!(
                "invalid rootfs {:?}: ',', ':' and '\\' cannot be used in an overlay layer path",
                spec::Input::from(req.rootfs.as_str())
            )));
        }
        let mut req = req;
        let generated = req.name.is_empty();
        if generated {
            req.name = names::generate(&raw);
        }
        let spec = req.validate(&id[..12], self.host)?;
        self.support.check(&spec.resources)?;
        // Reserve the name first, so two creates cannot both take it.
        {
            let mut index = self.index_mut();
            if index.names.contains_key(&spec.name) {
                return Err(Error::AlreadyExists(format!(
                    "container name {:?} is already in use: remove that container or choose another name",
                    spec.name
                )));
            }
            index.names.insert(spec.name.clone(), id.clone());
        }
        let record = Record {
            id: id.clone(),
            created_at: now_nanos(),
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
        };
        let name = record.spec.name.clone();
        let dir = container_dir(&self.root, &id);
        // The record and its create event go into the store together, and
        // the container is visible to others only after that.
        let c = self.new_container(record.clone());
        let made = self.make_container_dir(&dir).and_then(|()| {
            let ev = Self::event(&c, &record, Action::Create, 0, None);
            self.save(&record, vec![ev])
        });
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            self.index_mut().names.remove(&name);
            return Err(e);
        }
        // After the record: a directory with a copy always had one (a
        // copy that could not be written now is written at the next start).
        if let Err(e) = records::write_copy(&dir, &record) {
            tracing::warn!(container = %id, error = %e, "cannot write the record copy");
        }
        self.index_mut().by_id.insert(id.clone(), c);
        tracing::info!(container = %id, name = %name, "created");
        Ok((id, name))
    }

    fn make_container_dir(&self, dir: &Path) -> Result<()> {
        for sub in ["upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| io_failed(&format!("create {}", dir.join(sub).display()), dir, e))?;
        }
        Ok(())
    }

    pub async fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        {
            let st = c.state();
            if st.removed {
                return Err(Error::NotFound(key.into()));
            }
            if st.record.status.is_running() {
                return Ok(());
            }
        }
        let _ = std::fs::remove_file(c.dir.join(monitor::EXIT_FILE));
        // The monitor's input for this run. Not fsynced: the durable copy
        // of the spec is the record in the store, and a crash ends the run.
        let spec = c.spec();
        let log = logs::Limits {
            max_size: match spec.log_max_size {
                0 => self.log_limits.max_size,
                n => n,
            },
            max_files: match spec.log_max_files {
                0 => self.log_limits.max_files,
                n => n,
            },
        };
        let seccomp = (!spec.privileged).then(|| self.filters.get(spec.capabilities()));
        let config = monitor::Config {
            id: c.id.clone(),
            spec,
            log,
            seccomp: seccomp.as_deref().cloned(),
        };
        let data = serde_json::to_vec(&config).map_err(|e| internal("encode config", e))?;
        std::fs::write(c.dir.join(monitor::CONFIG_FILE), data).map_err(|e| {
            io_failed(
                &format!("start container {}: write config", c.name),
                &c.dir,
                e,
            )
        })?;
        // Room for the exit status, taken now: the monitor must be able to
        // record how the run ended even if the disk fills meanwhile.
        linux::reserve(&c.dir.join(monitor::EXIT_RESERVE), monitor::EXIT_ROOM).map_err(|e| {
            io_failed(
                &format!(
                    "start container {}: reserve room for the exit status",
                    c.name
                ),
                &c.dir,
                e,
            )
        })?;
        let m = self.spawn_monitor(&c).await?;
        let reap = |fd: OwnedFd| async move {
            let _ = tokio::task::spawn_blocking(move || linux::waitid_pidfd(&fd, false)).await;
        };
        let (pid, started_at) = match m.handshake {
            Handshake::Started { pid, started_at } => (pid, started_at),
            Handshake::Failed { step, message } => {
                // The monitor cleans up and exits; reap it.
                reap(m.monitor).await;
                // The program or the user is not in the rootfs: the
                // request's fault, as with a bad path.
                return Err(if step == "exec" || step == "user" {
                    Error::InvalidArgument(format!("cannot start container {}: {message}", c.name))
                } else {
                    Error::Internal(format!("start container {}: {step}: {message}", c.name))
                });
            }
        };
        let Some(pidfd) = m.pidfd else {
            drop(m.sock);
            reap(m.monitor).await;
            return Err(Error::Internal(format!(
                "start container {}: the monitor sent no pidfd",
                c.name
            )));
        };
        let (saved, exits) = {
            let mut st = c.state();
            let mut r = st.record.clone();
            r.status = Status::Running;
            r.pid = pid;
            r.monitor_pid = m.pid;
            r.started_at = started_at;
            r.exit_code = 0;
            r.signal = 0;
            r.finished_at = 0;
            r.oom_kills = 0;
            r.oom_killed = false;
            let ev = Self::event(&c, &r, Action::Start, 0, None);
            let saved = self.save(&r, vec![ev]);
            if saved.is_ok() {
                st.record = r;
                st.pidfd = Some(pidfd);
            }
            (saved, st.record.exits)
        };
        if let Err(e) = saved {
            // Unconfirmed, the monitor ends the container.
            drop(m.sock);
            reap(m.monitor).await;
            return Err(e);
        }
        // Confirm: from here the monitor keeps the container running even
        // if the daemon goes away.
        if let Err(e) = nix::unistd::write(&m.sock, b"1") {
            tracing::warn!(container = %c.id, error = %e, "cannot confirm the start to the monitor");
        }
        drop(m.sock);
        c.changed.send_replace(());
        tracing::info!(container = %c.id, pid, "started");
        self.spawn_watcher(c.clone(), m.monitor);
        self.spawn_oom_watcher(c.clone(), exits);
        Ok(())
    }

    /// Starts `berthd monitor DIR` and reads its handshake.
    async fn spawn_monitor(&self, c: &Container) -> Result<Spawned> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| internal("monitor socket", e))?;
        let log = std::fs::File::create(c.dir.join("monitor.log"))
            .map_err(|e| io_failed("create monitor log", &c.dir, e))?;
        let child = std::process::Command::new(&self.exe)
            .arg("monitor")
            .arg(&c.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(theirs))
            .stderr(std::process::Stdio::from(log))
            .spawn()
            .map_err(|e| internal(&format!("start container {}: spawn monitor", c.name), e))?;
        let monitor_pid = child.id() as i32;
        // Race-free: the monitor is our unreaped child.
        let monitor_fd =
            linux::pidfd_open(monitor_pid).map_err(|e| internal("pidfd of monitor", e))?;
        let received = tokio::task::spawn_blocking(move || {
            let r = receive_handshake(&ours);
            (ours, r)
        })
        .await
        .map_err(|e| internal("monitor handshake", e))?;
        match received {
            (sock, Ok((handshake, pidfd))) => Ok(Spawned {
                monitor: monitor_fd,
                pid: monitor_pid,
                sock,
                handshake,
                pidfd,
            }),
            (sock, Err(e)) => {
                drop(sock);
                let _ =
                    tokio::task::spawn_blocking(move || linux::waitid_pidfd(&monitor_fd, false))
                        .await;
                let log = std::fs::read_to_string(c.dir.join("monitor.log")).unwrap_or_default();
                Err(Error::Internal(format!(
                    "start container {}: monitor handshake: {e}; {}",
                    c.name,
                    log.trim()
                )))
            }
        }
    }

    /// Waits for the monitor to exit, then records the exit and emits die.
    fn spawn_watcher(self: &Arc<Self>, c: Arc<Container>, monitor_fd: OwnedFd) {
        let rt = self.clone();
        tokio::spawn(async move {
            // SAFETY: the AsyncFd owns the OwnedFd, so the fd stays open and
            // the same until into_inner() gives it back.
            match unsafe { AsyncFd::register(monitor_fd) } {
                Ok(afd) => {
                    let _ = afd.readable().await;
                    let fd = afd.into_inner();
                    // Reap it if it is our child (not after a restart).
                    let _ = linux::waitid_pidfd(&fd, true);
                }
                Err(e) => {
                    tracing::error!(container = %c.id, error = %e, "cannot watch monitor");
                    return;
                }
            }
            rt.finish_run(c).await;
        });
    }

    /// Records the end of the current run from the monitor's exit file and
    /// emits die, then stop if a stop was in progress, in one transaction.
    fn record_exit(&self, c: &Container) -> Result<()> {
        let exit = monitor::read_exit(&c.dir);
        let mut st = c.state();
        if !st.record.status.is_running() {
            return Ok(());
        }
        let mut r = st.record.clone();
        let reported = r.oom_kills;
        match exit {
            Some(x) => {
                apply_exit(&mut r, x);
                r.oom_kills = x.oom_kills.unwrap_or(0).max(reported);
            }
            None => {
                // The monitor died without recording: make sure nothing of
                // the container survives it.
                tracing::error!(container = %c.id, "monitor exited without an exit status");
                if let Some(fd) = &st.pidfd {
                    let _ = linux::pidfd_send_signal(fd, libc::SIGKILL);
                }
                let _ = cgroup::Cgroup::load(&c.id).kill_all();
                r.exit_code = 255;
                r.signal = 0;
                r.finished_at = now_nanos();
            }
        }
        let stopping = r.stop_deadline != 0;
        r.status = Status::Exited;
        r.pid = 0;
        r.exits += 1;
        r.stop_deadline = 0;
        r.oom_killed = r.oom_kills > 0;
        // OOM kills the watcher did not get to journal come first; they
        // happened before the exit, so they carry its time at the latest.
        let mut events: Vec<pb::Event> = (reported..r.oom_kills)
            .map(|_| {
                let mut oom = Self::event(c, &r, Action::Oom, 0, None);
                oom.time = Some(timestamp(r.finished_at));
                oom
            })
            .collect();
        let mut die = Self::event(c, &r, Action::Die, r.signal, Some(r.exit_code));
        die.time = Some(timestamp(r.finished_at));
        die.oom_killed = r.oom_killed;
        events.push(die);
        if stopping {
            events.push(Self::event(c, &r, Action::Stop, 0, None));
        }
        // Until it is written the container stays running here, so its
        // die event comes before anything that happens to it next.
        self.save(&r, events)?;
        let (code, signal) = (r.exit_code, r.signal);
        st.record = r;
        st.pidfd = None;
        drop(st);
        c.changed.send_replace(());
        tracing::info!(container = %c.id, exit_code = code, signal, "died");
        Ok(())
    }

    /// Records the end of the current run, trying again every second if
    /// the store cannot take it now (a full disk): the monitor has the
    /// status on disk, so it is never lost, and the next daemon start
    /// records it if this one cannot.
    async fn finish_run(self: Arc<Self>, c: Arc<Container>) {
        let mut shutdown = self.shutdown.clone();
        loop {
            let Err(e) = self.record_exit(&c) else {
                return;
            };
            tracing::error!(container = %c.id, error = %e, "cannot record the exit; trying again");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutting_down(&mut shutdown) => return,
            }
        }
    }

    /// Journals the OOM kills of run `exits` as the kernel reports them,
    /// until the run ends. Whatever it has not journaled when the run ends,
    /// `record_exit` does, from the count the monitor read last.
    fn spawn_oom_watcher(self: &Arc<Self>, c: Arc<Container>, exits: u64) {
        let cg = cgroup::Cgroup::load(&c.id);
        let fd = cg.oom_notifier().map_err(Error::from).and_then(|fd| {
            // SAFETY: the AsyncFd owns the OwnedFd, so the fd stays open
            // and the same for as long as it is registered.
            unsafe { AsyncFd::register(fd) }.map_err(|e| internal("register OOM notifier", e))
        });
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(container = %c.id, error = %e, "cannot watch for OOM kills");
                return;
            }
        };
        let rt = self.clone();
        tokio::spawn(async move {
            let mut changed = c.changed.subscribe();
            let mut noted = rt.note_ooms(&c, &cg, exits);
            while noted.is_some() {
                tokio::select! {
                    r = fd.readable() => match r {
                        Ok(mut ready) => {
                            cgroup::drain(fd.get_ref());
                            ready.clear_ready();
                        }
                        Err(_) => return,
                    },
                    r = changed.changed() => {
                        if r.is_err() {
                            return;
                        }
                        // A state change: only whether the run is over.
                        noted = rt.note_ooms(&c, &cg, exits);
                        continue;
                    }
                }
                // v1 notifies before the OOM killer has chosen and counted
                // its victim: look again for a while.
                for delay in [0, 1, 4, 16, 64, 256, 1024] {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    noted = rt.note_ooms(&c, &cg, exits);
                    if noted != Some(false) {
                        break;
                    }
                }
            }
        });
    }

    /// Journals an OOM event for each kill of run `exits` the cgroup
    /// counts beyond those already journaled. Whether there were any; None
    /// once the run is over.
    fn note_ooms(&self, c: &Container, cg: &cgroup::Cgroup, exits: u64) -> Option<bool> {
        let count = cg.oom_kills();
        let mut st = c.state();
        if st.removed || st.record.exits != exits || !st.record.status.is_running() {
            return None;
        }
        let Some(n) = count.filter(|n| *n > st.record.oom_kills) else {
            return Some(false);
        };
        let mut r = st.record.clone();
        let events = (r.oom_kills..n)
            .map(|_| Self::event(c, &r, Action::Oom, 0, None))
            .collect();
        r.oom_kills = n;
        match self.save(&r, events) {
            Ok(()) => st.record = r,
            Err(e) => tracing::error!(container = %c.id, error = %e, "cannot record OOM kill"),
        }
        tracing::info!(container = %c.id, oom_kills = n, "OOM kill");
        Some(true)
    }

    /// Sends `signal` to PID 1. FailedPrecondition if it has exited. The
    /// caller holds the state lock, so the die event cannot come before
    /// the kill event it journals next.
    fn send_signal(c: &Container, st: &State, signal: i32) -> Result<()> {
        let Some(fd) = &st.pidfd else {
            return Err(Error::FailedPrecondition(running_msg(&c.name)));
        };
        match linux::pidfd_send_signal(fd, signal) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                Err(Error::FailedPrecondition(running_msg(&c.name)))
            }
            Err(e) => Err(internal(&format!("signal container {}", c.name), e)),
        }
    }

    /// Whether PID 1 has exited (zombies included), though its exit may not
    /// be recorded yet: a cgroup operation that failed then failed because
    /// the container is going away, which is the caller's "not running".
    fn pid1_exited(st: &State) -> bool {
        st.pidfd
            .as_ref()
            .is_none_or(|fd| linux::wait_exit(fd, Duration::ZERO).unwrap_or(true))
    }

    /// A cgroup operation's failure: "not running" if the container exited
    /// meanwhile, else what failed.
    fn cgroup_failed(c: &Container, st: &State, what: &str, e: cgroup::Error) -> Error {
        if Self::pid1_exited(st) {
            Error::FailedPrecondition(running_msg(&c.name))
        } else {
            internal(&format!("{what} container {}", c.name), e)
        }
    }

    /// Thaws a paused container that was just sent SIGKILL (so it can die).
    fn thaw_for_kill(c: &Container, st: &State) {
        if st.record.status == Status::Paused {
            if let Err(e) = cgroup::Cgroup::load(&c.id).thaw() {
                tracing::warn!(container = %c.id, error = %e, "cannot thaw for kill");
            }
        }
    }

    /// Sends `signal` to PID 1, or with `all` to every process of the
    /// container.
    pub async fn kill(&self, key: &str, signal: &str, all: bool) -> Result<()> {
        let signal = if signal.is_empty() {
            libc::SIGKILL
        } else {
            spec::parse_signal(signal)?
        };
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let st = c.state();
        if !st.record.status.is_running() {
            return Err(Error::FailedPrecondition(format!(
                "cannot kill container {}: it is not running",
                c.name
            )));
        }
        if all {
            // Signal 0 checks that PID 1 has not exited.
            Self::send_signal(&c, &st, 0)?;
            let cg = cgroup::Cgroup::load(&c.id);
            tokio::task::block_in_place(|| cg.signal_all(signal))
                .map_err(|e| Self::cgroup_failed(&c, &st, "signal", e))?;
        } else {
            Self::send_signal(&c, &st, signal)?;
        }
        if signal == libc::SIGKILL {
            Self::thaw_for_kill(&c, &st);
        }
        let ev = Self::event(&c, &st.record, Action::Kill, signal, None);
        self.commit(Batch::default(), vec![ev])
    }

    pub async fn stop(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i32>,
        signal: Option<&str>,
    ) -> Result<()> {
        let c = self.find(key)?;
        let spec = c.spec();
        let signal = match signal {
            Some(s) if !s.is_empty() => spec::parse_signal(s)?,
            _ => spec.stop_signal,
        };
        let timeout = timeout.unwrap_or(spec.stop_timeout);
        let deadline = if timeout < 0 {
            i64::MAX
        } else {
            now_nanos().saturating_add(timeout as i64 * 1_000_000_000)
        };
        let mut changed = c.changed.subscribe();
        let exits = {
            let _op = c.op.lock().await;
            let mut st = c.state();
            if !st.record.status.is_running() {
                return Ok(());
            }
            let exits = st.record.exits;
            if st.record.stop_deadline != 0 {
                // Already stopping: the signal went out once; the earliest
                // deadline wins.
                if deadline < st.record.stop_deadline {
                    let mut r = st.record.clone();
                    r.stop_deadline = deadline;
                    self.save(&r, vec![])?;
                    st.record = r;
                    drop(st);
                    c.changed.send_replace(());
                }
            } else {
                match Self::send_signal(&c, &st, signal) {
                    Ok(()) => {}
                    // It exited just now: stopping an exited container is a no-op.
                    Err(Error::FailedPrecondition(_)) => return Ok(()),
                    Err(e) => return Err(e),
                }
                let mut r = st.record.clone();
                r.stop_deadline = deadline;
                let ev = Self::event(&c, &r, Action::Kill, signal, None);
                if let Err(e) = self.save(&r, vec![ev]) {
                    tracing::error!(container = %c.id, error = %e, "cannot record stop");
                }
                st.record = r;
                drop(st);
                self.spawn_stop_driver(c.clone(), exits);
            }
            exits
        };
        // The exit emits die and stop together.
        c.exited_after(&mut changed, exits).await;
        Ok(())
    }

    /// Sends SIGKILL when the stop deadline of run `exits` passes.
    fn spawn_stop_driver(self: &Arc<Self>, c: Arc<Container>, exits: u64) {
        let rt = self.clone();
        tokio::spawn(async move {
            let mut changed = c.changed.subscribe();
            loop {
                let deadline = {
                    let st = c.state();
                    if st.record.exits != exits || !st.record.status.is_running() {
                        return;
                    }
                    st.record.stop_deadline
                };
                let grace = async {
                    match deadline {
                        i64::MAX => std::future::pending().await,
                        d => {
                            let left = d.saturating_sub(now_nanos()).max(0) as u64;
                            tokio::time::sleep(Duration::from_nanos(left)).await
                        }
                    }
                };
                tokio::select! {
                    r = changed.changed() => if r.is_err() { return },
                    _ = grace => {
                        rt.grace_over(&c, exits).await;
                        return;
                    }
                }
            }
        });
    }

    /// The stop's grace ran out: unpause (if paused) and SIGKILL.
    async fn grace_over(&self, c: &Container, exits: u64) {
        let _op = c.op.lock().await;
        let mut st = c.state();
        if st.record.exits != exits || !st.record.status.is_running() {
            return;
        }
        // If it exited just now, its die event is on its way.
        if Self::send_signal(c, &st, libc::SIGKILL).is_err() {
            return;
        }
        Self::thaw_for_kill(c, &st);
        let mut r = st.record.clone();
        let mut events = Vec::new();
        if r.status == Status::Paused {
            r.status = Status::Running;
            events.push(Self::event(c, &r, Action::Unpause, 0, None));
        }
        events.push(Self::event(c, &r, Action::Kill, libc::SIGKILL, None));
        if let Err(e) = self.save(&r, events) {
            tracing::error!(container = %c.id, error = %e, "cannot record stop's kill");
        }
        st.record = r;
    }

    pub async fn pause(&self, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let run = {
            let st = c.state();
            match st.record.status {
                Status::Running => st.record.exits,
                Status::Paused => {
                    return Err(Error::FailedPrecondition(format!(
                        "container {} is already paused",
                        c.name
                    )))
                }
                _ => return Err(Error::FailedPrecondition(running_msg(&c.name))),
            }
        };
        let cg = cgroup::Cgroup::load(&c.id);
        let frozen = tokio::task::block_in_place(|| cg.freeze());
        let mut st = c.state();
        if st.record.status != Status::Running || st.record.exits != run {
            return Err(Error::FailedPrecondition(running_msg(&c.name)));
        }
        if let Err(e) = frozen {
            let _ = cg.thaw();
            return Err(Self::cgroup_failed(&c, &st, "pause", e));
        }
        let mut r = st.record.clone();
        r.status = Status::Paused;
        let ev = Self::event(&c, &r, Action::Pause, 0, None);
        if let Err(e) = self.save(&r, vec![ev]) {
            let _ = cg.thaw();
            return Err(e);
        }
        st.record = r;
        drop(st);
        c.changed.send_replace(());
        Ok(())
    }

    pub async fn unpause(&self, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let mut st = c.state();
        if st.record.status != Status::Paused {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not paused",
                c.name
            )));
        }
        let cg = cgroup::Cgroup::load(&c.id);
        cg.thaw()
            .map_err(|e| Self::cgroup_failed(&c, &st, "unpause", e))?;
        let mut r = st.record.clone();
        r.status = Status::Running;
        let ev = Self::event(&c, &r, Action::Unpause, 0, None);
        // The processes run again whatever the store says: if the write
        // fails, the record says paused until the next change is written.
        let saved = self.save(&r, vec![ev]);
        st.record = r;
        drop(st);
        c.changed.send_replace(());
        saved
    }

    /// Changes the container's limits: on its cgroup at once if it runs,
    /// and in its record for later starts. Returns the limits in force.
    pub async fn update(&self, key: &str, req: spec::ResourcesRequest) -> Result<spec::Resources> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let old = {
            let st = c.state();
            if st.removed {
                return Err(Error::NotFound(key.into()));
            }
            st.record.spec.resources
        };
        let new = old.merge(&req, self.host)?;
        self.support.check(&new)?;
        if new == old {
            return Ok(new);
        }
        let cg = cgroup::Cgroup::load(&c.id);
        let mut st = c.state();
        let running = st.record.status.is_running();
        if running {
            let set = match tokio::task::block_in_place(|| cg.set_limits(&old, &new)) {
                // It exited meanwhile: no cgroup to update.
                Err(_) if Self::pid1_exited(&st) => Ok(()),
                set => set,
            };
            if let Err(e) = set {
                // Put back what was written before the failure.
                let _ = cg.set_limits(&new, &old);
                let msg = format!("update container {}: {e}", c.name);
                return Err(if e.is_busy() {
                    Error::FailedPrecondition(format!(
                        "{msg}: it uses more memory than that and the kernel could not reclaim it"
                    ))
                } else {
                    Error::Internal(msg)
                });
            }
        }
        let mut r = st.record.clone();
        r.spec.resources = new;
        let ev = Self::event(&c, &r, Action::Update, 0, None);
        if let Err(e) = self.save(&r, vec![ev]) {
            if running {
                let _ = cg.set_limits(&new, &old);
            }
            return Err(e);
        }
        // The copy is for rebuilding without the database: a failure here
        // loses nothing now, so it is logged.
        if let Err(e) = records::write_copy(&c.dir, &r) {
            tracing::warn!(container = %c.id, error = %e, "cannot write the record copy");
        }
        st.record = r;
        tracing::info!(container = %c.id, resources = ?new, "updated");
        Ok(new)
    }

    pub async fn remove(&self, key: &str, force: bool) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let mut changed = c.changed.subscribe();
        let kill_wait = {
            let st = c.state();
            if st.removed {
                return Err(Error::NotFound(key.into()));
            }
            if st.record.status.is_running() {
                if !force {
                    return Err(Error::FailedPrecondition(format!(
                        "cannot remove container {}: it is {}: stop it first or use force",
                        c.name,
                        if st.record.status == Status::Paused {
                            "paused"
                        } else {
                            "running"
                        }
                    )));
                }
                if Self::send_signal(&c, &st, libc::SIGKILL).is_ok() {
                    Self::thaw_for_kill(&c, &st);
                    let ev = Self::event(&c, &st.record, Action::Kill, libc::SIGKILL, None);
                    self.commit(Batch::default(), vec![ev])?;
                }
                Some(st.record.exits)
            } else {
                None
            }
        };
        if let Some(exits) = kill_wait {
            c.exited_after(&mut changed, exits).await;
        }
        {
            let mut st = c.state();
            let mut batch = Batch::default();
            batch.delete(&c.id);
            let ev = Self::event(&c, &st.record, Action::Destroy, 0, None);
            // The copy goes first: a directory without one after a crash is
            // known to be a removed container's, and safe to delete.
            let copy = c.dir.join(records::RECORD_FILE);
            let _ = std::fs::remove_file(&copy);
            if let Err(e) = self.commit(batch, vec![ev]) {
                let _ = records::write_copy(&c.dir, &st.record);
                return Err(e);
            }
            st.removed = true;
        }
        {
            let mut index = self.index_mut();
            index.by_id.remove(&c.id);
            index.names.remove(&c.name);
        }
        c.changed.send_replace(());
        if let Err(e) = cgroup::Cgroup::load(&c.id).delete() {
            tracing::warn!(container = %c.id, error = %e, "cannot remove cgroup");
        }
        let dir = c.dir.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        if let Ok(Err(e)) | Err(e) = removed.map_err(std::io::Error::other) {
            tracing::warn!(container = %c.id, error = %e, "cannot remove container directory");
        }
        tracing::info!(container = %c.id, "removed");
        Ok(())
    }

    /// Blocks until `cond` holds; returns how the last run ended. For
    /// NextExit, `after` is the exit count to wait past (default: now).
    pub async fn wait(&self, key: &str, cond: WaitCondition, after: Option<u64>) -> Result<Exit> {
        let c = self.find(key)?;
        let mut changed = c.changed.subscribe();
        let mut shutdown = self.shutdown.clone();
        let exits = after.unwrap_or_else(|| c.state().record.exits);
        loop {
            {
                let st = c.state();
                let done = match cond {
                    WaitCondition::NotRunning => !st.record.status.is_running(),
                    WaitCondition::NextExit => st.record.exits > exits || st.removed,
                    WaitCondition::Removed => st.removed,
                };
                if done {
                    return Ok(Exit {
                        code: st.record.exit_code,
                        signal: st.record.signal,
                        oom_killed: st.record.oom_killed,
                    });
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return Err(Error::NotFound(key.into())) },
                _ = shutting_down(&mut shutdown) => return Err(Error::ShuttingDown),
            }
        }
    }

    /// Streams the container's log as `q` asks; with follow, until the
    /// container stops, the client goes away or the daemon shuts down.
    pub fn logs(
        &self,
        key: &str,
        q: LogsQuery,
    ) -> Result<tokio::sync::mpsc::Receiver<pb::LogEntry>> {
        let c = self.find(key)?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let reader = log_reader::Reader {
            c,
            q,
            tx,
            watch: self.log_watch.clone(),
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(reader.run());
        Ok(rx)
    }

    pub fn inspect(&self, key: &str) -> Result<pb::Container> {
        let c = self.find(key)?;
        let st = c.state();
        Ok(to_pb(&st.record))
    }

    pub fn list(&self, all: bool) -> Vec<pb::Container> {
        let containers: Vec<Arc<Container>> = self.index().by_id.values().cloned().collect();
        let mut out: Vec<(i64, pb::Container)> = containers
            .iter()
            .filter_map(|c| {
                let st = c.state();
                (all || st.record.status.is_running())
                    .then(|| (st.record.created_at, to_pb(&st.record)))
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.0));
        out.into_iter().map(|(_, c)| c).collect()
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub signal: i32,
    pub oom_killed: bool,
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

/// What a Logs request asks for.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub follow: bool,
    pub tail: Option<usize>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub timestamps: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl LogsQuery {
    fn wants(&self, r: &logs::Record) -> bool {
        let stream = match r.stream {
            logs::STDOUT => self.stdout,
            logs::STDERR => self.stderr,
            _ => false,
        };
        stream && self.since.is_none_or(|t| r.time >= t) && self.until.is_none_or(|t| r.time <= t)
    }

    fn entry(&self, r: logs::Record) -> pb::LogEntry {
        pb::LogEntry {
            time: self.timestamps.then(|| timestamp(r.time)),
            stream: match r.stream {
                logs::STDOUT => pb::LogStream::Stdout,
                _ => pb::LogStream::Stderr,
            } as i32,
            line: r.line,
            lost_lines: 0,
        }
    }
}

/// A monitor just started, with its handshake.
struct Spawned {
    monitor: OwnedFd,
    pid: i32,
    /// berthd's end of the handshake socket; writing to it confirms the
    /// start, closing it unconfirmed ends the container.
    sock: OwnedFd,
    handshake: Handshake,
    pidfd: Option<OwnedFd>,
}

/// The monitors running for containers under `containers`: container id
/// -> monitor pid, from the command lines in /proc.
fn scan_monitors(containers: &Path) -> HashMap<String, i32> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    let prefix = containers.as_os_str().as_encoded_bytes();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(dir) = monitor_dir(pid) else {
            continue;
        };
        let Some(rest) = dir.strip_prefix(prefix).and_then(|r| r.strip_prefix(b"/")) else {
            continue;
        };
        if !rest.is_empty() && !rest.contains(&b'/') {
            out.insert(String::from_utf8_lossy(rest).into_owned(), pid);
        }
    }
    out
}
/// Resolves once the daemon begins to shut down.
pub async fn shutting_down(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

fn apply_exit(r: &mut Record, x: ExitRecord) {
    r.exit_code = x.exit_code;
    r.signal = x.signal;
    r.finished_at = x.finished_at;
}

/// Receives the monitor's one message and the pidfd that comes with it.
fn receive_handshake(sock: &OwnedFd) -> std::io::Result<(Handshake, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.map_err(std::io::Error::from)?,
        }
    };
    let mut fd = None;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: SCM_RIGHTS installed this fd in our table just now;
                // nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    let n = msg.bytes;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the monitor exited without reporting",
        ));
    }
    let h = serde_json::from_slice(&buf[..n])
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok((h, fd))
}

/// A pidfd for the monitor of a container found after a restart, if that
/// pid is still that container's monitor.
fn attach_monitor(dir: &Path, pid: i32) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    let fd = linux::pidfd_open(pid).ok()?;
    // Checked after opening the pidfd: if the pid was reused before, the
    // check fails; after, the pidfd still names the old process.
    (monitor_dir(pid)?.as_slice() == dir.as_os_str().as_encoded_bytes()).then_some(fd)
}

/// The container directory `pid` is the monitor of, if it is one: its
/// command line is `berthd monitor DIR` and it lives in our pid namespace
/// (berth's init, a fork of the monitor, has the same command line but
/// lives in the container's).
fn monitor_dir(pid: i32) -> Option<Vec<u8>> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline.split(|b| *b == 0).skip(1);
    if args.next()? != b"monitor" {
        return None;
    }
    let dir = args.next()?.to_vec();
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    (ns(&pid.to_string())? == ns("self")?).then_some(dir)
}

/// A pidfd for PID 1 of a container found after a restart. Checked after
/// opening: the process must be the monitor's child (its only one), so a
/// reused pid is never signalled.
fn attach_pid1(pid: i32, monitor: i32) -> Option<OwnedFd> {
    let fd = linux::pidfd_open(pid).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ppid: i32 = stat
        .rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    (ppid == monitor).then_some(fd)
}

fn ts(nanos: i64) -> Option<prost_types::Timestamp> {
    (nanos > 0).then(|| timestamp(nanos))
}

fn to_pb(r: &Record) -> pb::Container {
    let s = &r.spec;
    pb::Container {
        id: r.id.clone(),
        name: s.name.clone(),
        config: Some(pb::ContainerConfig {
            rootfs: s.rootfs.clone(),
            args: s.args.clone(),
            env: s.env.clone(),
            working_dir: s.working_dir.clone(),
            hostname: s.hostname.clone(),
            labels: s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            init: s.init,
            stop_signal: s.stop_signal,
            stop_timeout_seconds: s.stop_timeout,
            mounts: s
                .mounts
                .iter()
                .map(|m| pb::Mount {
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    read_only: m.read_only,
                })
                .collect(),
            network: s.network.as_str().to_string(),
            log_max_size_bytes: s.log_max_size,
            log_max_files: s.log_max_files,
            resources: Some(resources_pb(&s.resources)),
            cap_add: s.cap_add.clone(),
            cap_drop: s.cap_drop.clone(),
            privileged: s.privileged,
            read_only: s.read_only,
            user: s.user.clone(),
        }),
        state: Some(pb::ContainerState {
            status: r.status.to_pb() as i32,
            pid: r.pid.max(0) as u32,
            exit_code: r.exit_code,
            signal: r.signal,
            started_at: ts(r.started_at),
            finished_at: ts(r.finished_at),
            exit_count: r.exits,
            oom_killed: r.oom_killed,
        }),
        created_at: ts(r.created_at),
    }
}

/// Limits as the API shows them: every field set.
pub fn resources_pb(r: &spec::Resources) -> pb::Resources {
    pb::Resources {
        memory_limit_bytes: Some(r.memory),
        memory_swap_limit_bytes: Some(r.memory_swap),
        cpus: Some(r.nano_cpus as f64 / 1e9),
        cpu_shares: Some(r.cpu_shares),
        pids_limit: Some(r.pids_limit),
    }
}
