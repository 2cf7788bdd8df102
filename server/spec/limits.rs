//! The finer cgroup limits Docker users set: CFS period and quota, CPU
//! and memory node sets, a memory reservation, swappiness, the OOM killer
//! turned off, block I/O weight and per-device rates. Checked here as
//! Docker checks them (its messages); what the host's cgroups can enforce
//! is sys/cgroup/support.rs.

use super::Error;
use serde::{Deserialize, Serialize};

/// Docker's bounds on the CFS period, in microseconds.
pub const CFS_PERIOD_US: std::ops::RangeInclusive<u64> = 1_000..=1_000_000;
/// The smallest CFS quota, in microseconds.
pub const MIN_CFS_QUOTA_US: i64 = 1_000;
/// Docker's range of block I/O weight.
pub const BLKIO_WEIGHT: std::ops::RangeInclusive<u16> = 10..=1000;

/// What a device rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rate {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl Rate {
    /// Docker's flag for it.
    pub fn flag(self) -> &'static str {
        match self {
            Rate::ReadBps => "--device-read-bps",
            Rate::WriteBps => "--device-write-bps",
            Rate::ReadIops => "--device-read-iops",
            Rate::WriteIops => "--device-write-iops",
        }
    }
}

/// A rate limit on a host block device, its numbers found at create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    pub rate: Rate,
    pub path: String,
    pub major: u32,
    pub minor: u32,
    /// Bytes or operations per second, at least 1.
    pub limit: u64,
}

impl Throttle {
    /// `limit` of `rate` on the block device at host `path`.
    pub fn new(rate: Rate, path: &str, limit: u64) -> Result<Throttle, Error> {
        use std::os::unix::fs::FileTypeExt;
        use std::os::unix::fs::MetadataExt;
        let bad = |why: String| Error::Throttle(rate.flag(), path.into(), why);
        if !path.starts_with('/') {
            return Err(bad("the device path must be absolute".into()));
        }
        if limit == 0 {
            return Err(bad("the rate must be at least 1".into()));
        }
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if !meta.file_type().is_block_device() {
            return Err(bad("it is not a block device".into()));
        }
        let dev = meta.rdev();
        Ok(Throttle {
            rate,
            path: path.into(),
            major: nix::sys::stat::major(dev) as u32,
            minor: nix::sys::stat::minor(dev) as u32,
            limit,
        })
    }
}

/// Checks a cpuset list ("0-3,6"): Err(why) if it does not parse or names
/// what `online` (the same form, from /sys) lacks.
pub fn check_cpuset(list: &str, online: &str) -> Result<(), String> {
    let wanted = parse_list(list).ok_or("it is not a list like 0-3,6")?;
    let have = parse_list(online).unwrap_or_default();
    match wanted.iter().all(|n| have.contains(n)) {
        true => Ok(()),
        false => Err(format!("not available: the host has {}", online.trim())),
    }
}

/// The numbers of a cpuset list; None if it does not parse.
fn parse_list(list: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in list.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse::<u32>().ok()?, hi.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        if lo > hi || hi - lo > 1 << 16 {
            return None;
        }
        out.extend(lo..=hi);
    }
    Some(out)
}

/// The host's online CPUs or memory nodes, as the kernel lists them.
pub fn online(what: &str) -> String {
    let path = match what {
        "cpus" => "/sys/devices/system/cpu/online",
        _ => "/sys/devices/system/node/online",
    };
    // Without NUMA there is no node directory: node 0 alone.
    std::fs::read_to_string(path).unwrap_or_else(|_| "0".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_lists_parse_and_hold_to_what_is_online() {
        assert_eq!(parse_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_list("1"), Some(vec![1]));
        for bad in ["", "a", "2-1", "1,,2", "-1", "0-4294967295"] {
            assert_eq!(parse_list(bad), None, "{bad}");
        }
        assert!(check_cpuset("0,1", "0-1\n").is_ok());
        assert_eq!(
            check_cpuset("0-3", "0-1\n"),
            Err("not available: the host has 0-1".into())
        );
        assert!(check_cpuset("x", "0-1").is_err());
    }

    #[test]
    fn throttles_need_a_block_device() {
        let e = Throttle::new(Rate::ReadBps, "/dev/null", 1).unwrap_err();
        assert!(e.to_string().contains("not a block device"), "{e}");
        let e = Throttle::new(Rate::WriteIops, "sda", 1).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = Throttle::new(Rate::WriteIops, "/nonexistent", 1).unwrap_err();
        assert!(e.to_string().contains("--device-write-iops"), "{e}");
    }
}
