//! berth-init: PID 1 of a container created with `init: true`.
//!
//! A program of its own, built statically by build.rs and embedded in
//! berthd, which executes it from a sealed memfd inside the container, so
//! that nothing needs to exist in the rootfs and PID 1 shows the container
//! nothing of the host: its executable is not berthd's file (which a
//! container could otherwise read or, as in CVE-2019-5736, try to
//! overwrite), its environment is the container's and its command line is
//! `berth-init -- ARGS…`; a pod sandbox's, `berth-init --pause`.
//!
//! It runs already confined (user, capabilities, seccomp), starts ARGS
//! (found through the container's PATH), forwards every signal it can catch
//! to it, reaps every zombie, and exits with its status (128+n if signal n
//! ended it). It links nothing but the C library and std.

use std::os::raw::c_int;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// glibc's sigset_t: 1024 bits.
#[repr(C)]
struct SigSet([u64; 16]);

const SIG_BLOCK: c_int = 0;
const SIG_SETMASK: c_int = 2;
const SIGCHLD: c_int = 17;
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
const WNOHANG: c_int = 1;

extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn pthread_sigmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn _exit(code: c_int) -> !;
}

fn main() {
    if std::env::args_os().nth(1).is_some_and(|a| a == "--pause") {
        pause()
    }
    let mut args = std::env::args_os().skip_while(|a| a != "--").skip(1);
    let Some(program) = args.next() else {
        eprintln!("berth-init: usage: berth-init -- PROGRAM [ARGS...]");
        std::process::exit(2);
    };
    let mut all = SigSet([0; 16]);
    // Everything is blocked (berthd blocks it before exec, this is for a
    // start by hand), so that no signal is lost before the first sigwait:
    // blocked signals are queued even for a namespace's PID 1, which drops
    // those it has no handler for.
    // SAFETY: `all` is a valid sigset_t-sized buffer for both calls; the
    // process has one thread.
    unsafe {
        sigfillset(&mut all);
        pthread_sigmask(SIG_BLOCK, &all, std::ptr::null_mut());
    }
    let mut cmd = Command::new(&program);
    cmd.args(args);
    // SAFETY: between fork and exec the child only empties its signal mask
    // (async-signal-safe calls on a local set); std restores SIGPIPE.
    unsafe {
        cmd.pre_exec(|| {
            let mut none = SigSet([0; 16]);
            sigemptyset(&mut none);
            pthread_sigmask(SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c.id() as c_int,
        Err(e) => {
            eprintln!("berth-init: cannot exec {program:?}: {e}");
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            std::process::exit(code)
        }
    };
    loop {
        let mut sig: c_int = 0;
        // SAFETY: `all` is a filled set, `sig` a valid out pointer.
        if unsafe { sigwait(&all, &mut sig) } != 0 {
            continue;
        }
        if sig == SIGCHLD {
            reap(child);
        } else {
            // SAFETY: kill(2) on our own child's pid, unreaped until reap()
            // sees it exit, so the pid cannot have been reused.
            unsafe { kill(child, sig) };
        }
    }
}

/// A pod's pause process: holds its namespaces, reaps whatever the
/// shared PID namespace orphans, and exits 0 on SIGTERM or SIGINT (other
/// signals do nothing).
fn pause() -> ! {
    let mut all = SigSet([0; 16]);
    // SAFETY: as in main: a valid set, one thread.
    unsafe {
        sigfillset(&mut all);
        pthread_sigmask(SIG_BLOCK, &all, std::ptr::null_mut());
    }
    loop {
        let mut sig: c_int = 0;
        // SAFETY: `all` is a filled set, `sig` a valid out pointer.
        if unsafe { sigwait(&all, &mut sig) } != 0 {
            continue;
        }
        match sig {
            SIGCHLD => reap(0),
            SIGTERM | SIGINT => std::process::exit(0),
            _ => {}
        }
    }
}

/// Reaps every exited child; exits when `main` is among them (0: never).
fn reap(main: c_int) {
    loop {
        let mut status: c_int = 0;
        // SAFETY: a valid out pointer for the status.
        let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
        if pid <= 0 {
            return;
        }
        if pid != main {
            continue;
        }
        let code = match status & 0x7f {
            0 => (status >> 8) & 0xff,
            sig => 128 + sig,
        };
        // SAFETY: _exit ends PID 1 at once; the kernel then kills the rest
        // of the namespace.
        unsafe { _exit(code) }
    }
}
