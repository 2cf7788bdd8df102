//! Kill: a signal to PID 1, or with `all` to every process of the
//! container.

use super::container::{Container, IfUnsaved, Note, Record, State, Status};
use super::error::{not_running, Error, Result};
use super::Runtime;
use crate::spec;
use crate::sys::time::now_nanos;
use berth::pb::Action;

impl Runtime {
    pub async fn kill(&self, key: &str, signal: &str, all: bool) -> Result<()> {
        let signal = match signal {
            "" => libc::SIGKILL,
            s => spec::parse_signal(s)?,
        };
        self.kill_as(key, signal, all, true).await
    }

    /// A kill; `by_user`: SIGKILL and the stop signal stop the container
    /// for its restart policy (not when berth kills an unhealthy one).
    pub(super) async fn kill_as(
        &self,
        key: &str,
        signal: i32,
        all: bool,
        by_user: bool,
    ) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let mut st = c.state();
        if st.record.status == Status::Restarting {
            // No process to signal: its wait ends, without an event, as
            // Docker's.
            return c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
                super::policy::settle(r);
                r.stopped_by_user = true;
                vec![]
            });
        }
        if !st.record.status.can_kill() {
            return Err(Error::FailedPrecondition(format!(
                "cannot kill container {}: it is not running",
                c.name()
            )));
        }
        // SIGKILL and the stop signal stop it: its policy does not
        // restart it. Another signal (a reload) leaves the policy be.
        let stops = by_user && (signal == libc::SIGKILL || signal == st.record.spec.stop_signal);
        // Events carry when things happened: the signal's time is taken
        // before it goes out, so the die it causes is never earlier.
        let sent_at = now_nanos();
        if all {
            // Signal 0 checks that PID 1 has not exited.
            self.send_signal(&c, &st, 0)?;
            self.host
                .signal_all(&c.id, signal)
                .map_err(|e| cgroup_failed(&c, &st, "signal", e))?;
        } else if let Err(e) = self.send_signal(&c, &st, signal) {
            // PID 1 exited just now, its exit not recorded yet: a kill
            // that would have stopped it still keeps its restart policy
            // from starting it again, as Docker's.
            if stops && matches!(e, Error::FailedPrecondition(_)) {
                let _ = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
                    r.stopped_by_user = true;
                    vec![]
                });
            }
            return Err(e);
        }
        let thawed_at = self.thaw_after_signal(&c, &st, signal);
        let if_unsaved = match thawed_at {
            Some(_) => IfUnsaved::Keep,
            None => IfUnsaved::Discard,
        };
        c.transition(&mut st, &self.bus, if_unsaved, |r| {
            r.stopped_by_user |= stops;
            signalled(r, signal, sent_at, thawed_at)
        })
    }

    /// A paused container cannot handle a signal, so after sending one it
    /// is thawed at once, as Docker does (daemon/kill.go): for any signal
    /// when its stop signal is the default SIGTERM, else for the stop
    /// signal and SIGKILL only. After SIGKILL it thaws without an unpause
    /// event (it is dying); otherwise when it was thawed (taken just
    /// before), to be journaled with [`signalled`].
    pub(super) fn thaw_after_signal(&self, c: &Container, st: &State, signal: i32) -> Option<i64> {
        if signal == libc::SIGKILL {
            self.thaw_for_kill(c, st);
            return None;
        }
        let stop_signal = st.record.spec.stop_signal;
        let thaws = stop_signal == libc::SIGTERM || signal == stop_signal;
        if st.record.status != Status::Paused || !thaws {
            return None;
        }
        let at = now_nanos();
        match self.host.thaw(&c.id) {
            Ok(()) => Some(at),
            Err(e) => {
                tracing::warn!(container = %c.id, signal, error = %e, "cannot thaw after a signal");
                None
            }
        }
    }

    /// Sends `signal` to PID 1. FailedPrecondition if it has exited. The
    /// caller holds the state lock, so the die event cannot come before
    /// the kill event it journals next.
    pub(super) fn send_signal(&self, c: &Container, st: &State, signal: i32) -> Result<()> {
        let Some(pid1) = &st.pid1 else {
            return Err(not_running(&c.name()));
        };
        match pid1.signal(signal) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(not_running(&c.name())),
            Err(e) => Err(super::error::failed(
                format!("signal container {}", c.name()),
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
        true => not_running(&c.name()),
        false => Error::Cgroup {
            what: format!("{what} container {}", c.name()),
            source: Box::new(e),
        },
    }
}

/// The events of `signal` sent to PID 1 at `sent_at`, and of the thaw at
/// `thawed_at` that followed it if there was one (the record says running
/// again).
pub(super) fn signalled(
    r: &mut Record,
    signal: i32,
    sent_at: i64,
    thawed_at: Option<i64>,
) -> Vec<Note> {
    let mut notes = vec![Note::kill(signal).at(sent_at)];
    if let Some(at) = thawed_at {
        r.status = Status::Running;
        notes.push(Note::new(Action::Unpause).at(at));
    }
    notes
}
