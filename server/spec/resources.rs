//! Resource limits: as requested, as enforced, and how they merge.

use super::limits::{check_cpuset, online, Rate, Throttle};
use super::limits::{BLKIO_WEIGHT, CFS_PERIOD_US, MIN_CFS_QUOTA_US};
use super::{Error, MAX_PIDS};
use serde::{Deserialize, Serialize};

/// A container's resource limits, as enforced; 0 (or empty) is "no
/// limit" for each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: i64,
    /// Memory plus swap in bytes; -1: unlimited swap; 0: not limited
    /// separately (no memory limit, or a host without swap accounting).
    pub memory_swap: i64,
    /// CPU time in billionths of a CPU (Docker's NanoCpus).
    pub nano_cpus: i64,
    /// Relative CPU weight (cpu.shares); 0: the kernel's default.
    pub cpu_shares: u64,
    /// Most processes at once.
    pub pids_limit: i64,
    /// CFS period and quota in microseconds (Docker's --cpu-period and
    /// --cpu-quota; not with nano_cpus).
    #[serde(default)]
    pub cpu_period: u64,
    #[serde(default)]
    pub cpu_quota: i64,
    /// The CPUs and memory nodes it may use ("0-3,6"); empty: all.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpuset_cpus: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpuset_mems: String,
    /// The memory the kernel tries to leave it under pressure (v1's soft
    /// limit, v2's memory.low).
    #[serde(default)]
    pub memory_reservation: i64,
    /// 0 to 100; None: the kernel's.
    #[serde(default)]
    pub memory_swappiness: Option<u8>,
    /// Accepted and recorded, never enforced: kernels of cgroup v2 have
    /// no separate kernel memory limit (Docker 20.10 ignores it there).
    #[serde(default)]
    pub kernel_memory: i64,
    /// Out of memory, its processes wait instead of being killed (v1).
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// Relative block I/O weight, 10 to 1000; 0: the default.
    #[serde(default)]
    pub blkio_weight: u16,
    /// Rate limits on host block devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttles: Vec<Throttle>,
}

/// Limits as a request gives them: `None` (or empty) is "not given".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourcesRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
    pub cpu_period: Option<u64>,
    /// -1: none.
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory_reservation: Option<i64>,
    /// -1: the kernel's.
    pub memory_swappiness: Option<i64>,
    pub kernel_memory: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub blkio_weight: Option<u32>,
    /// (what, host device, limit) of each device rate; replace the
    /// container's when given.
    pub throttles: Vec<(Rate, String, u64)>,
}

/// What the host offers that validation depends on.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    pub cpus: u32,
    /// Whether the memory controller accounts swap.
    pub swap: bool,
}

/// The smallest memory limit accepted, as Docker's.
pub const MIN_MEMORY: i64 = 6 << 20;

/// Docker's range of cpu.shares.
pub const SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;

impl Resources {
    /// These limits with the given fields of `req` changed, checked. A new
    /// memory limit without a swap limit, where none was set, gets
    /// twice the memory as memory plus swap (Docker's default) if the host
    /// accounts swap.
    pub fn merge(&self, req: &ResourcesRequest, host: Host) -> Result<Resources, Error> {
        let mut r = self.clone();
        if let Some(m) = req.memory {
            if m != 0 && m < MIN_MEMORY {
                return Err(Error::Memory(m));
            }
            r.memory = m;
        }
        match req.memory_swap.filter(|s| *s != 0) {
            Some(s) if s < -1 => return Err(Error::MemorySwap(s, r.memory)),
            Some(s) => r.memory_swap = s,
            // A memory limit given alone: swap follows it unless it has a
            // limit of its own.
            None if req.memory.is_some() && (self.memory_swap == 0 || r.memory == 0) => {
                r.memory_swap = if r.memory > 0 && host.swap {
                    r.memory.saturating_mul(2)
                } else {
                    0
                };
            }
            None => {}
        }
        if r.memory == 0 && r.memory_swap > 0 {
            return Err(Error::SwapWithoutMemory);
        }
        if r.memory_swap > 0 && r.memory_swap < r.memory {
            return Err(Error::MemorySwap(r.memory_swap, r.memory));
        }
        if let Some(c) = req.cpus {
            let max = f64::from(host.cpus);
            if !c.is_finite() || c < 0.0 || (c > 0.0 && c < 0.01) || c > max {
                return Err(Error::Cpus(c, host.cpus));
            }
            r.nano_cpus = (c * 1e9).round() as i64;
        }
        if let Some(s) = req.cpu_shares {
            if s != 0 && !SHARES.contains(&s) {
                return Err(Error::CpuShares(s));
            }
            r.cpu_shares = s;
        }
        if let Some(p) = req.pids_limit {
            r.pids_limit = match p {
                -1 | 0 => 0,
                p if p > 0 && p <= MAX_PIDS => p,
                p => return Err(Error::PidsLimit(p)),
            };
        }
        r.merge_finer(req)?;
        Ok(r)
    }

    /// The finer limits of `req` (limits.rs), checked as Docker checks
    /// them.
    fn merge_finer(&mut self, req: &ResourcesRequest) -> Result<(), Error> {
        let r = self;
        if let Some(p) = req.cpu_period {
            if p != 0 && !CFS_PERIOD_US.contains(&p) {
                return Err(Error::CpuPeriod(p));
            }
            r.cpu_period = p;
        }
        if let Some(q) = req.cpu_quota {
            if q > 0 && q < MIN_CFS_QUOTA_US {
                return Err(Error::CpuQuota(q));
            }
            r.cpu_quota = q.max(0);
        }
        if r.nano_cpus > 0 && (r.cpu_period > 0 || r.cpu_quota > 0) {
            return Err(Error::CpusAndQuota);
        }
        for (given, what, to) in [
            (&req.cpuset_cpus, "cpus", &mut r.cpuset_cpus),
            (&req.cpuset_mems, "mems", &mut r.cpuset_mems),
        ] {
            if let Some(list) = given {
                if !list.is_empty() {
                    check_cpuset(list, &online(what))
                        .map_err(|why| Error::Cpuset(what, list.as_str().into(), why))?;
                }
                *to = list.clone();
            }
        }
        if let Some(m) = req.memory_reservation {
            if m != 0 && m < MIN_MEMORY {
                return Err(Error::MemoryReservation(m, r.memory));
            }
            r.memory_reservation = m.max(0);
        }
        if r.memory > 0 && r.memory_reservation > r.memory {
            return Err(Error::MemoryReservation(r.memory_reservation, r.memory));
        }
        if let Some(s) = req.memory_swappiness {
            r.memory_swappiness = match s {
                -1 => None,
                s => Some(
                    u8::try_from(s)
                        .ok()
                        .filter(|s| *s <= 100)
                        .ok_or(Error::Swappiness(s))?,
                ),
            };
        }
        if let Some(k) = req.kernel_memory {
            r.kernel_memory = k.max(0);
        }
        if let Some(o) = req.oom_kill_disable {
            r.oom_kill_disable = o;
        }
        if let Some(w) = req.blkio_weight {
            r.blkio_weight = u16::try_from(w)
                .ok()
                .filter(|w| *w == 0 || BLKIO_WEIGHT.contains(w))
                .ok_or(Error::BlkioWeight(w))?;
        }
        if !req.throttles.is_empty() {
            r.throttles = req
                .throttles
                .iter()
                .map(|(rate, path, limit)| Throttle::new(*rate, path, *limit))
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }
}
