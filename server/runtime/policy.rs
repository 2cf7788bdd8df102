//! Restart policies at work: the decision at each exit (taken in the same
//! transaction as the die event, so no exit is lost or counted twice), the
//! wait for the delay, the start by the policy, and the starts after a host
//! boot. The delay's end is in the record: a daemon restart resumes it.

use super::container::{Container, IfUnsaved, Record, State, Status};
use super::Runtime;
use crate::spec::{next_delay, Ended};
use crate::sys::time::now_nanos;
use std::sync::Arc;

/// Who starts a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starter {
    /// A request: the policy's count and delay start over.
    User,
    /// Its restart policy, ending the wait after run `exits`.
    Policy { exits: u64 },
}

/// How run `r` ended, as its policy weighs it.
fn ended(r: &Record) -> Ended {
    Ended {
        exit_code: r.exit_code,
        stopped: r.stopped_by_user,
        restarts: r.restart_count,
    }
}

/// In the transition that records an exit: if the policy restarts the
/// run that ended, the record becomes Restarting with its delay.
pub(super) fn decide(r: &mut Record) {
    if !r.spec.restart.restarts(ended(r)) {
        return;
    }
    wait_for_restart(r, r.finished_at);
}

/// Whether a restarting container's policy still restarts the run that
/// ended (it was changed while it waited): its count already holds the
/// restart it waits for.
pub(super) fn still_restarts(r: &Record) -> bool {
    let end = Ended {
        restarts: r.restart_count.saturating_sub(1),
        ..ended(r)
    };
    r.spec.restart.restarts(end)
}

/// Restarting, due after the next delay from `from` (unix nanos).
fn wait_for_restart(r: &mut Record, from: i64) {
    let ran = r.finished_at.saturating_sub(r.started_at);
    r.restart_delay_ms = next_delay(r.restart_delay_ms, ran);
    r.restart_count += 1;
    r.restart_due = from.saturating_add(r.restart_delay_ms as i64 * 1_000_000);
    r.status = Status::Restarting;
}

/// Ends a restarting container's wait (stop, kill, an update of its
/// policy): it stays exited.
pub(super) fn settle(r: &mut Record) {
    r.status = Status::Exited;
    r.restart_due = 0;
}

impl Runtime {
    /// Starts the restart of `c` when its delay ends, if it is waiting for
    /// one; nothing happens if anything else comes first (a stop, a
    /// remove, a user's start).
    pub(super) fn schedule_restart(self: &Arc<Self>, c: Arc<Container>) {
        let exits = {
            let st = c.state();
            if st.removed || st.record.status != Status::Restarting {
                return;
            }
            st.record.exits
        };
        let rt = self.clone();
        tokio::spawn(async move {
            let mut shutdown = rt.shutdown.clone();
            let due = |st: &State| {
                let r = &st.record;
                let waits = !st.removed && r.status == Status::Restarting && r.exits == exits;
                waits.then_some(Some(r.restart_due))
            };
            if c.until_due(&mut shutdown, due).await {
                rt.restart_by_policy(&c, exits).await;
            }
        });
    }

    /// The policy's start after run `exits`. If it fails the container
    /// stays exited, as Docker gives up on a restart that cannot start.
    async fn restart_by_policy(self: &Arc<Self>, c: &Arc<Container>, exits: u64) {
        let started = self
            .start_container(c, Starter::Policy { exits }, |_| Ok(()))
            .await;
        let Err(e) = started else { return };
        tracing::error!(container = %c.id, error = %e, "restart by policy failed: it stays exited");
        let _op = c.op.lock().await;
        let mut st = c.state();
        let r = &st.record;
        if st.removed || r.status != Status::Restarting || r.exits != exits {
            return;
        }
        if let Err(e) = c.transition(&mut st, &self.bus, IfUnsaved::Keep, |r| {
            settle(r);
            vec![]
        }) {
            tracing::error!(container = %c.id, error = %e, "cannot record the end of the restarts");
        }
    }

    /// At the daemon's first start after the host booted: the containers
    /// that ran before and whose policy says so (Docker's rule at its
    /// start) wait for a restart, due now. Those joining another's
    /// namespaces come last, so that theirs run first.
    pub(super) fn restart_after_boot(self: &Arc<Self>) {
        let mut due: Vec<Arc<Container>> = self
            .all()
            .into_iter()
            .filter(|c| {
                let st = c.state();
                let r = &st.record;
                let ran = r.started_at != 0 || r.exits > 0;
                !st.removed
                    && ran
                    && matches!(r.status, Status::Exited | Status::Restarting)
                    && r.spec.restart.restarts_at_boot(ended(r))
            })
            .collect();
        due.sort_by_key(|c| {
            let spec = c.spec();
            (spec.namespaces.joins_another(), c.state().record.created_at)
        });
        let now = now_nanos();
        let mut waiting = Vec::new();
        for c in due {
            let mut st = c.state();
            let waits = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
                // Docker's start at boot is a fresh start: the count and
                // the delay start over.
                r.restart_count = 0;
                r.restart_delay_ms = 0;
                r.stopped_by_user = false;
                r.status = Status::Restarting;
                r.restart_due = now;
                vec![]
            });
            match waits {
                Ok(()) => waiting.push((c.clone(), st.record.exits)),
                Err(e) => {
                    tracing::error!(container = %c.id, error = %e, "cannot restart after boot")
                }
            }
        }
        // One after another, in that order.
        let rt = self.clone();
        tokio::spawn(async move {
            for (c, exits) in waiting {
                rt.restart_by_policy(&c, exits).await;
            }
        });
    }
}
