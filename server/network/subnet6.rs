//! IPv6 subnets: parsing, overlap, and the unique local /64 a network
//! gets when its request names none (RFC 4193: fd00::/8 and a random
//! 40-bit global id).

use crate::spec::Input;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet6 {
    addr: Ipv6Addr,
    prefix: u8,
}

fn mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - p),
    }
}

impl Subnet6 {
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Option<Subnet6> {
        (prefix <= 128).then(|| Subnet6 {
            addr: Ipv6Addr::from(u128::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask(self.prefix) == u128::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u128::from(self.addr) & m == u128::from(other.addr) & m
    }

    /// The `n`th address (1: the gateway by default).
    pub fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        let fits = self.prefix == 0 || n < (1u128 << (128 - self.prefix));
        fits.then(|| Ipv6Addr::from(u128::from(self.addr) + n))
    }

    /// Room for a gateway and containers.
    pub fn usable(&self) -> bool {
        self.prefix <= 124
    }

    /// A unique local /64 with a random global id: fdXX:XXXX:XXXX::/64.
    pub fn random_ula() -> Subnet6 {
        let mut id = [0u8; 5];
        // Without randomness the id is still valid, only less unique.
        let _ = crate::sys::linux::random_bytes(&mut id);
        let mut bits = 0xfdu128 << 120;
        for (i, b) in id.iter().enumerate() {
            bits |= (*b as u128) << (112 - 8 * i);
        }
        Subnet6 {
            addr: Ipv6Addr::from(bits),
            prefix: 64,
        }
    }
}

/// The host's IPv6 routes (from /proc/net/ipv6_route), the default route
/// excepted: a subnet overlapping one would hide it.
pub fn host_routes() -> Vec<Subnet6> {
    let table = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    parse_routes(&table)
}

fn parse_routes(table: &str) -> Vec<Subnet6> {
    table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dst = u128::from_str_radix(f.first()?, 16).ok()?;
            let prefix = u8::from_str_radix(f.get(1)?, 16).ok()?;
            (prefix > 0).then(|| Subnet6::new(Ipv6Addr::from(dst), prefix))?
        })
        .collect()
}

/// Whether this host has IPv6: the stack is there and not disabled.
pub fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .is_ok_and(|v| v.trim() == "0")
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = String;

    fn from_str(s: &str) -> Result<Subnet6, String> {
        let bad = || {
            format!(
                "invalid IPv6 subnet {:?}: use a CIDR such as fd12:3456:789a::/64",
                Input::from(s)
            )
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let net = Subnet6::new(addr, prefix).ok_or_else(bad)?;
        match net.addr == addr {
            true => Ok(net),
            false => Err(format!(
                "invalid IPv6 subnet {s:?}: host bits are set; did you mean {net}?"
            )),
        }
    }
}

impl TryFrom<String> for Subnet6 {
    type Error = String;
    fn try_from(s: String) -> Result<Subnet6, String> {
        s.parse()
    }
}

impl From<Subnet6> for String {
    fn from(s: Subnet6) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overlaps_and_picks_unique_local_subnets() {
        let s: Subnet6 = "fd12:3456:789a::/64".parse().unwrap();
        assert_eq!(s.nth(1), Some("fd12:3456:789a::1".parse().unwrap()));
        assert!(s.contains("fd12:3456:789a::99".parse().unwrap()));
        assert!(!s.contains("fd12:3456:789b::1".parse().unwrap()));
        assert!(s.overlaps(&"fd12::/16".parse().unwrap()));
        assert!(!s.overlaps(&"fd13::/16".parse().unwrap()));
        assert!("fd12::1/64"
            .parse::<Subnet6>()
            .unwrap_err()
            .contains("fd12::/64"));
        for bad in ["fd12::", "fd12::/129", "172.20.0.0/16", ""] {
            assert!(bad.parse::<Subnet6>().is_err(), "{bad}");
        }
        let (a, b) = (Subnet6::random_ula(), Subnet6::random_ula());
        assert_eq!(a.prefix(), 64);
        assert!(a.to_string().starts_with("fd"), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn reads_the_route_table_without_the_default_route() {
        let table = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n";
        assert_eq!(parse_routes(table), vec!["fd00::/64".parse().unwrap()]);
    }
}
