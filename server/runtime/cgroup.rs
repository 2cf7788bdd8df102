//! The container's cgroup, through cgroups-rs, on v1, v2 and hybrid hosts.
//! cgroups-rs writes the freezer's requested state but does not wait for
//! the kernel to reach it; [`Cgroup::freeze`] does.

use cgroups_rs::fs::{freezer::FreezerController, hierarchies, Cgroup as Inner};
use cgroups_rs::{CgroupPid, FreezerState};
use std::time::{Duration, Instant};

/// How long freezing may take before it is undone and reported.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

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
}

/// The relative cgroup path of container `id`.
pub fn path_of(id: &str) -> String {
    format!("berth/{id}")
}

/// A container's cgroup (which may not exist yet).
pub struct Cgroup {
    inner: Inner,
}

impl Cgroup {
    pub fn load(id: &str) -> Cgroup {
        Cgroup {
            inner: Inner::load(hierarchies::auto(), path_of(id)),
        }
    }

    fn path(&self) -> String {
        self.inner.path().to_string()
    }

    fn err(&self, step: &'static str) -> impl FnOnce(cgroups_rs::fs::error::Error) -> Error + '_ {
        move |source| Error::Cgroups {
            path: self.path(),
            step,
            source,
        }
    }

    pub fn create(&self) -> Result<(), Error> {
        self.inner.create().map_err(self.err("create"))
    }

    pub fn add_process(&self, pid: i32) -> Result<(), Error> {
        self.inner
            .add_task_by_tgid(CgroupPid::from(pid as u64))
            .map_err(self.err("add process"))
    }

    /// Removes the cgroup; absent is fine. Retries while the kernel still
    /// counts exiting tasks in it.
    pub fn delete(&self) -> Result<(), Error> {
        if self.inner.v2() {
            let dir = std::path::Path::new(hierarchies::UNIFIED_MOUNTPOINT).join(self.path());
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
            let events = std::path::Path::new(hierarchies::UNIFIED_MOUNTPOINT)
                .join(self.path())
                .join("cgroup.events");
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
    /// thaws again and fails if that takes longer than 5 s.
    pub async fn freeze(&self) -> Result<(), Error> {
        self.freezer()?.freeze().map_err(self.err("freeze"))?;
        let start = Instant::now();
        let mut delay = Duration::from_micros(200);
        loop {
            if self.is_frozen()? {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                let _ = self.thaw();
                return Err(Error::FreezeTimeout(self.path()));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(20));
        }
    }

    pub fn thaw(&self) -> Result<(), Error> {
        self.freezer()?.thaw().map_err(self.err("thaw"))
    }

    /// SIGKILLs every process in the cgroup and thaws it so they can die.
    pub fn kill_all(&self) -> Result<(), Error> {
        for pid in self.inner.procs() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if self.inner.exists() {
            let _ = self.thaw();
        }
        Ok(())
    }
}
