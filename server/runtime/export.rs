//! What Export and disk usage need of a container's filesystem.

use super::error::Result;
use super::Runtime;
use std::path::PathBuf;

impl Runtime {
    /// A container's filesystem as overlay layers: its lower layers (image
    /// layers or rootfs), top first, its writable layer, and a directory to
    /// mount them on (in a mount namespace of one's own).
    pub fn filesystem(&self, key: &str) -> Result<(Vec<PathBuf>, PathBuf, PathBuf)> {
        let c = self.find(key)?;
        let spec = c.spec();
        let lower = match &spec.image {
            Some(image) => image
                .lower
                .iter()
                .map(|l| {
                    let link = PathBuf::from(&image.layers_dir).join(l);
                    std::fs::canonicalize(&link).unwrap_or(link)
                })
                .collect(),
            None => vec![PathBuf::from(&spec.rootfs)],
        };
        Ok((lower, c.dir.join("upper"), c.dir.join("merged")))
    }

    /// Bytes in a container's writable layer.
    pub fn writable_size(&self, key: &str) -> u64 {
        match self.find(key) {
            Ok(c) => super::prune::disk_usage(&c.dir.join("upper")),
            Err(_) => 0,
        }
    }
}
