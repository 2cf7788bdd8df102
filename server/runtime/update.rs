//! Update: a container's limits changed on its cgroup at once if it runs,
//! and in its record for later starts; its restart policy.

use super::container::{IfUnsaved, Note, Status};
use super::error::{unsupported, Error, Result};
use super::{policy, records, Runtime};
use crate::spec::{Resources, ResourcesRequest, RestartPolicy};
use berth::pb::Action;

impl Runtime {
    /// Returns the limits and the restart policy in force. A policy that
    /// would not restart the last exit ends a restarting container's wait.
    pub async fn update(
        &self,
        key: &str,
        req: ResourcesRequest,
        restart: Option<RestartPolicy>,
    ) -> Result<(Resources, RestartPolicy)> {
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let (old, old_restart) = {
            let st = c.state();
            if st.removed {
                return Err(Error::NotFound(key.into()));
            }
            let spec = &st.record.spec;
            if spec.auto_remove && restart.is_some_and(|p| !p.is_no()) {
                return Err(Error::FailedPrecondition(format!(
                    "cannot update container {}: a restart policy cannot go with auto_remove (--rm)",
                    c.name()
                )));
            }
            (spec.resources.clone(), spec.restart)
        };
        let new = old.merge(&req, self.machine)?;
        self.support.check(&new).map_err(unsupported)?;
        let new_restart = restart.unwrap_or(old_restart);
        if new == old && new_restart == old_restart {
            return Ok((new, new_restart));
        }
        let mut st = c.state();
        let running = st.record.status.is_running();
        if running {
            let set = match self.host.set_limits(&c.id, &old, &new) {
                // It exited meanwhile: no cgroup to update.
                Err(_) if st.pid1_exited() => Ok(()),
                set => set,
            };
            if let Err(e) = set {
                // Put back what was written before the failure.
                let _ = self.host.set_limits(&c.id, &new, &old);
                return Err(match e.is_busy() {
                    true => Error::FailedPrecondition(format!(
                        "update container {}: {e}: it uses more memory than that and the kernel could not reclaim it",
                        c.name()
                    )),
                    false => Error::Cgroup {
                        what: format!("update container {}", c.name()),
                        source: Box::new(e),
                    },
                });
            }
        }
        let updated = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
            r.spec.resources = new.clone();
            r.spec.restart = new_restart;
            if r.status == Status::Restarting && !policy::still_restarts(r) {
                policy::settle(r);
            }
            vec![Note::new(Action::Update)]
        });
        if let Err(e) = updated {
            if running {
                let _ = self.host.set_limits(&c.id, &new, &old);
            }
            return Err(e);
        }
        // The copy is for rebuilding without the database: a failure here
        // loses nothing now, so it is logged.
        if let Err(e) = records::write_copy(&c.dir, &st.record) {
            tracing::warn!(container = %c.id, error = %e, "cannot write the record copy");
        }
        tracing::info!(container = %c.id, resources = ?new, restart = ?new_restart, "updated");
        Ok((new, new_restart))
    }
}
