//! Stop: the stop signal (a paused container is thawed right after it),
//! then SIGKILL when the grace runs out (the stop driver in watch.rs);
//! returns once the run has ended.

use super::container::{IfUnsaved, Note, Status};
use super::error::{Error, Result};
use super::kill::signalled;
use super::policy;
use super::Runtime;
use crate::spec;
use crate::sys::time::now_nanos;
use berth::pb::Action;
use std::sync::Arc;

impl Runtime {
    /// `timeout`: seconds of grace (None: the container's; negative:
    /// forever). `signal`: instead of the container's stop signal.
    pub async fn stop(
        self: &Arc<Self>,
        key: &str,
        timeout: Option<i32>,
        signal: Option<&str>,
    ) -> Result<()> {
        let c = self.find(key)?;
        let spec = c.spec();
        let signal = match signal {
            Some(s) if !s.is_empty() => spec::parse_signal(s)?,
            _ => spec.stop_signal,
        };
        let deadline = deadline(timeout.unwrap_or(spec.stop_timeout));
        let mut changed = c.changed.subscribe();
        let exits = {
            let _op = c.op.lock().await;
            let mut st = c.state();
            if st.record.status == Status::Restarting {
                // Its wait ends: a stop event alone, as Docker's.
                return c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
                    policy::settle(r);
                    r.stopped_by_user = true;
                    vec![Note::new(Action::Stop)]
                });
            }
            if !st.record.status.can_stop() {
                return Ok(());
            }
            let exits = st.record.exits;
            if st.record.stop_deadline != 0 {
                // Already stopping: the signal went out once; the earliest
                // deadline wins.
                if deadline < st.record.stop_deadline {
                    c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
                        r.stop_deadline = deadline;
                        vec![]
                    })?;
                }
            } else {
                let sent_at = now_nanos();
                match self.send_signal(&c, &st, signal) {
                    Ok(()) => {
                        let thawed_at = self.thaw_after_signal(&c, &st, signal);
                        let stopping = c.transition(&mut st, &self.bus, IfUnsaved::Keep, |r| {
                            r.stop_deadline = deadline;
                            r.stopped_by_user = true;
                            signalled(r, signal, sent_at, thawed_at)
                        });
                        if let Err(e) = stopping {
                            tracing::error!(container = %c.id, error = %e, "cannot record stop");
                        }
                        drop(st);
                        self.spawn_stop_driver(c.clone(), exits);
                    }
                    // PID 1 exited just now, its exit not recorded yet: the
                    // stop still holds (its restart policy does not start
                    // it again) and ends with that exit (die, then stop),
                    // as Docker's.
                    Err(Error::FailedPrecondition(_)) => {
                        c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
                            r.stop_deadline = deadline;
                            r.stopped_by_user = true;
                            vec![]
                        })?;
                    }
                    Err(e) => return Err(e),
                }
            }
            exits
        };
        // The exit emits die and stop together; the container is off its
        // network when the stop returns.
        c.exited_after(&mut changed, exits).await;
        self.unwire(&c).await;
        Ok(())
    }
}

/// When SIGKILL is due after `timeout` seconds from now (i64::MAX: never).
fn deadline(timeout: i32) -> i64 {
    match timeout {
        t if t < 0 => i64::MAX,
        t => now_nanos().saturating_add(t as i64 * 1_000_000_000),
    }
}
