//! The container's cgroup, through cgroups-rs, on v1, v2 and hybrid hosts:
//! creation, resource limits, usage, OOM notification, freezing and
//! killing every process. cgroups-rs writes the freezer's requested state
//! but does not wait for the kernel to reach it; [`Cgroup::freeze`] does.

use crate::spec::Resources;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{freezer::FreezerController, hierarchies, Cgroup as Inner};
use cgroups_rs::fs::{Controller, MaxValue};
use cgroups_rs::{CgroupPid, FreezerState};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long freezing may take before it is undone and reported.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long killing every process may take before it is reported.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// The CFS period berth sets with a CPU quota, as Docker: 100 ms.
const CFS_PERIOD_US: u64 = 100_000;

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
    /// thaws again and fails if that takes longer than 5 s. Blocks.
    pub fn freeze(&self) -> Result<(), Error> {
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
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(20));
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

    /// Limits device access to the standard devices, as Docker's defaults
    /// do: null, zero, full, random, urandom, tty, ptmx and the ptys may be
    /// used; any device node may be created (mknod) but no other opened.
    /// Through the devices controller on cgroup v1; cgroup v2 has none
    /// (there the rootfs and /dev are mounted nodev instead).
    pub fn limit_devices(&self) -> Result<(), Error> {
        let Some(devices) = self.inner.controller_of::<DevicesController>() else {
            return Ok(());
        };
        use DevicePermissions::{MkNod, Read, Write};
        let rwm = [Read, Write, MkNod];
        devices
            .deny_device(DeviceType::All, -1, -1, &rwm)
            .map_err(self.err("deny all devices"))?;
        let allow = [
            (DeviceType::Char, -1, -1, &[MkNod][..]),
            (DeviceType::Block, -1, -1, &[MkNod][..]),
            (DeviceType::Char, 1, 3, &rwm[..]),    // null
            (DeviceType::Char, 1, 5, &rwm[..]),    // zero
            (DeviceType::Char, 1, 7, &rwm[..]),    // full
            (DeviceType::Char, 1, 8, &rwm[..]),    // random
            (DeviceType::Char, 1, 9, &rwm[..]),    // urandom
            (DeviceType::Char, 5, 0, &rwm[..]),    // tty
            (DeviceType::Char, 5, 2, &rwm[..]),    // ptmx
            (DeviceType::Char, 136, -1, &rwm[..]), // pts
        ];
        for (kind, major, minor, perms) in allow {
            devices
                .allow_device(kind, major, minor, perms)
                .map_err(self.err("allow a device"))?;
        }
        Ok(())
    }

    /// Sets the limits that differ between `from` (what the cgroup has: the
    /// defaults for a new one) and `to`.
    pub fn set_limits(&self, from: &Resources, to: &Resources) -> Result<(), Error> {
        let v2 = self.inner.v2();
        if (from.memory, from.memory_swap) != (to.memory, to.memory_swap) {
            self.set_memory(to)?;
        }
        if from.nano_cpus != to.nano_cpus || from.cpu_shares != to.cpu_shares {
            let cpu = self
                .inner
                .controller_of::<CpuController>()
                .ok_or(Error::Unsupported("a CPU limit: no cpu controller"))?;
            if from.nano_cpus != to.nano_cpus {
                let quota = match to.nano_cpus {
                    0 => -1,
                    n => (n as i128 * CFS_PERIOD_US as i128 / 1_000_000_000) as i64,
                };
                cpu.set_cfs_quota_and_period(Some(quota), Some(CFS_PERIOD_US))
                    .map_err(self.err("set CPU quota"))?;
            }
            if from.cpu_shares != to.cpu_shares {
                let value = match (to.cpu_shares, v2) {
                    (0, false) => 1024,
                    (0, true) => 100,
                    (s, false) => s,
                    (s, true) => shares_to_weight(s),
                };
                cpu.set_shares(value).map_err(self.err("set CPU shares"))?;
            }
        }
        if from.pids_limit != to.pids_limit {
            let pids = self
                .inner
                .controller_of::<PidController>()
                .ok_or(Error::Unsupported("a pids limit: no pids controller"))?;
            let max = match to.pids_limit {
                0 => MaxValue::Max,
                n => MaxValue::Value(n),
            };
            pids.set_pid_max(max).map_err(self.err("set pids limit"))?;
        }
        Ok(())
    }

    /// The memory and memory+swap limits of `to`.
    fn set_memory(&self, to: &Resources) -> Result<(), Error> {
        let v2 = self.inner.v2();
        let mem = self
            .inner
            .controller_of::<MemController>()
            .ok_or(Error::Unsupported("a memory limit: no memory controller"))?;
        let limit = if to.memory > 0 { to.memory } else { -1 };
        // v1 takes memory plus swap, v2 swap alone. None: leave it.
        let swap = match to.memory_swap {
            -1 => Some(-1),
            0 if to.memory == 0 => Some(-1),
            0 => None,
            s if v2 => Some(s - to.memory),
            s => Some(s),
        };
        // Unlimited is all a host without swap accounting can have.
        let swap_file = if v2 {
            "memory.swap.max"
        } else {
            "memory.memsw.limit_in_bytes"
        };
        let swap = swap.filter(|_| mem.path().join(swap_file).exists());
        // v1 requires memory <= memory+swap at every step: when the
        // memory limit goes up past the old memory+swap, swap goes first.
        if mem.set_limit(limit).is_err() {
            if let Some(s) = swap {
                mem.set_memswap_limit(s)
                    .map_err(self.err("set memory+swap limit"))?;
            }
            mem.set_limit(limit).map_err(self.err("set memory limit"))?;
        } else if let Some(s) = swap {
            mem.set_memswap_limit(s)
                .map_err(self.err("set memory+swap limit"))?;
        }
        Ok(())
    }

    /// What the container uses now. Fields the host cannot report are 0.
    pub fn usage(&self) -> Usage {
        let v2 = self.inner.v2();
        let read = |dir: &Option<PathBuf>, file: &str| {
            dir.as_ref()
                .and_then(|d| std::fs::read_to_string(d.join(file)).ok())
        };
        let number = |text: Option<String>| -> Option<u64> { text?.trim().parse().ok() };
        let mut u = Usage::default();
        let mem = self.dir::<MemController>();
        let stat = read(&mem, "memory.stat").unwrap_or_default();
        let (inactive, cache) = if v2 {
            (keyed(&stat, "inactive_file"), keyed(&stat, "file"))
        } else {
            (
                keyed(&stat, "total_inactive_file"),
                keyed(&stat, "total_cache"),
            )
        };
        let (current, limit) = if v2 {
            (read(&mem, "memory.current"), read(&mem, "memory.max"))
        } else {
            (
                read(&mem, "memory.usage_in_bytes"),
                read(&mem, "memory.limit_in_bytes"),
            )
        };
        let current = number(current).unwrap_or(0);
        u.memory = current.saturating_sub(inactive.unwrap_or(0));
        u.memory_cache = cache.unwrap_or(0);
        // v1 reports "no limit" as a huge page-aligned number.
        u.memory_limit = number(limit).filter(|l| *l < 1 << 62).unwrap_or(0);
        u.cpu_nanos = if v2 {
            let stat = read(&self.dir::<CpuController>(), "cpu.stat").unwrap_or_default();
            keyed(&stat, "usage_usec").unwrap_or(0) * 1000
        } else {
            let acct = self.dir::<cgroups_rs::fs::cpuacct::CpuAcctController>();
            number(read(&acct, "cpuacct.usage")).unwrap_or(0)
        };
        let pids = self.dir::<PidController>();
        u.pids = number(read(&pids, "pids.current")).unwrap_or(0);
        u.pids_limit = number(read(&pids, "pids.max")).unwrap_or(0);
        u
    }

    /// How many processes the kernel's OOM killer has killed in this
    /// cgroup (v1 memory.oom_control, v2 memory.events); None if the
    /// cgroup or its memory controller is gone.
    pub fn oom_kills(&self) -> Option<u64> {
        let dir = self.dir::<MemController>()?;
        let file = if self.inner.v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        keyed(&std::fs::read_to_string(dir.join(file)).ok()?, "oom_kill")
    }

    /// An fd that becomes readable when the memory controller reports an
    /// OOM in this cgroup (v1: an eventfd on memory.oom_control; v2:
    /// inotify on memory.events), and when the cgroup goes away. Read
    /// [`Cgroup::oom_kills`] after it fires; drain it with `drain`.
    pub fn oom_notifier(&self) -> Result<OwnedFd, Error> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        use std::os::fd::AsRawFd;
        let dir = self
            .dir::<MemController>()
            .ok_or(Error::Unsupported("OOM notification: no memory controller"))?;
        let io = |step| {
            let path = self.path();
            move |e: nix::errno::Errno| Error::Io {
                path,
                step,
                source: e.into(),
            }
        };
        if self.inner.v2() {
            let fd = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                .map_err(io("inotify"))?;
            fd.add_watch(&dir.join("memory.events"), AddWatchFlags::IN_MODIFY)
                .map_err(io("watch memory.events"))?;
            return Ok(fd.into());
        }
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(io("eventfd"))?;
        let control =
            std::fs::File::open(dir.join("memory.oom_control")).map_err(|source| Error::Io {
                path: self.path(),
                step: "open memory.oom_control",
                source,
            })?;
        let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        std::fs::write(dir.join("cgroup.event_control"), line).map_err(|source| Error::Io {
            path: self.path(),
            step: "register for OOM events",
            source,
        })?;
        Ok(efd.into())
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

/// Empties an fd from [`Cgroup::oom_notifier`] after it fired.
pub fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    while matches!(nix::unistd::read(fd, &mut buf), Ok(n) if n > 0) {}
}

/// A container's resource usage, from its cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_nanos: u64,
    /// In use, without inactive page cache.
    pub memory: u64,
    /// 0: no limit.
    pub memory_limit: u64,
    pub memory_cache: u64,
    pub pids: u64,
    /// 0: no limit.
    pub pids_limit: u64,
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

/// cgroup v1 cpu.shares to v2 cpu.weight, as runc converts them.
fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

mod support;
#[cfg(test)]
mod tests;

pub use support::Support;
