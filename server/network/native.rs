//! berth's own bridge networks wired without plugins: a veth pair made in
//! one netlink request (the host's end on the bridge, the container's in
//! its namespace, both up), the container's addresses and default routes
//! set from inside its namespace, leases kept as host-local keeps them
//! (leases.rs). The outcome is written down as the CNI bridge plugin's
//! result, so the portmap plugin (for published ports) and everything
//! that reads a result work as they do with the plugins.
//!
//! Taking it down after a run does not wait for the kernel: the
//! namespace's pin goes, and the host's end is deleted in the
//! background (the kernel deletes a veth pair with either end's
//! namespace, and deleting one holds the rtnl lock for milliseconds);
//! the leases go at once. A container's MAC address is derived from its
//! IPv4 address as Docker's is (02:42 and the address), so an address
//! given again finds the neighbours' caches right.

use super::leases::{self, Pool};
use super::netlink::{self, Netlink, Peer};
use super::{Error, NetworkRecord};
use crate::spec::Fixed;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// What a container gets on a network.
pub struct Addresses {
    /// (address, prefix, gateway) of IPv4, then of IPv6 on a network
    /// with it.
    pub ips: Vec<(IpAddr, u8, IpAddr)>,
    pub mac: [u8; 6],
}

/// A name for the host's end of a veth: "veth" and eight random hex
/// digits, as the bridge plugin names them.
pub fn veth_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    // Keyed at random, and differently for each call.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("veth{:08x}", h.finish() as u32)
}

/// The leases of interface `ifname` of container `id` on `net` (in
/// `dir`, the network's lease directory): IPv4, and IPv6 on a network
/// with it; `fixed` where the container asked for its own. Nothing is
/// held if it fails.
pub fn lease(
    dir: &Path,
    net: &NetworkRecord,
    id: &str,
    ifname: &str,
    fixed: Option<&Fixed>,
) -> Result<Addresses, Error> {
    let v4 = Pool {
        set: 0,
        runs: net
            .ipv4_pool()
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect(),
    };
    // Checked before anything is leased.
    let own_mac = match fixed.and_then(|f| f.mac.as_deref()) {
        Some(m) => {
            Some(parse_mac(m).ok_or_else(|| Error::Invalid(format!("invalid MAC address {m}")))?)
        }
        None => None,
    };
    let wanted = fixed.and_then(|f| f.ip).map(IpAddr::from);
    if wanted == Some(IpAddr::from(net.gateway)) {
        return Err(Error::Conflict(format!(
            "requested IP address {} is the network's gateway",
            net.gateway
        )));
    }
    let ip = leases::take(dir, &v4, id, ifname, wanted)?;
    let mut ips = vec![(ip, net.subnet.prefix(), IpAddr::from(net.gateway))];
    if let Some(v6) = &net.ipv6 {
        // The subnet less its first and last addresses and the gateway.
        let size = 1u128.checked_shl(u32::from(128 - v6.subnet.prefix()));
        let last = size.and_then(|s| v6.subnet.nth(s - 2)).map(u128::from);
        let first = v6.subnet.nth(1).map(u128::from);
        let g = u128::from(v6.gateway);
        let runs = match (first, last) {
            (Some(a), Some(b)) if (a..=b).contains(&g) => vec![(a, g - 1), (g + 1, b)],
            (Some(a), Some(b)) => vec![(a, b)],
            _ => Vec::new(),
        };
        let pool = Pool {
            set: 1,
            runs: runs
                .into_iter()
                .filter(|(a, b)| a <= b)
                .map(|(a, b)| {
                    (
                        std::net::Ipv6Addr::from(a).into(),
                        std::net::Ipv6Addr::from(b).into(),
                    )
                })
                .collect(),
        };
        let wanted = fixed.and_then(|f| f.ip6).map(IpAddr::from);
        let gateway = IpAddr::from(v6.gateway);
        let taken = match wanted == Some(gateway) {
            true => Err(Error::Conflict(format!(
                "requested IP address {gateway} is the network's gateway"
            ))),
            false => leases::take(dir, &pool, id, ifname, wanted),
        };
        match taken {
            Ok(ip6) => ips.push((ip6, v6.subnet.prefix(), gateway)),
            Err(e) => {
                leases::give_up(dir, id, ifname);
                return Err(e);
            }
        }
    }
    let mac = own_mac.unwrap_or_else(|| {
        let [a, b, c, d] = net_v4(ip).octets();
        [0x02, 0x42, a, b, c, d]
    });
    Ok(Addresses { ips, mac })
}

fn net_v4(ip: IpAddr) -> std::net::Ipv4Addr {
    match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Makes the veth pair `veth` (host) / `ifname` (in the namespace pinned
/// at `pin`) on `net`'s bridge with `addrs`, and with `routes` the
/// default routes through the gateways. Whatever fails is the caller's
/// to take down (the veth by its name).
pub async fn wire(
    net: &NetworkRecord,
    pin: &Path,
    veth: &str,
    ifname: &str,
    addrs: &Addresses,
    routes: bool,
) -> Result<(), Error> {
    let ns = std::fs::File::open(pin).map_err(super::io("open the network namespace"))?;
    let (bridge, mtu, veth_, ifname_) = (
        net.bridge.clone(),
        net.mtu,
        veth.to_string(),
        ifname.to_string(),
    );
    let (ips, mac) = (addrs.ips.clone(), addrs.mac);
    netlink::on_own_thread(move || {
        let step = |what: &'static str| {
            move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"))
        };
        let mut host = Netlink::open().map_err(step("open netlink"))?;
        let index = host.index(&bridge).map_err(step("find the bridge"))?;
        let peer = Peer {
            ifname: &ifname_,
            mac,
            netns: ns.as_fd(),
        };
        host.add_veth(&veth_, index, mtu, &peer)
            .map_err(step("make the veth pair"))?;
        // A container reaches its own published ports through the host.
        std::fs::write(format!("/sys/class/net/{veth_}/brport/hairpin_mode"), "1")
            .map_err(step("turn hairpin mode on"))?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| step("enter the namespace")(e.into()))?;
        let mut inside = Netlink::open().map_err(step("open netlink in the namespace"))?;
        let index = inside.index(&ifname_).map_err(step("find the interface"))?;
        inside
            .set_up(index)
            .map_err(step("bring the interface up"))?;
        for (ip, prefix, _) in &ips {
            inside
                .add_address(index, *ip, *prefix)
                .map_err(step("add an address"))?;
        }
        if routes {
            for (_, _, gateway) in &ips {
                inside
                    .add_default_route(index, *gateway)
                    .map_err(step("add the default route"))?;
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Plugin(format!("wire {ifname} on bridge {}: {e}", net.bridge)))
}

/// The CNI bridge plugin's result for this wiring.
pub fn result(
    net: &NetworkRecord,
    veth: &str,
    ifname: &str,
    pin: &Path,
    addrs: &Addresses,
) -> Value {
    let ips: Vec<Value> = addrs
        .ips
        .iter()
        .map(|(ip, prefix, gateway)| {
            json!({"address": format!("{ip}/{prefix}"), "gateway": gateway.to_string(), "interface": 2})
        })
        .collect();
    json!({
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": net.bridge},
            {"name": veth},
            {"name": ifname, "mac": mac_string(&addrs.mac), "sandbox": pin},
        ],
        "ips": ips,
    })
}

/// Deletes the veth whose host end is `veth`: at once, or with
/// `background` after the caller goes on (a veth gone already is fine).
pub async fn unwire(veth: &str, background: bool) {
    let name = veth.to_string();
    let task = tokio::task::spawn_blocking(move || {
        match Netlink::open().and_then(|mut nl| nl.delete_link(&name)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
            Err(e) => tracing::warn!(veth = %name, error = %e, "cannot delete a veth"),
        }
    });
    if !background {
        let _ = task.await;
    }
}

/// A network's lease directory under `ipam`.
pub fn lease_dir(ipam: &Path, net: &str) -> PathBuf {
    ipam.join(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{Ipv6Net, Subnet6, DEFAULT_MTU};

    fn network() -> NetworkRecord {
        let subnet: crate::network::Subnet = "10.213.9.0/24".parse().unwrap();
        let v6: Subnet6 = "fd00:9::/64".parse().unwrap();
        NetworkRecord {
            id: "0123456789abcdef".into(),
            name: "app".into(),
            subnet,
            gateway: subnet.nth(1).unwrap(),
            bridge: "berth0123456789".into(),
            ipv6: Some(Ipv6Net {
                subnet: v6,
                gateway: v6.nth(1).unwrap(),
            }),
            mtu: DEFAULT_MTU,
            labels: Default::default(),
            created_at: 0,
            ip_range: None,
            aux: Default::default(),
            internal: false,
        }
    }

    #[test]
    fn a_lease_skips_the_gateways_and_gives_dockers_mac() {
        let dir = std::env::temp_dir().join(format!("berth-native-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let net = network();
        let a = lease(&dir, &net, "c1", "eth0", None).unwrap();
        let got: Vec<String> = a
            .ips
            .iter()
            .map(|(ip, p, g)| format!("{ip}/{p} via {g}"))
            .collect();
        assert_eq!(
            got,
            ["10.213.9.2/24 via 10.213.9.1", "fd00:9::2/64 via fd00:9::1"]
        );
        assert_eq!(mac_string(&a.mac), "02:42:0a:d5:09:02");
        // What it asks for, checked before anything is leased.
        let bad = Fixed {
            ip: Some("10.213.9.7".parse().unwrap()),
            mac: Some("zz".into()),
            ..Default::default()
        };
        assert!(lease(&dir, &net, "c2", "eth0", Some(&bad)).is_err());
        let gateway = Fixed {
            ip: Some("10.213.9.1".parse().unwrap()),
            ..Default::default()
        };
        assert!(lease(&dir, &net, "c2", "eth0", Some(&gateway)).is_err());
        let leased = std::fs::read_dir(&dir).unwrap().count();
        // c1's two addresses and the two last_reserved_ip files.
        assert_eq!(leased, 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn macs_read_and_print_alike() {
        let mac = parse_mac("02:42:ac:11:00:0a").unwrap();
        assert_eq!(mac, [2, 0x42, 0xac, 0x11, 0, 10]);
        assert_eq!(mac_string(&mac), "02:42:ac:11:00:0a");
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
    }
}
