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

    /// The bytes of the files a container wrote, and those with its lower
    /// layers' (Docker's SizeRw and SizeRootFs): file lengths, each
    /// hard-linked file once.
    pub fn sizes(&self, key: &str) -> Result<(u64, u64)> {
        let (lower, upper, _) = self.filesystem(key)?;
        let mut seen = std::collections::HashSet::new();
        let rw = apparent_size(&upper, &mut seen);
        let base: u64 = lower.iter().map(|l| apparent_size(l, &mut seen)).sum();
        Ok((rw, rw + base))
    }
}

/// The lengths of the files under `dir` (symlinks not followed), each
/// inode once.
fn apparent_size(dir: &std::path::Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += apparent_size(&e.path(), seen);
        } else if seen.insert((m.dev(), m.ino())) {
            total += m.len();
        }
    }
    total
}
