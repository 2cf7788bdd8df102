//! Thin, safe wrappers over the Linux calls the runtime needs and nix does
//! not offer: clone3 with a pidfd, pidfd_open, pidfd_send_signal, waitid
//! on a pidfd, and bringing loopback up.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// The result of a fork-like clone.
pub enum Forked {
    /// In the parent: the child's pid and a pidfd referring to it.
    Parent { pid: i32, pidfd: OwnedFd },
    /// In the child.
    Child,
}

/// clone3's flag to start the child in the cgroup v2 directory
/// `CloneArgs::cgroup` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Forks into new namespaces (`flags` are CLONE_NEW* bits) and returns a
/// pidfd for the child, race-free: the pidfd is made by the kernel with the
/// child. With `cgroup` (an open cgroup v2 directory) the child starts in
/// that cgroup. Must only be called from a single-threaded process.
pub fn clone_with_pidfd(flags: libc::c_int, cgroup: Option<BorrowedFd>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: (flags as u64) | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without CLONE_VM and with a zero stack behaves like
    // fork(): the child gets a copy of this (single-threaded) address space
    // and continues on a copy of the current stack. `args` lives across the
    // call and its size is passed exactly.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel stored a fresh pidfd that nothing else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// Opens a pidfd for `pid`. Race-free only while `pid` cannot be reaped
/// by someone else (e.g. it is the caller's unreaped child).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: a valid fd, a signal number, no siginfo, no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout` for the process behind `pidfd` to exit (without
/// reaping it); true if it did.
pub fn wait_exit(pidfd: &OwnedFd, timeout: std::time::Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(n > 0);
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The shell's convention: the code, or 128+signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    pub fn signal(self) -> i32 {
        match self {
            ExitStatus::Exited(_) => 0,
            ExitStatus::Signaled(s) => s,
        }
    }
}

/// Waits for (and reaps) the child behind `pidfd`. With `nohang`, returns
/// None if it has not exited yet.
pub fn waitid_pidfd(pidfd: &OwnedFd, nohang: bool) -> io::Result<Option<ExitStatus>> {
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
        // SAFETY: P_PIDFD with a valid fd and a valid siginfo out pointer.
        let ret = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                flags,
            )
        };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled `info` for a child event (or left si_pid 0).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            _ => ExitStatus::Signaled(status),
        }));
    }
}

/// Writes `data` to `path` atomically: a temporary file beside it, fsync,
/// rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Makes `path` a file of `len` bytes whose blocks are allocated now, so
/// that writing up to `len` bytes into it later cannot fail for want of
/// space. Not flushed: the room is taken as soon as the kernel has
/// allocated it, and it matters only while the system runs (the file
/// written into it is flushed then, write_reserved).
pub fn reserve(path: &Path, len: u64) -> io::Result<()> {
    let f = std::fs::File::create(path)?;
    // SAFETY: fallocate on an fd we own, mode 0 (allocate), a valid range.
    let allocated = match unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) } {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            // A filesystem without fallocate: zeros take the blocks.
            e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                use std::io::Write;
                (&f).write_all(&vec![0; len as usize])
            }
            e => Err(e),
        },
    };
    if let Err(e) = allocated {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Writes `data` to `path` atomically through `reserved`, a file made by
/// `reserve` beforehand: written in place (no new blocks), cut to size,
/// fsynced, renamed over `path`. Without the reserved file, as
/// `write_atomic`.
pub fn write_reserved(reserved: &Path, path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = match std::fs::File::options().write(true).open(reserved) {
        Ok(f) if f.metadata()?.len() >= data.len() as u64 => f,
        _ => return write_atomic(path, data),
    };
    f.write_all_at(data, 0)?;
    f.set_len(data.len() as u64)?;
    f.sync_all()?;
    std::fs::rename(reserved, path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::File::open(dir)?.sync_all()
}

/// Lets every group of the caller's network namespace open ICMP echo
/// sockets, as Docker sets it: an unprivileged user can ping without
/// CAP_NET_RAW.
pub fn allow_ping() -> io::Result<()> {
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647")
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: creating a socket has no memory-safety preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket that we own from here on.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `req`, which is a
    // properly initialised ifreq naming "lo".
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A C string from Rust text that has already been checked for NULs.
pub fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in string"))
}

/// Reads random bytes from the kernel.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of buf.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(())
}

/// Marks every file descriptor from 3 up close-on-exec, so nothing the
/// process inherited or opened without O_CLOEXEC reaches a program it
/// executes (the class of runc's CVE-2024-21626: a leaked directory fd is a
/// way out of the container's root).
pub fn cloexec_inherited() -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range takes two fd numbers and flags; with
    // CLOSE_RANGE_CLOEXEC it only sets a flag on fds that exist.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    // Kernels before 5.11: one fd at a time, from the fd table.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on an fd number only sets its flag; a number that
        // is no longer open (the directory read's own) fails harmlessly.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Sets the nice value of the calling thread alone (Linux keeps one per
/// thread); failures are ignored: it only weighs CPU time.
pub fn set_nice(nice: i32) {
    // SAFETY: gettid and setpriority take and return plain integers; a tid
    // with PRIO_PROCESS names this thread only.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
    }
}

/// Ends a forked child at once: no atexit handlers, no destructors of the
/// parent's state, as a forked child must.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(code) }
}

/// Sets an extended attribute on an open file (fsetxattr(2)).
pub fn set_xattr(fd: BorrowedFd, name: &str, value: &[u8]) -> io::Result<()> {
    let name = cstring(name)?;
    // SAFETY: name is a NUL-terminated string and value a live buffer of
    // the given length; the kernel reads both and keeps neither.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
/// Reads an extended attribute of a path, not following a final symlink
/// (lgetxattr(2)).
pub fn get_xattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let path = cstring(&path.to_string_lossy())?;
    let name = cstring(name)?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: path and name are NUL-terminated strings, buf a live buffer
    // of the length given; the kernel writes at most that many bytes.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Joins the namespaces `flags` (CLONE_NEW*) of the process behind
/// `pidfd`, all at once (setns with a pidfd, Linux 5.8). A new pid
/// namespace applies to the caller's children.
pub fn setns_pidfd(pidfd: &OwnedFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: setns with a valid fd and integer flags.
    if unsafe { libc::setns(pidfd.as_raw_fd(), flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends the process by `signal` (no core file), as a process that got it
/// and did not handle it; falls back to exit(128+signal).
pub fn end_by_signal(signal: i32) -> ! {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads a valid struct; SIG_DFL installs no handler
    // code; sigset operations work on a zeroed local set.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    exit_now(128 + signal)
}

/// Asks the kernel to send SIGKILL to the caller when its parent thread
/// dies (from now on: check afterwards that it still lives).
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A write to a socket or pipe whose reader is gone fails with EPIPE
/// rather than killing the caller. Processes spawned by std's Command
/// start with SIGPIPE at its default (std restores it before exec); the
/// container's process gets the default back before its own exec.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// `cmd`'s process gets SIGKILL when the thread that spawns it dies (with
/// the daemon): a helper cut off with berthd must not finish its work
/// after the next berthd has cleaned up after it.
pub fn spawn_dying_with_us(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs between fork and exec and only makes a
    // prctl call, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// With `on`, the children of this process are reaped by the kernel as
/// they exit (SIGCHLD ignored); without, SIGCHLD is back to its default.
pub fn reap_children_automatically(on: bool) {
    let disposition = if on { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: SIG_IGN and SIG_DFL install no handler code.
    unsafe { libc::signal(libc::SIGCHLD, disposition) };
}
