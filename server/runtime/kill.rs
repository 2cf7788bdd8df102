//! Kill: a signal to PID 1, or with `all` to every process of the
//! container.

use super::container::{Container, IfUnsaved, Note, State};
use super::error::{not_running, Error, Result};
use super::Runtime;
use crate::spec;

impl Runtime {
    pub async fn kill(&self, key: &str, signal: &str, all: bool) -> Result<()> {
        let signal = match signal {
            "" => libc::SIGKILL,
            s => spec::parse_signal(s)?,
        };
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let mut st = c.state();
        if !st.record.status.can_kill() {
            return Err(Error::FailedPrecondition(format!(
                "cannot kill container {}: it is not running",
                c.name
            )));
        }
        if all {
            // Signal 0 checks that PID 1 has not exited.
            self.send_signal(&c, &st, 0)?;
            self.host
                .signal_all(&c.id, signal)
                .map_err(|e| cgroup_failed(&c, &st, "signal", e))?;
        } else {
            self.send_signal(&c, &st, signal)?;
        }
        if signal == libc::SIGKILL {
            self.thaw_for_kill(&c, &st);
        }
        c.transition(&mut st, &self.bus, IfUnsaved::Discard, |_| {
            vec![Note::kill(signal)]
        })
    }

    /// Sends `signal` to PID 1. FailedPrecondition if it has exited. The
    /// caller holds the state lock, so the die event cannot come before
    /// the kill event it journals next.
    pub(super) fn send_signal(&self, c: &Container, st: &State, signal: i32) -> Result<()> {
        let Some(pid1) = &st.pid1 else {
            return Err(not_running(&c.name));
        };
        match pid1.signal(signal) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(not_running(&c.name)),
            Err(e) => Err(super::error::failed(
                format!("signal container {}", c.name),
                e,
            )),
        }
    }
}

/// A cgroup operation's failure: "not running" if the container exited
/// meanwhile, else what failed.
pub(super) fn cgroup_failed(
    c: &Container,
    st: &State,
    what: &str,
    e: crate::sys::cgroup::Error,
) -> Error {
    match st.pid1_exited() {
        true => not_running(&c.name),
        false => Error::Cgroup {
            what: format!("{what} container {}", c.name),
            source: Box::new(e),
        },
    }
}
