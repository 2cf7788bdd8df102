//! What a container uses, and OOM kills as the kernel counts them.

use super::{keyed, Cgroup, Error};
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

impl Cgroup {
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
        (u.block_read, u.block_write) = if v2 {
            io_stat(&read(&Some(self.dir_v2()), "io.stat").unwrap_or_default())
        } else {
            let blkio = self.dir::<cgroups_rs::fs::blkio::BlkIoController>();
            io_service_bytes(
                &read(&blkio, "blkio.throttle.io_service_bytes_recursive").unwrap_or_default(),
            )
        };
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

/// Bytes read and written, summed over devices, from v2's io.stat
/// ("8:0 rbytes=1 wbytes=2 rios=…").
fn io_stat(text: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    for field in text.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let n: u64 = value.parse().unwrap_or(0);
        match key {
            "rbytes" => sum.0 += n,
            "wbytes" => sum.1 += n,
            _ => {}
        }
    }
    sum
}

/// Bytes read and written, summed over devices, from v1's
/// blkio.throttle.io_service_bytes ("8:0 Read 1", "8:0 Write 2", …).
fn io_service_bytes(text: &str) -> (u64, u64) {
    let mut sum = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n: u64 = f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
        match f.get(1) {
            Some(&"Read") => sum.0 += n,
            Some(&"Write") => sum.1 += n,
            _ => {}
        }
    }
    sum
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
    /// Bytes read from and written to block devices.
    pub block_read: u64,
    pub block_write: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_io_is_summed_over_devices() {
        let v2 = "8:0 rbytes=4096 wbytes=1000 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=4 wbytes=5 rios=1 wios=1\n";
        assert_eq!(io_stat(v2), (4100, 1005));
        let v1 = "8:0 Read 4096\n8:0 Write 1000\n8:0 Sync 5096\n8:0 Total 5096\n8:16 Read 4\nTotal 5100\n";
        assert_eq!(io_service_bytes(v1), (4100, 1000));
        assert_eq!(io_stat(""), (0, 0));
    }
}
