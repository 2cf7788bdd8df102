//! What the host's cgroups can enforce.

use super::{controller_dir, Error, Parent};
use crate::spec::Resources;
use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::Cgroup as Inner;
use std::path::Path;

/// What the host's cgroups can enforce, probed once on berth's parent
/// cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Support {
    pub memory: bool,
    /// The memory controller accounts swap (v1 memory.memsw.*, v2
    /// memory.swap.max).
    pub swap: bool,
    /// CFS bandwidth control (v1 cpu.cfs_quota_us, v2 cpu.max).
    pub cpu_quota: bool,
    pub cpu_shares: bool,
    pub pids: bool,
    /// cpuset.cpus and cpuset.mems.
    pub cpuset: bool,
    /// v1 memory.soft_limit_in_bytes, v2 memory.low.
    pub memory_reservation: bool,
    /// v1 only: memory.swappiness.
    pub swappiness: bool,
    /// v1 only: memory.oom_control.
    pub oom_kill_disable: bool,
    /// A weight-aware I/O scheduler: v1 blkio.weight or blkio.bfq.weight,
    /// v2 io.weight or io.bfq.weight.
    pub blkio_weight: bool,
    /// v1 blkio.throttle.*, v2 io.max.
    pub throttle: bool,
}

impl Support {
    /// A host that enforces every limit (tests).
    #[cfg(test)]
    pub fn everything() -> Support {
        Support {
            memory: true,
            swap: true,
            cpu_quota: true,
            cpu_shares: true,
            pids: true,
            cpuset: true,
            memory_reservation: true,
            swappiness: true,
            oom_kill_disable: true,
            blkio_weight: true,
            throttle: true,
        }
    }

    /// Looks at what the containers' parent cgroup (made ready by
    /// [`Parent::setup`]) passes down.
    pub fn probe(parent: &Parent) -> Support {
        let parent = Inner::load(super::hierarchy(), parent.path());
        let v2 = parent.v2();
        let has = |dir: Option<&Path>, v1: &str, v2_file: &str| {
            dir.is_some_and(|d| d.join(if v2 { v2_file } else { v1 }).exists())
        };
        let mem = controller_dir::<MemController>(&parent);
        let cpu = controller_dir::<CpuController>(&parent);
        let pids = controller_dir::<PidController>(&parent);
        let cpuset = controller_dir::<CpuSetController>(&parent);
        let blkio = controller_dir::<BlkIoController>(&parent);
        let io = blkio.as_deref();
        Support {
            memory: has(mem.as_deref(), "memory.limit_in_bytes", "memory.max"),
            swap: has(
                mem.as_deref(),
                "memory.memsw.limit_in_bytes",
                "memory.swap.max",
            ),
            cpu_quota: has(cpu.as_deref(), "cpu.cfs_quota_us", "cpu.max"),
            cpu_shares: has(cpu.as_deref(), "cpu.shares", "cpu.weight"),
            pids: has(pids.as_deref(), "pids.max", "pids.max"),
            cpuset: has(cpuset.as_deref(), "cpuset.cpus", "cpuset.cpus"),
            memory_reservation: has(mem.as_deref(), "memory.soft_limit_in_bytes", "memory.low"),
            swappiness: !v2 && has(mem.as_deref(), "memory.swappiness", ""),
            oom_kill_disable: !v2 && has(mem.as_deref(), "memory.oom_control", ""),
            blkio_weight: has(io, "blkio.weight", "io.weight")
                || has(io, "blkio.bfq.weight", "io.bfq.weight"),
            throttle: has(io, "blkio.throttle.read_bps_device", "io.max"),
        }
    }

    /// Fails naming the first limit of `r` this host cannot enforce.
    pub fn check(&self, r: &Resources) -> Result<(), Error> {
        let missing = [
            (r.memory > 0 && !self.memory, "a memory limit: the memory controller is missing (or not delegated to berth's parent cgroup)"),
            (
                r.memory_swap > 0 && !self.swap,
                "a memory+swap limit: the memory controller does not account swap (boot with swapaccount=1)",
            ),
            (r.nano_cpus > 0 && !self.cpu_quota, "a CPU limit: the cpu controller is missing, has no CFS bandwidth control, or is not delegated to berth's parent cgroup"),
            (r.cpu_shares > 0 && !self.cpu_shares, "CPU shares: the cpu controller is missing (or not delegated to berth's parent cgroup)"),
            (r.pids_limit > 0 && !self.pids, "a pids limit: the pids controller is missing (or not delegated to berth's parent cgroup)"),
            ((r.cpu_period > 0 || r.cpu_quota > 0) && !self.cpu_quota, "a CPU period or quota: the cpu controller is missing, has no CFS bandwidth control, or is not delegated to berth's parent cgroup"),
            ((!r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty()) && !self.cpuset, "a cpuset: the cpuset controller is missing (or not delegated to berth's parent cgroup)"),
            (r.memory_reservation > 0 && !self.memory_reservation, "a memory reservation: the memory controller is missing (or not delegated to berth's parent cgroup)"),
            (r.memory_swappiness.is_some() && !self.swappiness, "memory swappiness: cgroup v2 has no swappiness of its own per cgroup (and v1 needs the memory controller)"),
            (r.oom_kill_disable && !self.oom_kill_disable, "oom-kill-disable: cgroup v2 cannot turn off the OOM killer of a cgroup (and v1 needs the memory controller)"),
            (r.blkio_weight > 0 && !self.blkio_weight, "a block I/O weight: no weight-aware I/O scheduler on this host (blkio.weight or io.weight needs BFQ or io.cost)"),
            (!r.throttles.is_empty() && !self.throttle, "device rates: the blkio (v1) or io (v2) controller is missing (or not delegated to berth's parent cgroup)"),
        ];
        match missing.iter().find(|(m, _)| *m) {
            Some((_, what)) => Err(Error::Unsupported(what)),
            None => Ok(()),
        }
    }
}
