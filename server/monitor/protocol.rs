//! The daemon<->monitor protocol, both halves of every message in one place.
//!
//! ```text
//! berthd                          monitor                       child (PID 1)
//!   Config::write  -- config.json -->  Config::read
//!   launcher: fork `berthd monitor DIR` (stdout: the report socket)
//!                                      clone ------------------->  Go::wait
//!                                      Go::send  -- go pipe --->   joins its cgroup, sets up
//!                                      Failure::receive <-- failure pipe -- Failure::send
//!                                                                  (or EOF: it exec'd)
//!   Reports::receive <-- Report (+ PID 1's pidfd) -- Report::send
//!   Reports::confirm -- one byte -->   Report::confirmed
//!   read_exit <-- Report::Exited ------  Reporter::exited
//!   exit_recorded -- one byte -->        (or none within 2 s:
//!                                         ExitRecord::write -- exit.json)
//!   pidfd of the monitor: exited
//! ```
//!
//! A start the daemon does not confirm was never recorded: the monitor
//! ends its container, so a container runs only if the store says so. An
//! exit the daemon does not say it recorded is written to exit.json, so
//! an exit is never lost.

mod step;
pub use step::Step;

use crate::logs;
use crate::spec::Spec;
use crate::sys::{fds, linux, seccomp};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The monitor's input, written by berthd before each start.
pub const CONFIG_FILE: &str = "config.json";
/// How the last run ended, written by the monitor.
pub const EXIT_FILE: &str = "exit.json";
/// Room for the exit status, allocated by berthd before each start.
pub const EXIT_RESERVE: &str = "exit.json.reserved";
pub const EXIT_ROOM: u64 = 4096;
/// Files berthd writes in the container's directory before each start,
/// and where PID 1 sees them (bind mounts).
pub const NAMES_FILES: [(&str, &str); 3] = [
    ("hostname", "/etc/hostname"),
    ("hosts", "/etc/hosts"),
    ("resolv.conf", "/etc/resolv.conf"),
];
/// The monitor's own log (its stderr).
pub const MONITOR_LOG: &str = "monitor.log";

/// The container directory of `id` under the daemon root.
pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join("containers").join(id)
}

/// What the monitor runs: `DIR/config.json`. Not fsynced: the durable copy
/// of the spec is the record in the store, and a crash ends the run.
#[derive(Debug, Serialize, Deserialize)]
pub struct Config {
    pub id: String,
    /// The container's cgroup, below the hierarchy's root.
    pub cgroup: String,
    pub spec: Spec,
    /// The log's rotation, resolved from the spec and the daemon's defaults.
    #[serde(default)]
    pub log: logs::Limits,
    /// The seccomp filter, compiled by berthd; None: unconfined
    /// (privileged).
    #[serde(default)]
    pub seccomp: Option<seccomp::Program>,
    /// Namespaces of other containers PID 1 joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<NsJoin>,
    /// A /dev/shm to bind-mount instead of a new one: the host's or the
    /// IPC namespace's owner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm: Option<String>,
    /// The directory whose names files (NAMES_FILES) are bind-mounted:
    /// that of the container whose network namespace it joins; None: its
    /// own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<String>,
}

/// A namespace of another process to join: `kind` ("pid", "ipc", "net") of
/// `pid`, which must still be `ns` (its /proc/PID/ns link, read by berthd
/// when it checked that process) when the monitor opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsJoin {
    pub kind: String,
    pub pid: i32,
    pub ns: String,
}

impl Config {
    /// The daemon's half.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let data = serde_json::to_vec(self).map_err(io::Error::other)?;
        std::fs::write(dir.join(CONFIG_FILE), data)
    }

    /// The monitor's half.
    pub fn read(dir: &Path) -> Result<Config, Failure> {
        let data =
            std::fs::read(dir.join(CONFIG_FILE)).map_err(|e| Failure::new(Step::ReadConfig, e))?;
        serde_json::from_slice(&data).map_err(|e| Failure::new(Step::ParseConfig, e))
    }
}

/// What `berthd exec DIR FILE` runs in the container of DIR: FILE, written
/// by berthd (mode 0600) and removed by the helper once read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecSpec {
    /// The container's PID 1 as the host sees it.
    pub pid: i32,
    pub args: Vec<String>,
    /// Over the container's own.
    pub env: Vec<String>,
    /// Empty: the container's.
    pub working_dir: String,
    /// Empty: the container's.
    pub user: String,
    pub privileged: bool,
    /// A terminal of this size (rows, columns): the helper sends the pty's
    /// master to berthd over its stdin, a unix socket.
    #[serde(default)]
    pub tty: Option<(u16, u16)>,
    /// The helper kills the process with SIGKILL once this many
    /// milliseconds have passed, and reaps it before it ends itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl ExecSpec {
    /// The daemon's half.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let data = serde_json::to_vec(self).map_err(io::Error::other)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(&data)
    }

    /// The helper's half: read once, then gone.
    pub fn take(path: &Path) -> Result<ExecSpec, Failure> {
        let data = std::fs::read(path).map_err(|e| Failure::new(Step::ReadConfig, e))?;
        let _ = std::fs::remove_file(path);
        serde_json::from_slice(&data).map_err(|e| Failure::new(Step::ParseConfig, e))
    }
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

impl ExitRecord {
    /// The monitor's half: atomically, into the room berthd reserved.
    pub fn write(&self, dir: &Path) -> Result<(), Failure> {
        let data = serde_json::to_vec(self).map_err(|e| Failure::new(Step::WriteExit, e))?;
        linux::write_reserved(&dir.join(EXIT_RESERVE), &dir.join(EXIT_FILE), &data)
            .map_err(|e| Failure::new(Step::WriteExit, e))
    }

    /// The daemon's half: the status the monitor wrote, if it did.
    pub fn read(dir: &Path) -> Option<ExitRecord> {
        let data = std::fs::read(dir.join(EXIT_FILE)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Forgets the last run's status, before a new run.
    pub fn clear(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(EXIT_FILE));
    }
}

/// A start that failed, with the step that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{step}: {message}")]
pub struct Failure {
    pub step: Step,
    pub message: String,
}

impl Failure {
    pub fn new(step: Step, e: impl std::fmt::Display) -> Failure {
        Failure {
            step,
            message: e.to_string(),
        }
    }
}

/// What the monitor reports to berthd: how the start went, then, once
/// berthd confirmed it, how PID 1 ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    /// PID 1 runs (its pidfd travels with the message).
    Started { pid: i32, started_at: i64 },
    /// The container could not be started; nothing is left behind.
    Failed(Failure),
    /// PID 1 was reaped. berthd answers a byte once it has recorded this
    /// durably; without that answer the monitor writes exit.json.
    Exited(ExitRecord),
}

/// How long a monitor waits for berthd to record an exit it reported
/// before it writes the exit file itself.
pub const EXIT_RECORDED_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The monitor's end of the report socket: its stdout when berthd starts it.
pub struct Reporter(File);

impl Reporter {
    /// Moves fd 1 (the report socket) to a fresh close-on-exec fd and
    /// points fd 1 at /dev/null, so nothing else can write into it.
    pub fn take_stdout() -> Option<Reporter> {
        use std::os::fd::AsFd;
        let sock = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
        if let Ok(null) = File::options().write(true).open("/dev/null") {
            let _ = nix::unistd::dup2_stdout(&null);
        }
        Some(Reporter(File::from(sock)))
    }

    /// Sends `report`, with PID 1's pidfd if it started.
    pub fn send(&self, report: &Report, pidfd: Option<&OwnedFd>) -> io::Result<()> {
        let data = serde_json::to_vec(report).map_err(io::Error::other)?;
        fds::send_with_fd(&self.0, &data, pidfd.map(|fd| fd.as_raw_fd()))
    }

    /// Reports how PID 1 ended and waits (EXIT_RECORDED_WITHIN at most)
    /// for berthd to say it recorded it: false if it did not.
    pub fn exited(&self, record: &ExitRecord) -> bool {
        if self.send(&Report::Exited(*record), None).is_err() {
            return false;
        }
        let ready = fds::poll(
            &[(self.0.as_fd(), libc::POLLIN)],
            Some(EXIT_RECORDED_WITHIN),
        );
        ready.is_ok_and(|r| r[0] & libc::POLLIN != 0) && self.confirmed()
    }

    /// Waits for berthd to confirm a start (or an exit recorded): false if
    /// it went away first.
    pub fn confirmed(&self) -> bool {
        let mut ack = [0u8; 1];
        loop {
            match nix::unistd::read(&self.0, &mut ack) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return matches!(r, Ok(1)),
            }
        }
    }
}

/// berthd's end of the report socket. Dropping it unconfirmed ends the
/// container.
pub struct Reports(OwnedFd);

/// A report socket pair: berthd's end, and the monitor's (its stdout).
pub fn report_channel() -> io::Result<(Reports, OwnedFd)> {
    let (ours, theirs) = fds::seqpacket_pair()?;
    Ok((Reports(ours), theirs))
}

impl Reports {
    /// Receives the monitor's report and the pidfd that comes with it.
    /// Blocks.
    pub fn receive(&self) -> io::Result<(Report, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 64 * 1024];
        let (n, fd) = fds::recv_with_fd(&self.0, &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the monitor exited without reporting",
            ));
        }
        let report = serde_json::from_slice(&buf[..n])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok((report, fd))
    }

    /// Confirms the start: from here the monitor keeps the container
    /// running even if the daemon goes away. The socket stays: the exit
    /// is reported on it.
    pub fn confirm(self) -> io::Result<OwnedFd> {
        nix::unistd::write(&self.0, b"1")?;
        Ok(self.0)
    }
}

/// The exit a monitor reported on `sock` (its report socket, after the
/// confirmation): Ok(None) at end of file or for anything else.
pub fn read_exit(sock: &impl AsRawFd) -> io::Result<Option<ExitRecord>> {
    let mut buf = [0u8; 1024];
    let (n, _) = fds::recv_with_fd(sock, &mut buf)?;
    Ok(match serde_json::from_slice(&buf[..n]) {
        Ok(Report::Exited(record)) => Some(record),
        _ => None,
    })
}

/// Tells the monitor on `sock` its reported exit is recorded.
pub fn exit_recorded(sock: &impl AsFd) {
    let _ = nix::unistd::write(sock, b"1");
}

/// The monitor's half of the go pipe: tells the child to go on.
pub struct GoSender(OwnedFd);
/// The child's half: waits for the monitor.
pub struct GoReceiver(OwnedFd);

/// The child's half of the failure pipe; close-on-exec, so a successful
/// exec closes it with nothing written.
pub struct FailureSender(OwnedFd);
/// The monitor's half.
pub struct FailureReceiver(OwnedFd);

/// Both halves of the go pipe and of the failure pipe.
pub type ChildPipes = ((GoSender, GoReceiver), (FailureSender, FailureReceiver));

/// The pipes between the monitor and its child, made before the clone.
pub fn child_pipes() -> Result<ChildPipes, Failure> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Failure::new(Step::Pipe, e))
    };
    let (go_r, go_w) = pipe()?;
    let (fail_r, fail_w) = pipe()?;
    Ok((
        (GoSender(go_w), GoReceiver(go_r)),
        (FailureSender(fail_w), FailureReceiver(fail_r)),
    ))
}

impl GoSender {
    pub fn send(self) -> Result<(), Failure> {
        File::from(self.0)
            .write_all(b"1")
            .map_err(|e| Failure::new(Step::SyncWithChild, e))
    }
}

impl GoReceiver {
    /// Waits until the monitor is ready; EOF means it died.
    pub fn wait(self) -> Result<(), Failure> {
        let mut byte = [0u8; 1];
        match File::from(self.0).read(&mut byte) {
            Ok(1) => Ok(()),
            _ => Err(Failure::new(Step::WaitForMonitor, "the monitor went away")),
        }
    }
}

impl FailureSender {
    pub fn send(self, failure: &Failure) {
        if let Ok(data) = serde_json::to_vec(failure) {
            let _ = File::from(self.0).write_all(&data);
        }
    }
}

impl FailureReceiver {
    /// Blocks until the child exec'd (None) or reported why it could not.
    pub fn receive(self) -> Option<Failure> {
        let mut data = Vec::new();
        let _ = File::from(self.0).read_to_end(&mut data);
        if data.is_empty() {
            return None;
        }
        Some(serde_json::from_slice(&data).unwrap_or_else(|_| Failure {
            step: Step::Exec,
            message: String::from_utf8_lossy(&data).into_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_and_its_pidfd_cross_the_socket() {
        let (reports, theirs) = report_channel().unwrap();
        let reporter = Reporter(File::from(theirs));
        let pidfd = linux::pidfd_open(std::process::id() as i32).unwrap();
        let sent = Report::Started {
            pid: 42,
            started_at: 7,
        };
        reporter.send(&sent, Some(&pidfd)).unwrap();
        let (got, fd) = reports.receive().unwrap();
        assert_eq!(got, sent);
        assert!(fd.is_some());
        reports.confirm().unwrap();
        assert!(reporter.confirmed());
    }

    #[test]
    fn an_unconfirmed_start_reads_as_such() {
        let (reports, theirs) = report_channel().unwrap();
        let reporter = Reporter(File::from(theirs));
        let failed = Report::Failed(Failure::new(Step::Exec, "no such file"));
        reporter.send(&failed, None).unwrap();
        assert_eq!(reports.receive().unwrap().0, failed);
        drop(reports);
        assert!(!reporter.confirmed());
    }

    #[test]
    fn failures_keep_their_step() {
        let ((go, wait), (tx, rx)) = child_pipes().unwrap();
        go.send().unwrap();
        wait.wait().unwrap();
        tx.send(&Failure::new(Step::MountProc, "EPERM"));
        let f = rx.receive().unwrap();
        assert_eq!(f.step, Step::MountProc);
        assert_eq!(f.to_string(), "mount /proc: EPERM");
        let ((go, wait), (tx, rx)) = child_pipes().unwrap();
        drop(go);
        assert_eq!(wait.wait().unwrap_err().step, Step::WaitForMonitor);
        drop(tx);
        assert_eq!(rx.receive(), None);
    }

    #[test]
    fn only_exec_and_user_are_the_requests_fault() {
        assert!(Step::Exec.is_request_fault() && Step::User.is_request_fault());
        assert!(!Step::MountRootfs.is_request_fault());
    }
}
