//! A network's IPv4 address management beyond its subnet: the part
//! containers' addresses come from (Docker's --ip-range) and addresses
//! never given out (--aux-address), as host-local's range set.

use super::{Error, NetworkRecord, Subnet};
use crate::spec::Input;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

impl NetworkRecord {
    /// host-local's IPv4 range set: the subnet, or the part of it
    /// `ip_range` gives, less the auxiliary addresses (one range per run
    /// of addresses between them).
    pub(super) fn ipv4_ranges(&self) -> serde_json::Value {
        let (subnet, gateway) = (self.subnet.to_string(), self.gateway.to_string());
        if self.ip_range.is_none() && self.aux.is_empty() {
            return json!([{"subnet": subnet, "gateway": gateway}]);
        }
        let ranges: Vec<serde_json::Value> = self
            .ipv4_pool()
            .into_iter()
            .map(|(a, b)| {
                json!({
                    "subnet": subnet,
                    "rangeStart": a.to_string(),
                    "rangeEnd": b.to_string(),
                    "gateway": gateway,
                })
            })
            .collect();
        json!(ranges)
    }

    /// The runs of IPv4 addresses containers get theirs from, in order:
    /// the subnet less its network and broadcast addresses, or the part
    /// of it `ip_range` gives, less the auxiliary addresses and the
    /// gateway.
    pub(super) fn ipv4_pool(&self) -> Vec<(Ipv4Addr, Ipv4Addr)> {
        let pool = self.ip_range.unwrap_or(self.subnet);
        let first = u32::from(pool.nth(0).unwrap_or(pool.last()))
            .max(u32::from(self.subnet.nth(1).unwrap_or(self.gateway)));
        let last = u32::from(pool.last()).min(u32::from(self.subnet.last()) - 1);
        let mut skip: Vec<u32> = self.aux.values().map(|a| u32::from(*a)).collect();
        skip.push(u32::from(self.gateway));
        skip.sort_unstable();
        let mut out = Vec::new();
        let mut start = first;
        for s in skip.into_iter().filter(|s| (first..=last).contains(s)) {
            if s > start {
                out.push((start, s - 1));
            }
            start = s + 1;
        }
        if start <= last {
            out.push((start, last));
        }
        out.into_iter()
            .map(|(a, b)| (Ipv4Addr::from(a), Ipv4Addr::from(b)))
            .collect()
    }
}

/// Checks `--ip-range` and `--aux-address` ("name=address") against the
/// subnet asked for (both need one, as with Docker).
pub fn ipam_options(
    subnet: Option<Subnet>,
    gateway: Option<Ipv4Addr>,
    ip_range: &str,
    aux: &[String],
) -> Result<(Option<Subnet>, BTreeMap<String, Ipv4Addr>), Error> {
    if ip_range.is_empty() && aux.is_empty() {
        return Ok((None, BTreeMap::new()));
    }
    let Some(subnet) = subnet else {
        return Err(Error::Invalid(
            "an ip range or auxiliary addresses need a subnet: give --subnet too".into(),
        ));
    };
    let range = match ip_range {
        "" => None,
        r => {
            let r: Subnet = r.parse().map_err(Error::Invalid)?;
            if r.prefix() < subnet.prefix() || !subnet.contains(r.nth(0).unwrap_or(r.last())) {
                return Err(Error::Invalid(format!(
                    "ip range {r} is not within the subnet {subnet}"
                )));
            }
            Some(r)
        }
    };
    let mut named = BTreeMap::new();
    for a in aux {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "invalid auxiliary address {:?}: {why}",
                Input::from(a.as_str())
            ))
        };
        let (name, addr) = a.split_once('=').ok_or_else(|| bad("use NAME=ADDRESS"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        if name.is_empty() || !subnet.contains(addr) || Some(addr) == gateway {
            return Err(bad(
                "a name, and an address in the subnet other than its gateway",
            ));
        }
        if named.insert(name.to_string(), addr).is_some() {
            return Err(bad("the name is given twice"));
        }
    }
    Ok((range, named))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::DEFAULT_MTU;

    #[test]
    fn an_ip_range_and_auxiliary_addresses_shape_the_range_set() {
        let subnet: Subnet = "10.213.7.0/24".parse().unwrap();
        let gw = subnet.nth(1);
        let aux = vec!["router=10.213.7.130".to_string()];
        let (range, named) = ipam_options(Some(subnet), gw, "10.213.7.128/28", &aux).unwrap();
        let mut net = NetworkRecord {
            id: "0123456789abcdef".into(),
            name: "app".into(),
            subnet,
            gateway: gw.unwrap(),
            bridge: "berth0123456789".into(),
            ipv6: None,
            mtu: DEFAULT_MTU,
            labels: BTreeMap::new(),
            created_at: 0,
            ip_range: range,
            aux: named,
            internal: false,
        };
        let ranges: Vec<(String, String)> = net
            .ipv4_ranges()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["rangeStart"].as_str().unwrap().to_string(),
                    r["rangeEnd"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            ranges,
            [
                pair("10.213.7.128", "10.213.7.129"),
                pair("10.213.7.131", "10.213.7.143")
            ]
        );
        // Without either, the whole subnet, as before.
        (net.ip_range, net.aux) = (None, BTreeMap::new());
        assert_eq!(
            net.ipv4_ranges(),
            json!([{"subnet": "10.213.7.0/24", "gateway": "10.213.7.1"}])
        );
        for (r, a) in [
            ("10.213.8.0/28", vec![]),
            ("10.213.0.0/16", vec![]),
            ("", vec!["x=10.213.8.1".to_string()]),
            ("", vec!["x=10.213.7.1".to_string()]),
            ("", vec!["10.213.7.9".to_string()]),
        ] {
            assert!(ipam_options(Some(subnet), gw, r, &a).is_err(), "{r} {a:?}");
        }
        assert!(ipam_options(None, None, "10.213.7.128/28", &[]).is_err());
    }
}
