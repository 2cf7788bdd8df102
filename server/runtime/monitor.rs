//! `berthd monitor DIR`: the single-threaded process that owns one running
//! container. berthd starts it (fork+exec of its own binary) with its
//! stdout connected to a unix socket; the monitor creates the cgroup,
//! clones PID 1 into new namespaces, reports the pid and a pidfd for it over
//! that socket, then waits for PID 1, kills whatever is left in the cgroup
//! and writes the exit status (with the cgroup's OOM kill count) to
//! `DIR/exit.json` atomically. It is PID 1's parent, so the status is never
//! lost, even while berthd is down. No tokio here: it forks.
//!
//! berthd confirms the start (one byte on the socket) once it has recorded
//! it. If berthd goes away before confirming, the start was never recorded:
//! the monitor kills PID 1, so a container runs only if the store says so.

use super::cgroup::Cgroup;
use super::linux::{self, Forked};
use super::logs;
use super::setup;
use super::spec::{Network, Spec};
use crate::events::now_nanos;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Written by berthd to `DIR/config.json` before it starts the monitor.
#[derive(Debug, Serialize, Deserialize)]
pub struct Config {
    pub id: String,
    pub spec: Spec,
    /// The log's rotation, resolved from the spec and the daemon's defaults.
    #[serde(default)]
    pub log: logs::Limits,
    /// The seccomp filter, compiled by berthd; None: unconfined
    /// (privileged).
    #[serde(default)]
    pub seccomp: Option<super::seccomp::Program>,
}

/// The one message the monitor sends berthd.
#[derive(Debug, Serialize, Deserialize)]
pub enum Handshake {
    /// PID 1 runs (its pidfd travels with the message).
    Started { pid: i32, started_at: i64 },
    /// The container could not be started; nothing is left behind.
    Failed { step: String, message: String },
}

/// `DIR/exit.json`: how the last run ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub signal: i32,
    /// Unix time in nanoseconds.
    pub finished_at: i64,
    /// Processes the kernel's OOM killer killed in the container during
    /// the run; None if the cgroup could not tell.
    #[serde(default)]
    pub oom_kills: Option<u64>,
}

pub const CONFIG_FILE: &str = "config.json";
pub const EXIT_FILE: &str = "exit.json";
/// Room for the exit status, allocated by berthd before each start.
pub const EXIT_RESERVE: &str = "exit.json.reserved";
pub const EXIT_ROOM: u64 = 4096;

/// A failure while starting, with the step that failed.
pub struct StepError {
    pub step: &'static str,
    pub message: String,
}

impl StepError {
    pub fn new(step: &'static str, e: impl std::fmt::Display) -> StepError {
        StepError {
            step,
            message: e.to_string(),
        }
    }
}

/// Entry point of `berthd monitor DIR`; never returns.
pub fn main(dir: &Path) -> ! {
    // Detach from berthd's session so that signals to its process group
    // (Ctrl-C in a terminal) do not reach containers.
    let _ = nix::unistd::setsid();
    let mut report = take_stdout();
    let code = match run(dir, &mut report) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(dir = %dir.display(), step = e.step, error = %e.message, "container failed");
            if let Some(r) = report.take() {
                let msg = Handshake::Failed {
                    step: e.step.to_string(),
                    message: e.message,
                };
                send(&r, &msg, None);
            }
            1
        }
    };
    std::process::exit(code)
}

/// fd 1 is the handshake socket: move it to a fresh fd and point fd 1 at
/// /dev/null, so nothing else can write into the handshake.
fn take_stdout() -> Option<File> {
    // Close-on-exec, so PID 1 does not inherit it.
    let sock =
        nix::fcntl::fcntl(std::io::stdout(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)).ok()?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
    Some(File::from(sock))
}

fn send(report: &File, msg: &Handshake, pidfd: Option<&OwnedFd>) {
    let data = match serde_json::to_vec(msg) {
        Ok(d) => d,
        Err(_) => return,
    };
    let fds;
    let cmsgs: &[ControlMessage] = match pidfd {
        Some(fd) => {
            fds = [fd.as_raw_fd()];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    let iov = [IoSlice::new(&data)];
    if let Err(e) = sendmsg::<()>(report.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None) {
        tracing::warn!(error = %e, "cannot report to berthd");
    }
}

fn run(dir: &Path, report: &mut Option<File>) -> Result<(), StepError> {
    let config: Config = std::fs::read(dir.join(CONFIG_FILE))
        .map_err(|e| StepError::new("read config", e))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| StepError::new("parse config", e)))?;
    let cgroup = Cgroup::load(&config.id);
    cgroup
        .create()
        .map_err(|e| StepError::new("create cgroup", e))?;
    let devices = match config.spec.privileged {
        true => Ok(()),
        false => cgroup.limit_devices(),
    };
    let result = devices
        .map_err(|e| StepError::new("limit devices", e))
        .and_then(|()| {
            cgroup
                .set_limits(&Default::default(), &config.spec.resources)
                .map_err(|e| StepError::new("set resource limits", e))
        })
        .and_then(|()| run_in_cgroup(dir, &config, &cgroup, report));
    if let Err(e) = cgroup.delete() {
        tracing::warn!(container = %config.id, error = %e, "cannot remove cgroup");
    }
    result
}

fn run_in_cgroup(
    dir: &Path,
    config: &Config,
    cgroup: &Cgroup,
    report: &mut Option<File>,
) -> Result<(), StepError> {
    let pipe =
        || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| StepError::new("pipe", e));
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (sync_r, sync_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| StepError::new("pipe", e))?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| StepError::new("pipe", e))?;
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if config.spec.network == Network::None {
        flags |= libc::CLONE_NEWNET;
    }
    let (pid, pidfd) =
        match linux::clone_with_pidfd(flags).map_err(|e| StepError::new("clone", e))? {
            Forked::Child => {
                drop(sync_w);
                drop(err_r);
                drop(stdout_r);
                drop(stderr_r);
                let e = setup::container_main(dir, config, cgroup, sync_r, [&stdout_w, &stderr_w]);
                let mut err_w = File::from(err_w);
                let _ = write!(err_w, "{}\0{}", e.step, e.message);
                // SAFETY: _exit ends the child without running the parent's
                // atexit handlers or destructors, as a forked child must.
                unsafe { libc::_exit(127) }
            }
            Forked::Parent { pid, pidfd } => (pid, pidfd),
        };
    drop(sync_r);
    drop(err_w);
    drop(stdout_w);
    drop(stderr_w);
    let fail = |e: StepError| -> StepError {
        let _ = linux::pidfd_send_signal(&pidfd, libc::SIGKILL);
        let _ = linux::waitid_pidfd(&pidfd, false);
        e
    };
    // Let the child go on: it joins its cgroup, then execs the process or
    // reports why not.
    if let Err(e) = File::from(sync_w).write_all(b"1") {
        return Err(fail(StepError::new("sync with container", e)));
    }
    let mut failure = Vec::new();
    let _ = File::from(err_r).read_to_end(&mut failure);
    if !failure.is_empty() {
        let text = String::from_utf8_lossy(&failure);
        let (step, message) = text.split_once('\0').unwrap_or(("start", &text));
        let step = setup::STEPS
            .iter()
            .find(|s| **s == step)
            .copied()
            .unwrap_or("start");
        return Err(fail(StepError::new(step, message)));
    }
    let started_at = now_nanos();
    tracing::info!(container = %config.id, pid, "container started");
    if let Some(r) = report.take() {
        send(&r, &Handshake::Started { pid, started_at }, Some(&pidfd));
        let mut ack = [0u8; 1];
        let confirmed = loop {
            match nix::unistd::read(&r, &mut ack) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break matches!(r, Ok(1)),
            }
        };
        if !confirmed {
            tracing::warn!(container = %config.id, "berthd did not record the start; ending the container");
            let _ = linux::pidfd_send_signal(&pidfd, libc::SIGKILL);
        }
    }
    pump_output(dir, config, [stdout_r, stderr_r], &pidfd);
    let status = linux::waitid_pidfd(&pidfd, false)
        .map_err(|e| StepError::new("wait", e))?
        .ok_or_else(|| StepError::new("wait", "no status"))?;
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
    let data = serde_json::to_vec(&record).map_err(|e| StepError::new("encode exit status", e))?;
    linux::write_reserved(&dir.join(EXIT_RESERVE), &dir.join(EXIT_FILE), &data)
        .map_err(|e| StepError::new("write exit status", e))?;
    Ok(())
}

/// Copies PID 1's stdout and stderr into the log until PID 1 has exited
/// and the pipes are closed (or for at most a second after PID 1 exits, in
/// case something outside the container holds them). A write error drops
/// output rather than blocking the container.
fn pump_output(dir: &Path, config: &Config, pipes: [OwnedFd; 2], pidfd: &OwnedFd) {
    let mut writer = logs::Writer::open(dir, config.log)
        .map_err(|e| tracing::warn!(container = %config.id, error = %e, "cannot open the log"))
        .ok();
    let mut splitters = [logs::Splitter::default(), logs::Splitter::default()];
    let streams = [logs::STDOUT, logs::STDERR];
    let mut open: [Option<OwnedFd>; 2] = pipes.map(Some);
    let mut exited_at: Option<std::time::Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut failed = false;
    let mut record = |writer: &mut Option<logs::Writer>, stream: u8, line: &[u8]| {
        if let Some(w) = writer {
            if let Err(e) = w.write(now_nanos(), stream, line) {
                if !failed {
                    tracing::warn!(container = %config.id, error = %e, "cannot write the log; dropping output");
                    failed = true;
                }
            }
        }
    };
    loop {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
        let mut which = Vec::with_capacity(3);
        for (i, fd) in open.iter().enumerate() {
            if let Some(fd) = fd {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                which.push(Some(i));
            }
        }
        if exited_at.is_none() {
            fds.push(libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            which.push(None);
        }
        let timeout = match exited_at {
            Some(t) if open.iter().any(Option::is_some) => {
                let left = std::time::Duration::from_secs(1).saturating_sub(t.elapsed());
                if left.is_zero() {
                    break;
                }
                left.as_millis() as i32 + 1
            }
            Some(_) => break,
            None => -1,
        };
        // SAFETY: `fds` is a valid array of pollfd for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        for (pfd, w) in fds.iter().zip(&which) {
            if pfd.revents == 0 {
                continue;
            }
            let Some(i) = *w else {
                exited_at = Some(std::time::Instant::now());
                continue;
            };
            let Some(fd) = &open[i] else { continue };
            let got = match nix::unistd::read(fd, &mut buf) {
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            let stream = streams[i];
            if got == 0 {
                splitters[i].finish(&mut |l| record(&mut writer, stream, l));
                open[i] = None;
            } else {
                splitters[i].push(&buf[..got], &mut |l| record(&mut writer, stream, l));
            }
        }
        if let Some(w) = &mut writer {
            let _ = w.flush();
        }
    }
    for (i, s) in splitters.iter_mut().enumerate() {
        let stream = streams[i];
        s.finish(&mut |l| record(&mut writer, stream, l));
    }
    if let Some(w) = &mut writer {
        let _ = w.flush();
    }
}

/// Reads `DIR/exit.json` if the monitor wrote one.
pub fn read_exit(dir: &Path) -> Option<ExitRecord> {
    let data = std::fs::read(dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// The container directory of `id` under the daemon root.
pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id)
}
