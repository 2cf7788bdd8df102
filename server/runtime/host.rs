//! What the runtime asks of the host: start a monitor, signal, freeze and
//! thaw, set limits, count OOM kills. [`Real`] does it with processes and
//! cgroups; the unit tests put a fake in its place, so the state machine
//! is tested without root.

use super::exec_helper;
pub use super::exec_helper::{ExecChild, ExecStdio};
use super::monitors::{find_monitors, Pidfd, RealMonitor};
use crate::monitor::launcher::{Job, Launcher};
use crate::monitor::protocol::{self, ExitRecord, Report, MONITOR_LOG};
use crate::network::{self, Attachment, Join, NetworkRecord, Wiring};
use crate::spec::Resources;
use crate::sys::cgroup::{self, Parent, Support, Usage};
use crate::sys::{linux, readiness};
use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// PID 1 of a running container.
pub trait Pid1: Send + Sync {
    /// ESRCH once it has exited.
    fn signal(&self, signal: i32) -> std::io::Result<()>;
    /// Whether it has exited (a zombie included), recorded or not.
    fn exited(&self) -> bool;
}

/// The monitor of a running container.
pub trait Monitor: Send {
    fn pid(&self) -> i32;
    /// Resolves once the monitor has exited (reaped if it is our child).
    fn exited(self: Box<Self>) -> BoxFuture<'static, ()>;
    /// Blocks up to `timeout` for it to exit; whether it did.
    fn wait_exit(&self, timeout: Duration) -> bool;
    fn kill(&self);
    /// Its container's PID 1, found again after a restart: only if `pid`
    /// is still the monitor's child.
    fn pid1(&self, pid: i32) -> Option<Box<dyn Pid1>>;
}

/// Tells a monitor its start was recorded; dropped unconfirmed, the
/// monitor ends the container. Confirmed, it is where the monitor reports
/// the exit.
pub trait Confirm: Send {
    fn confirm(self: Box<Self>) -> std::io::Result<Box<dyn ExitReports>>;
}

/// Where a confirmed monitor reports how PID 1 ended.
pub trait ExitReports: Send {
    /// The exit, when the monitor reports it; None if it goes without.
    fn reported(&mut self) -> BoxFuture<'_, Option<ExitRecord>>;
    /// Tells the monitor the exit is recorded (it need not write it).
    fn recorded(&self);
}

/// A monitor just started and what it reported.
pub struct Spawned {
    pub monitor: Box<dyn Monitor>,
    pub report: Report,
    pub pid1: Option<Box<dyn Pid1>>,
    pub confirm: Box<dyn Confirm>,
}

pub trait Host: Send + Sync + 'static {
    /// What the host's cgroups can enforce.
    fn support(&self) -> Support;
    /// The path of container `id`'s cgroup below the hierarchy's root.
    fn cgroup_path(&self, id: &str) -> String;
    /// Container `id`'s cgroup goes in `parent` (made ready as berthd's
    /// own parent is), not berthd's: from now on, and for every call
    /// about its cgroup here, until it is forgotten.
    fn place_cgroup(&self, id: &str, parent: &str) -> Result<(), cgroup::Error>;
    fn forget_cgroup(&self, id: &str);
    /// Starts the monitor of container `id` in `dir` (its config written)
    /// and waits for its report.
    /// Starts the monitor; with `gate` (on bridge networks), PID 1 waits
    /// before its exec for a byte on it (the networks are wired) and fails
    /// at EOF.
    fn spawn<'a>(
        &'a self,
        id: &'a str,
        dir: &'a Path,
        gate: Option<OwnedFd>,
    ) -> BoxFuture<'a, std::io::Result<Spawned>>;
    /// The monitors still running for containers under `containers`, by
    /// container id (after a restart).
    fn monitors(&self, containers: &Path) -> HashMap<String, Box<dyn Monitor>>;
    fn freeze(&self, id: &str) -> Result<(), cgroup::Error>;
    fn thaw(&self, id: &str) -> Result<(), cgroup::Error>;
    fn signal_all(&self, id: &str, signal: i32) -> Result<(), cgroup::Error>;
    fn kill_all(&self, id: &str) -> Result<(), cgroup::Error>;
    /// The processes in the container's cgroup.
    fn pids(&self, id: &str) -> Vec<u32>;
    fn set_limits(&self, id: &str, from: &Resources, to: &Resources) -> Result<(), cgroup::Error>;
    fn remove_cgroup(&self, id: &str) -> Result<(), cgroup::Error>;
    fn usage(&self, id: &str) -> Usage;
    /// OOM kills in the container's cgroup; None if it cannot tell.
    fn oom_kills(&self, id: &str) -> Option<u64>;
    /// Notifications of OOM in the container's cgroup.
    fn oom_notifier(&self, id: &str) -> std::io::Result<Box<dyn OomNotifier>>;
    /// Claims a subnet for a new network (the one given, or a free one)
    /// and writes its config list under `root`.
    fn claim_network(
        &self,
        root: &Path,
        id: &str,
        name: &str,
        asked: network::Asked,
    ) -> Result<NetworkRecord, network::Error>;
    /// A network's config list and claim as recorded (after a restart).
    fn restore_network(&self, root: &Path, net: &NetworkRecord);
    /// Gives up a claim made for a network that was never recorded.
    fn release_network(&self, root: &Path, net: &NetworkRecord);
    /// A removed network's bridge, rules, claim and config list gone.
    fn destroy_network<'a>(&'a self, root: &'a Path, net: &'a NetworkRecord) -> BoxFuture<'a, ()>;
    /// Pins the network namespace of a container on bridge networks, if
    /// it has none yet: the networks are wired into it.
    fn pin_netns<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, Result<(), network::Error>>;
    /// Puts container `id` on a network (its namespace pinned). On
    /// failure nothing of it is left.
    fn attach<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        join: Join<'a>,
    ) -> BoxFuture<'a, Result<Attachment, network::Error>>;
    /// Puts container `id` (its namespace pinned) on the network of a
    /// CNI configuration list, its plugins doing all the wiring. On
    /// failure nothing of it is left.
    fn attach_plugins<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        conflist: serde_json::Value,
        ports: &'a [network::PortSpec],
        taken: &'a [network::PortSpec],
    ) -> BoxFuture<'a, Result<Attachment, network::Error>>;
    /// Takes container `id` off network `only`, or with None off every
    /// network and its namespace unpinned; the ids of the networks it
    /// was on.
    fn detach<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        only: Option<&'a str>,
    ) -> BoxFuture<'a, Vec<String>>;
    /// After a daemon restart: what of a running container's places the
    /// daemon itself served (published ports' IPv6 side) served again.
    fn republish(&self, id: &str, attached: &[Attachment]);
    /// Starts `berthd exec DIR FILE` (monitor/exec.rs) with the stdio
    /// asked for.
    fn spawn_exec(&self, dir: &Path, file: &Path, stdio: ExecStdio) -> std::io::Result<ExecChild>;
}

pub trait OomNotifier: Send {
    /// Resolves at the next notification; Err once there are no more.
    fn notified(&mut self) -> BoxFuture<'_, std::io::Result<()>>;
}

/// The host as it is: monitor processes, pidfds and cgroups.
pub struct Real {
    /// berthd's sealed copy of itself (sys/sealed.rs), run as `berthd
    /// monitor DIR` and `berthd exec DIR FILE`.
    pub exe: PathBuf,
    /// Where the containers' cgroups are made.
    pub parent: Parent,
    /// Containers whose cgroups are made elsewhere (their own parent).
    pub placed: std::sync::RwLock<HashMap<String, Parent>>,
    pub wiring: Wiring,
    /// Forks the monitors once it is there; without it (or once it
    /// failed) they are `exe` run as `berthd monitor DIR`.
    pub launcher: std::sync::Arc<std::sync::OnceLock<Launcher>>,
}

struct Notifier(tokio::io::unix::AsyncFd<OwnedFd>);

impl OomNotifier for Notifier {
    fn notified(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            let mut ready = self.0.readable().await?;
            cgroup::drain(ready.get_inner());
            ready.clear_ready();
            Ok(())
        })
    }
}

impl Host for Real {
    fn claim_network(
        &self,
        root: &Path,
        id: &str,
        name: &str,
        asked: network::Asked,
    ) -> Result<NetworkRecord, network::Error> {
        network::claim(root, id, name, asked)
    }

    fn restore_network(&self, root: &Path, net: &NetworkRecord) {
        network::restore(root, net)
    }

    fn release_network(&self, root: &Path, net: &NetworkRecord) {
        network::release(root, net)
    }

    fn destroy_network<'a>(&'a self, root: &'a Path, net: &'a NetworkRecord) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.wiring.forget(net).await;
            network::destroy(root, net).await
        })
    }

    fn pin_netns<'a>(&'a self, dir: &'a Path) -> BoxFuture<'a, Result<(), network::Error>> {
        Box::pin(self.wiring.pin(dir))
    }

    fn attach<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        join: Join<'a>,
    ) -> BoxFuture<'a, Result<Attachment, network::Error>> {
        Box::pin(self.wiring.attach(dir, id, join))
    }

    fn attach_plugins<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        conflist: serde_json::Value,
        ports: &'a [network::PortSpec],
        taken: &'a [network::PortSpec],
    ) -> BoxFuture<'a, Result<Attachment, network::Error>> {
        Box::pin(self.wiring.attach_plugins(dir, id, conflist, ports, taken))
    }

    fn detach<'a>(
        &'a self,
        dir: &'a Path,
        id: &'a str,
        only: Option<&'a str>,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(self.wiring.detach(dir, id, only))
    }

    fn republish(&self, id: &str, attached: &[Attachment]) {
        self.wiring.republish(id, attached)
    }

    fn spawn_exec(&self, dir: &Path, file: &Path, stdio: ExecStdio) -> std::io::Result<ExecChild> {
        exec_helper::spawn(self.launcher.get(), &self.exe, dir, file, stdio)
    }

    fn support(&self) -> Support {
        Support::probe(&self.parent)
    }

    fn cgroup_path(&self, id: &str) -> String {
        self.parent_of(id).child(id)
    }

    fn place_cgroup(&self, id: &str, parent: &str) -> Result<(), cgroup::Error> {
        let parent = Parent::setup(parent)?;
        self.placed
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), parent);
        Ok(())
    }

    fn forget_cgroup(&self, id: &str) {
        self.placed
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    fn spawn<'a>(
        &'a self,
        id: &'a str,
        dir: &'a Path,
        gate: Option<OwnedFd>,
    ) -> BoxFuture<'a, std::io::Result<Spawned>> {
        Box::pin(self.spawn_monitor(id, dir, gate))
    }

    fn monitors(&self, containers: &Path) -> HashMap<String, Box<dyn Monitor>> {
        find_monitors(containers)
    }

    fn freeze(&self, id: &str) -> Result<(), cgroup::Error> {
        tokio::task::block_in_place(|| self.parent_of(id).cgroup(id).freeze())
    }

    fn thaw(&self, id: &str) -> Result<(), cgroup::Error> {
        self.parent_of(id).cgroup(id).thaw()
    }

    fn signal_all(&self, id: &str, signal: i32) -> Result<(), cgroup::Error> {
        tokio::task::block_in_place(|| self.parent_of(id).cgroup(id).signal_all(signal))
    }

    fn kill_all(&self, id: &str) -> Result<(), cgroup::Error> {
        self.parent_of(id).cgroup(id).kill_all()
    }

    fn pids(&self, id: &str) -> Vec<u32> {
        self.parent_of(id).cgroup(id).pids()
    }

    fn set_limits(&self, id: &str, from: &Resources, to: &Resources) -> Result<(), cgroup::Error> {
        tokio::task::block_in_place(|| self.parent_of(id).cgroup(id).set_limits(from, to))
    }

    fn remove_cgroup(&self, id: &str) -> Result<(), cgroup::Error> {
        self.parent_of(id).cgroup(id).delete()
    }

    fn usage(&self, id: &str) -> Usage {
        self.parent_of(id).cgroup(id).usage()
    }

    fn oom_kills(&self, id: &str) -> Option<u64> {
        self.parent_of(id).cgroup(id).oom_kills()
    }

    fn oom_notifier(&self, id: &str) -> std::io::Result<Box<dyn OomNotifier>> {
        let fd = self.parent_of(id).cgroup(id).oom_notifier().map_err(|e| {
            // The cgroup is gone: its run has ended (the monitor removes it).
            let kind = match &e {
                cgroup::Error::Io { source, .. } => source.kind(),
                _ => std::io::ErrorKind::Other,
            };
            std::io::Error::new(kind, e)
        })?;
        Ok(Box::new(Notifier(readiness::watch(fd)?)))
    }
}

impl Real {
    /// Where container `id`'s cgroup is made.
    fn parent_of(&self, id: &str) -> Parent {
        self.placed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .unwrap_or(&self.parent)
            .clone()
    }

    /// Starts `berthd monitor DIR` (its stdin `gate`, or /dev/null) and
    /// reads its report.
    async fn spawn_monitor(
        &self,
        id: &str,
        dir: &Path,
        gate: Option<OwnedFd>,
    ) -> std::io::Result<Spawned> {
        let (reports, theirs) = protocol::report_channel()?;
        let log = OwnedFd::from(std::fs::File::create(dir.join(MONITOR_LOG))?);
        let stdin = match gate {
            Some(fd) => fd,
            None => std::fs::File::open("/dev/null")?.into(),
        };
        let launched = self.launcher.get().map(|l| {
            l.launch(
                &Job::Monitor(dir.into()),
                &[stdin.as_raw_fd(), theirs.as_raw_fd(), log.as_raw_fd()],
            )
        });
        let (pid, fd) = match launched {
            Some(Ok(launched)) => {
                // The monitor's now: the report socket must close when it
                // goes.
                drop((stdin, theirs, log));
                launched
            }
            failed => {
                if let Some(Err(e)) = failed {
                    tracing::warn!(container = %id, error = %e, "the launcher cannot fork a monitor; starting one from berthd's binary");
                }
                let child = std::process::Command::new(&self.exe)
                    .arg0("berthd")
                    .arg("monitor")
                    .arg(dir)
                    .env_remove("NOTIFY_SOCKET")
                    .stdin(std::process::Stdio::from(stdin))
                    .stdout(std::process::Stdio::from(theirs))
                    .stderr(std::process::Stdio::from(log))
                    .spawn()?;
                let pid = child.id() as i32;
                // Race-free: the monitor is our unreaped child.
                (pid, linux::pidfd_open(pid)?)
            }
        };
        let received = tokio::task::spawn_blocking(move || {
            let r = reports.receive();
            (reports, r)
        })
        .await
        .map_err(std::io::Error::other)?;
        let monitor = Box::new(RealMonitor { pid, fd });
        match received {
            (reports, Ok((report, pidfd))) => Ok(Spawned {
                monitor,
                report,
                pid1: pidfd.map(|fd| Box::new(Pidfd(fd)) as Box<dyn Pid1>),
                confirm: Box::new(reports),
            }),
            (reports, Err(e)) => {
                drop(reports);
                monitor.exited().await;
                let log = std::fs::read_to_string(dir.join(MONITOR_LOG)).unwrap_or_default();
                tracing::debug!(container = %id, "monitor failed before reporting");
                Err(std::io::Error::new(
                    e.kind(),
                    format!("{e}; {}", log.trim()),
                ))
            }
        }
    }
}
