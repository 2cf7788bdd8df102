//! Daemon side only: an fd (a pidfd, an OOM notifier, inotify) the tokio
//! reactor watches for readiness.

use std::os::fd::AsRawFd;
use tokio::io::unix::AsyncFd;

/// Registers `fd` with the reactor; it stays owned (open, the same fd)
/// until the AsyncFd is dropped or gives it back.
pub fn watch<T: AsRawFd>(fd: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: the AsyncFd owns `fd`, so the descriptor stays open and the
    // same until into_inner() gives it back or the AsyncFd is dropped.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

/// `fd` made non-blocking and registered with the reactor.
pub fn nonblocking(fd: std::os::fd::OwnedFd) -> std::io::Result<AsyncFd<std::os::fd::OwnedFd>> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    watch(fd)
}
