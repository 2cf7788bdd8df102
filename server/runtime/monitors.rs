//! The monitors as the daemon sees them: watched through pidfds, found
//! again in /proc after a restart, and heard from on their report socket
//! once their start is confirmed (the exit of PID 1).

use super::host::{BoxFuture, Confirm, ExitReports, Monitor, Pid1};
use crate::monitor::protocol::{self, ExitRecord, Reports};
use crate::sys::{linux, readiness};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

/// PID 1 through its pidfd.
pub(super) struct Pidfd(pub(super) OwnedFd);

impl Pid1 for Pidfd {
    fn signal(&self, signal: i32) -> std::io::Result<()> {
        linux::pidfd_send_signal(&self.0, signal)
    }

    fn exited(&self) -> bool {
        linux::wait_exit(&self.0, Duration::ZERO).unwrap_or(true)
    }
}

/// A monitor as the daemon watches it: through a pidfd.
pub(super) struct RealMonitor {
    pub(super) pid: i32,
    pub(super) fd: OwnedFd,
}

impl Monitor for RealMonitor {
    fn pid(&self) -> i32 {
        self.pid
    }

    fn exited(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            match readiness::watch(self.fd) {
                Ok(afd) => {
                    let _ = afd.readable().await;
                    // Reap it if it is our child (not after a restart).
                    let _ = linux::waitid_pidfd(&afd.into_inner(), true);
                }
                Err(e) => {
                    tracing::error!(monitor = self.pid, error = %e, "cannot watch monitor");
                    std::future::pending::<()>().await
                }
            }
        })
    }

    fn wait_exit(&self, timeout: Duration) -> bool {
        matches!(linux::wait_exit(&self.fd, timeout), Ok(true))
    }

    fn kill(&self) {
        let _ = linux::pidfd_send_signal(&self.fd, libc::SIGKILL);
    }

    fn pid1(&self, pid: i32) -> Option<Box<dyn Pid1>> {
        let fd = linux::pidfd_open(pid).ok()?;
        // Checked after opening: the process must be the monitor's child
        // (its only one), so a reused pid is never signalled.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid: i32 = stat
            .rsplit_once(") ")?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        (ppid == self.pid).then(|| Box::new(Pidfd(fd)) as Box<dyn Pid1>)
    }
}

impl Confirm for Reports {
    fn confirm(self: Box<Self>) -> std::io::Result<Box<dyn ExitReports>> {
        let sock = Reports::confirm(*self)?;
        let sock = readiness::nonblocking(sock)?;
        Ok(Box::new(SocketReports(sock)))
    }
}

/// The report socket after the confirmation.
struct SocketReports(tokio::io::unix::AsyncFd<OwnedFd>);

impl ExitReports for SocketReports {
    fn reported(&mut self) -> BoxFuture<'_, Option<ExitRecord>> {
        Box::pin(async move {
            loop {
                let mut ready = self.0.readable().await.ok()?;
                match protocol::read_exit(ready.get_inner()) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => ready.clear_ready(),
                    Err(_) => return None,
                    Ok(exit) => return exit,
                }
            }
        })
    }

    fn recorded(&self) {
        protocol::exit_recorded(self.0.get_ref());
    }
}

/// The monitors running for containers under `containers`: container id
/// -> monitor, from the command lines in /proc.
pub(super) fn find_monitors(containers: &Path) -> HashMap<String, Box<dyn Monitor>> {
    let mut out: HashMap<String, Box<dyn Monitor>> = HashMap::new();
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
        if rest.is_empty() || rest.contains(&b'/') {
            continue;
        }
        // Checked after opening the pidfd: if the pid was reused before,
        // the check fails; after, the pidfd still names the old process.
        let Ok(fd) = linux::pidfd_open(pid) else {
            continue;
        };
        if monitor_dir(pid).as_deref() == Some(dir.as_slice()) {
            let id = String::from_utf8_lossy(rest).into_owned();
            out.insert(id, Box::new(RealMonitor { pid, fd }));
        }
    }
    out
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
