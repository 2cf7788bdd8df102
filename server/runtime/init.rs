//! berth's built-in init, PID 1 of a container created with `init: true`.
//! It runs from the monitor's own code after clone, so nothing needs to
//! exist in the rootfs. It forks the user's process, forwards every signal
//! it can catch to it, reaps every zombie, and exits with the process's
//! status (128+n if a signal ended it).

use super::monitor::StepError;
use super::setup::Exec;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::os::fd::OwnedFd;

/// Returns only if the process could not be forked.
pub fn run(exec: Exec, err_w: &OwnedFd) -> StepError {
    // Block everything before the fork so that no signal is lost between
    // the fork and the first sigwait; blocked signals are queued even for
    // a namespace's PID 1, which would otherwise drop signals it has no
    // handler for.
    let all = SigSet::all();
    if let Err(e) = all.thread_block() {
        return StepError::new("init", format!("block signals: {e}"));
    }
    // SAFETY: this process is single-threaded (a clone of the monitor).
    let child = match unsafe { fork() } {
        Err(e) => return StepError::new("init", format!("fork: {e}")),
        Ok(ForkResult::Child) => return exec.run(),
        Ok(ForkResult::Parent { child }) => child,
    };
    // The error pipe now belongs to the child alone: it closes on its exec.
    // SAFETY: closing our copy of an fd we are done with; the OwnedFd is
    // never used again by this process, which exits from the loop below.
    unsafe { libc::close(std::os::fd::AsRawFd::as_raw_fd(err_w)) };
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig == Signal::SIGCHLD {
            reap(child);
        } else {
            let _ = kill(child, sig);
        }
    }
}

/// Reaps every exited child; exits when `main` is among them.
fn reap(main: Pid) {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => exit(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => exit(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit ends PID 1 at once; the kernel then kills the rest of
    // the namespace.
    unsafe { libc::_exit(code) }
}
