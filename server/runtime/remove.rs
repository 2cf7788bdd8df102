//! Remove: the record, the cgroup and the directory of a container that
//! is not running (with force: killed first).

use super::container::{Container, IfUnsaved, Note, Status};
use super::error::{Error, Result};
use super::{records, Runtime};
use berth::pb::Action;

impl Runtime {
    pub async fn remove(&self, key: &str, force: bool) -> Result<()> {
        let c = self.find(key)?;
        if c.spec().sandbox {
            for member in self.members(&c.id) {
                match Box::pin(self.remove(&member, force)).await {
                    Ok(()) | Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let _op = c.op.lock().await;
        let mut changed = c.changed.subscribe();
        let kill_wait = self.kill_for_remove(&c, key, force)?;
        if let Some(exits) = kill_wait {
            c.exited_after(&mut changed, exits).await;
        }
        c.drained().await;
        // Off its network before it goes, if its exit was not unwired yet
        // (its watcher waits for this lock).
        self.disconnect(&c, false).await;
        {
            let mut st = c.state();
            // The copy goes first: a directory without one after a crash is
            // known to be a removed container's, and safe to delete.
            let _ = std::fs::remove_file(c.dir.join(records::RECORD_FILE));
            let destroyed = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |_| {
                vec![Note::new(Action::Destroy)]
            });
            if let Err(e) = destroyed {
                let _ = records::write_copy(&c.dir, &st.record);
                return Err(e);
            }
            // Still under the state lock: whoever sees it removed can
            // reuse its name at once.
            let mut index = self.index_mut();
            index.by_id.remove(&c.id);
            index.names.remove(&c.name());
        }
        if let Err(e) = self.host.remove_cgroup(&c.id) {
            tracing::warn!(container = %c.id, error = %e, "cannot remove cgroup");
        }
        self.host.forget_cgroup(&c.id);
        records::discard_dir(&self.root, &c.dir, &c.id);
        tracing::info!(container = %c.id, "removed");
        Ok(())
    }

    /// The ids of the containers of pod sandbox `pod`, oldest first.
    pub fn members(&self, pod: &str) -> Vec<String> {
        let mut members: Vec<(i64, String)> = self
            .all()
            .iter()
            .filter_map(|c| {
                let st = c.state();
                (st.record.spec.pod == pod && !st.removed)
                    .then(|| (st.record.created_at, c.id.clone()))
            })
            .collect();
        members.sort();
        members.into_iter().map(|(_, id)| id).collect()
    }

    /// Removes `c` if it exited and asked to be removed then
    /// (`auto_remove`); a container started again or removed meanwhile, or
    /// being restarted, is left as it is.
    pub(super) async fn remove_if_auto(&self, c: &Container) {
        let due = {
            let st = c.state();
            st.record.spec.auto_remove && !st.removed && st.record.status == Status::Exited
        } && c.restarting.load(std::sync::atomic::Ordering::SeqCst) == 0;
        if !due {
            return;
        }
        match self.remove(&c.id, false).await {
            Ok(()) | Err(Error::NotFound(_) | Error::FailedPrecondition(_)) => {}
            Err(e) => {
                tracing::error!(container = %c.id, error = %e, "cannot remove the exited container (auto_remove)")
            }
        }
    }

    /// Checks that `c` can go; with force, kills it if it runs. The exit
    /// count to wait past if it was running.
    fn kill_for_remove(&self, c: &Container, key: &str, force: bool) -> Result<Option<u64>> {
        let mut st = c.state();
        if st.removed {
            return Err(Error::NotFound(key.into()));
        }
        let status = st.record.status;
        if !status.can_remove(force) {
            let what = match status {
                Status::Paused => "paused",
                Status::Restarting => "restarting",
                _ => "running",
            };
            return Err(Error::FailedPrecondition(format!(
                "cannot remove container {}: it is {what}: stop it first or use force",
                c.name()
            )));
        }
        let running = status.is_running();
        let sent_at = crate::sys::time::now_nanos();
        if running && self.send_signal(c, &st, libc::SIGKILL).is_ok() {
            self.thaw_for_kill(c, &st);
            c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
                // Its exit is its end: its policy does not restart it.
                r.stopped_by_user = true;
                vec![Note::kill(libc::SIGKILL).at(sent_at)]
            })?;
        }
        Ok(running.then_some(st.record.exits))
    }
}
