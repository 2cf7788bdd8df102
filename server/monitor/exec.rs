//! `berthd exec DIR FILE`: one process run in the running container of
//! DIR, as `docker exec` runs one. berthd spawns it with the process's
//! stdin, stdout and stderr; it is single-threaded and never uses tokio,
//! because it joins namespaces:
//!
//! 1. reads the exec (FILE, then removed) and the container's config;
//! 2. opens a pidfd of the container's PID 1 and checks that process is in
//!    the container's cgroup (so a recycled pid cannot mislead it);
//! 3. joins the container's cgroup, then PID 1's mount, pid, uts, ipc and
//!    network namespaces (setns with the pidfd);
//! 4. forks: the child is in the container's pid namespace; it is confined
//!    as PID 1 was (child/join.rs) and execs;
//! 5. passes on every signal it gets to the process, and ends as it ended:
//!    the same exit code, or killed by the same signal.
//!
//! The process dies with the helper (PR_SET_PDEATHSIG), so berthd ends an
//! exec by killing the helper; and with the container, whose pid namespace
//! it is in. A failure before exec is a line on stderr and exit code 126,
//! the program not found too, as Docker's exec ends.
//!
//! Forked by the launcher, the helper is not berthd's child: it also
//! writes how the process ended on the fd it was given (`Ended`), before
//! it ends the same way.

use super::child;
use super::protocol::{Config, ExecSpec, Failure, Step};
use crate::sys::linux::{self, Forked};
use crate::sys::{cgroup::Cgroup, fds};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Entry point of `berthd exec DIR FILE`; with `told`, how the process
/// ended is written there too. Never returns.
pub fn main(dir: &Path, file: &Path, told: Option<OwnedFd>) -> ! {
    let status = run(dir, file);
    let ended = match &status {
        Ok(s) => Ended {
            code: s.code(),
            signal: s.signal(),
        },
        Err((_, code)) => Ended {
            code: *code,
            signal: 0,
        },
    };
    if let Some(fd) = told {
        let _ = rustix::io::write(&fd, &ended.encode());
    }
    match status {
        Ok(status) => mirror(status),
        Err((e, code)) => {
            eprintln!("berth exec: {}: {}", e.step.name(), e.message);
            linux::exit_now(code)
        }
    }
}

/// How an exec's process ended, as a forked helper tells it: the exit
/// code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub code: i32,
    pub signal: i32,
}

impl Ended {
    pub const SIZE: usize = 8;

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut out = [0u8; Self::SIZE];
        out[..4].copy_from_slice(&self.code.to_le_bytes());
        out[4..].copy_from_slice(&self.signal.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Ended> {
        let bytes: &[u8; Self::SIZE] = bytes.try_into().ok()?;
        let word =
            |i: usize| i32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Some(Ended {
            code: word(0),
            signal: word(4),
        })
    }
}

/// A failure and the exit code it ends the exec with.
type Failed = (Failure, i32);

/// The signals a helper passes on to its process: all it can catch but
/// those that report its own faults.
pub fn forwarded() -> SigSet {
    let mut forwarded = SigSet::all();
    for s in [
        Signal::SIGKILL,
        Signal::SIGSTOP,
        Signal::SIGCHLD,
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        forwarded.remove(s);
    }
    forwarded
}

fn run(dir: &Path, file: &Path) -> Result<linux::ExitStatus, Failed> {
    let cannot = |e: Failure| (e, 126);
    // Signals wait from the first thing on (berthd may send one as soon
    // as the helper exists: before the process does, it would end the
    // helper); the signalfd takes them, the child unblocks them. A helper
    // forked by the launcher has them blocked from its birth.
    let forwarded = forwarded();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded), None)
        .map_err(|e| (Failure::new(Step::JoinNamespaces, e), 126))?;
    let spec = ExecSpec::take(file).map_err(cannot)?;
    let config = Config::read(dir).map_err(cannot)?;
    let join = |e: std::io::Error| (Failure::new(Step::JoinNamespaces, e), 126);
    let pid1 = linux::pidfd_open(spec.pid).map_err(join)?;
    let cgroup_of_pid1 =
        std::fs::read_to_string(format!("/proc/{}/cgroup", spec.pid)).unwrap_or_default();
    if !cgroup_of_pid1
        .lines()
        .any(|l| l.ends_with(config.cgroup.as_str()))
    {
        return Err((
            Failure::new(Step::JoinNamespaces, "the container's process is gone"),
            126,
        ));
    }
    Cgroup::load(&config.cgroup)
        .join_self()
        .map_err(|e| (Failure::new(Step::JoinCgroup, e), 126))?;
    let namespaces = libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET;
    linux::setns_pidfd(&pid1, namespaces).map_err(join)?;
    // A terminal: made in the container's devpts, its master sent to
    // berthd, its other side the process's stdio.
    let terminal = match spec.tty {
        Some(size) => Some(terminal(size).map_err(|e| (Failure::new(Step::Stdio, e), 126))?),
        None => None,
    };
    // The child's way to tell whether the helper still lives.
    let helper = linux::pidfd_open(std::process::id() as i32).map_err(join)?;
    let (pid, pidfd) =
        match linux::clone_with_pidfd(0, None).map_err(|e| (Failure::new(Step::Clone, e), 126))? {
            Forked::Child => {
                let (e, code) = child::join::exec(&config, &spec, terminal.as_deref(), &helper);
                match e.step {
                    // As Docker words it: scripts look for these words.
                    Step::Exec => eprintln!(
                        "berth exec failed: unable to start container process: {}",
                        e.message
                    ),
                    step => eprintln!("berth exec: {}: {}", step.name(), e.message),
                }
                linux::exit_now(code)
            }
            Forked::Parent { pid, pidfd } => (pid, pidfd),
        };
    let deadline = spec
        .timeout_ms
        .map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms));
    wait_forwarding(pid, &pidfd, &forwarded, deadline)
        .map_err(|e| (Failure::new(Step::Wait, e), 126))
}

/// Opens a pty in the container's /dev/pts and sends the master to
/// berthd over stdin (a unix socket); returns the path of the process's
/// side.
fn terminal(size: (u16, u16)) -> std::io::Result<String> {
    use std::os::fd::AsRawFd;
    let (master, path) = crate::sys::pty::open(size)?;
    let socket = std::os::unix::net::UnixStream::from(rustix::io::dup(rustix::stdio::stdin())?);
    fds::send_with_fd(&socket, b"t", Some(master.as_raw_fd()))?;
    Ok(path)
}

/// Waits for the process, passing on the signals the helper receives;
/// kills it at `deadline`.
fn wait_forwarding(
    pid: i32,
    pidfd: &OwnedFd,
    signals: &SigSet,
    mut deadline: Option<std::time::Instant>,
) -> std::io::Result<linux::ExitStatus> {
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC).map_err(std::io::Error::from)?;
    loop {
        if let Some(status) = linux::waitid_pidfd(pidfd, true)? {
            return Ok(status);
        }
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            // Reaped above once it is dead: gone from the container
            // before the helper ends.
            let _ = linux::pidfd_send_signal(pidfd, libc::SIGKILL);
            deadline = None;
            continue;
        }
        let ready = fds::poll_readable(&[pidfd.as_fd(), sfd.as_fd()], left)?;
        if ready.get(1).copied().unwrap_or(false) {
            if let Ok(Some(info)) = sfd.read_signal() {
                if let Ok(s) = Signal::try_from(info.ssi_signo as i32) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
                }
            }
        }
    }
}

/// Ends the helper as the process ended.
fn mirror(status: linux::ExitStatus) -> ! {
    match status.signal() {
        0 => linux::exit_now(status.code()),
        signal => linux::end_by_signal(signal),
    }
}
