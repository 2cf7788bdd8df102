//! An exec's process, in the container's namespaces (the helper joined
//! them and forked): its working directory, environment and user, then
//! the container's confinement, then exec. Mounts are the container's:
//! nothing is mounted here.

use super::{confine, exec};
use crate::monitor::protocol::{Config, ExecSpec, Failure, Step};
use crate::sys::{fds, linux};
use nix::unistd::chdir;
use std::os::fd::{AsFd, OwnedFd};

/// Runs in the helper's child; returns only on failure, with the exit
/// code the exec ends with: 126, a program not found included, as
/// Docker's exec.
/// `helper` is a pidfd of the helper, opened before the fork.
pub fn exec(
    config: &Config,
    e: &ExecSpec,
    terminal: Option<&str>,
    helper: &OwnedFd,
) -> (Failure, i32) {
    match terminal {
        Some(path) => {
            if let Err(err) = crate::sys::pty::take(path) {
                return (Failure::new(Step::Stdio, err), 126);
            }
        }
        // A session of its own without one too: whatever it starts can be
        // found by its session, and ended with it (a health probe that
        // timed out).
        None => {
            if let Err(err) = rustix::process::setsid() {
                return (Failure::new(Step::Stdio, err), 126);
            }
        }
    }
    match prepare(config, e, helper) {
        Ok(program) => (program.run(), 126),
        Err(failed) => failed,
    }
}

fn prepare(config: &Config, e: &ExecSpec, helper: &OwnedFd) -> Result<exec::Exec, (Failure, i32)> {
    let cannot = |f: Failure| (f, 126);
    let mut spec = config.spec.clone();
    spec.args = e.args.clone();
    // The container's environment, then the exec's: a later entry wins.
    // TERM follows the exec's terminal, not the container's.
    spec.env.extend(e.env.iter().cloned());
    spec.tty = e.tty;
    if !e.working_dir.is_empty() {
        spec.working_dir = e.working_dir.clone();
    }
    if !e.user.is_empty() {
        spec.user = e.user.clone();
    }
    spec.privileged |= e.privileged;
    chdir(spec.working_dir.as_str()).map_err(|err| {
        cannot(Failure::new(
            Step::WorkingDir,
            format!("{}: {err}", spec.working_dir),
        ))
    })?;
    let program = exec::resolve(&spec).map_err(cannot)?;
    let filter = match spec.filtered() {
        true => config.seccomp.as_ref(),
        false => None,
    };
    super::tuning::process(&spec.tuning).map_err(cannot)?;
    confine::confine_process(&spec, filter).map_err(cannot)?;
    // Dies with the helper from now on; if the helper is already gone
    // (its pidfd readable: it exited), the exec was ended. The parent pid
    // cannot tell: an orphan's new parent is outside the namespace too.
    linux::die_with_parent().map_err(|err| cannot(Failure::new(Step::Exec, err)))?;
    match fds::poll_readable(&[helper.as_fd()], Some(std::time::Duration::ZERO)) {
        Ok(ready) if ready.first() == Some(&false) => Ok(program),
        Ok(_) => Err(cannot(Failure::new(Step::Exec, "the exec was ended"))),
        Err(err) => Err(cannot(Failure::new(Step::Exec, err))),
    }
}
