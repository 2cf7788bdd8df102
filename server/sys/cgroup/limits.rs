//! A container's limits: devices, memory, CPU, pids.

use super::devices;
use super::{Cgroup, Error};
use crate::spec::{CgroupRule, Resources};
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Controller, MaxValue};
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
}

/// cgroup v1 cpu.shares to v2 cpu.weight, as runc converts them.
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}
