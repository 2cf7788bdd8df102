//! Address leases on berth's own bridge networks, kept the way the CNI
//! host-local plugin keeps them (so that either can read the other's): a
//! directory per network under ROOT/networks/ipam, a file per leased
//! address holding "CONTAINER\r\nIFNAME", and `last_reserved_ip.N` per
//! range set (0: IPv4, 1: IPv6), from which the next lease goes on round
//! the pool: an address just given up is the last to come back.
//!
//! Leases are taken under the Wiring's lock (one daemon per root), each
//! file made with O_EXCL.

use super::Error;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

/// A range set: runs of addresses of one family, in order.
pub struct Pool {
    /// Its index: the `N` of `last_reserved_ip.N`.
    pub set: usize,
    pub runs: Vec<(IpAddr, IpAddr)>,
}

/// Who holds a lease, as its file says.
fn holder(id: &str, ifname: &str) -> String {
    format!("{id}\r\n{ifname}")
}

fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn addr(like: IpAddr, n: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((n as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(n.into()),
    }
}

impl Pool {
    fn contains(&self, ip: IpAddr) -> bool {
        self.runs
            .iter()
            .any(|(a, b)| a.is_ipv4() == ip.is_ipv4() && (num(*a)..=num(*b)).contains(&num(ip)))
    }

    /// The addresses after `last` (or from the start), round the pool
    /// once.
    fn round(&self, last: Option<IpAddr>) -> impl Iterator<Item = IpAddr> + '_ {
        let at = last.and_then(|ip| {
            self.runs
                .iter()
                .position(|(a, b)| (num(*a)..=num(*b)).contains(&num(ip)))
                .map(|i| (i, num(ip)))
        });
        let n = self.runs.len();
        let (first, from) = match at {
            Some((i, ip)) => (i, Some(ip)),
            None => (0, None),
        };
        // The rest of the run `last` is in, the other runs, then the
        // start of that run up to `last`.
        (0..=n).flat_map(move |k| {
            let (a, b) = self.runs[(first + k) % n.max(1)];
            let (lo, hi) = match (k, from) {
                (0, Some(ip)) => (ip + 1, num(b)),
                (k, Some(ip)) if k == n => (num(a), ip),
                (k, None) if k == n => (1, 0),
                _ => (num(a), num(b)),
            };
            (lo..=hi).map(move |x| addr(a, x))
        })
    }
}

/// Leases an address of `pool` in `dir` to interface `ifname` of
/// container `id`: `wanted`, or the next free one.
pub fn take(
    dir: &Path,
    pool: &Pool,
    id: &str,
    ifname: &str,
    wanted: Option<IpAddr>,
) -> Result<IpAddr, Error> {
    let io = |e: std::io::Error| Error::Io {
        what: format!("lease an address in {}", dir.display()),
        source: e,
    };
    if pool.runs.is_empty() {
        return Err(Error::Conflict(
            "the network has no addresses to give".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    let who = holder(id, ifname);
    let last_file = dir.join(format!("last_reserved_ip.{}", pool.set));
    let reserve = |ip: IpAddr| -> std::io::Result<bool> {
        let file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(dir.join(ip.to_string()));
        match file {
            Ok(mut f) => f.write_all(who.as_bytes()).map(|()| true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    };
    let ip = match wanted {
        Some(ip) if !pool.contains(ip) => {
            return Err(Error::Conflict(format!(
                "requested IP address {ip} is not in the network's address range"
            )))
        }
        Some(ip) => match reserve(ip).map_err(io)? {
            true => ip,
            false => {
                return Err(Error::Conflict(format!(
                    "requested IP address {ip} is already in use"
                )))
            }
        },
        None => {
            let last = std::fs::read_to_string(&last_file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            let mut found = None;
            for ip in pool.round(last) {
                if reserve(ip).map_err(io)? {
                    found = Some(ip);
                    break;
                }
            }
            found.ok_or_else(|| {
                Error::Conflict("no address is left on the network: all are in use".into())
            })?
        }
    };
    std::fs::write(&last_file, ip.to_string()).map_err(io)?;
    Ok(ip)
}

/// Gives up every lease interface `ifname` of container `id` holds in
/// `dir`.
pub fn give_up(dir: &Path, id: &str, ifname: &str) {
    let who = holder(id, ifname);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().parse::<IpAddr>().is_err() {
            continue;
        }
        let path = entry.path();
        if std::fs::read(&path).is_ok_and(|held| held == who.as_bytes()) {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(lease = %path.display(), error = %e, "cannot give up an address");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pool() -> Pool {
        Pool {
            set: 0,
            runs: vec![
                (v4("10.1.0.2"), v4("10.1.0.4")),
                (v4("10.1.0.9"), v4("10.1.0.9")),
            ],
        }
    }

    #[test]
    fn leases_go_round_the_pool_from_the_last_one() {
        let dir = std::env::temp_dir().join(format!("berth-leases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = pool();
        let got: Vec<IpAddr> = (0..4)
            .map(|i| take(&dir, &p, &format!("c{i}"), "eth0", None).unwrap())
            .collect();
        assert_eq!(
            got,
            ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.9"].map(v4)
        );
        assert!(matches!(
            take(&dir, &p, "c9", "eth0", None),
            Err(Error::Conflict(_))
        ));
        // Given up, .3 comes back only once the pool is round.
        give_up(&dir, "c1", "eth0");
        give_up(&dir, "c0", "eth0");
        assert_eq!(take(&dir, &p, "c5", "eth0", None).unwrap(), v4("10.1.0.2"));
        assert_eq!(take(&dir, &p, "c6", "eth0", None).unwrap(), v4("10.1.0.3"));
        // Wanted: in the pool and free.
        give_up(&dir, "c2", "eth0");
        assert!(take(&dir, &p, "c7", "eth0", Some(v4("10.1.0.5"))).is_err());
        assert!(take(&dir, &p, "c7", "eth0", Some(v4("10.1.0.3"))).is_err());
        assert_eq!(
            take(&dir, &p, "c7", "eth1", Some(v4("10.1.0.4"))).unwrap(),
            v4("10.1.0.4")
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("10.1.0.4")).unwrap(),
            "c7\r\neth1"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
