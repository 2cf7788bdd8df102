//! Prune: every container that does not run (created or exited) removed,
//! and the space it held counted.

use super::container::Status;
use super::error::{Error, Result};
use super::Runtime;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

impl Runtime {
    /// Removes the containers that neither run nor are paused, with every
    /// label in `labels` (an empty value: any) and created before `until`
    /// (unix nanos) if given. The ids removed and the bytes freed.
    pub async fn prune(
        &self,
        labels: &BTreeMap<String, String>,
        until: Option<i64>,
    ) -> Result<(Vec<String>, u64)> {
        let due: Vec<_> = self
            .list(true)
            .into_iter()
            .filter(|r| matches!(r.status, Status::Created | Status::Exited))
            .filter(|r| until.is_none_or(|u| r.created_at < u))
            .filter(|r| {
                labels.iter().all(|(k, v)| {
                    r.spec
                        .labels
                        .get(k)
                        .is_some_and(|have| v.is_empty() || have == v)
                })
            })
            .map(|r| r.id)
            .collect();
        let (mut removed, mut freed) = (Vec::new(), 0);
        for id in due {
            let dir = self.dir_of(&id);
            let size = tokio::task::spawn_blocking(move || disk_usage(&dir))
                .await
                .unwrap_or(0);
            match self.remove(&id, false).await {
                Ok(()) => {
                    removed.push(id);
                    freed += size;
                }
                // Started or removed meanwhile: not this prune's.
                Err(Error::NotFound(_) | Error::FailedPrecondition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((removed, freed))
    }
}

/// The disk space the files under `dir` take (not following links).
pub(super) fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => m.blocks() * 512 + disk_usage(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
