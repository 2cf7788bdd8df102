//! The container's cgroup, through cgroups-rs, on v1, v2 and hybrid hosts:
//! creation, joining, freezing, killing every process and removal here;
//! limits (limits.rs), usage and OOM notification (usage.rs) and what the
//! host can enforce (support.rs) beside it. cgroups-rs writes the freezer's requested state
//! but does not wait for the kernel to reach it; [`Cgroup::freeze`] does.

use cgroups_rs::fs::Controller;
use cgroups_rs::fs::{freezer::FreezerController, hierarchies, Cgroup as Inner};
use cgroups_rs::{CgroupPid, FreezerState};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long freezing may take before it is undone and reported.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long killing every process may take before it is reported.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cgroup {path}: {step}: {source}")]
    Cgroups {
        path: String,
        step: &'static str,
        source: cgroups_rs::fs::error::Error,
    },
    #[error("cgroup {path}: {step}: {source}")]
    Io {
        path: String,
        step: &'static str,
        source: std::io::Error,
    },
    #[error("cgroup {0}: no freezer controller on this host")]
    NoFreezer(String),
    #[error(
        "cgroup {0}: the kernel did not report the processes frozen within 5s; thawed them again"
    )]
    FreezeTimeout(String),
    #[error("cgroup {0}: processes were still alive 5s after SIGKILL")]
    KillTimeout(String),
    #[error("this host cannot enforce {0}")]
    Unsupported(&'static str),
    #[error("cgroup parent {requested:?}: {why}")]
    Parent { requested: String, why: String },
}

/// The host's cgroup hierarchies, read once: where they are mounted does
/// not change while berthd runs, and reading /proc/self/mountinfo for
/// every cgroup opened costs more with every container's mounts (it was
/// most of a stats call with 100 pods).
pub(super) fn hierarchy() -> Box<dyn cgroups_rs::fs::Hierarchy> {
    enum Known {
        V1(hierarchies::V1),
        V2(hierarchies::V2),
    }
    static KNOWN: std::sync::OnceLock<Known> = std::sync::OnceLock::new();
    let known = KNOWN.get_or_init(|| match hierarchies::is_cgroup2_unified_mode() {
        true => Known::V2(hierarchies::V2::new()),
        false => Known::V1(hierarchies::V1::new()),
    });
    match known {
        Known::V1(h) => Box::new(h.clone()),
        Known::V2(h) => Box::new(h.clone()),
    }
}

/// A container's cgroup (which may not exist yet).
pub struct Cgroup {
    inner: Inner,
}

impl Cgroup {
    /// The cgroup at `path` below the hierarchy's root (see
    /// [`Parent::cgroup`]).
    pub fn load(path: &str) -> Cgroup {
        Cgroup {
            inner: Inner::load(hierarchy(), path),
        }
    }

    fn path(&self) -> String {
        self.inner.path().to_string()
    }

    /// The cgroup's directory on a cgroup v2 host.
    fn dir_v2(&self) -> PathBuf {
        std::path::Path::new(hierarchies::UNIFIED_MOUNTPOINT).join(self.path())
    }

    fn err(&self, step: &'static str) -> impl FnOnce(cgroups_rs::fs::error::Error) -> Error + '_ {
        move |source| Error::Cgroups {
            path: self.path(),
            step,
            source,
        }
    }

    /// Creates the cgroup. On v2 its parent already passes the
    /// controllers down ([`Parent::setup`]): a directory is all it takes.
    pub fn create(&self) -> Result<(), Error> {
        if self.inner.v2() {
            return match std::fs::create_dir(self.dir_v2()) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::Io {
                    path: self.path(),
                    step: "create",
                    source: e,
                }),
                _ => Ok(()),
            };
        }
        self.inner.create().map_err(self.err("create"))
    }

    /// On cgroup v2, the cgroup's directory opened, for a process to be
    /// cloned straight into it (CLONE_INTO_CGROUP); None on v1.
    pub fn open_v2(&self) -> Option<Result<std::os::fd::OwnedFd, Error>> {
        let open = || {
            std::fs::File::open(self.dir_v2())
                .map(Into::into)
                .map_err(|source| Error::Io {
                    path: self.path(),
                    step: "open",
                    source,
                })
        };
        self.inner.v2().then(open)
    }

    /// Moves the calling process (single-threaded) into this cgroup. On
    /// v1 it writes "0" (the calling thread) to each hierarchy's `tasks`,
    /// which needs no global lock; on v2 "0" to `cgroup.procs`.
    pub fn join_self(&self) -> Result<(), Error> {
        let me = CgroupPid::from(0);
        match self.inner.v2() {
            true => self.inner.add_task_by_tgid(me),
            false => self.inner.add_task(me),
        }
        .map_err(self.err("join"))
    }

    /// Removes the cgroup; absent is fine. Retries while the kernel still
    /// counts exiting tasks in it.
    pub fn delete(&self) -> Result<(), Error> {
        if self.inner.v2() {
            let dir = self.dir_v2();
            let mut delay = Duration::from_millis(1);
            loop {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) if delay > Duration::from_millis(500) => {
                        return Err(Error::Io {
                            path: self.path(),
                            step: "remove",
                            source: e,
                        })
                    }
                    Err(_) => std::thread::sleep(delay),
                }
                delay *= 2;
            }
        }
        self.inner.delete().map_err(self.err("remove"))
    }

    fn freezer(&self) -> Result<&FreezerController, Error> {
        self.inner
            .controller_of::<FreezerController>()
            .ok_or_else(|| Error::NoFreezer(self.path()))
    }

    /// Whether the kernel reports every process of the cgroup frozen.
    pub fn is_frozen(&self) -> Result<bool, Error> {
        if self.inner.v2() {
            let events = self.dir_v2().join("cgroup.events");
            let text = std::fs::read_to_string(&events).map_err(|source| Error::Io {
                path: self.path(),
                step: "read cgroup.events",
                source,
            })?;
            return Ok(text.lines().any(|l| l.trim() == "frozen 1"));
        }
        let state = self
            .freezer()?
            .state()
            .map_err(self.err("read freezer.state"))?;
        Ok(matches!(state, FreezerState::Frozen))
    }

    /// Freezes the cgroup and returns once the kernel reports it frozen;
    /// thaws again and fails if that takes longer than 5 s. Blocks.
    ///
    /// The v1 freezer can stay FREEZING for good when a process forks while
    /// the cgroup freezes (the child escapes the walk over the cgroup's
    /// tasks): FROZEN is written again at every look, and now and then the
    /// cgroup is thawed for a moment and frozen anew, as runc and youki do.
    pub fn freeze(&self) -> Result<(), Error> {
        let freezer = self.freezer()?;
        freezer.freeze().map_err(self.err("freeze"))?;
        let start = Instant::now();
        let mut delay = Duration::from_micros(200);
        let mut looks = 0u32;
        loop {
            looks += 1;
            if self.is_frozen()? {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                let _ = self.thaw();
                return Err(Error::FreezeTimeout(self.path()));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(20));
            if !self.inner.v2() {
                if looks % 25 == 0 {
                    let _ = freezer.thaw();
                    std::thread::sleep(Duration::from_millis(1));
                }
                freezer.freeze().map_err(self.err("freeze"))?;
            }
        }
    }

    pub fn thaw(&self) -> Result<(), Error> {
        self.freezer()?.thaw().map_err(self.err("thaw"))
    }

    /// Sends `signal` to every process of the cgroup. SIGKILL uses
    /// cgroup.kill where the kernel has it (v2); otherwise the cgroup is
    /// frozen while the signal goes out, so nothing forks past it, then
    /// thawed: always for SIGKILL (frozen processes cannot die), else only
    /// if it was not frozen before.
    pub fn signal_all(&self, signal: i32) -> Result<(), Error> {
        if !self.inner.exists() {
            return Ok(());
        }
        if signal == libc::SIGKILL && self.inner.v2() && self.inner.kill().is_ok() {
            return Ok(());
        }
        let was_frozen = self.is_frozen().unwrap_or(false);
        let frozen = was_frozen || self.freeze().is_ok();
        let sig = nix::sys::signal::Signal::try_from(signal).ok();
        for pid in self.inner.procs() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid.pid as i32), sig);
        }
        if frozen && (signal == libc::SIGKILL || !was_frozen) {
            self.thaw()?;
        }
        Ok(())
    }

    /// The processes in the cgroup.
    pub fn pids(&self) -> Vec<u32> {
        match self.inner.exists() {
            true => self.inner.procs().iter().map(|p| p.pid as u32).collect(),
            false => Vec::new(),
        }
    }

    /// SIGKILLs every process of the cgroup and waits until it is empty.
    /// Blocks.
    pub fn kill_all(&self) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            if self.inner.procs().is_empty() {
                return Ok(());
            }
            if start.elapsed() > KILL_TIMEOUT {
                return Err(Error::KillTimeout(self.path()));
            }
            self.signal_all(libc::SIGKILL)?;
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The directory of controller `C` for this cgroup, if the host has it.
    fn dir<C>(&self) -> Option<PathBuf>
    where
        C: Controller + cgroups_rs::fs::ControllIdentifier,
        for<'a> &'a C: From<&'a cgroups_rs::fs::Subsystem>,
    {
        controller_dir::<C>(&self.inner)
    }
}

impl Error {
    /// Whether the kernel refused a write as busy: a memory limit below
    /// what the cgroup uses and cannot reclaim.
    pub fn is_busy(&self) -> bool {
        let Error::Cgroups { source, .. } = self else {
            return false;
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> =
            std::error::Error::source(source);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return io.raw_os_error() == Some(libc::EBUSY);
            }
            cause = e.source();
        }
        false
    }
}

/// The directory of controller `C` for `cg`, if the host has it.
fn controller_dir<C>(cg: &Inner) -> Option<PathBuf>
where
    C: Controller + cgroups_rs::fs::ControllIdentifier,
    for<'a> &'a C: From<&'a cgroups_rs::fs::Subsystem>,
{
    cg.controller_of::<C>().map(|c| c.path().to_path_buf())
}

/// The value of `key` in a "key value" per line file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

pub mod devices;
mod limits;
mod parent;
mod support;
#[cfg(test)]
mod tests;
mod usage;

pub use parent::Parent;
pub use support::Support;
pub use usage::{drain, Usage};
