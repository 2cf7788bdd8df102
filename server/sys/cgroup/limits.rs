//! A container's limits: devices, memory, CPU, pids.

use super::devices;
use super::{Cgroup, Error};
use crate::spec::{CgroupRule, Rate, Resources, Throttle};
use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Controller, MaxValue};
use std::path::PathBuf;
use DevicePermissions::{MkNod, Read, Write};

/// The CFS period berth sets with a CPU quota, as Docker: 100 ms.
const CFS_PERIOD_US: u64 = 100_000;

impl Cgroup {
    /// Limits device access to [`devices::DEFAULT`] and `more`, as
    /// Docker's defaults and --device do: any device node may be created
    /// (mknod), only the standard ones and the container's opened. Through
    /// the devices controller on cgroup v1, a device program attached to
    /// the cgroup on v2.
    pub fn limit_devices(&self, more: &[CgroupRule]) -> Result<(), Error> {
        let rules: Vec<devices::Rule> = devices::DEFAULT
            .iter()
            .copied()
            .chain(more.iter().flat_map(devices::from_spec))
            .collect();
        if self.inner.v2() {
            let dir = self.dir_v2();
            let io = |step| {
                let path = self.path();
                move |source| Error::Io { path, step, source }
            };
            let fd = std::fs::File::open(&dir).map_err(io("open"))?;
            return devices::attach(&fd.into(), &rules).map_err(io("limit devices"));
        }
        let Some(controller) = self.inner.controller_of::<DevicesController>() else {
            return Ok(());
        };
        let perms = |access: u8| {
            [
                (devices::READ, Read),
                (devices::WRITE, Write),
                (devices::MKNOD, MkNod),
            ]
            .into_iter()
            .filter(|(bit, _)| access & bit != 0)
            .map(|(_, p)| p)
            .collect::<Vec<_>>()
        };
        controller
            .deny_device(DeviceType::All, -1, -1, &[Read, Write, MkNod])
            .map_err(self.err("deny all devices"))?;
        for r in &rules {
            let kind = match r.kind {
                devices::Kind::Char => DeviceType::Char,
                devices::Kind::Block => DeviceType::Block,
            };
            let number = |n: Option<u32>| n.map_or(-1, i64::from);
            controller
                .allow_device(kind, number(r.major), number(r.minor), &perms(r.access))
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
        let bandwidth = |r: &Resources| (r.nano_cpus, r.cpu_period, r.cpu_quota);
        if bandwidth(from) != bandwidth(to) || from.cpu_shares != to.cpu_shares {
            let cpu = self
                .inner
                .controller_of::<CpuController>()
                .ok_or(Error::Unsupported("a CPU limit: no cpu controller"))?;
            if bandwidth(from) != bandwidth(to) {
                let period = match to.cpu_period {
                    0 => CFS_PERIOD_US,
                    p => p,
                };
                let quota = match (to.nano_cpus, to.cpu_quota) {
                    (0, 0) => -1,
                    (0, q) => q,
                    (n, _) => (n as i128 * CFS_PERIOD_US as i128 / 1_000_000_000) as i64,
                };
                cpu.set_cfs_quota_and_period(Some(quota), Some(period))
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
        self.set_finer(from, to)
    }

    /// The directory of controller C's files: the cgroup's own on v2.
    fn dir_of<C>(&self) -> Option<PathBuf>
    where
        C: Controller + cgroups_rs::fs::ControllIdentifier,
        for<'a> &'a C: From<&'a cgroups_rs::fs::Subsystem>,
    {
        match self.inner.v2() {
            true => Some(self.dir_v2()),
            false => super::controller_dir::<C>(&self.inner),
        }
    }

    /// Writes `value` to `file` in `dir`.
    fn write(&self, dir: &Option<PathBuf>, file: &str, value: &str) -> Result<(), Error> {
        let path = self.path();
        let dir = dir
            .as_ref()
            .ok_or(Error::Unsupported("this limit: its controller is missing"))?;
        tracing::debug!(cgroup = %path, file, value, "cgroup write");
        std::fs::write(dir.join(file), value).map_err(|source| Error::Io {
            path,
            step: "write a limit",
            source,
        })
    }

    /// Cpusets, the memory reservation, swappiness, the OOM killer, block
    /// I/O weight and device rates that differ between `from` and `to`.
    fn set_finer(&self, from: &Resources, to: &Resources) -> Result<(), Error> {
        let v2 = self.inner.v2();
        let cpuset = self.dir_of::<CpuSetController>();
        for (file, old, new) in [
            ("cpuset.cpus", &from.cpuset_cpus, &to.cpuset_cpus),
            ("cpuset.mems", &from.cpuset_mems, &to.cpuset_mems),
        ] {
            if old != new {
                // "All" is the parent's set: the kernel refuses to empty
                // the set of a cgroup with processes, even on v2.
                let all = || {
                    let of_parent = match v2 {
                        true => format!("{file}.effective"),
                        false => file.to_string(),
                    };
                    cpuset.as_deref().map(|d| read_parent(d, &of_parent))
                };
                let value = match new.is_empty() {
                    true => all().unwrap_or_default(),
                    false => new.clone(),
                };
                self.write(&cpuset, file, &value)?;
            }
        }
        let mem = self.dir_of::<MemController>();
        if from.memory_reservation != to.memory_reservation {
            let (file, none) = match v2 {
                true => ("memory.low", "0"),
                false => ("memory.soft_limit_in_bytes", "-1"),
            };
            let value = match to.memory_reservation {
                0 => none.to_string(),
                m => m.to_string(),
            };
            self.write(&mem, file, &value)?;
        }
        if from.memory_swappiness != to.memory_swappiness {
            let value = match (to.memory_swappiness, &mem) {
                (Some(s), _) => s.to_string(),
                (None, Some(d)) => read_parent(d, "memory.swappiness"),
                (None, None) => String::new(),
            };
            self.write(&mem, "memory.swappiness", &value)?;
        }
        if from.oom_kill_disable != to.oom_kill_disable {
            let value = if to.oom_kill_disable { "1" } else { "0" };
            self.write(&mem, "memory.oom_control", value)?;
        }
        let io = self.dir_of::<BlkIoController>();
        if from.blkio_weight != to.blkio_weight {
            let (plain, bfq) = match v2 {
                true => ("io.weight", "io.bfq.weight"),
                false => ("blkio.weight", "blkio.bfq.weight"),
            };
            let file = match io.as_ref().is_some_and(|d| d.join(plain).exists()) {
                true => plain,
                false => bfq,
            };
            // 0: the kernel's default weight.
            let value = match (to.blkio_weight, file) {
                (0, "blkio.weight") => "500".to_string(),
                (0, _) => "100".to_string(),
                (w, _) => w.to_string(),
            };
            self.write(&io, file, &value)?;
        }
        if from.throttles != to.throttles {
            let gone = from.throttles.iter().filter(|t| {
                !to.throttles
                    .iter()
                    .any(|n| (n.rate, n.major, n.minor) == (t.rate, t.major, t.minor))
            });
            for t in gone {
                let (file, line) = throttle_line(t, None, v2);
                self.write(&io, file, &line)?;
            }
            for t in &to.throttles {
                let (file, line) = throttle_line(t, Some(t.limit), v2);
                self.write(&io, file, &line)?;
            }
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
}

/// The parent cgroup's value of `file`, trimmed.
fn read_parent(dir: &std::path::Path, file: &str) -> String {
    dir.parent()
        .and_then(|p| std::fs::read_to_string(p.join(file)).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// The file and line that set throttle `t` to `limit` (None: none).
fn throttle_line(t: &Throttle, limit: Option<u64>, v2: bool) -> (&'static str, String) {
    let dev = format!("{}:{}", t.major, t.minor);
    if v2 {
        let key = match t.rate {
            Rate::ReadBps => "rbps",
            Rate::WriteBps => "wbps",
            Rate::ReadIops => "riops",
            Rate::WriteIops => "wiops",
        };
        let value = limit.map_or("max".to_string(), |l| l.to_string());
        return ("io.max", format!("{dev} {key}={value}"));
    }
    let file = match t.rate {
        Rate::ReadBps => "blkio.throttle.read_bps_device",
        Rate::WriteBps => "blkio.throttle.write_bps_device",
        Rate::ReadIops => "blkio.throttle.read_iops_device",
        Rate::WriteIops => "blkio.throttle.write_iops_device",
    };
    (file, format!("{dev} {}", limit.unwrap_or(0)))
}

/// cgroup v1 cpu.shares to v2 cpu.weight, as runc converts them.
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}
