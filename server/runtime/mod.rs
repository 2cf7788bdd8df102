//! The runtime core: the table of containers, their state machine, and
//! every lifecycle operation with Docker's event sequences.
//!
//! Concurrency: each container has an async `op` lock that serialises the
//! operations on it (create/start/pause/unpause/kill/remove and the signal
//! phases of stop) and a short std `state` lock that guards its state.
//! Every state change and the event that reports it happen under the state
//! lock, and the exit watcher takes only that lock, so per container the
//! events are in causal order (start before die, kill before die). Waiting
//! (stop's grace period, wait) holds no lock; it watches `changed`.

pub mod cgroup;
mod init;
pub mod linux;
pub mod monitor;
mod names;
mod setup;
pub mod spec;

use crate::events::Bus;
use crate::store::{self, Store};
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
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Internal(String),
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
        Error::Internal(format!("store: {e}"))
    }
}

fn internal(step: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{step}: {e}"))
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
}

struct State {
    record: Record,
    /// pidfd of PID 1 while it runs.
    pidfd: Option<OwnedFd>,
    /// Exits seen so far, for `Wait` with next-exit.
    exits: u64,
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
        while self.state().exits == exits {
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
    store: Store,
    bus: Arc<Bus>,
    index: RwLock<Index>,
    shutdown: watch::Receiver<bool>,
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
    /// Opens the root (creating it), loads every stored container and
    /// re-attaches to those whose monitor still runs.
    pub fn open(
        root: &Path,
        bus: Arc<Bus>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Runtime>> {
        std::fs::create_dir_all(root.join("containers"))
            .map_err(|e| internal(&format!("create root {}", root.display()), e))?;
        let exe =
            std::fs::read_link("/proc/self/exe").map_err(|e| internal("find own binary", e))?;
        let store = Store::open(&root.join("berth.redb"))?;
        let records: Vec<Record> = store.load_all()?;
        let rt = Arc::new(Runtime {
            root: root.to_path_buf(),
            exe,
            store,
            bus,
            index: RwLock::new(Index::default()),
            shutdown,
        });
        for record in records {
            rt.recover(record);
        }
        Ok(rt)
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, record: Record) -> Arc<Container> {
        let c = Arc::new(Container {
            id: record.id.clone(),
            name: record.spec.name.clone(),
            dir: container_dir(&self.root, &record.id),
            op: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                record,
                pidfd: None,
                exits: 0,
                removed: false,
            }),
            changed: watch::Sender::new(()),
        });
        let mut index = self.index_mut();
        index.names.insert(c.name.clone(), c.id.clone());
        index.by_id.insert(c.id.clone(), c.clone());
        c
    }

    /// Brings a stored container back after a daemon restart: re-attaches
    /// to a live monitor, or records the exit of a run that ended while the
    /// daemon was down.
    fn recover(self: &Arc<Self>, record: Record) {
        let was_running = record.status.is_running();
        let dir = container_dir(&self.root, &record.id);
        let monitor = if was_running {
            attach_monitor(&dir, record.monitor_pid)
        } else {
            None
        };
        let pidfd = monitor
            .as_ref()
            .and_then(|_| attach_pid1(record.pid, record.monitor_pid));
        let c = self.insert(record);
        match monitor {
            Some(m) => {
                c.state().pidfd = pidfd;
                tracing::info!(container = %c.id, "re-attached to running container");
                self.spawn_watcher(c, m);
            }
            None if was_running => self.record_exit(&c),
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
                "id prefix {key:?} is ambiguous: give more characters or the name"
            ))),
            _ => Err(Error::NotFound(key.to_string())),
        }
    }

    fn emit(&self, c: &Container, st: &State, action: Action, signal: i32, exit_code: Option<i32>) {
        self.bus.publish(pb::Event {
            id: c.id.clone(),
            name: c.name.clone(),
            action: action as i32,
            signal,
            exit_code,
            labels: st
                .record
                .spec
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Default::default()
        });
    }

    fn persist(&self, st: &State) -> Result<()> {
        Ok(self.store.put(&st.record.id, &st.record)?)
    }

    pub async fn create(&self, req: spec::Request) -> Result<(String, String)> {
        let mut raw = [0u8; 32];
        linux::random_bytes(&mut raw).map_err(|e| internal("generate id", e))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        if req.rootfs.contains([',', ':', '\\']) {
            return Err(Error::InvalidArgument(format!(
                "invalid rootfs {:?}: ',', ':' and '\\' cannot be used in an overlay layer path",
                req.rootfs
            )));
        }
        let mut req = req;
        let generated = req.name.is_empty();
        if generated {
            req.name = names::generate(&raw);
        }
        let spec = req.validate(&id[..12])?;
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
            created_at: monitor::now_nanos(),
            spec,
            status: Status::Created,
            pid: 0,
            monitor_pid: 0,
            exit_code: 0,
            signal: 0,
            started_at: 0,
            finished_at: 0,
        };
        let dir = container_dir(&self.root, &id);
        let made = self.make_container_dir(&dir).and_then(|()| {
            self.store.put(&id, &record)?;
            Ok(())
        });
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            self.index_mut().names.remove(&record.spec.name);
            return Err(e);
        }
        let name = record.spec.name.clone();
        let c = self.insert(record);
        let st = c.state();
        self.emit(&c, &st, Action::Create, 0, None);
        tracing::info!(container = %id, name = %name, "created");
        Ok((id, name))
    }

    fn make_container_dir(&self, dir: &Path) -> Result<()> {
        for sub in ["upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| internal(&format!("create {}", dir.join(sub).display()), e))?;
        }
        Ok(())
    }

    pub async fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        {
            let st = c.state();
            if st.removed {
                return Err(Error::NotFound(key.to_string()));
            }
            if st.record.status.is_running() {
                return Ok(());
            }
        }
        let _ = std::fs::remove_file(c.dir.join(monitor::EXIT_FILE));
        // The monitor's input for this run. Not fsynced: the durable copy
        // of the spec is the record in the store, and a crash ends the run.
        let config = monitor::Config {
            id: c.id.clone(),
            spec: c.spec(),
        };
        let data = serde_json::to_vec(&config).map_err(|e| internal("encode config", e))?;
        std::fs::write(c.dir.join(monitor::CONFIG_FILE), data)
            .map_err(|e| internal(&format!("start container {}: write config", c.name), e))?;
        let (monitor_fd, monitor_pid, handshake, pidfd) = self.spawn_monitor(&c).await?;
        let (pid, started_at) = match handshake {
            Handshake::Started { pid, started_at } => (pid, started_at),
            Handshake::Failed { step, message } => {
                // The monitor cleans up and exits; reap it.
                let _ =
                    tokio::task::spawn_blocking(move || linux::waitid_pidfd(&monitor_fd, false))
                        .await;
                return Err(if step == "exec" {
                    Error::InvalidArgument(format!("cannot start container {}: {message}", c.name))
                } else {
                    Error::Internal(format!("start container {}: {step}: {message}", c.name))
                });
            }
        };
        let Some(pidfd) = pidfd else {
            return Err(Error::Internal(format!(
                "start container {}: the monitor sent no pidfd",
                c.name
            )));
        };
        {
            let mut st = c.state();
            let r = &mut st.record;
            r.status = Status::Running;
            r.pid = pid;
            r.monitor_pid = monitor_pid;
            r.started_at = started_at;
            r.exit_code = 0;
            r.signal = 0;
            r.finished_at = 0;
            st.pidfd = Some(pidfd);
            if let Err(e) = self.persist(&st) {
                tracing::error!(container = %c.id, error = %e, "cannot record start");
            }
            self.emit(&c, &st, Action::Start, 0, None);
        }
        c.changed.send_replace(());
        tracing::info!(container = %c.id, pid, "started");
        self.spawn_watcher(c.clone(), monitor_fd);
        Ok(())
    }

    /// Starts `berthd monitor DIR` and reads its handshake.
    async fn spawn_monitor(
        &self,
        c: &Container,
    ) -> Result<(OwnedFd, i32, Handshake, Option<OwnedFd>)> {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| internal("monitor socket", e))?;
        let log = std::fs::File::create(c.dir.join("monitor.log"))
            .map_err(|e| internal("create monitor log", e))?;
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
        let received = tokio::task::spawn_blocking(move || receive_handshake(&ours))
            .await
            .map_err(|e| internal("monitor handshake", e))?;
        match received {
            Ok((h, fd)) => Ok((monitor_fd, monitor_pid, h, fd)),
            Err(e) => {
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
            rt.record_exit(&c);
        });
    }

    fn record_exit(&self, c: &Container) {
        let exit = monitor::read_exit(&c.dir);
        let mut st = c.state();
        if !st.record.status.is_running() {
            return;
        }
        match exit {
            Some(x) => apply_exit(&mut st.record, x),
            None => {
                // The monitor died without recording: make sure nothing of
                // the container survives it.
                tracing::error!(container = %c.id, "monitor exited without an exit status");
                if let Some(fd) = &st.pidfd {
                    let _ = linux::pidfd_send_signal(fd, libc::SIGKILL);
                }
                st.record.exit_code = 255;
                st.record.signal = 0;
                st.record.finished_at = monitor::now_nanos();
            }
        }
        st.record.status = Status::Exited;
        st.record.pid = 0;
        st.pidfd = None;
        st.exits += 1;
        if let Err(e) = self.persist(&st) {
            tracing::error!(container = %c.id, error = %e, "cannot record exit");
        }
        let (code, signal) = (st.record.exit_code, st.record.signal);
        self.emit(c, &st, Action::Die, signal, Some(code));
        drop(st);
        c.changed.send_replace(());
        tracing::info!(container = %c.id, exit_code = code, signal, "died");
    }

    /// Sends `signal` to PID 1 and emits kill; with the state lock held by
    /// the caller so that the die event cannot come first.
    fn signal_locked(&self, c: &Container, st: &State, signal: i32) -> Result<()> {
        let Some(fd) = &st.pidfd else {
            return Err(Error::FailedPrecondition(running_msg(&c.name)));
        };
        match linux::pidfd_send_signal(fd, signal) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return Err(Error::FailedPrecondition(running_msg(&c.name)))
            }
            Err(e) => return Err(internal(&format!("signal container {}", c.name), e)),
        }
        self.emit(c, st, Action::Kill, signal, None);
        Ok(())
    }

    /// Thaws a paused container that was just sent SIGKILL (so it can die).
    fn thaw_for_kill(&self, c: &Container, st: &State) {
        if st.record.status == Status::Paused {
            if let Err(e) = cgroup::Cgroup::load(&c.id).thaw() {
                tracing::warn!(container = %c.id, error = %e, "cannot thaw for kill");
            }
        }
    }

    pub async fn kill(&self, key: &str, signal: &str) -> Result<()> {
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
        self.signal_locked(&c, &st, signal)?;
        if signal == libc::SIGKILL {
            self.thaw_for_kill(&c, &st);
        }
        Ok(())
    }

    pub async fn stop(&self, key: &str, timeout: Option<i32>, signal: Option<&str>) -> Result<()> {
        let c = self.find(key)?;
        let spec = c.spec();
        let signal = match signal {
            Some(s) if !s.is_empty() => spec::parse_signal(s)?,
            _ => spec.stop_signal,
        };
        let timeout = timeout.unwrap_or(spec.stop_timeout);
        let mut changed = c.changed.subscribe();
        let exits = {
            let _op = c.op.lock().await;
            let st = c.state();
            if !st.record.status.is_running() {
                return Ok(());
            }
            let exits = st.exits;
            match self.signal_locked(&c, &st, signal) {
                Ok(()) => {}
                // It exited just now: stopping an exited container is a no-op.
                Err(Error::FailedPrecondition(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
            exits
        };
        let in_time = if timeout < 0 {
            c.exited_after(&mut changed, exits).await;
            true
        } else {
            let grace = Duration::from_secs(timeout as u64);
            tokio::time::timeout(grace, c.exited_after(&mut changed, exits))
                .await
                .is_ok()
        };
        if !in_time {
            let _op = c.op.lock().await;
            let mut st = c.state();
            if st.exits == exits && st.record.status.is_running() {
                if st.record.status == Status::Paused {
                    self.emit(&c, &st, Action::Unpause, 0, None);
                }
                // If it exited just now, the die event is already out.
                let _ = self.signal_locked(&c, &st, libc::SIGKILL);
                self.thaw_for_kill(&c, &st);
                if st.record.status == Status::Paused {
                    st.record.status = Status::Running;
                }
            }
        }
        c.exited_after(&mut changed, exits).await;
        let st = c.state();
        // A forced remove that overtook this stop has had the last word.
        if !st.removed {
            self.emit(&c, &st, Action::Stop, 0, None);
        }
        Ok(())
    }

    pub async fn pause(&self, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let run = {
            let st = c.state();
            match st.record.status {
                Status::Running => st.record.started_at,
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
        let frozen = cg.freeze().await;
        let mut st = c.state();
        if st.record.status != Status::Running || st.record.started_at != run {
            return Err(Error::FailedPrecondition(running_msg(&c.name)));
        }
        frozen.map_err(|e| internal(&format!("pause container {}", c.name), e))?;
        st.record.status = Status::Paused;
        if let Err(e) = self.persist(&st) {
            let _ = cg.thaw();
            st.record.status = Status::Running;
            return Err(e);
        }
        self.emit(&c, &st, Action::Pause, 0, None);
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
        cgroup::Cgroup::load(&c.id)
            .thaw()
            .map_err(|e| internal(&format!("unpause container {}", c.name), e))?;
        st.record.status = Status::Running;
        if let Err(e) = self.persist(&st) {
            tracing::error!(container = %c.id, error = %e, "cannot record unpause");
        }
        self.emit(&c, &st, Action::Unpause, 0, None);
        drop(st);
        c.changed.send_replace(());
        Ok(())
    }

    pub async fn remove(&self, key: &str, force: bool) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let mut changed = c.changed.subscribe();
        let kill_wait = {
            let st = c.state();
            if st.removed {
                return Err(Error::NotFound(key.to_string()));
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
                let _ = self.signal_locked(&c, &st, libc::SIGKILL);
                self.thaw_for_kill(&c, &st);
                Some(st.exits)
            } else {
                None
            }
        };
        if let Some(exits) = kill_wait {
            c.exited_after(&mut changed, exits).await;
        }
        self.store.delete(&c.id)?;
        if let Err(e) = cgroup::Cgroup::load(&c.id).delete() {
            tracing::warn!(container = %c.id, error = %e, "cannot remove cgroup");
        }
        let dir = c.dir.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        if let Ok(Err(e)) | Err(e) = removed.map_err(std::io::Error::other) {
            tracing::warn!(container = %c.id, error = %e, "cannot remove container directory");
        }
        {
            let mut index = self.index_mut();
            index.by_id.remove(&c.id);
            index.names.remove(&c.name);
        }
        let mut st = c.state();
        st.removed = true;
        self.emit(&c, &st, Action::Destroy, 0, None);
        drop(st);
        c.changed.send_replace(());
        tracing::info!(container = %c.id, "removed");
        Ok(())
    }

    /// Blocks until `cond` holds; returns (exit code, signal).
    pub async fn wait(&self, key: &str, cond: WaitCondition) -> Result<(i32, i32)> {
        let c = self.find(key)?;
        let mut changed = c.changed.subscribe();
        let mut shutdown = self.shutdown.clone();
        let exits = c.state().exits;
        loop {
            {
                let st = c.state();
                let done = match cond {
                    WaitCondition::NotRunning => !st.record.status.is_running(),
                    WaitCondition::NextExit => st.exits > exits || st.removed,
                    WaitCondition::Removed => st.removed,
                };
                if done {
                    return Ok((st.record.exit_code, st.record.signal));
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return Err(Error::NotFound(key.to_string())) },
                _ = shutting_down(&mut shutdown) => return Err(Error::ShuttingDown),
            }
        }
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
    // command line shows it; after, the pidfd still names the old process.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = dir.as_os_str().as_encoded_bytes();
    (args.get(1) == Some(&&b"monitor"[..]) && args.get(2) == Some(&dir)).then_some(fd)
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
    (nanos > 0).then(|| prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    })
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
        }),
        state: Some(pb::ContainerState {
            status: r.status.to_pb() as i32,
            pid: r.pid.max(0) as u32,
            exit_code: r.exit_code,
            signal: r.signal,
            started_at: ts(r.started_at),
            finished_at: ts(r.finished_at),
        }),
        created_at: ts(r.created_at),
    }
}
