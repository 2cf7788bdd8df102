//! Sealed in-memory executables: what runs where a container can see it.
//!
//! A process a container can see (through /proc/PID/exe or /proc/PID/fd)
//! must never have a host file as its executable or an fd to one: a
//! container that opened berthd's binary that way could keep the fd and
//! write through it once the file no longer runs (after an upgrade), and
//! root would run what it wrote (CVE-2019-5736). So every berthd process
//! that enters a container's namespaces (the monitor, whose clone becomes
//! PID 1, and the exec helper, whose child joins the container's pid
//! namespace) runs from a memfd copy of berthd that is sealed against
//! every change (F_SEAL_WRITE, SHRINK, GROW, and SEAL so that no seal can
//! be lifted): the worst a container can do with it is read berthd's
//! public code. berth-init runs from one as well. The copy is made once
//! per daemon; the monitors keep it mapped for as long as they run.

use std::ffi::CStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;

/// MFD_EXEC (Linux 6.3+) keeps a memfd executable where the host makes
/// memfds non-executable by default; older kernels refuse the flag.
const MFD_EXEC: libc::c_uint = 0x10;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// A close-on-exec memfd named `name` holding everything `src` reads,
/// sealed against any change.
pub fn sealed(name: &CStr, src: &mut impl Read) -> io::Result<OwnedFd> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create takes a NUL-terminated name and flags.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    io::copy(src, &mut file)?;
    // SAFETY: F_ADD_SEALS on a memfd made with MFD_ALLOW_SEALING.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_GET_SEALS on an fd we own.
    let got = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    if got < 0 || got & SEALS != SEALS {
        return Err(io::Error::other("the memfd did not take its seals"));
    }
    Ok(file.into())
}

/// The daemon's sealed copy of its own binary, for the life of the
/// process: a path that executes it (/proc/self/fd/N, resolved by the
/// spawned process itself before exec closes N).
pub fn own_binary() -> io::Result<PathBuf> {
    static COPY: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = COPY.get() {
        return Ok(fd_path(fd));
    }
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let fd = sealed(c"berthd", &mut exe)?;
    Ok(fd_path(COPY.get_or_init(|| fd)))
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Makes the calling process non-dumpable: its /proc files (exe, fd/*,
/// mem, environ) become root's, and only a process with CAP_SYS_PTRACE
/// may open them. Inherited by fork and clone; reset by the next execve
/// of a file the process may read. A second layer for the time between a
/// helper's entry into a container's namespaces and its exec.
pub fn undumpable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
