//! Starting an exec's helper (`berthd exec DIR FILE`, monitor/exec.rs):
//! forked by the launcher where it runs, or exec'd from berthd's binary;
//! and learning how the process ended either way. A forked helper is not
//! berthd's child: it writes the end on a pipe berthd holds the other
//! side of; an exec'd one is waited for.

use crate::monitor::exec::Ended;
use crate::monitor::launcher::{Job, Launcher};
use crate::sys::linux;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};

/// An exec helper's stdio.
pub enum ExecStdio {
    /// stdout and stderr piped, stdin piped or /dev/null.
    Pipes { stdin: bool },
    /// Nothing: a detached exec.
    Detached,
    /// A terminal: stdin is this socket, on which the helper sends the
    /// pty's master; stderr piped (for what fails before the terminal).
    Terminal(std::os::unix::net::UnixStream),
}

/// A started exec helper: its pid, a pidfd, berthd's ends of its stdio.
pub struct ExecChild {
    pub pid: u32,
    pub pidfd: OwnedFd,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    end: End,
}

enum End {
    /// berthd's own child.
    Waited(tokio::process::Child),
    /// The read side of the pipe the helper writes the end on.
    Told(OwnedFd),
}

impl ExecChild {
    /// How the process ended: the exit code (128+signal when killed) and
    /// the signal. A forked helper that ended without saying was killed
    /// (SIGKILL is what stops it from saying: berthd's own kill ends an
    /// exec that way).
    pub async fn wait(self) -> (i32, i32) {
        match self.end {
            End::Waited(mut child) => match child.wait().await {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (s.code(), s.signal()) {
                        (Some(code), _) => (code, 0),
                        (None, Some(sig)) => (128 + sig, sig),
                        _ => (255, 0),
                    }
                }
                Err(_) => (255, 0),
            },
            End::Told(fd) => {
                let mut told = Vec::with_capacity(Ended::SIZE);
                let read = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                    Ok(mut pipe) => pipe.read_to_end(&mut told).await.map(drop),
                    Err(e) => Err(e),
                };
                match read.ok().and_then(|()| Ended::decode(&told)) {
                    Some(e) => (e.code, e.signal),
                    None => (128 + libc::SIGKILL, libc::SIGKILL),
                }
            }
        }
    }

    /// Ends the helper, and with it the process.
    pub fn kill(&self) {
        let _ = linux::pidfd_send_signal(&self.pidfd, libc::SIGKILL);
    }
}

/// Starts the helper for the exec in `file` of the container in `dir`:
/// a fork of the launcher if it is there and answers, else `exe` run as
/// `berthd exec DIR FILE`.
pub fn spawn(
    launcher: Option<&Launcher>,
    exe: &Path,
    dir: &Path,
    file: &Path,
    stdio: ExecStdio,
) -> std::io::Result<ExecChild> {
    if let Some(l) = launcher {
        match forked(l, dir, file, &stdio) {
            Ok(child) => return Ok(child),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "the launcher cannot fork an exec helper; starting one from berthd's binary")
            }
        }
    }
    execd(exe, dir, file, stdio)
}

fn forked(l: &Launcher, dir: &Path, file: &Path, stdio: &ExecStdio) -> std::io::Result<ExecChild> {
    // stdin, stdout, stderr: piped or not.
    let piped = match stdio {
        ExecStdio::Pipes { stdin } => [*stdin, true, true],
        ExecStdio::Detached => [false; 3],
        ExecStdio::Terminal(_) => [false, false, true],
    };
    // (ours, the helper's): the read side of its output, the write side
    // of its input.
    let pipe = |to_helper: bool| -> std::io::Result<(OwnedFd, OwnedFd)> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        Ok(if to_helper {
            (write, read)
        } else {
            (read, write)
        })
    };
    let mut ours: [Option<OwnedFd>; 3] = [None, None, None];
    let mut theirs: Vec<OwnedFd> = Vec::with_capacity(4);
    for (i, piped) in piped.into_iter().enumerate() {
        if piped {
            let (o, t) = pipe(i == 0)?;
            ours[i] = Some(o);
            theirs.push(t);
        } else {
            theirs.push(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")?
                    .into(),
            );
        }
    }
    if let ExecStdio::Terminal(socket) = stdio {
        theirs[0] = socket.try_clone()?.into();
    }
    let (told, tell) = pipe(false)?;
    theirs.push(tell);
    let fds: Vec<RawFd> = theirs.iter().map(|f| f.as_raw_fd()).collect();
    let (pid, pidfd) = l.launch(&Job::Exec(dir.into(), file.into()), &fds)?;
    // Only the helper holds its sides now: its end closes them.
    drop(theirs);
    let [stdin, stdout, stderr] = ours;
    Ok(ExecChild {
        pid: pid as u32,
        pidfd,
        stdin: stdin
            .map(|fd| ChildStdin::from_std(fd.into()))
            .transpose()?,
        stdout: stdout
            .map(|fd| ChildStdout::from_std(fd.into()))
            .transpose()?,
        stderr: stderr
            .map(|fd| ChildStderr::from_std(fd.into()))
            .transpose()?,
        end: End::Told(told),
    })
}

fn execd(exe: &Path, dir: &Path, file: &Path, stdio: ExecStdio) -> std::io::Result<ExecChild> {
    use std::process::Stdio;
    let piped = |yes: bool| if yes { Stdio::piped() } else { Stdio::null() };
    let (stdin, stdout, stderr) = match stdio {
        ExecStdio::Pipes { stdin } => (piped(stdin), Stdio::piped(), Stdio::piped()),
        ExecStdio::Detached => (Stdio::null(), Stdio::null(), Stdio::null()),
        ExecStdio::Terminal(socket) => (
            Stdio::from(OwnedFd::from(socket)),
            Stdio::null(),
            Stdio::piped(),
        ),
    };
    let mut child = tokio::process::Command::new(exe)
        .arg0("berthd")
        .arg("exec")
        .arg(dir)
        .arg(file)
        .env_remove("NOTIFY_SOCKET")
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the helper is gone"))?;
    // Race-free: the helper is our unreaped child.
    let pidfd = match linux::pidfd_open(pid as i32) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.start_kill();
            return Err(e);
        }
    };
    Ok(ExecChild {
        pid,
        pidfd,
        stdin: child.stdin.take(),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        end: End::Waited(child),
    })
}
