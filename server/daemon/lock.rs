//! One daemon per root: `ROOT/berthd.lock`, held with flock for the
//! daemon's whole life. The kernel releases it when the daemon dies, however
//! it dies, so it never goes stale; it is close-on-exec, so no monitor or
//! helper keeps it after berthd is gone. The file holds the holder's pid,
//! for the message a second daemon gets.

use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "another berthd (pid {pid}) holds {root}: stop it first, or give this one another --root"
    )]
    Held { pid: String, root: String },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The lock on a root, held while this lives.
pub struct RootLock(#[allow(dead_code)] nix::fcntl::Flock<File>);

impl RootLock {
    /// Takes the lock on `root` or says who holds it. Touches nothing
    /// else under `root`.
    pub fn take(root: &Path) -> Result<RootLock, Error> {
        let path = root.join("berthd.lock");
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let held = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => held,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(Error::Held {
                    pid: match pid.trim() {
                        "" => "unknown".into(),
                        p => p.into(),
                    },
                    root: root.display().to_string(),
                });
            }
            Err((_, e)) => return Err(io(e.into())),
        };
        let mut f: &File = &held;
        f.set_len(0).map_err(io)?;
        f.rewind().map_err(io)?;
        writeln!(f, "{}", std::process::id()).map_err(io)?;
        Ok(RootLock(held))
    }
}
