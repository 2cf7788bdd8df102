//! `berthd launcher PAD`: a small single-threaded process that forks the
//! monitors and the exec helpers. berthd starts it once, from its sealed
//! copy (sys/sealed.rs), before any container; a monitor or an exec helper
//! is then a fork of it (a few hundred microseconds) instead of an exec of
//! berthd (milliseconds: the binary mapped again, the dynamic loader, the
//! runtime's start).
//!
//! berthd sends it, on a SEQPACKET socket that is its stdin, a job: a
//! container's directory for a monitor, with the monitor's stdin, stdout
//! and stderr attached; or a directory and an exec file for an exec
//! helper, with its stdio and a fourth fd on which the helper writes how
//! the process ended (berthd is not its parent and cannot wait for it).
//! The launcher answers with the child's pid and a pidfd the kernel made
//! with it (CLONE_PIDFD: race-free), or why it could not. The kernel reaps
//! its children (SIGCHLD ignored): berthd watches a monitor through its
//! pidfd and reads how the container ended from the exit file, as it does
//! for a monitor it did not start. The launcher ends when berthd's end of
//! the socket closes; the monitors go on.
//!
//! A child writes its command line over the launcher's (PAD, the
//! launcher's last argument, makes the room) as `berthd monitor DIR` or
//! `berthd exec DIR FILE`, what an exec'd one has, so that a berthd
//! started later finds a monitor as it finds any (runtime/host.rs).

use crate::sys::cmdline::ArgArea;
use crate::sys::fds;
use crate::sys::linux::{self, Forked};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Bytes of room for a monitor's command line: a path of PATH_MAX fits.
const PAD: usize = 4096;

/// The longest berthd waits for an answer before it stops using the
/// launcher.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What the launcher forks.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// `berthd monitor DIR`, with stdin, stdout and stderr.
    Monitor(PathBuf),
    /// `berthd exec DIR FILE`, with stdin, stdout, stderr and the fd the
    /// helper writes the process's end on.
    Exec(PathBuf, PathBuf),
}

impl Job {
    /// As it goes on the socket: a tag byte, then the paths (NUL between).
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Job::Monitor(dir) => {
                out.push(b'm');
                out.extend_from_slice(dir.as_os_str().as_bytes());
            }
            Job::Exec(dir, file) => {
                out.push(b'e');
                out.extend_from_slice(dir.as_os_str().as_bytes());
                out.push(0);
                out.extend_from_slice(file.as_os_str().as_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Job> {
        let path = |b: &[u8]| PathBuf::from(OsStr::from_bytes(b));
        match bytes.split_first()? {
            (b'm', dir) if !dir.is_empty() && !dir.contains(&0) => Some(Job::Monitor(path(dir))),
            (b'e', rest) => {
                let mut parts = rest.split(|b| *b == 0);
                let (dir, file) = (parts.next()?, parts.next()?);
                (parts.next().is_none() && !dir.is_empty() && !file.is_empty())
                    .then(|| Job::Exec(path(dir), path(file)))
            }
            _ => None,
        }
    }

    /// The fds a request for it carries.
    fn fds(&self) -> usize {
        match self {
            Job::Monitor(_) => 3,
            Job::Exec(..) => 4,
        }
    }

    /// Its command line, as an exec'd one has it.
    fn command_line(&self) -> Vec<&[u8]> {
        match self {
            Job::Monitor(dir) => vec![b"berthd", b"monitor", dir.as_os_str().as_bytes()],
            Job::Exec(dir, file) => vec![
                b"berthd",
                b"exec",
                dir.as_os_str().as_bytes(),
                file.as_os_str().as_bytes(),
            ],
        }
    }
}

/// Entry point of `berthd launcher PAD`; never returns.
pub fn main() -> ! {
    let area = ArgArea::own();
    if let Err(e) = &area {
        tracing::warn!(error = %e, "no room for the monitors' command lines");
    }
    linux::reap_children_automatically(true);
    let sock = match take_stdin() {
        Ok(sock) => sock,
        Err(e) => {
            tracing::error!(error = %e, "launcher: no socket on stdin");
            std::process::exit(1)
        }
    };
    let mut buf = vec![0u8; PAD];
    loop {
        let (n, stdio) = match fds::recv_with_fds(&sock, &mut buf) {
            Ok(got) => got,
            Err(e) => {
                tracing::error!(error = %e, "launcher: cannot read a request");
                std::process::exit(1)
            }
        };
        // berthd closed its end.
        if n == 0 {
            std::process::exit(0);
        }
        let Some(job) = Job::decode(&buf[..n]) else {
            answer_or_exit(fds::send_with_fds(
                &sock,
                b"a request the launcher cannot read",
                &[],
            ));
            continue;
        };
        let line = job.command_line();
        let fits = area
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))
            .and_then(|a| a.fits(&line));
        let forked = match (fits, stdio.len() == job.fds()) {
            (Err(e), _) => Err(e),
            (_, false) => Err(io::Error::other(format!(
                "a request for {job:?} needs {} fds",
                job.fds()
            ))),
            (Ok(()), true) => {
                // An exec's helper is born with the signals it passes on
                // blocked: berthd may send one the moment it has the pid.
                let blocked = matches!(job, Job::Exec(..)).then(|| {
                    let mut old = nix::sys::signal::SigSet::empty();
                    let set = crate::monitor::exec::forwarded();
                    nix::sys::signal::sigprocmask(
                        nix::sys::signal::SigmaskHow::SIG_BLOCK,
                        Some(&set),
                        Some(&mut old),
                    )
                    .map(|()| old)
                });
                let forked = linux::clone_with_pidfd(0, None);
                if let Some(Ok(old)) = blocked {
                    if !matches!(forked, Ok(Forked::Child)) {
                        let _ = nix::sys::signal::sigprocmask(
                            nix::sys::signal::SigmaskHow::SIG_SETMASK,
                            Some(&old),
                            None,
                        );
                    }
                }
                forked
            }
        };
        let answer = match forked {
            Ok(Forked::Child) => {
                // berthd's socket is not the child's to hold.
                drop(sock);
                linux::reap_children_automatically(false);
                let mut fds = stdio.into_iter();
                let stdio = [(); 3].map(|()| fds.next().expect("counted"));
                if let Err(e) = set_stdio(stdio) {
                    tracing::error!(error = %e, "cannot take its stdio");
                    linux::exit_now(1)
                }
                if let Ok(area) = &area {
                    let _ = area.rewrite(&line);
                }
                match job {
                    Job::Monitor(dir) => crate::monitor::main(&dir),
                    Job::Exec(dir, file) => crate::monitor::exec::main(&dir, &file, fds.next()),
                }
            }
            Ok(Forked::Parent { pid, pidfd }) => {
                fds::send_with_fds(&sock, &pid.to_le_bytes(), &[pidfd.as_raw_fd()])
            }
            Err(e) => fds::send_with_fds(&sock, e.to_string().as_bytes(), &[]),
        };
        answer_or_exit(answer);
    }
}

/// An answer that cannot be sent leaves berthd's next answer in doubt:
/// the launcher ends (berthd then execs what it needs).
fn answer_or_exit(sent: io::Result<()>) {
    if let Err(e) = sent {
        tracing::error!(error = %e, "launcher: cannot answer");
        std::process::exit(1)
    }
}

/// Moves fd 0 (the socket) to a fresh close-on-exec fd and points fd 0
/// at /dev/null.
fn take_stdin() -> io::Result<OwnedFd> {
    let sock = io::stdin().as_fd().try_clone_to_owned()?;
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(null)?;
    Ok(sock)
}

fn set_stdio([stdin, stdout, stderr]: [OwnedFd; 3]) -> io::Result<()> {
    nix::unistd::dup2_stdin(stdin)?;
    nix::unistd::dup2_stdout(stdout)?;
    nix::unistd::dup2_stderr(stderr)?;
    Ok(())
}

/// berthd's handle on its launcher.
pub struct Launcher {
    /// None once it failed: it is not asked again.
    sock: Mutex<Option<OwnedFd>>,
    _child: std::process::Child,
}

impl Launcher {
    /// Starts `exe` (berthd's sealed copy) as the launcher.
    pub fn start(exe: &Path) -> io::Result<Launcher> {
        use nix::sys::socket::{setsockopt, sockopt};
        use std::os::unix::process::CommandExt;
        let (ours, theirs) = fds::seqpacket_pair()?;
        let within = nix::sys::time::TimeVal::new(ANSWER_WITHIN.as_secs() as i64, 0);
        setsockopt(&ours, sockopt::ReceiveTimeout, &within)?;
        let child = std::process::Command::new(exe)
            .arg0("berthd")
            .arg("launcher")
            .arg("-".repeat(PAD))
            .env_remove("NOTIFY_SOCKET")
            .stdin(std::process::Stdio::from(theirs))
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(Launcher {
            sock: Mutex::new(Some(ours)),
            _child: child,
        })
    }

    /// Forks `job` with `fds` (as many as it takes): its pid and a pidfd
    /// for it.
    pub fn launch(&self, job: &Job, fds: &[RawFd]) -> io::Result<(i32, OwnedFd)> {
        let mut held = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        let sock = held
            .as_ref()
            .ok_or_else(|| io::Error::other("the launcher failed before"))?;
        let asked = fds::send_with_fds(sock, &job.encode(), fds);
        let mut buf = [0u8; 1024];
        let answer = asked.and_then(|()| fds::recv_with_fds(sock, &mut buf));
        let (n, pidfd) = match answer {
            Ok((n, fds)) => (n, fds.into_iter().next()),
            Err(e) => {
                // Whatever it answers later would be taken for the next
                // request's answer.
                *held = None;
                return Err(e);
            }
        };
        match (n, pidfd) {
            (4, Some(pidfd)) => {
                let pid = i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
                Ok((pid, pidfd))
            }
            (0, _) => {
                *held = None;
                Err(io::Error::other("the launcher is gone"))
            }
            _ => Err(io::Error::other(
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_go_over_the_socket_and_back() {
        for job in [
            Job::Monitor("/r/containers/abc".into()),
            Job::Exec(
                "/r/containers/abc".into(),
                "/r/containers/abc/exec-1.json".into(),
            ),
        ] {
            assert_eq!(Job::decode(&job.encode()), Some(job));
        }
        for bad in [
            &b""[..],
            b"m",
            b"x/dir",
            b"e/dir",
            b"e/dir\0",
            b"e\0/f",
            b"e/d\0/f\0/g",
            b"m/a\0b",
        ] {
            assert_eq!(Job::decode(bad), None, "{bad:?}");
        }
    }
}
