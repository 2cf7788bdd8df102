//! Resource limits: as requested, as enforced, and how they merge.

use super::{Error, MAX_PIDS};
use serde::{Deserialize, Serialize};

/// A container's resource limits, as enforced; 0 is "no limit" for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Limits as a request gives them: `None` is "not given".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourcesRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
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
        let mut r = *self;
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
        Ok(r)
    }
}
