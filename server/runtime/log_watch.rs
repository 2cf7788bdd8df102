//! Tells log followers that a container's log changed: one inotify
//! instance for the whole daemon, one watch per followed container
//! directory however many follow it, and a generation counter per directory
//! that followers wait on. Nobody polls, and a follower costs no thread.

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

/// The inotify instance, as tokio wants it.
struct Fd(Inotify);

impl std::os::fd::AsRawFd for Fd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

pub struct LogWatch {
    inotify: Arc<AsyncFd<Fd>>,
    dirs: Mutex<Dirs>,
}

#[derive(Default)]
struct Dirs {
    by_path: HashMap<PathBuf, Dir>,
    by_wd: HashMap<WatchDescriptor, PathBuf>,
}

struct Dir {
    /// None once the kernel dropped the watch (the directory went).
    wd: Option<WatchDescriptor>,
    changed: watch::Sender<u64>,
    followers: usize,
}

/// A follower's hold on a directory's watch; dropping it lets the watch go
/// when it was the last.
pub struct Following {
    watch: Arc<LogWatch>,
    dir: PathBuf,
    /// Changes whenever something in the directory was written, created or
    /// renamed.
    pub changed: watch::Receiver<u64>,
}

impl LogWatch {
    /// Starts the reader of the daemon's inotify instance; needs a tokio
    /// runtime, on which it runs for the life of the daemon.
    pub fn start() -> std::io::Result<Arc<LogWatch>> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let fd = crate::sys::readiness::watch(Fd(inotify))?;
        let watch = Arc::new(LogWatch {
            inotify: Arc::new(fd),
            dirs: Mutex::new(Dirs::default()),
        });
        let weak = Arc::downgrade(&watch);
        let inotify = watch.inotify.clone();
        tokio::spawn(async move {
            loop {
                let Ok(mut ready) = inotify.readable().await else {
                    return;
                };
                let events = match ready.get_inner().0.read_events() {
                    Ok(e) => e,
                    Err(nix::errno::Errno::EAGAIN) => {
                        ready.clear_ready();
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read log notifications");
                        return;
                    }
                };
                let Some(watch) = weak.upgrade() else {
                    return;
                };
                let mut dirs = watch.lock();
                for e in events {
                    let gone = e.mask.contains(AddWatchFlags::IN_IGNORED);
                    let path = match gone {
                        true => dirs.by_wd.remove(&e.wd),
                        false => dirs.by_wd.get(&e.wd).cloned(),
                    };
                    if let Some(d) = path.and_then(|p| dirs.by_path.get_mut(&p)) {
                        if gone {
                            // Its number may be reused for another watch.
                            d.wd = None;
                        }
                        d.changed.send_modify(|g| *g += 1);
                    }
                }
            }
        });
        Ok(watch)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Dirs> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows `dir`: the returned receiver changes after each change in it.
    pub fn follow(self: &Arc<Self>, dir: &Path) -> std::io::Result<Following> {
        let mut dirs = self.lock();
        let changed = match dirs.by_path.get_mut(dir) {
            Some(d) => {
                d.followers += 1;
                d.changed.subscribe()
            }
            None => {
                let mask = AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_CLOSE_WRITE;
                let wd = self.inotify.get_ref().0.add_watch(dir, mask)?;
                let (tx, rx) = watch::channel(0);
                dirs.by_wd.insert(wd, dir.to_path_buf());
                dirs.by_path.insert(
                    dir.to_path_buf(),
                    Dir {
                        wd: Some(wd),
                        changed: tx,
                        followers: 1,
                    },
                );
                rx
            }
        };
        Ok(Following {
            watch: self.clone(),
            dir: dir.to_path_buf(),
            changed,
        })
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut dirs = self.watch.lock();
        let last = match dirs.by_path.get_mut(&self.dir) {
            Some(d) => {
                d.followers -= 1;
                d.followers == 0
            }
            None => false,
        };
        if last {
            if let Some(wd) = dirs.by_path.remove(&self.dir).and_then(|d| d.wd) {
                dirs.by_wd.remove(&wd);
                let _ = self.watch.inotify.get_ref().0.rm_watch(wd);
            }
        }
    }
}
