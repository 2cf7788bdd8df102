//! Inspect and List: containers as they stand.

use super::container::{Container, Record, Status};
use super::error::{Error, Result};
use super::Runtime;
use std::sync::Arc;

impl Runtime {
    pub fn inspect(&self, key: &str) -> Result<Record> {
        let c = self.find(key)?;
        // Found just before a remove took it out of the index: gone too.
        let st = c.state();
        if st.removed {
            return Err(Error::NotFound(key.into()));
        }
        Ok(st.record.clone())
    }

    /// The file the container's output is logged to now.
    pub fn log_path(&self, id: &str) -> std::path::PathBuf {
        self.dir_of(id).join(crate::logs::LOG_FILE)
    }

    /// Newest first; with `all`, those not running too.
    pub fn list(&self, all: bool) -> Vec<Record> {
        let containers: Vec<Arc<Container>> = self.index().by_id.values().cloned().collect();
        let mut out: Vec<Record> = containers
            .iter()
            .filter_map(|c| {
                let st = c.state();
                let shown = !st.removed && (all || st.record.status.is_up());
                shown.then(|| st.record.clone())
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        out
    }
}

/// How many containers are in each state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub running: u64,
    pub paused: u64,
    /// Created or exited.
    pub stopped: u64,
}

impl Runtime {
    pub fn counts(&self) -> Counts {
        let mut n = Counts::default();
        for r in self.list(true) {
            match r.status {
                // As Docker counts them: a restarting container runs.
                Status::Running | Status::Restarting => n.running += 1,
                Status::Paused => n.paused += 1,
                Status::Created | Status::Exited => n.stopped += 1,
            }
        }
        n
    }

    /// The host's memory in bytes (0 if unknown).
    pub fn host_memory(&self) -> u64 {
        self.host_memory
    }
}
