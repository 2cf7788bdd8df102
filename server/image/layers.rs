//! Unpacked layers, one directory per layer content (its diff id), shared
//! by every image and container that has it:
//!
//!   layers/<diff id hex>/fs      the layer, an overlay lower directory
//!   layers/l/<16 hex>            a short link to ../<hex>/fs
//!
//! Overlay's mount options must fit in a page: containers mount with the
//! layers directory as working directory and name each lower layer by its
//! short link ("l/0123456789abcdef", 18 bytes), so some 200 layers fit.
//!
//! A layer is unpacked into `layers/tmp-*` and renamed into place whole:
//! a layer directory that exists is complete.

use super::reference::Digest;
use super::Error;
use std::path::{Path, PathBuf};

pub struct Layers {
    dir: PathBuf,
}

/// A layer being unpacked; removed unless committed.
pub struct Staging {
    dir: PathBuf,
    committed: bool,
}

impl Staging {
    /// Where the layer's files go.
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The short link name of a layer.
pub fn short(diff_id: &Digest) -> String {
    diff_id.hex()[..16].to_string()
}

impl Layers {
    pub fn open(dir: &Path) -> Result<Layers, Error> {
        let l = Layers {
            dir: dir.to_path_buf(),
        };
        std::fs::create_dir_all(dir.join("l"))
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        // Unpacks cut off by a crash.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("tmp-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(l)
    }

    /// The directory containers mount from (lower layers are named
    /// relative to it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(diff_id.hex())
    }

    pub fn has(&self, diff_id: &Digest) -> bool {
        self.path(diff_id).join("fs").is_dir()
    }

    /// A fresh directory to unpack into.
    pub fn stage(&self) -> Result<Staging, Error> {
        let mut raw = [0u8; 8];
        crate::sys::linux::random_bytes(&mut raw).map_err(|e| Error::io("random name", e))?;
        let dir = self.dir.join(format!("tmp-{}", hex::encode(raw)));
        std::fs::create_dir_all(dir.join("fs"))
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        Ok(Staging {
            dir,
            committed: false,
        })
    }

    /// Moves an unpacked layer into place (a layer already there wins: the
    /// same content was unpacked twice).
    pub fn commit(&self, mut s: Staging, diff_id: &Digest, size: u64) -> Result<(), Error> {
        std::fs::write(s.dir.join("size"), size.to_string())
            .map_err(|e| Error::io("write layer size", e))?;
        let link = self.dir.join("l").join(short(diff_id));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("../{}/fs", diff_id.hex()), &link)
            .map_err(|e| Error::io(format!("link {}", link.display()), e))?;
        match std::fs::rename(&s.dir, self.path(diff_id)) {
            Ok(()) => {
                s.committed = true;
                Ok(())
            }
            Err(_) if self.has(diff_id) => Ok(()),
            Err(e) => Err(Error::io(format!("store layer {diff_id}"), e)),
        }
    }

    /// The bytes of file content in a layer.
    pub fn size(&self, diff_id: &Digest) -> u64 {
        std::fs::read_to_string(self.path(diff_id).join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Every layer held.
    pub fn list(&self) -> Vec<Digest> {
        super::reference::digests_in(&self.dir)
    }

    /// Removes a layer; returns the bytes it held.
    pub fn remove(&self, diff_id: &Digest) -> u64 {
        let size = self.size(diff_id);
        let _ = std::fs::remove_file(self.dir.join("l").join(short(diff_id)));
        // Renamed aside first, so a half-removed layer is never taken for
        // a whole one.
        let aside = self.dir.join(format!("tmp-rm-{}", diff_id.hex()));
        match std::fs::rename(self.path(diff_id), &aside) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&aside);
                size
            }
            Err(_) => 0,
        }
    }
}
