//! The tasks that follow a running container: the exit watcher (die, and
//! stop if one was in progress), the OOM watcher, and the stop driver that
//! sends SIGKILL when a stop's grace runs out.

use super::container::{Container, IfUnsaved, Note, State, Status};
use super::error::Result;
use super::host::{ExitReports, Monitor};
use super::networks::event;
use super::policy;
use super::Runtime;
use crate::monitor::protocol::ExitRecord;
use crate::shutdown::shutting_down;
use crate::sys::time::now_nanos;
use berth::pb::Action;
use std::sync::Arc;
use std::time::Duration;

/// After an OOM notification: v1 notifies before the OOM killer has chosen
/// and counted its victim, so the count is read again after these delays
/// (ms) until it moves.
const OOM_RECHECKS: [u64; 7] = [0, 1, 4, 16, 64, 256, 1024];

impl Runtime {
    /// Records the exit and emits die as the monitor reports it on
    /// `reports`, or once the monitor has exited (from its exit file);
    /// what follows the run (its networks, auto-remove, a restart) once it
    /// has exited. Until then the container drains (Container::drained).
    pub(super) fn spawn_watcher(
        self: &Arc<Self>,
        c: Arc<Container>,
        monitor: Box<dyn Monitor>,
        reports: Option<Box<dyn ExitReports>>,
    ) {
        let rt = self.clone();
        let drained = c.draining();
        tokio::spawn(async move {
            let mut gone = monitor.exited();
            if let Some(mut reports) = reports {
                tokio::select! {
                    () = &mut gone => {}
                    Some(exit) = reports.reported() => {
                        match rt.record_exit(&c, Some(exit)) {
                            Ok(()) => reports.recorded(),
                            // The monitor writes it; it is read from there.
                            Err(e) => tracing::warn!(container = %c.id, error = %e, "cannot record the exit the monitor reported"),
                        }
                        gone.await;
                    }
                }
            } else {
                gone.await;
            }
            let _ = drained.send(true);
            rt.finish_run(c).await;
        });
    }

    /// Records the end of the current run, as the monitor reported it or
    /// from its exit file, and emits die, a disconnect per network it was
    /// on, then stop if a stop was in progress, in one transaction.
    pub(super) fn record_exit(&self, c: &Container, reported: Option<ExitRecord>) -> Result<()> {
        let exit = reported.or_else(|| ExitRecord::read(&c.dir));
        // Its networks' names, read before its state is taken (a network
        // remove holds the networks while it reads containers' states).
        let networks = match c.spec().network {
            crate::spec::Network::Bridge => self.networks_read().clone(),
            _ => Default::default(),
        };
        let mut st = c.state();
        if !st.record.status.is_running() {
            return Ok(());
        }
        if exit.is_none() {
            // The monitor died without recording: make sure nothing of the
            // container survives it.
            tracing::error!(container = %c.id, "monitor exited without an exit status");
            if let Some(p) = &st.pid1 {
                let _ = p.signal(libc::SIGKILL);
            }
            let _ = self.host.kill_all(&c.id);
        }
        // A Restart request starts it itself.
        let by_policy = c.restarting.load(std::sync::atomic::Ordering::SeqCst) == 0;
        c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
            let reported = r.oom_kills;
            match exit {
                Some(x) => {
                    r.exit_code = x.exit_code;
                    r.signal = x.signal;
                    r.finished_at = x.finished_at;
                    r.oom_kills = x.oom_kills.unwrap_or(0).max(reported);
                }
                None => {
                    r.exit_code = 255;
                    r.signal = 0;
                    r.finished_at = now_nanos();
                }
            }
            let stopping = r.stop_deadline != 0;
            r.status = Status::Exited;
            r.pid = 0;
            r.exits += 1;
            r.stop_deadline = 0;
            r.oom_killed = r.oom_kills > 0;
            if by_policy {
                policy::decide(r);
            }
            // OOM kills the watcher did not get to journal come first; they
            // happened before the exit, so they carry its time at the latest.
            let mut notes: Vec<Note> = (reported..r.oom_kills)
                .map(|_| Note::new(Action::Oom).at(r.finished_at))
                .collect();
            notes.push(Note::die(r));
            // It leaves its networks (the last joined first), as Docker
            // reports it: after die, before stop. The unwiring follows,
            // without events of its own.
            for a in std::mem::take(&mut r.networks).iter().rev() {
                if let Some(net) = networks.get(&a.network_id) {
                    notes.push(Note::other(event(Action::Disconnect, net, &c.id)));
                }
            }
            if stopping {
                notes.push(Note::new(Action::Stop));
            }
            notes
        })?;
        // Until it was written the container stayed running here, so its
        // die event comes before anything that happens to it next.
        st.pid1 = None;
        let r = &st.record;
        tracing::info!(container = %c.id, exit_code = r.exit_code, signal = r.signal, "died");
        Ok(())
    }

    /// Records the end of the current run, trying again every second if
    /// the store cannot take it now (a full disk): the monitor has the
    /// status on disk, so it is never lost, and the next daemon start
    /// records it if this one cannot.
    pub(super) async fn finish_run(self: Arc<Self>, c: Arc<Container>) {
        let mut shutdown = self.shutdown.clone();
        loop {
            let Err(e) = self.record_exit(&c, None) else {
                self.unwire(&c).await;
                self.remove_if_auto(&c).await;
                self.schedule_restart(c);
                return;
            };
            tracing::error!(container = %c.id, error = %e, "cannot record the exit; trying again");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutting_down(&mut shutdown) => return,
            }
        }
    }

    /// Takes an exited container off its network, under its op lock: not
    /// if a remove did it already, nor once a new run (whose start did it)
    /// is under way.
    pub(super) async fn unwire(&self, c: &Container) {
        // Not for the others: the lock would only make them wait.
        if !c.spec().network.wired() {
            return;
        }
        let _op = c.op.lock().await;
        let done = {
            let st = c.state();
            st.removed || st.record.status.is_running()
        };
        if !done {
            self.disconnect(c, false).await;
        }
    }

    /// Journals the OOM kills of run `exits` as the kernel reports them,
    /// until the run ends. Whatever it has not journaled when the run ends,
    /// `record_exit` does, from the count the monitor read last.
    pub(super) fn spawn_oom_watcher(self: &Arc<Self>, c: Arc<Container>, exits: u64) {
        let mut notifier = match self.host.oom_notifier(&c.id) {
            Ok(n) => n,
            // The run ended before it could be watched: the monitor's exit
            // report counts its OOM kills.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(container = %c.id, error = %e, "run over before its OOM watch");
                return;
            }
            Err(e) => {
                tracing::warn!(container = %c.id, error = %e, "cannot watch for OOM kills");
                return;
            }
        };
        let rt = self.clone();
        tokio::spawn(async move {
            let mut changed = c.changed.subscribe();
            let mut noted = rt.note_ooms(&c, exits);
            while noted.is_some() {
                tokio::select! {
                    r = notifier.notified() => if r.is_err() { return },
                    r = changed.changed() => {
                        if r.is_err() {
                            return;
                        }
                        // A state change: only whether the run is over.
                        noted = rt.note_ooms(&c, exits);
                        continue;
                    }
                }
                for delay in OOM_RECHECKS {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    noted = rt.note_ooms(&c, exits);
                    if noted != Some(false) {
                        break;
                    }
                }
            }
        });
    }

    /// Journals an OOM event for each kill of run `exits` the cgroup
    /// counts beyond those already journaled. Whether there were any; None
    /// once the run is over.
    fn note_ooms(&self, c: &Container, exits: u64) -> Option<bool> {
        // Taken before PID 1 is seen running: a kill noted here then has a
        // time before the exit's. Once PID 1 has exited, its exit record
        // notes the kills instead, at the exit's time, so an OOM event
        // never comes later than the die it caused.
        let count = self.host.oom_kills(&c.id);
        let mut st = c.state();
        let at = now_nanos();
        if st.removed || st.record.exits != exits || !st.record.status.is_running() {
            return None;
        }
        if st.pid1_exited() {
            return Some(false);
        }
        let n = match count {
            Some(n) if n > st.record.oom_kills => n,
            _ => return Some(false),
        };
        let noted = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
            let notes = (r.oom_kills..n)
                .map(|_| Note::new(Action::Oom).at(at))
                .collect();
            r.oom_kills = n;
            notes
        });
        match noted {
            Ok(()) => tracing::info!(container = %c.id, oom_kills = n, "OOM kill"),
            Err(e) => tracing::error!(container = %c.id, error = %e, "cannot record OOM kill"),
        }
        Some(true)
    }

    /// Sends SIGKILL when the stop deadline of run `exits` passes.
    pub(super) fn spawn_stop_driver(self: &Arc<Self>, c: Arc<Container>, exits: u64) {
        let rt = self.clone();
        tokio::spawn(async move {
            let mut changed = c.changed.subscribe();
            loop {
                let deadline = {
                    let st = c.state();
                    if st.record.exits != exits || !st.record.status.is_running() {
                        return;
                    }
                    st.record.stop_deadline
                };
                let grace = async {
                    match deadline {
                        i64::MAX => std::future::pending().await,
                        d => {
                            let left = d.saturating_sub(now_nanos()).max(0) as u64;
                            tokio::time::sleep(Duration::from_nanos(left)).await
                        }
                    }
                };
                tokio::select! {
                    r = changed.changed() => if r.is_err() { return },
                    _ = grace => {
                        rt.grace_over(&c, exits).await;
                        return;
                    }
                }
            }
        });
    }

    /// The stop's grace ran out: unpause (if paused) and SIGKILL.
    async fn grace_over(&self, c: &Container, exits: u64) {
        let _op = c.op.lock().await;
        let mut st = c.state();
        if st.record.exits != exits || !st.record.status.is_running() {
            return;
        }
        // If it exited just now, its die event is on its way.
        let sent_at = now_nanos();
        if self.send_signal(c, &st, libc::SIGKILL).is_err() {
            return;
        }
        self.thaw_for_kill(c, &st);
        let killed = c.transition(&mut st, &self.bus, IfUnsaved::Keep, |r| {
            let mut notes = Vec::new();
            if r.status == Status::Paused {
                r.status = Status::Running;
                notes.push(Note::new(Action::Unpause).at(sent_at));
            }
            notes.push(Note::kill(libc::SIGKILL).at(sent_at));
            notes
        });
        if let Err(e) = killed {
            tracing::error!(container = %c.id, error = %e, "cannot record stop's kill");
        }
    }

    /// Thaws a paused container that was just sent SIGKILL (so it can die).
    pub(super) fn thaw_for_kill(&self, c: &Container, st: &State) {
        if st.record.status == Status::Paused {
            if let Err(e) = self.host.thaw(&c.id) {
                tracing::warn!(container = %c.id, error = %e, "cannot thaw for kill");
            }
        }
    }
}

impl Container {
    /// For a new run's watcher: the sender it tells once the monitor is
    /// gone.
    pub(super) fn draining(&self) -> tokio::sync::watch::Sender<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        *self.monitor_gone.lock().unwrap_or_else(|p| p.into_inner()) = rx;
        tx
    }

    /// Waits until the last run's monitor is gone. Its exit may be
    /// recorded before (as the monitor reported it), but what comes after
    /// a run (a new start, a remove) must not meet it cleaning up.
    pub(super) async fn drained(&self) {
        let mut gone = self
            .monitor_gone
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let _ = gone.wait_for(|gone| *gone).await;
    }
}
