//! IPv4 subnets: parsing, overlap, and the pool a network's subnet is
//! picked from when its request names none.

use crate::spec::Input;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet: its network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The subnet of `addr` with `prefix` bits (host bits cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        (prefix <= 32).then(|| Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The `n`th address (1: the first host address, Docker's gateway).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - self.prefix);
        ((n as u64) < size).then(|| Ipv4Addr::from(u32::from(self.addr) + n))
    }

    /// The last address (the broadcast address).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }

    /// Room for a gateway and at least one container.
    pub fn usable(&self) -> bool {
        self.prefix <= 30
    }

    /// The special-purpose range this subnet overlaps, if it does: no
    /// bridge can carry those addresses.
    pub fn reserved(&self) -> Option<(Subnet, &'static str)> {
        let range = |a: [u8; 4], p: u8, what| (Subnet::new(Ipv4Addr::from(a), p), what);
        [
            range([0, 0, 0, 0], 8, "\"this network\""),
            range([127, 0, 0, 0], 8, "loopback"),
            range([169, 254, 0, 0], 16, "link-local"),
            range([224, 0, 0, 0], 4, "multicast"),
            range([240, 0, 0, 0], 4, "reserved, with the broadcast address"),
        ]
        .into_iter()
        .find_map(|(r, what)| r.filter(|r| self.overlaps(r)).map(|r| (r, what)))
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - p),
    }
}

/// Where Docker picks its networks' subnets: 172.17-31.0.0/16, then
/// 192.168.0.0/16 in /20s.
pub fn pool() -> impl Iterator<Item = Subnet> {
    let big = (17..=31).map(|b| Subnet {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let small = (0..16).map(|i| Subnet {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    big.chain(small)
}

/// The IPv4 routes of the host's main table (from /proc/net/route), the
/// default route excepted: a subnet overlapping one would hide it.
pub fn host_routes() -> Vec<Subnet> {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_routes(&table)
}

fn parse_routes(table: &str) -> Vec<Subnet> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dst, mask) = (hex(f.get(1)?)?, hex(f.get(7)?)?);
            let prefix = mask.count_ones() as u8;
            (prefix > 0).then(|| Subnet::new(Ipv4Addr::from(dst), prefix))?
        })
        .collect()
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(s: &str) -> Result<Subnet, String> {
        let bad = || {
            format!(
                "invalid subnet {:?}: use an IPv4 CIDR such as 172.20.0.0/16",
                Input::from(s)
            )
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let net = Subnet::new(addr, prefix).ok_or_else(bad)?;
        match net.addr == addr {
            true => Ok(net),
            false => Err(format!(
                "invalid subnet {:?}: host bits are set; did you mean {net}?",
                Input::from(s)
            )),
        }
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Subnet, String> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_host_bits() {
        let s: Subnet = "172.20.0.0/16".parse().unwrap();
        assert_eq!(s.to_string(), "172.20.0.0/16");
        assert_eq!(s.nth(1), Some(Ipv4Addr::new(172, 20, 0, 1)));
        assert!("172.20.0.1/16"
            .parse::<Subnet>()
            .unwrap_err()
            .contains("172.20.0.0/16"));
        for bad in ["172.20.0.0", "172.20.0.0/33", "fe80::/64", "x/8", ""] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn overlap_is_symmetric_and_nested() {
        let a: Subnet = "10.0.0.0/8".parse().unwrap();
        let b: Subnet = "10.20.0.0/16".parse().unwrap();
        let c: Subnet = "11.0.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&b));
        assert!(b.contains(Ipv4Addr::new(10, 20, 3, 4)));
        assert!(!b.contains(Ipv4Addr::new(10, 21, 0, 1)));
    }

    #[test]
    fn reads_the_route_table_without_the_default_route() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = parse_routes(table);
        let want: Vec<Subnet> = ["192.0.2.0/24", "172.17.0.0/16"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(routes, want);
        assert_eq!(pool().count(), 31);
    }
}
