//! `berthd monitor DIR`: the single-threaded process that owns one running
//! container. berthd's launcher forks it (launcher.rs; berthd execs its
//! own binary where the launcher cannot) with its stdout connected to a
//! unix socket; the monitor creates the cgroup,
//! clones PID 1 into new namespaces, reports the pid and a pidfd for it over
//! that socket, then waits for PID 1, kills whatever is left in the cgroup
//! and reports the exit status (with the cgroup's OOM kill count) on the
//! socket, or writes it to `DIR/exit.json` atomically if berthd does not
//! say it recorded it. Meanwhile it logs PID 1's output and
//! serves attachers on `DIR/attach.sock` (attach.rs). It is PID 1's
//! parent, so the status is never lost, even while berthd is down. No
//! tokio here: it forks.
//!
//! berthd confirms the start once it has recorded it; if berthd goes away
//! before confirming, the monitor kills PID 1 (protocol.rs has every
//! message). This folder never uses tokio, the runtime or the event bus:
//! child/ is what runs in the cloned process before exec.

mod attach;
pub mod child;
pub mod exec;
pub mod launcher;
mod output;
pub mod protocol;
mod stdio;
pub mod wire;

use crate::spec::{NamespaceMode, Network};
use crate::sys::cgroup::Cgroup;
use crate::sys::linux::{self, Forked};
use crate::sys::mounts;
use crate::sys::time::now_nanos;
use attach::Attachers;
use nix::sched::CloneFlags;
use protocol::{Config, ExitRecord, Failure, NsJoin, Report, Reporter, Step};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// Entry point of `berthd monitor DIR`; never returns.
pub fn main(dir: &Path) -> ! {
    // Detach from berthd's session so that signals to its process group
    // (Ctrl-C in a terminal) do not reach containers.
    let _ = nix::unistd::setsid();
    linux::ignore_sigpipe();
    let mut reporter = Reporter::take_stdout();
    let code = match run(dir, &mut reporter) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(dir = %dir.display(), step = %e.step, error = %e.message, "container failed");
            if let Some(r) = reporter.take() {
                if let Err(e) = r.send(&Report::Failed(e), None) {
                    tracing::warn!(error = %e, "cannot report to berthd");
                }
            }
            1
        }
    };
    std::process::exit(code)
}

fn run(dir: &Path, reporter: &mut Option<Reporter>) -> Result<(), Failure> {
    let mut config = Config::read(dir)?;
    // A shareable IPC namespace's /dev/shm is on the host, for joiners.
    let shareable = config.spec.namespaces.ipc == NamespaceMode::Shareable;
    if shareable {
        let shm = mounts::mount_shared_shm(dir, config.spec.tuning.shm_size)
            .map_err(|e| Failure::new(Step::MountDevShm, e))?;
        config.shm = Some(shm.display().to_string());
    }
    let cgroup = Cgroup::load(&config.cgroup);
    cgroup
        .create()
        .map_err(|e| Failure::new(Step::CreateCgroup, e))?;
    let devices = match config.spec.privileged {
        true => Ok(()),
        false => cgroup.limit_devices(&config.spec.tuning.device_rules()),
    };
    let result = devices
        .map_err(|e| Failure::new(Step::LimitDevices, e))
        .and_then(|()| {
            cgroup
                .set_limits(&Default::default(), &config.spec.resources)
                .map_err(|e| Failure::new(Step::SetLimits, e))
        })
        .and_then(|()| run_in_cgroup(dir, &config, &cgroup, reporter));
    let _ = std::fs::remove_file(dir.join(wire::SOCKET));
    // A run that ended removed it before reporting its exit.
    if result.is_err() {
        remove_cgroup(&cgroup, &config.id);
    }
    if shareable {
        mounts::release_shared_shm(dir);
    }
    result
}

fn run_in_cgroup(
    dir: &Path,
    config: &Config,
    cgroup: &Cgroup,
    reporter: &mut Option<Reporter>,
) -> Result<(), Failure> {
    let listener = attach::listen(dir).map_err(|e| Failure::new(Step::Attach, e))?;
    let (ours, theirs) = stdio::make(&config.spec)?;
    let ((go, go_wait), (failure_tx, failures)) = protocol::child_pipes()?;
    // Namespaces of its own, unless it has the host's or joins another
    // container's: the monitor enters those, and PID 1 is born in them.
    let ns = &config.spec.namespaces;
    let mut flags = libc::CLONE_NEWNS;
    for (own, flag) in [
        (ns.pid.is_own(), libc::CLONE_NEWPID),
        (ns.ipc.is_own(), libc::CLONE_NEWIPC),
        (ns.uts.is_own(), libc::CLONE_NEWUTS),
        (config.spec.network == Network::None, libc::CLONE_NEWNET),
    ] {
        if own {
            flags |= flag;
        }
    }
    join_namespaces(&config.joins)?;
    // On cgroup v2 PID 1 is born in its cgroup (CLONE_INTO_CGROUP): it is
    // charged for everything from its first page and nothing has to move
    // it. Kernels before 5.7 refuse the flag; the child then moves itself.
    let into = match clone_into_cgroup() {
        true => cgroup
            .open_v2()
            .transpose()
            .map_err(|e| Failure::new(Step::JoinCgroup, e))?,
        false => None,
    };
    let clone = |into: Option<&OwnedFd>| linux::clone_with_pidfd(flags, into.map(|f| f.as_fd()));
    // PID 1 holds what the monitor holds until it sets its own stdio, and
    // a container may see it then (sys/sealed.rs): the monitor's stderr,
    // its log on the host, is /dev/null across the clone.
    log_aside().map_err(|e| Failure::new(Step::Clone, format!("set the log aside: {e}")))?;
    let forked = match clone(into.as_ref()) {
        Err(e)
            if into.is_some()
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::E2BIG | libc::ENOSYS)
                ) =>
        {
            tracing::debug!(error = %e, "clone3 cannot start the process in its cgroup; it will join it");
            clone(None)
        }
        r => r,
    };
    if !matches!(forked, Ok(Forked::Child)) {
        log_back(dir);
    }
    let joined = into.is_some() && forked.is_ok();
    let (pid, pidfd) = match forked.map_err(|e| Failure::new(Step::Clone, e))? {
        Forked::Child => {
            drop((go, failures, ours, listener, into));
            let cgroup = (!joined).then_some(cgroup);
            let e = child::main(dir, config, cgroup, go_wait, &theirs);
            failure_tx.send(&e);
            linux::exit_now(127)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop((go_wait, failure_tx, theirs));
    let fail = |e: Failure| -> Failure {
        let _ = linux::pidfd_send_signal(&pidfd, libc::SIGKILL);
        let _ = linux::waitid_pidfd(&pidfd, false);
        e
    };
    // Let the child go on: it joins its cgroup, then execs the process or
    // reports why not.
    go.send().map_err(fail)?;
    if let Some(e) = failures.receive() {
        return Err(fail(e));
    }
    let started = ours.started().map_err(fail)?;
    let attachers = Attachers::new(
        &config.id,
        dir,
        listener,
        started.stdin,
        config.spec.stdin_once,
        started.terminal,
    );
    let cri_log = output::cri_log(config);
    let started_at = now_nanos();
    tracing::info!(container = %config.id, pid, "container started");
    // Kept once berthd confirmed the start: the exit is reported on it.
    let reporter = reporter
        .take()
        .filter(|r| report_started(r, &config.id, pid, started_at, &pidfd));
    let attachers = output::pump(dir, config, started.sources, &pidfd, attachers, cri_log);
    let status = linux::waitid_pidfd(&pidfd, false)
        .map_err(|e| Failure::new(Step::Wait, e))?
        .ok_or_else(|| Failure::new(Step::Wait, "no status"))?;
    let finished_at = now_nanos();
    // The kernel killed PID 1's namespace with it; anything in the cgroup
    // but outside that namespace goes now, so nothing outlives the run.
    if let Err(e) = cgroup.kill_all() {
        tracing::warn!(container = %config.id, error = %e, "cannot kill what is left of the container");
    }
    let record = ExitRecord {
        exit_code: status.code(),
        signal: status.signal(),
        finished_at,
        oom_kills: cgroup.oom_kills(),
    };
    tracing::info!(container = %config.id, exit_code = record.exit_code, signal = record.signal, "container exited");
    // Gone before the exit is told: whoever sees the container exited
    // finds nothing of it left (attachers already connected stay).
    let _ = std::fs::remove_file(dir.join(wire::SOCKET));
    remove_cgroup(cgroup, &config.id);
    // berthd records it as it comes; the file is for a berthd that is
    // not there to (it reads it when it starts).
    let written = match reporter.is_some_and(|r| r.exited(&record)) {
        true => Ok(()),
        false => record.write(dir),
    };
    attachers.end(record.exit_code, record.signal);
    written
}

fn remove_cgroup(cgroup: &Cgroup, id: &str) {
    if let Err(e) = cgroup.delete() {
        tracing::warn!(container = %id, error = %e, "cannot remove cgroup");
    }
}

/// Enters the namespaces of other containers' processes: a PID namespace
/// for the children to come, IPC and network namespaces at once. Each is checked to
/// be the one berthd saw, so a pid reused meanwhile is refused.
fn join_namespaces(joins: &[NsJoin]) -> Result<(), Failure> {
    for j in joins {
        let fail = |e: &dyn std::fmt::Display| {
            Failure::new(
                Step::JoinNamespaces,
                format!("the {} namespace of pid {}: {e}", j.kind, j.pid),
            )
        };
        let flag = match j.kind.as_str() {
            "pid" => CloneFlags::CLONE_NEWPID,
            "ipc" => CloneFlags::CLONE_NEWIPC,
            "net" => CloneFlags::CLONE_NEWNET,
            other => return Err(fail(&format!("unknown namespace {other:?}"))),
        };
        let file =
            std::fs::File::open(format!("/proc/{}/ns/{}", j.pid, j.kind)).map_err(|e| fail(&e))?;
        let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(|e| fail(&e))?;
        if opened.to_string_lossy() != j.ns {
            return Err(fail(&"the container that had it is gone"));
        }
        nix::sched::setns(&file, flag).map_err(|e| fail(&e))?;
    }
    Ok(())
}

/// Points the monitor's stderr at /dev/null.
fn log_aside() -> std::io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    nix::unistd::dup2_stderr(null)?;
    Ok(())
}

/// Points the monitor's stderr at its log again.
fn log_back(dir: &Path) {
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(protocol::MONITOR_LOG));
    match log {
        Ok(log) => {
            let _ = nix::unistd::dup2_stderr(log);
        }
        Err(e) => tracing::warn!(error = %e, "cannot open the monitor's log again"),
    }
}

/// Whether PID 1 is cloned straight into its cgroup where the host can:
/// yes, unless BERTH_CLONE_INTO_CGROUP=0 (benches/lifecycle.rs compares
/// both).
fn clone_into_cgroup() -> bool {
    std::env::var_os("BERTH_CLONE_INTO_CGROUP").is_none_or(|v| v != "0")
}

/// Tells berthd PID 1 runs, and ends it if berthd does not confirm;
/// whether it did.
fn report_started(r: &Reporter, id: &str, pid: i32, started_at: i64, pidfd: &OwnedFd) -> bool {
    if let Err(e) = r.send(&Report::Started { pid, started_at }, Some(pidfd)) {
        tracing::warn!(error = %e, "cannot report to berthd");
    }
    let confirmed = r.confirmed();
    if !confirmed {
        tracing::warn!(container = %id, "berthd did not record the start; ending the container");
        let _ = linux::pidfd_send_signal(pidfd, libc::SIGKILL);
    }
    confirmed
}
