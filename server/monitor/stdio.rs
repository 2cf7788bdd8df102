//! PID 1's stdin, stdout and stderr: pipes (stdin a pipe with
//! stdin_open, else /dev/null), or a terminal that the child makes in the
//! container's own /dev/pts and whose master it sends back over a socket.
//! The monitor keeps its halves; the child takes the others.

use super::output::Source;
use super::protocol::{Failure, Step};
use crate::spec::Spec;
use crate::sys::fds;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

/// The child's halves.
pub enum Theirs {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Terminal {
        size: (u16, u16),
        console: UnixStream,
    },
}

/// The monitor's halves.
pub enum Ours {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Terminal {
        console: UnixStream,
    },
}

/// What the monitor holds once PID 1 runs.
pub struct Started {
    pub sources: Vec<Source>,
    /// PID 1's stdin, to write.
    pub stdin: Option<OwnedFd>,
    /// The terminal's master, to resize.
    pub terminal: Option<OwnedFd>,
}

pub fn make(spec: &Spec) -> Result<(Ours, Theirs), Failure> {
    let fail = |e: std::io::Error| Failure::new(Step::Pipe, e);
    if let Some(size) = spec.tty {
        let (ours, theirs) = UnixStream::pair().map_err(fail)?;
        return Ok((
            Ours::Terminal { console: ours },
            Theirs::Terminal {
                size,
                console: theirs,
            },
        ));
    }
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Failure::new(Step::Pipe, e))
    };
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (stdin_r, stdin_w) = match spec.stdin_open {
        true => {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        }
        false => (None, None),
    };
    Ok((
        Ours::Pipes {
            stdin: stdin_w,
            stdout: stdout_r,
            stderr: stderr_r,
        },
        Theirs::Pipes {
            stdin: stdin_r,
            stdout: stdout_w,
            stderr: stderr_w,
        },
    ))
}

impl Ours {
    /// PID 1 has exec'd: a terminal's master has come by then.
    pub fn started(self) -> Result<Started, Failure> {
        match self {
            Ours::Pipes {
                stdin,
                stdout,
                stderr,
            } => Ok(Started {
                sources: vec![
                    Source {
                        fd: stdout,
                        stream: 0,
                    },
                    Source {
                        fd: stderr,
                        stream: 1,
                    },
                ],
                stdin,
                terminal: None,
            }),
            Ours::Terminal { console } => {
                let fail = |e: std::io::Error| Failure::new(Step::Stdio, e);
                console.set_nonblocking(true).map_err(fail)?;
                let master = match fds::recv_with_fd(&console, &mut [0u8; 1]).map_err(fail)? {
                    (_, Some(fd)) => fd,
                    (_, None) => return Err(Failure::new(Step::Stdio, "no terminal came")),
                };
                let dup = |fd: &OwnedFd| fd.try_clone().map_err(fail);
                Ok(Started {
                    stdin: Some(dup(&master)?),
                    terminal: Some(dup(&master)?),
                    sources: vec![Source {
                        fd: master,
                        stream: 0,
                    }],
                })
            }
        }
    }
}
