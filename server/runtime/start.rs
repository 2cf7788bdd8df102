//! Start: the monitor's config written, the monitor started, its report
//! read, the start recorded, then confirmed to the monitor.

use super::container::{Container, IfUnsaved, Note, Status};
use super::error::{failed, io_failed, Error, Result};
use super::health::Health;
use super::host::{Pid1, Spawned};
use super::policy::Starter;
use super::Runtime;
use crate::logs::Limits;
use crate::monitor::protocol::{
    Config, ExitRecord, NsJoin, Report, EXIT_RESERVE, EXIT_ROOM, NAMES_FILES,
};
use crate::network::Attachment;
use crate::spec::{NamespaceMode, Network, Spec};
use crate::sys::linux;
use berth::pb::Action;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot::Receiver;

impl Runtime {
    pub async fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        self.start_then(key, |_| Ok(())).await
    }

    /// Starts the container, calling `then` once the start is recorded and
    /// before the monitor is told so, which is before it reads PID 1's
    /// first byte of output (attach.rs connects there). A container
    /// already running is not started and `then` not called.
    pub(super) async fn start_then(
        self: &Arc<Self>,
        key: &str,
        then: impl FnOnce(&Container) -> Result<()>,
    ) -> Result<()> {
        let c = self.find(key)?;
        self.start_container(&c, Starter::User, then).await
    }

    /// Starts `c` for `starter` (see `start_then`): by its policy only if
    /// it still waits for that restart.
    pub(super) async fn start_container(
        self: &Arc<Self>,
        c: &Arc<Container>,
        starter: Starter,
        then: impl FnOnce(&Container) -> Result<()>,
    ) -> Result<()> {
        let c = c.clone();
        let _op = c.op.lock().await;
        {
            let st = c.state();
            if st.removed {
                return Err(Error::NotFound(c.name().into()));
            }
            let r = &st.record;
            let due = match starter {
                Starter::User => r.status.can_start(),
                Starter::Policy { exits } => r.status == Status::Restarting && r.exits == exits,
            };
            if !due {
                return Ok(());
            }
        }
        // The last run's monitor is done with the directory and cgroup.
        c.drained().await;
        let plan = self.plan(&c).await?;
        // Before the wiring, which rewrites /etc/hosts with its own lines.
        self.prepare_run(&c)?;
        let Some(plan) = plan else {
            return self.start_wired(&c, None, starter, then).await;
        };
        // The networks are wired while the monitor sets PID 1 up, which
        // waits on `gate` for them (endpoints.rs).
        let (gate, open) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| failed(format!("start container {}: make a pipe", c.name()), e))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let wiring = async {
            let attached = self.wire(&c, &plan, open).await?;
            let _ = tx.send(attached.clone());
            Ok(attached)
        };
        let (wired, started) = tokio::join!(
            wiring,
            self.start_wired(&c, Some((gate, rx)), starter, then)
        );
        drop(plan);
        match (wired, started) {
            (Ok(attached), Ok(())) => {
                // Its peers learn its name.
                for a in &attached {
                    self.refresh_hosts(&a.network_id);
                }
                Ok(())
            }
            (wired, started) => {
                // Its connects were journaled; no exit will say it left.
                self.disconnect(&c, true).await;
                // The wiring's error first: PID 1 failed for want of it.
                wired.and(started)
            }
        }
    }

    /// The start once the run is prepared and the container's networks
    /// (if any) planned: with `gate` the read end PID 1 waits on, and the
    /// attachments the wiring sends once it is done.
    async fn start_wired(
        self: &Arc<Self>,
        c: &Arc<Container>,
        gate: Option<(OwnedFd, Receiver<Vec<Attachment>>)>,
        starter: Starter,
        then: impl FnOnce(&Container) -> Result<()>,
    ) -> Result<()> {
        let (gate, attached) = gate.unzip();
        let spawned = self.host.spawn(&c.id, &c.dir, gate).await.map_err(|e| {
            failed(
                format!("start container {}: monitor handshake", c.name()),
                e,
            )
        })?;
        let Spawned {
            monitor,
            report,
            pid1,
            confirm,
        } = spawned;
        let running = running(c, report, pid1);
        // PID 1 exec'd: its networks were wired first.
        let attached = match attached {
            None => Ok(Vec::new()),
            Some(rx) => rx.await.map_err(|_| {
                Error::Internal(format!(
                    "start container {}: its networks were not wired",
                    c.name()
                ))
            }),
        };
        let ((pid, started_at, pid1), attached) = match running.and_then(|r| Ok((r, attached?))) {
            Ok(started) => started,
            Err(e) => {
                // The monitor cleans up and exits (unconfirmed, it ends the
                // container); reap it.
                drop(confirm);
                monitor.exited().await;
                return Err(e);
            }
        };
        let run = Run {
            pid,
            started_at,
            monitor_pid: monitor.pid(),
            networks: attached,
            starter,
        };
        let started = self.record_start(c, run, pid1);
        let exits = match started {
            Ok(exits) => exits,
            Err(e) => {
                // Unconfirmed, the monitor ends the container.
                drop(confirm);
                monitor.exited().await;
                return Err(e);
            }
        };
        let then = then(c);
        // Confirm: from here the monitor keeps the container running even
        // if the daemon goes away.
        let reports = confirm
            .confirm()
            .inspect_err(|e| tracing::warn!(container = %c.id, error = %e, "cannot confirm the start to the monitor"))
            .ok();
        tracing::info!(container = %c.id, pid, "started");
        self.spawn_watcher(c.clone(), monitor, reports);
        self.spawn_oom_watcher(c.clone(), exits);
        self.spawn_prober(c.clone(), exits);
        then
    }

    /// The start in the record and the journal; PID 1's handle kept.
    /// Returns the run's exit count.
    fn record_start(&self, c: &Container, run: Run, pid1: Box<dyn Pid1>) -> Result<u64> {
        let Run {
            pid,
            started_at,
            monitor_pid,
            networks,
            starter,
        } = run;
        let mut st = c.state();
        let started = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
            r.status = Status::Running;
            r.pid = pid;
            r.monitor_pid = monitor_pid;
            r.started_at = started_at;
            r.restart_due = 0;
            r.stopped_by_user = false;
            r.health = r
                .spec
                .health
                .as_ref()
                .map(|_| Health::starting(r.health.take()));
            if starter == Starter::User {
                r.restart_count = 0;
                r.restart_delay_ms = 0;
            }
            r.exit_code = 0;
            r.signal = 0;
            r.finished_at = 0;
            r.oom_kills = 0;
            r.oom_killed = false;
            r.networks = networks;
            // When it started: a die can come before this is journaled.
            vec![Note::new(Action::Start).at(started_at)]
        });
        if started.is_ok() {
            st.pid1 = Some(pid1);
        }
        started.map(|()| st.record.exits)
    }

    /// Everything the monitor needs on disk: the config of this run, the
    /// names files and room for its exit status.
    fn prepare_run(&self, c: &Container) -> Result<()> {
        ExitRecord::clear(&c.dir);
        let spec = c.spec();
        let log = Limits {
            max_size: match spec.log_max_size {
                0 => self.log_limits.max_size,
                n => n,
            },
            max_files: match spec.log_max_files {
                0 => self.log_limits.max_files,
                n => n,
            },
        };
        let seccomp = self.seccomp(&spec)?;
        let (joins, shm, names) = self.namespace_joins(c, &spec)?;
        let config = Config {
            id: c.id.clone(),
            cgroup: self.host.cgroup_path(&c.id),
            spec,
            log,
            seccomp,
            joins,
            shm,
            names,
        };
        let what = |step: &str| format!("start container {}: {step}", c.name());
        config
            .write(&c.dir)
            .map_err(|e| io_failed(what("write config"), &c.dir, e))?;
        // On bridge networks /etc/hosts gets its own lines once they are
        // wired, before PID 1 runs.
        write_names(&c.dir, &config.spec, &[])
            .map_err(|e| io_failed(what("write /etc/hosts and /etc/resolv.conf"), &c.dir, e))?;
        // Room for the exit status, taken now: the monitor must be able to
        // record how the run ended even if the disk fills meanwhile.
        linux::reserve(&c.dir.join(EXIT_RESERVE), EXIT_ROOM)
            .map_err(|e| io_failed(what("reserve room for the exit status"), &c.dir, e))
    }
}

impl Runtime {
    /// The namespaces of other containers this run joins, each checked now
    /// (running; for IPC, created shareable), the /dev/shm that goes
    /// with its IPC namespace if that is not its own, and the directory
    /// of the names files that go with its network namespace if that is
    /// another container's.
    fn namespace_joins(&self, c: &Container, spec: &Spec) -> Result<Joins> {
        let ns = &spec.namespaces;
        let mut joins = Vec::new();
        let mut shm = (ns.ipc == NamespaceMode::Host).then(|| "/dev/shm".to_string());
        let mut names = None;
        for (kind, mode) in [("pid", &ns.pid), ("ipc", &ns.ipc), ("net", &ns.net)] {
            let NamespaceMode::Container(id) = mode else {
                continue;
            };
            let refuse = |why: String| {
                Error::FailedPrecondition(format!(
                    "cannot start container {}: cannot join the {kind} namespace of container {why}",
                    c.name()
                ))
            };
            let target = self
                .find(id)
                .map_err(|_| refuse(format!("{id}: it is gone")))?;
            let pid = {
                let st = target.state();
                match st.record.status.is_running() && !st.removed {
                    true => st.record.pid,
                    false => return Err(refuse(format!("{}: it is not running", target.name()))),
                }
            };
            if kind == "ipc" && target.spec().namespaces.ipc != NamespaceMode::Shareable {
                return Err(refuse(format!(
                    "{}: it is not shareable (create it with --ipc shareable)",
                    target.name()
                )));
            }
            let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
                .map_err(|e| refuse(format!("{}: {e}", target.name())))?;
            if kind == "ipc" {
                let at = target.dir.join(crate::sys::mounts::SHARED_SHM);
                shm = Some(at.display().to_string());
            }
            if kind == "net" {
                names = Some(self.names_dir(&target).display().to_string());
            }
            joins.push(NsJoin {
                kind: kind.into(),
                pid,
                ns: link.display().to_string(),
            });
        }
        Ok((joins, shm, names))
    }

    /// Where the names files of `c` are: its own directory, or those of
    /// the container whose network it has.
    fn names_dir(&self, c: &Container) -> std::path::PathBuf {
        let mut dir = c.dir.clone();
        let mut spec = c.spec();
        // A chain of containers on each other's networks, bounded.
        for _ in 0..8 {
            let NamespaceMode::Container(id) = &spec.namespaces.net else {
                break;
            };
            let Ok(next) = self.find(id) else { break };
            dir = next.dir.clone();
            spec = next.spec();
        }
        dir
    }
}

/// A run as the monitor reported it.
struct Run {
    pid: i32,
    started_at: i64,
    monitor_pid: i32,
    networks: Vec<Attachment>,
    starter: Starter,
}

/// What a start joins: namespaces, a /dev/shm, a names directory.
type Joins = (Vec<NsJoin>, Option<String>, Option<String>);

fn host_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf of this run, from the
/// host's as they are now; the monitor bind-mounts them (NAMES_FILES).
/// `own`: the container's and its peers' lines on bridge networks.
fn write_names(dir: &Path, spec: &Spec, own: &[String]) -> std::io::Result<()> {
    std::fs::write(dir.join(NAMES_FILES[0].0), format!("{}\n", spec.hostname))?;
    write_hosts(dir, spec, own)?;
    write_resolv(dir, spec, None)
}

/// /etc/resolv.conf, written in place; `resolver`: that of a user network
/// the container is on.
pub(super) fn write_resolv(
    dir: &Path,
    spec: &Spec,
    resolver: Option<std::net::Ipv4Addr>,
) -> std::io::Result<()> {
    let host = host_file("/etc/resolv.conf");
    let resolv = spec.resolve.resolv_conf(spec.network, &host, resolver);
    std::fs::write(dir.join(NAMES_FILES[2].0), resolv)
}

/// /etc/hosts, written in place: a running container sees a rewrite.
pub(super) fn write_hosts(dir: &Path, spec: &Spec, own: &[String]) -> std::io::Result<()> {
    // Only the host's network takes the host's own file.
    let host = match spec.network {
        Network::Host => host_file("/etc/hosts"),
        _ => String::new(),
    };
    let hosts = spec.resolve.hosts(spec.network, &host, own);
    std::fs::write(dir.join(NAMES_FILES[1].0), hosts)
}

/// What the monitor reported: PID 1's pid, when it started, and its
/// handle; or why it could not start.
fn running(
    c: &Container,
    report: Report,
    pid1: Option<Box<dyn Pid1>>,
) -> Result<(i32, i64, Box<dyn Pid1>)> {
    let (pid, started_at) = match report {
        Report::Started { pid, started_at } => (pid, started_at),
        Report::Failed(failure) if failure.step.is_request_fault() => {
            return Err(Error::InvalidArgument(format!(
                "cannot start container {}: {}",
                c.name(),
                failure.message
            )))
        }
        Report::Failed(failure) if failure.step.is_host_limit() => {
            return Err(Error::FailedPrecondition(format!(
                "cannot start container {}: {}",
                c.name(),
                failure.message
            )))
        }
        Report::Failed(failure) => {
            return Err(Error::Start {
                name: c.name(),
                failure,
            })
        }
        Report::Exited(_) => {
            return Err(Error::Internal(format!(
                "start container {}: the monitor reported an exit before the start",
                c.name()
            )))
        }
    };
    match pid1 {
        Some(pid1) => Ok((pid, started_at, pid1)),
        None => Err(Error::Internal(format!(
            "start container {}: the monitor sent no pidfd",
            c.name()
        ))),
    }
}
