//! Top: the processes of a running container, as the host sees them.

use super::error::{not_running, Error, Result};
use super::Runtime;
use crate::sys::procs::{self, Process};

impl Runtime {
    /// By pid.
    pub async fn top(&self, key: &str) -> Result<Vec<Process>> {
        let c = self.find(key)?;
        let pid1 = {
            let st = c.state();
            if st.removed {
                return Err(Error::NotFound(key.into()));
            }
            if !st.record.status.is_running() {
                return Err(not_running(&c.name()));
            }
            st.record.pid as u32
        };
        let pids = self.host.pids(&c.id);
        // The container's own processes: not an exec helper, which is in
        // its cgroup but not its pid namespace.
        let mut out: Vec<Process> = tokio::task::spawn_blocking(move || {
            let ns = procs::pid_namespace(pid1);
            pids.into_iter()
                .filter(|p| ns.is_some() && procs::pid_namespace(*p) == ns)
                .filter_map(procs::process)
                .collect()
        })
        .await
        .unwrap_or_default();
        out.sort_by_key(|p| p.pid);
        Ok(out)
    }
}
