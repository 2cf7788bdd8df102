//! Putting a container on networks and taking it off. DIR/network.json
//! says what is wired, an entry per network (the interface, the config
//! list, the ports, the host's end of the veth, the result), and is
//! written before anything is: whatever a crash cuts short, the next
//! detach takes down from it. berth's bridges are wired by berthd itself
//! (native.rs), then the list's other plugins (portmap) run; an entry
//! without a veth was wired by the plugins, and they take it down.

use super::cni::{self, Invocation};
use super::native;
use super::netns::{self, PIN};
use super::proxy::{self, Proxies};
use super::{bridge, claims, io, Error, NetworkRecord, PortSpec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

const FILE: &str = "network.json";

/// A network a container joins, and how.
pub struct Join<'a> {
    pub net: &'a NetworkRecord,
    pub conflist: Value,
    /// Its interface in the container.
    pub ifname: &'a str,
    /// Published on host ports that none of `taken` (nor another
    /// daemon's containers) has; host port 0 is any free one.
    pub ports: &'a [PortSpec],
    pub taken: &'a [PortSpec],
    /// The addresses it asked for on this network.
    pub fixed: Option<&'a crate::spec::Fixed>,
    /// With the default routes through the network's gateways.
    pub routes: bool,
}

/// A container's place on a network during one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network_id: String,
    pub network: String,
    /// Its interface in the container: eth0, eth1...
    #[serde(default = "first_interface")]
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// With the host ports taken.
    pub ports: Vec<PortSpec>,
    /// On a network with IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Address6>,
    /// Its ports published on every address answer on the host's IPv6
    /// addresses too (proxy.rs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6_ports: bool,
}

/// A container's IPv6 address on a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address6 {
    pub ip: Ipv6Addr,
    pub prefix: u8,
    pub gateway: Ipv6Addr,
}

fn first_interface() -> String {
    "eth0".into()
}

#[derive(Serialize, Deserialize)]
struct Wired {
    network_id: String,
    #[serde(default = "first_interface")]
    ifname: String,
    conflist: Value,
    ports: Vec<PortSpec>,
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ipv6_ports: bool,
    /// Wired by berthd: the host's end of its veth, and the directory of
    /// its address leases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    veth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leases: Option<PathBuf>,
}

/// The host's side of networks: where the leases are, where the plugins
/// are, and which bridges this daemon has made sure of.
pub struct Wiring {
    /// The networks' lease directories are in it.
    ipam: PathBuf,
    /// CNI_PATH.
    pub cni_path: String,
    /// Held while a lease is taken.
    leasing: std::sync::Mutex<()>,
    ensured: tokio::sync::Mutex<HashSet<String>>,
    /// Published ports' IPv6 side.
    proxies: Proxies,
}

/// What network.json holds: one entry, as it was before a container
/// could be on several networks, or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum File {
    One(Wired),
    Many(Vec<Wired>),
}

fn read(dir: &Path) -> Vec<Wired> {
    read_file(&dir.join(FILE))
}

fn read_file(path: &Path) -> Vec<Wired> {
    let file: Option<File> = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match file {
        None => Vec::new(),
        Some(File::One(w)) => vec![w],
        Some(File::Many(w)) => w,
    }
}

fn write(dir: &Path, wired: &[Wired]) -> Result<(), Error> {
    let tmp = dir.join(".network.json");
    std::fs::write(&tmp, serde_json::to_vec(wired).unwrap_or_default())
        .map_err(io("write network.json"))?;
    std::fs::rename(tmp, dir.join(FILE)).map_err(io("write network.json"))
}

fn runtime_config(ports: &[PortSpec]) -> Value {
    json!({"portMappings": ports.iter().map(super::ports::mapping).collect::<Vec<_>>()})
}

impl Wiring {
    /// `ipam`: where the networks' leases are kept.
    pub fn new(ipam: PathBuf, cni_path: String) -> Wiring {
        Wiring {
            ipam,
            cni_path,
            leasing: Default::default(),
            ensured: Default::default(),
            proxies: Default::default(),
        }
    }

    /// Pins the network namespace of container directory `dir`, if it
    /// has none yet.
    pub async fn pin(&self, dir: &Path) -> Result<(), Error> {
        let pin = dir.join(PIN);
        if netns::is_pinned(&pin) {
            return Ok(());
        }
        // What a helper killed halfway left.
        netns::unpin(&pin);
        netns::pin(&pin)
            .await
            .map_err(io("make the network namespace"))
    }

    /// Puts container `id` (directory `dir`, namespace pinned) on a
    /// network. On failure nothing of it is left.
    pub async fn attach(&self, dir: &Path, id: &str, join: Join<'_>) -> Result<Attachment, Error> {
        let net = join.net;
        let ifname = join.ifname;
        self.ensure_bridge(net).await?;
        let mut all = read(dir);
        let wired = Wired {
            network_id: net.id.clone(),
            ifname: ifname.to_string(),
            conflist: join.conflist,
            ports: Vec::new(),
            result: None,
            ipv6_ports: false,
            veth: Some(native::veth_name()),
            leases: Some(native::lease_dir(&self.ipam, &net.name)),
        };
        self.record_wired(dir, id, &mut all, wired, join.ports, join.taken)?;
        let wire = async {
            let pin = dir.join(PIN);
            let wired = all
                .last_mut()
                .ok_or_else(|| Error::Plugin("nothing to wire".into()))?;
            let (veth, leases) = match (&wired.veth, &wired.leases) {
                (Some(veth), Some(leases)) => (veth, leases),
                _ => return Err(Error::Plugin("nothing to wire".into())),
            };
            let addrs = {
                let _one = self.leasing.lock().unwrap_or_else(|p| p.into_inner());
                native::lease(leases, net, id, ifname, join.fixed)?
            };
            native::wire(net, &pin, veth, ifname, &addrs, join.routes).await?;
            let mut result = native::result(net, veth, ifname, &pin, &addrs);
            let rest = after_bridge(&wired.conflist);
            if !rest["plugins"].as_array().is_none_or(|p| p.is_empty()) {
                let inv = self.invocation(id, Some(&pin), ifname);
                let runtime = runtime_config(&wired.ports);
                result = cni::add(&rest, &inv, &runtime, Some(result)).await?;
            }
            wired.result = Some(result);
            let mut attached = attachment(net, wired)?;
            if proxy::on_ipv6(&wired.ports) {
                self.proxies.start(id, attached.ip, &wired.ports)?;
                (wired.ipv6_ports, attached.ipv6_ports) = (true, true);
            }
            write(dir, &all)?;
            Ok(attached)
        };
        let attached = wire.await;
        if attached.is_err() {
            self.detach(dir, id, Some(&net.id)).await;
        }
        attached
    }

    /// Puts container `id` (namespace pinned) on the network of a CNI
    /// configuration list, every plugin of it run (no wiring of berthd's),
    /// as eth0 with its default route, publishing `ports` (on host ports
    /// none of `taken` has) through the list's portmap. On failure nothing
    /// of it is left.
    pub async fn attach_plugins(
        &self,
        dir: &Path,
        id: &str,
        conflist: Value,
        ports: &[PortSpec],
        taken: &[PortSpec],
    ) -> Result<Attachment, Error> {
        let name = conflist["name"].as_str().unwrap_or_default().to_string();
        let network_id = format!("cni:{name}");
        let mut all = read(dir);
        let wired = Wired {
            network_id: network_id.clone(),
            ifname: first_interface(),
            conflist,
            ports: Vec::new(),
            result: None,
            ipv6_ports: false,
            veth: None,
            leases: None,
        };
        self.record_wired(dir, id, &mut all, wired, ports, taken)?;
        let wire = async {
            let pin = dir.join(PIN);
            let wired = all
                .last_mut()
                .ok_or_else(|| Error::Plugin("nothing to wire".into()))?;
            let inv = self.invocation(id, Some(&pin), &wired.ifname);
            let runtime = runtime_config(&wired.ports);
            let result = cni::add(&wired.conflist, &inv, &runtime, None).await?;
            wired.result = Some(result);
            let attached = plugins_attachment(&network_id, &name, wired)?;
            write(dir, &all)?;
            Ok(attached)
        };
        let attached = wire.await;
        if attached.is_err() {
            self.detach(dir, id, Some(&network_id)).await;
        }
        attached
    }

    /// Writes down what is about to be wired (`wired`, appended to
    /// `all`), its host ports taken first under the host-wide lock when it
    /// publishes: whatever a crash cuts short is taken down from it.
    fn record_wired(
        &self,
        dir: &Path,
        id: &str,
        all: &mut Vec<Wired>,
        mut wired: Wired,
        ports: &[PortSpec],
        taken: &[PortSpec],
    ) -> Result<(), Error> {
        if ports.is_empty() {
            all.push(wired);
            return write(dir, all);
        }
        // Host ports another daemon's containers publish are taken too.
        let own = dir.join(FILE);
        let ports_of = |p: &Path| read_file(p).into_iter().flat_map(|w| w.ports).collect();
        claims::with_published(&own, ports_of, |elsewhere| {
            let taken: Vec<PortSpec> = taken.iter().cloned().chain(elsewhere).collect();
            wired.ports = super::ports::take(ports, &taken)?;
            all.push(wired);
            write(dir, all)?;
            claims::publish(id, &own)
        })
    }

    /// Takes container `id` off network `only`, or with None off every
    /// network and its namespace unpinned: the plugins' DEL (the last
    /// network first), then the record of it. The ids of the networks
    /// taken down, in that order.
    pub async fn detach(&self, dir: &Path, id: &str, only: Option<&str>) -> Vec<String> {
        let pin = dir.join(PIN);
        let (going, staying): (Vec<Wired>, Vec<Wired>) = read(dir)
            .into_iter()
            .partition(|w| only.is_none_or(|n| n == w.network_id));
        let pinned = netns::is_pinned(&pin);
        let mut deferred = Vec::new();
        for w in going.iter().rev() {
            let inv = self.invocation(id, pinned.then_some(pin.as_path()), &w.ifname);
            let runtime = runtime_config(&w.ports);
            // The plugins' part: all of it, or what came after berthd's.
            let plugins = match &w.veth {
                Some(_) => after_bridge(&w.conflist),
                None => w.conflist.clone(),
            };
            let ran = match plugins["plugins"].as_array().is_none_or(|p| p.is_empty()) {
                true => Ok(()),
                false => cni::del(&plugins, &inv, &runtime, w.result.as_ref()).await,
            };
            if let Err(e) = ran {
                tracing::warn!(container = id, network = %w.network_id, error = %e, "network teardown incomplete");
            }
            if let (Some(veth), Some(leases)) = (&w.veth, &w.leases) {
                // After a run, its namespace goes with the pin below and
                // the veth with it: not waited for.
                match only {
                    Some(_) => native::unwire(veth, false).await,
                    None => deferred.push(veth.clone()),
                }
                super::leases::give_up(leases, id, &w.ifname);
            }
            if !w.ports.is_empty() {
                self.proxies.stop(id);
                super::nat::sweep(id).await;
                claims::unpublish(id, &dir.join(FILE));
            }
        }
        match only {
            Some(_) if !going.is_empty() => {
                if let Err(e) = write(dir, &staying) {
                    tracing::warn!(container = id, error = %e, "cannot record the networks left");
                }
            }
            Some(_) => {}
            None => {
                netns::unpin(&pin);
                let _ = std::fs::remove_file(dir.join(FILE));
            }
        }
        // Deleted even if something else holds the namespace still (a
        // container that joined it).
        for veth in deferred {
            native::unwire(&veth, true).await;
        }
        going.into_iter().rev().map(|w| w.network_id).collect()
    }

    /// After a restart of the daemon: the IPv6 side of the published
    /// ports of a container still running at `attached`.
    pub fn republish(&self, id: &str, attached: &[Attachment]) {
        for a in attached.iter().filter(|a| a.ipv6_ports) {
            if let Err(e) = self.proxies.start(id, a.ip, &a.ports) {
                tracing::warn!(container = id, error = %e, "cannot publish on IPv6 again");
            }
        }
    }

    fn invocation<'a>(
        &'a self,
        id: &'a str,
        netns: Option<&'a Path>,
        ifname: &'a str,
    ) -> Invocation<'a> {
        Invocation {
            container_id: id,
            netns,
            ifname,
            path: &self.cni_path,
        }
    }

    /// The bridge and its rules, once per bridge in this daemon's life (a
    /// reboot or another hand may have removed them before).
    async fn ensure_bridge(&self, net: &NetworkRecord) -> Result<(), Error> {
        let mut ensured = self.ensured.lock().await;
        if !ensured.contains(&net.bridge) {
            bridge::ensure(net).await?;
            ensured.insert(net.bridge.clone());
        }
        Ok(())
    }

    /// Forgets a bridge this daemon made sure of (its network is removed).
    pub async fn forget(&self, net: &NetworkRecord) {
        self.ensured.lock().await.remove(&net.bridge);
    }
}

/// The config list without its bridge plugin: what runs after berthd
/// wired the bridge itself.
fn after_bridge(conflist: &Value) -> Value {
    let mut rest = conflist.clone();
    if let Some(plugins) = rest["plugins"].as_array_mut() {
        plugins.retain(|p| p["type"] != "bridge");
    }
    rest
}

/// Where the container of directory `dir` is wired now, as its
/// network.json says, on those of `nets` (for rebuilding its record).
pub fn wired_now(dir: &Path, nets: &[NetworkRecord]) -> Vec<Attachment> {
    read(dir)
        .iter()
        .filter_map(|w| {
            let net = nets.iter().find(|n| n.id == w.network_id)?;
            attachment(net, w).ok()
        })
        .collect()
}

/// Where a CNI configuration list's plugins put it: the first IPv4
/// address of their result (and its gateway, if they give one), on the
/// interface they name.
fn plugins_attachment(network_id: &str, name: &str, wired: &Wired) -> Result<Attachment, Error> {
    attachment_on(network_id, name, Ipv4Addr::UNSPECIFIED, None, wired)
}

/// The addresses, gateways and MAC the bridge plugin gave.
fn attachment(net: &NetworkRecord, wired: &Wired) -> Result<Attachment, Error> {
    let gateway6 = net.ipv6.map(|v6| v6.gateway);
    attachment_on(&net.id, &net.name, net.gateway, gateway6, wired)
}

/// The attachment a result gives on network `id` (`name`): its
/// gateways where the result has none; IPv6 only with `gateway6`.
fn attachment_on(
    id: &str,
    name: &str,
    gateway4: Ipv4Addr,
    gateway6: Option<Ipv6Addr>,
    wired: &Wired,
) -> Result<Attachment, Error> {
    let result = wired.result.as_ref().unwrap_or(&Value::Null);
    let bad = || Error::Plugin(format!("the CNI result holds no IPv4 address: {result}"));
    // (address, prefix, gateway, interface index) of each family.
    let ips: Vec<(std::net::IpAddr, u8, Option<std::net::IpAddr>, Option<u64>)> = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| {
            let (addr, prefix) = ip["address"].as_str()?.split_once('/')?;
            Some((
                addr.parse().ok()?,
                prefix.parse().ok()?,
                ip["gateway"].as_str().and_then(|g| g.parse().ok()),
                ip["interface"].as_u64(),
            ))
        })
        .collect();
    let (ip, prefix, gateway, interface) = ips
        .iter()
        .find_map(|(ip, p, g, i)| match (ip, g) {
            (std::net::IpAddr::V4(ip), Some(std::net::IpAddr::V4(g))) => Some((*ip, *p, *g, *i)),
            (std::net::IpAddr::V4(ip), _) => Some((*ip, *p, gateway4, *i)),
            _ => None,
        })
        .ok_or_else(bad)?;
    let ipv6 = ips.iter().find_map(|(ip, p, g, _)| match (ip, gateway6) {
        (std::net::IpAddr::V6(ip), Some(gateway6)) => Some(Address6 {
            ip: *ip,
            prefix: *p,
            gateway: match g {
                Some(std::net::IpAddr::V6(g)) => *g,
                _ => gateway6,
            },
        }),
        _ => None,
    });
    let mac = interface
        .and_then(|i| result["interfaces"][i as usize]["mac"].as_str())
        .unwrap_or_default();
    Ok(Attachment {
        network_id: id.to_string(),
        network: name.to_string(),
        ifname: wired.ifname.clone(),
        ip,
        prefix,
        gateway,
        mac: mac.to_string(),
        ports: wired.ports.clone(),
        ipv6,
        ipv6_ports: wired.ipv6_ports,
    })
}
