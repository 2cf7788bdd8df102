//! Pause and unpause: the container's cgroup frozen and thawed.

use super::container::{IfUnsaved, Note, Status};
use super::error::{not_running, Error, Result};
use super::kill::cgroup_failed;
use super::Runtime;
use berth::pb::Action;

impl Runtime {
    pub async fn pause(&self, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let run = {
            let st = c.state();
            match st.record.status {
                s if s.can_pause() => st.record.exits,
                Status::Paused => {
                    return Err(Error::FailedPrecondition(format!(
                        "container {} is already paused",
                        c.name()
                    )))
                }
                Status::Restarting => {
                    return Err(Error::FailedPrecondition(format!(
                        "container {} is restarting: wait until it is running",
                        c.name()
                    )))
                }
                _ => return Err(not_running(&c.name())),
            }
        };
        let frozen = self.host.freeze(&c.id);
        let mut st = c.state();
        if st.record.status != Status::Running || st.record.exits != run {
            return Err(not_running(&c.name()));
        }
        if let Err(e) = frozen {
            let _ = self.host.thaw(&c.id);
            return Err(cgroup_failed(&c, &st, "pause", e));
        }
        let paused = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
            r.status = Status::Paused;
            vec![Note::new(Action::Pause)]
        });
        if paused.is_err() {
            let _ = self.host.thaw(&c.id);
        }
        paused
    }

    pub async fn unpause(&self, key: &str) -> Result<()> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let mut st = c.state();
        if !st.record.status.can_unpause() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not paused",
                c.name()
            )));
        }
        // Taken before the thaw: the processes may exit as soon as it is done.
        let at = crate::sys::time::now_nanos();
        self.host
            .thaw(&c.id)
            .map_err(|e| cgroup_failed(&c, &st, "unpause", e))?;
        // The processes run again whatever the store says: if the write
        // fails, the record says paused until the next change is written.
        c.transition(&mut st, &self.bus, IfUnsaved::Keep, |r| {
            r.status = Status::Running;
            vec![Note::new(Action::Unpause).at(at)]
        })
    }
}
