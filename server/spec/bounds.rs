//! What a container's configuration may hold: the checks on its process
//! (command, environment) and its labels and log settings, with the
//! bounds that keep a record small enough to list and a process small
//! enough for the kernel to exec, whatever an image's config adds.

use super::{Error, Request, MAX_LOG_FILES, MAX_LOG_SIZE, MIN_LOG_SIZE};

/// The longest argument or environment entry: the kernel's MAX_ARG_STRLEN
/// (32 pages), NUL included.
pub const MAX_ARG_BYTES: usize = 128 << 10;
/// The most bytes a container's command and environment may take, NULs
/// included: half of what the kernel allows at exec with the usual 8 MiB
/// stack, and what keeps a container's record small.
pub const MAX_PROCESS_BYTES: usize = 1 << 20;
/// The most bytes of labels, keys and values together.
pub const MAX_LABEL_BYTES: usize = 256 << 10;
/// The most exposed ports and volumes together.
pub const MAX_PORTS_AND_VOLUMES: usize = 4096;

impl Request {
    /// A command to run, without NUL, and KEY=VALUE environment entries.
    pub(super) fn check_process(&self) -> Result<(), Error> {
        if self.args.is_empty() || self.args[0].is_empty() {
            return Err(Error::EmptyArgs);
        }
        if let Some(a) = self.args.iter().find(|a| a.contains('\0')) {
            return Err(Error::Args(a.as_str().into()));
        }
        for e in &self.env {
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() && !e.contains('\0') => {}
                _ => return Err(Error::Env(e.as_str().into())),
            }
        }
        let strings = || self.args.iter().chain(&self.env);
        if let Some(long) = strings().find(|s| s.len() >= MAX_ARG_BYTES) {
            return Err(Error::ArgTooLong(long.as_str().into()));
        }
        let total: usize = strings().map(|s| s.len() + 1).sum();
        if total > MAX_PROCESS_BYTES {
            return Err(Error::ProcessTooLarge(total));
        }
        Ok(())
    }

    /// The CRI log, masked and read-only paths, and the cgroup parent:
    /// absolute, and nothing that leads elsewhere.
    pub(super) fn check_paths(&self) -> Result<(), Error> {
        if !self.cri_log.is_empty()
            && (!self.cri_log.starts_with('/') || self.cri_log.contains('\0'))
        {
            return Err(Error::CriLog(self.cri_log.as_str().into()));
        }
        let paths = self
            .masked_paths
            .iter()
            .chain(&self.readonly_paths)
            .flatten();
        if let Some(bad) = paths
            .into_iter()
            .find(|p| super::normalize(p).is_none_or(|n| n == "/"))
        {
            return Err(Error::ConfinedPath(bad.as_str().into()));
        }
        let parent = &self.cgroup_parent;
        let parts = || parent.split('/').filter(|c| !c.is_empty());
        let sane = parent.starts_with('/')
            && parts().count() > 0
            && !parts().any(|c| matches!(c, "." | ".."))
            && !parent.contains('\0');
        if !parent.is_empty() && !sane {
            return Err(Error::CgroupParent(parent.as_str().into()));
        }
        Ok(())
    }

    pub(super) fn check_labels_and_log(&self) -> Result<(), Error> {
        if let Some(k) = self
            .labels
            .keys()
            .find(|k| k.is_empty() || k.contains('\0'))
        {
            return Err(Error::Label(k.as_str().into()));
        }
        let labels: usize = self.labels.iter().map(|(k, v)| k.len() + v.len()).sum();
        if labels > MAX_LABEL_BYTES {
            return Err(Error::LabelsTooLarge(labels));
        }
        let listed = self.exposed_ports.len() + self.expose.len() + self.volumes.len();
        if listed > MAX_PORTS_AND_VOLUMES {
            return Err(Error::TooManyPortsAndVolumes(listed));
        }
        if self.log_max_files > MAX_LOG_FILES {
            return Err(Error::LogMaxFiles(self.log_max_files));
        }
        if self.log_max_size != 0 && !(MIN_LOG_SIZE..=MAX_LOG_SIZE).contains(&self.log_max_size) {
            return Err(Error::LogMaxSize(self.log_max_size));
        }
        Ok(())
    }
}
