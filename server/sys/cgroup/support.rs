//! What the host's cgroups can enforce.

use super::{controller_dir, Error, Parent};
use crate::spec::Resources;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{hierarchies, Cgroup as Inner};
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
}

impl Support {
    /// Looks at what the containers' parent cgroup (made ready by
    /// [`Parent::setup`]) passes down.
    pub fn probe(parent: &Parent) -> Support {
        let parent = Inner::load(hierarchies::auto(), parent.path());
        let v2 = parent.v2();
        let has = |dir: Option<&Path>, v1: &str, v2_file: &str| {
            dir.is_some_and(|d| d.join(if v2 { v2_file } else { v1 }).exists())
        };
        let mem = controller_dir::<MemController>(&parent);
        let cpu = controller_dir::<CpuController>(&parent);
        let pids = controller_dir::<PidController>(&parent);
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
        ];
        match missing.iter().find(|(m, _)| *m) {
            Some((_, what)) => Err(Error::Unsupported(what)),
            None => Ok(()),
        }
    }
}
