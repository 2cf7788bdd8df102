//! Terminals: a pty made in the devpts the calling process sees (a
//! container's own, once inside its mount namespace), and its other side
//! made a process's controlling terminal and stdio.

use std::io;
use std::os::fd::OwnedFd;

/// Opens a new pty of `rows` x `cols`: its master and the path of its
/// other side.
pub fn open((rows, cols): (u16, u16)) -> io::Result<(OwnedFd, String)> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let path = ptsname(&master, Vec::new())?.to_string_lossy().into_owned();
    resize(&master, (rows, cols));
    Ok((master, path))
}

/// Sets a terminal's size; the foreground process group gets SIGWINCH.
pub fn resize(fd: &OwnedFd, (rows, cols): (u16, u16)) {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(fd, size);
}

/// A session of its own for the calling process, with the pty side at
/// `path` as its controlling terminal and its stdin, stdout and stderr.
pub fn take(path: &str) -> io::Result<()> {
    use rustix::fs::{open, Mode, OFlags};
    rustix::process::setsid()?;
    let tty = open(
        path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::process::ioctl_tiocsctty(&tty)?;
    nix::unistd::dup2_stdin(&tty)?;
    nix::unistd::dup2_stdout(&tty)?;
    nix::unistd::dup2_stderr(&tty)?;
    Ok(())
}
