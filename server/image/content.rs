//! The content store: blobs by digest under `blobs/sha256/`, each written
//! to `ingest/` first, hashed and counted as it streams, and renamed into
//! place only once its digest and size are what was expected. A blob in
//! `blobs/` is always whole and verified; an interrupted write leaves only
//! a file in `ingest/`, which the next start clears.

use super::reference::Digest;
use super::Error;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct Content {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl Content {
    pub fn open(dir: &Path) -> Result<Content, Error> {
        let c = Content {
            blobs: dir.join("blobs").join("sha256"),
            ingest: dir.join("ingest"),
        };
        let _ = std::fs::remove_dir_all(&c.ingest);
        for d in [&c.blobs, &c.ingest] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::io(format!("create {}", d.display()), e))?;
        }
        Ok(c)
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn size(&self, d: &Digest) -> Option<u64> {
        std::fs::metadata(self.path(d)).ok().map(|m| m.len())
    }

    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, Error> {
        std::fs::read(self.path(d)).map_err(|e| Error::io(format!("read blob {d}"), e))
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, Error> {
        File::open(self.path(d)).map_err(|e| Error::io(format!("open blob {d}"), e))
    }

    /// A writer for a new blob; `expect` is the digest and size it must
    /// have, if known.
    pub fn writer(&self, expect: Option<(Digest, u64)>) -> Result<Writer, Error> {
        let mut raw = [0u8; 12];
        crate::sys::linux::random_bytes(&mut raw).map_err(|e| Error::io("random name", e))?;
        let path = self.ingest.join(hex::encode(raw));
        let file =
            File::create(&path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok(Writer {
            file: Some(file),
            path,
            hash: Sha256::new(),
            size: 0,
            expect,
        })
    }

    /// Writes `data` as a blob and returns its digest.
    pub fn put(&self, data: &[u8]) -> Result<Digest, Error> {
        let d = sha256(data);
        if !self.has(&d) {
            let mut w = self.writer(Some((d.clone(), data.len() as u64)))?;
            w.write_all(data).map_err(|e| Error::io("write blob", e))?;
            w.commit(self)?;
        }
        Ok(d)
    }

    pub fn remove(&self, d: &Digest) -> u64 {
        let size = self.size(d).unwrap_or(0);
        match std::fs::remove_file(self.path(d)) {
            Ok(()) => size,
            Err(_) => 0,
        }
    }

    /// Every blob held.
    pub fn list(&self) -> Vec<Digest> {
        super::reference::digests_in(&self.blobs)
    }
}

pub fn sha256(data: &[u8]) -> Digest {
    Digest::of_hex(&hex::encode(Sha256::digest(data)))
}

/// A blob being written: hashed and counted as it goes.
pub struct Writer {
    file: Option<File>,
    path: PathBuf,
    hash: Sha256,
    size: u64,
    expect: Option<(Digest, u64)>,
}

impl Writer {
    /// Verifies and moves the blob into the store; returns its digest and
    /// size.
    pub fn commit(mut self, store: &Content) -> Result<(Digest, u64), Error> {
        let digest = Digest::of_hex(&hex::encode(std::mem::take(&mut self.hash).finalize()));
        if let Some((d, size)) = &self.expect {
            if *size != self.size {
                return Err(Error::Mismatch(format!(
                    "blob {d} has {} bytes, not the {size} its descriptor says",
                    self.size
                )));
            }
            if *d != digest {
                return Err(Error::Mismatch(format!(
                    "blob {d} arrived with digest {digest}"
                )));
            }
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::Internal("blob written twice".into()))?;
        file.sync_all().map_err(|e| Error::io("sync blob", e))?;
        drop(file);
        let dest = store.path(&digest);
        std::fs::rename(&self.path, &dest)
            .map_err(|e| Error::io(format!("store blob {digest}"), e))?;
        Ok((digest, self.size))
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob closed"))?;
        let n = file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        if let Some((_, max)) = &self.expect {
            if self.size > *max {
                return Err(io::Error::other(format!(
                    "blob is larger than the {max} bytes its descriptor says"
                )));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Hashes what passes through a reader.
pub struct Hashing<R> {
    pub inner: R,
    hash: Sha256,
    pub count: u64,
}

impl<R> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hash: Sha256::new(),
            count: 0,
        }
    }

    pub fn digest(self) -> Digest {
        Digest::of_hex(&hex::encode(self.hash.finalize()))
    }
}

impl<R: io::Read> io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
