//! Bridge networks. A network is a record (its subnet and gateway, IPv6
//! ones too if it has IPv6, and its bridge) and a CNI config list under the
//! root (ROOT/networks/ID.conflist: bridge with host-local addresses, then
//! portmap), which any CNI runtime can use as well. Outgoing traffic is
//! masqueraded by one rule per network and family (bridge.rs), not one per
//! container. A container on networks gets a network namespace of its own
//! pinned in its directory (netns.rs), wired by berthd (native.rs, then
//! the list's portmap for published ports) before PID 1 joins it and
//! unwired after it exits (wiring.rs); what is wired is written down
//! first, so a wiring cut short by a crash is taken down at the next start
//! of the daemon.

mod bridge;
mod claims;
mod cni;
mod ipam;
mod leases;
mod nat;
mod native;
mod netlink;
pub mod netns;
pub mod ports;
mod proxy;
mod subnet;
mod subnet6;
mod wiring;

pub use cni::DEFAULT_PATH as CNI_PATH;
pub use ipam::ipam_options;
pub use ports::PortSpec;
pub use subnet::Subnet;
pub use subnet6::{host_has_ipv6, Subnet6};
pub use wiring::{wired_now, Attachment, Join, Wiring};

use crate::spec::Input;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

pub use crate::spec::DEFAULT_NETWORK as DEFAULT;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The host cannot give what is asked now (a port, a subnet).
    #[error("{0}")]
    Conflict(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A CNI plugin, ip or iptables failed.
    #[error("{0}")]
    Plugin(String),
}

/// The error of a failed file operation: `what` was being done.
fn io(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        what: what.to_string(),
        source,
    }
}

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// The bridge device: "berth" and the id's first 10 characters.
    pub bridge: String,
    /// Its IPv6 subnet and gateway, if it has IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Net>,
    /// The MTU of the bridge and its containers' interfaces.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub created_at: i64,
    /// Containers' IPv4 addresses are taken from this part of the subnet
    /// (Docker's --ip-range); None: all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Subnet>,
    /// Addresses never given to a container, by name (Docker's
    /// --aux-address).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux: BTreeMap<String, Ipv4Addr>,
    /// Its containers reach each other and nothing beyond (Docker's
    /// --internal): no default route, no masquerading, and forwarding
    /// into or out of its bridge dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

/// Docker's.
pub const DEFAULT_MTU: u32 = 1500;

fn default_mtu() -> u32 {
    DEFAULT_MTU
}

/// Checks a create's MTU (0: the default).
pub fn mtu(mtu: u32, ipv6: bool) -> Result<u32, Error> {
    let least = if ipv6 { 1280 } else { 68 };
    match mtu {
        0 => Ok(DEFAULT_MTU),
        m if (least..=65535).contains(&m) => Ok(m),
        m => Err(Error::Invalid(format!(
            "invalid MTU {m}: use {least} to 65535"
        ))),
    }
}

/// Where a container is on a network, for the config list run for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Place {
    /// Its first network: its default route, and with `ports` the portmap
    /// plugin for its published ports (without, the plugin is not run).
    First { ports: bool },
    /// A network connected later: a route to its subnet only.
    More,
}

/// A network's IPv6 side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ipv6Net {
    pub subnet: Subnet6,
    pub gateway: Ipv6Addr,
}

impl NetworkRecord {
    /// The bridge device's name for network `id`.
    pub fn bridge_name(id: &str) -> String {
        format!("{}{}", bridge::PREFIX, &id[..10])
    }

    /// The CNI config list of this network, with the host-local plugin's
    /// leases kept in `ipam_dir`, for a container's `place` on it.
    pub fn conflist(&self, ipam_dir: &Path, place: Place) -> serde_json::Value {
        let mut ranges = vec![self.ipv4_ranges()];
        let mut routes = vec![json!({"dst": "0.0.0.0/0"})];
        if let Some(v6) = &self.ipv6 {
            ranges.push(
                json!([{"subnet": v6.subnet.to_string(), "gateway": v6.gateway.to_string()}]),
            );
            routes.push(json!({"dst": "::/0"}));
        }
        if self.internal {
            routes.clear();
        }
        let mut plugins = vec![json!({
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "mtu": self.mtu,
            "ipam": {
                "type": "host-local",
                "ranges": ranges,
                "routes": routes,
                "dataDir": ipam_dir,
            }
        })];
        match place {
            Place::First { ports: true } => plugins.push(
                json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}),
            ),
            Place::First { ports: false } => {}
            Place::More => plugins[0]["ipam"]["routes"] = json!([]),
        }
        json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "plugins": plugins,
        })
    }
}

/// The networks' directory under the root: config lists and leases.
pub fn dir(root: &Path) -> PathBuf {
    root.join("networks")
}

pub fn conflist_path(root: &Path, id: &str) -> PathBuf {
    dir(root).join(format!("{id}.conflist"))
}

/// The copy of a network's record beside its config list, for rebuilding
/// without the database (`berthd --rebuild`).
fn copy_path(root: &Path, id: &str) -> PathBuf {
    dir(root).join(format!("{id}.json"))
}

/// Writes the copy of `net`'s record.
pub fn write_copy(root: &Path, net: &NetworkRecord) -> std::io::Result<()> {
    let tmp = dir(root).join(format!(".{}.json", net.id));
    std::fs::write(&tmp, serde_json::to_vec_pretty(net).unwrap_or_default())?;
    std::fs::rename(tmp, copy_path(root, &net.id))
}

/// The networks whose record copies are under `root`.
pub fn copies(root: &Path) -> Vec<NetworkRecord> {
    let entries = std::fs::read_dir(dir(root)).into_iter().flatten().flatten();
    entries
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .filter_map(|e| {
            let net = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if net.is_none() {
                tracing::warn!(path = %e.path().display(), "unreadable network record copy");
            }
            net
        })
        .collect()
}

/// Checks a network name: Docker's rule for names,
/// [a-zA-Z0-9][a-zA-Z0-9_.-]*.
pub fn validate_name(name: &str) -> Result<(), Error> {
    crate::spec::validate_name(name).map_err(|_| {
        Error::Invalid(format!(
            "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed",
            Input::from(name)
        ))
    })
}

/// What a create asks of a network's addresses, checked.
pub fn addresses(subnet: &str, gateway: &str) -> Result<(Option<Subnet>, Option<Ipv4Addr>), Error> {
    let subnet: Option<Subnet> = match subnet {
        "" => None,
        s => Some(s.parse().map_err(Error::Invalid)?),
    };
    if let Some(s) = subnet.filter(|s| !s.usable()) {
        return Err(Error::Invalid(format!(
            "subnet {s} is too small: use a prefix of /30 or shorter"
        )));
    }
    if let Some((s, (range, what))) = subnet.and_then(|s| Some((s, s.reserved()?))) {
        return Err(Error::Invalid(format!(
            "subnet {s} overlaps {range} ({what}): use a private range such as 172.20.0.0/16"
        )));
    }
    let gateway: Option<Ipv4Addr> = match gateway {
        "" => None,
        g => Some(g.parse().map_err(|_| {
            Error::Invalid(format!(
                "invalid gateway {:?}: use an IPv4 address",
                Input::from(g)
            ))
        })?),
    };
    match (subnet, gateway) {
        (None, Some(_)) => Err(Error::Invalid("a gateway needs a subnet".into())),
        (Some(s), Some(g)) if !s.contains(g) || Some(g) == s.nth(0) || g == s.last() => Err(
            Error::Invalid(format!("gateway {g} is not a host address of subnet {s}")),
        ),
        _ => Ok((subnet, gateway)),
    }
}

/// The IPv6 subnet and gateway a create gives (None: picked).
pub type Asked6 = (Option<Subnet6>, Option<Ipv6Addr>);

/// What a create asks of a network's IPv6 side, checked: None for no
/// IPv6, else the subnet and gateway given (or None for picked ones).
pub fn addresses6(ipv6: bool, subnet: &str, gateway: &str) -> Result<Option<Asked6>, Error> {
    if !ipv6 && subnet.is_empty() && gateway.is_empty() {
        return Ok(None);
    }
    if !host_has_ipv6() {
        return Err(Error::Conflict("IPv6 is disabled on this host".into()));
    }
    parse6(subnet, gateway).map(Some)
}

fn parse6(subnet: &str, gateway: &str) -> Result<Asked6, Error> {
    let subnet: Option<Subnet6> = match subnet {
        "" => None,
        s => Some(s.parse().map_err(Error::Invalid)?),
    };
    if let Some(s) = subnet.filter(|s| !s.usable()) {
        return Err(Error::Invalid(format!(
            "IPv6 subnet {s} is too small: use a prefix of /124 or shorter"
        )));
    }
    let gateway: Option<Ipv6Addr> = match gateway {
        "" => None,
        g => Some(g.parse().map_err(|_| {
            Error::Invalid(format!(
                "invalid IPv6 gateway {:?}: use an IPv6 address",
                Input::from(g)
            ))
        })?),
    };
    match (subnet, gateway) {
        (None, Some(_)) => Err(Error::Invalid(
            "an IPv6 gateway needs an IPv6 subnet".into(),
        )),
        (Some(s), Some(g)) if !s.contains(g) || Some(g) == s.nth(0) => Err(Error::Invalid(
            format!("IPv6 gateway {g} is not a host address of subnet {s}"),
        )),
        _ => Ok((subnet, gateway)),
    }
}

/// What a create asks of a network's addresses.
pub struct Asked {
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    /// Some with IPv6.
    pub ipv6: Option<Asked6>,
    /// Checked (`mtu`).
    pub mtu: u32,
}

/// Claims subnets on the host for network `id` (those given, or free
/// ones) and writes its config list under `root`, under the host-wide
/// lock.
pub fn claim(root: &Path, id: &str, name: &str, asked: Asked) -> Result<NetworkRecord, Error> {
    let path = conflist_path(root, id);
    let mut record = None;
    let v6 = asked.ipv6.map(|(subnet, _)| subnet);
    claims::claim(&path, asked.subnet, v6, |subnet, subnet6| {
        let net = NetworkRecord {
            id: id.to_string(),
            name: name.to_string(),
            subnet,
            gateway: asked
                .gateway
                .or_else(|| subnet.nth(1))
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            bridge: NetworkRecord::bridge_name(id),
            ipv6: subnet6.map(|subnet| Ipv6Net {
                subnet,
                gateway: asked
                    .ipv6
                    .and_then(|(_, g)| g)
                    .or_else(|| subnet.nth(1))
                    .unwrap_or(Ipv6Addr::UNSPECIFIED),
            }),
            mtu: asked.mtu,
            labels: BTreeMap::new(),
            created_at: 0,
            ip_range: None,
            aux: BTreeMap::new(),
            internal: false,
        };
        write_conflist(root, &net)?;
        record = Some(net);
        Ok(())
    })?;
    record.ok_or_else(|| Error::Plugin("no network was claimed".into()))
}

pub fn write_conflist(root: &Path, net: &NetworkRecord) -> Result<(), Error> {
    let io = |source| Error::Io {
        what: format!("write the config list of network {}", net.name),
        source,
    };
    std::fs::create_dir_all(dir(root)).map_err(io)?;
    // For any runtime: the whole list.
    let list = net.conflist(&dir(root).join("ipam"), Place::First { ports: true });
    let tmp = conflist_path(root, &format!(".{}", net.id));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&list).unwrap_or_default()).map_err(io)?;
    std::fs::rename(&tmp, conflist_path(root, &net.id)).map_err(io)
}

/// After a restart: each network's config list and subnet claim as its
/// record has them (a reboot emptied /run).
pub fn restore(root: &Path, net: &NetworkRecord) {
    let path = conflist_path(root, &net.id);
    if !copy_path(root, &net.id).exists() {
        if let Err(e) = write_copy(root, net) {
            tracing::warn!(network = %net.name, error = %e, "cannot write the network's record copy");
        }
    }
    if !path.exists() {
        if let Err(e) = write_conflist(root, net) {
            tracing::warn!(network = %net.name, error = %e, "cannot write the network's config list");
        }
    }
    claims::reclaim(&path, net.subnet);
    if let Some(v6) = &net.ipv6 {
        claims::reclaim(&path, v6.subnet);
    }
}

/// Gives up the claim and config list of a network never recorded.
pub fn release(root: &Path, net: &NetworkRecord) {
    let path = conflist_path(root, &net.id);
    claims::release(&path, net.subnet);
    if let Some(v6) = &net.ipv6 {
        claims::release(&path, v6.subnet);
    }
    let _ = std::fs::remove_file(copy_path(root, &net.id));
    let _ = std::fs::remove_file(path);
}

/// A network's bridge, rules, claim and config list gone (its leases went
/// with its last container).
pub async fn destroy(root: &Path, net: &NetworkRecord) {
    bridge::remove(net).await;
    release(root, net);
    let _ = std::fs::remove_dir_all(dir(root).join("ipam").join(&net.name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_are_checked() {
        validate_name("app_1.x-y").unwrap();
        for bad in ["", "-x", "a b", "a/b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let (s, g) = addresses("172.29.0.0/16", "172.29.0.254").unwrap();
        assert_eq!(s.unwrap().to_string(), "172.29.0.0/16");
        assert_eq!(g, Some(Ipv4Addr::new(172, 29, 0, 254)));
        assert_eq!(addresses("", "").unwrap(), (None, None));
        for (s, g) in [
            ("172.29.0.0/16", "172.30.0.1"),
            ("172.29.0.0/16", "172.29.0.0"),
            ("", "172.29.0.1"),
            ("172.29.0.0/31", ""),
            ("172.29.0.0/16", "x"),
        ] {
            assert!(addresses(s, g).is_err(), "{s} {g}");
        }
        assert_eq!(mtu(0, false).unwrap(), DEFAULT_MTU);
        assert_eq!(mtu(65520, true).unwrap(), 65520);
        assert!(mtu(67, false).is_err() && mtu(1279, true).is_err() && mtu(65536, false).is_err());
        assert_eq!(addresses6(false, "", "").unwrap(), None);
        let (s, g) = parse6("fd00:1::/64", "fd00:1::fe").unwrap();
        assert_eq!(s.unwrap().to_string(), "fd00:1::/64");
        assert_eq!(g, "fd00:1::fe".parse().ok());
        for (s, g) in [
            ("fd00:1::/64", "fd00:2::1"),
            ("fd00:1::/64", "fd00:1::"),
            ("", "fd00:1::1"),
            ("fd00:1::/126", ""),
            ("fd00:1::/64", "10.0.0.1"),
            ("10.0.0.0/8", ""),
        ] {
            assert!(parse6(s, g).is_err(), "{s} {g}");
        }
    }
}
