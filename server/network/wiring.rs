//! Putting a container on a network and taking it off. DIR/network.json
//! says what is wired (the config list, the ports, the plugins' result)
//! and is written before anything is: whatever a crash cuts short, the
//! next detach takes down from it, with the pinned namespace still there
//! for the plugins to look into.

use super::cni::{self, Invocation};
use super::netns::{self, PIN};
use super::{bridge, io, Error, NetworkRecord, PortSpec, IFNAME};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

const FILE: &str = "network.json";

/// A container's place on a network during one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network_id: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// With the host ports taken.
    pub ports: Vec<PortSpec>,
}

#[derive(Serialize, Deserialize)]
struct Wired {
    network_id: String,
    conflist: Value,
    ports: Vec<PortSpec>,
    result: Option<Value>,
}

/// The host's side of networks: the helper that pins namespaces, where
/// the plugins are, and which bridges this daemon has made sure of.
pub struct Wiring {
    /// berthd's own binary, run as `berthd netns PATH`.
    pub exe: PathBuf,
    /// CNI_PATH.
    pub cni_path: String,
    ensured: tokio::sync::Mutex<HashSet<String>>,
}

fn write(dir: &Path, wired: &Wired) -> Result<(), Error> {
    let tmp = dir.join(".network.json");
    std::fs::write(&tmp, serde_json::to_vec(wired).unwrap_or_default())
        .map_err(io("write network.json"))?;
    std::fs::rename(tmp, dir.join(FILE)).map_err(io("write network.json"))
}

fn runtime_config(ports: &[PortSpec]) -> Value {
    json!({"portMappings": ports.iter().map(super::ports::mapping).collect::<Vec<_>>()})
}

impl Wiring {
    pub fn new(exe: PathBuf, cni_path: String) -> Wiring {
        Wiring {
            exe,
            cni_path,
            ensured: Default::default(),
        }
    }

    /// Puts container `id` (directory `dir`, not on a network now) on `net`
    /// with `ports` (host ports already taken). On failure nothing of it
    /// is left.
    pub async fn attach(
        &self,
        dir: &Path,
        id: &str,
        net: &NetworkRecord,
        conflist: Value,
        ports: Vec<PortSpec>,
    ) -> Result<Attachment, Error> {
        self.ensure_bridge(net).await?;
        let mut wired = Wired {
            network_id: net.id.clone(),
            conflist,
            ports,
            result: None,
        };
        write(dir, &wired)?;
        let wire = async {
            let pin = dir.join(PIN);
            netns::pin(&self.exe, &pin)
                .await
                .map_err(io("make the network namespace"))?;
            let inv = self.invocation(id, Some(&pin));
            let result = cni::add(&wired.conflist, &inv, &runtime_config(&wired.ports)).await?;
            wired.result = Some(result);
            write(dir, &wired)?;
            attachment(net, &wired)
        };
        let attached = wire.await;
        if attached.is_err() {
            self.detach(dir, id).await;
        }
        attached
    }

    /// Takes container `id` off its network, if it is on one: the
    /// plugins' DEL, then the namespace and the record of it. The
    /// network's id if it was on one.
    pub async fn detach(&self, dir: &Path, id: &str) -> Option<String> {
        let pin = dir.join(PIN);
        let file = dir.join(FILE);
        let wired: Option<Wired> = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(w) = &wired {
            let pinned = netns::is_pinned(&pin);
            let inv = self.invocation(id, pinned.then_some(pin.as_path()));
            let runtime = runtime_config(&w.ports);
            if let Err(e) = cni::del(&w.conflist, &inv, &runtime, w.result.as_ref()).await {
                tracing::warn!(container = id, error = %e, "network teardown incomplete");
            }
            super::nat::sweep(id).await;
        }
        netns::unpin(&pin);
        let _ = std::fs::remove_file(file);
        wired.map(|w| w.network_id)
    }

    fn invocation<'a>(&'a self, id: &'a str, netns: Option<&'a Path>) -> Invocation<'a> {
        Invocation {
            container_id: id,
            netns,
            ifname: IFNAME,
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

/// The address, gateway and MAC the bridge plugin gave.
fn attachment(net: &NetworkRecord, wired: &Wired) -> Result<Attachment, Error> {
    let result = wired.result.as_ref().unwrap_or(&Value::Null);
    let bad = || Error::Plugin(format!("the CNI result holds no IPv4 address: {result}"));
    let ip = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|ip| ip["address"].as_str().is_some_and(|a| !a.contains(':')))
        .ok_or_else(bad)?;
    let (addr, prefix) = ip["address"]
        .as_str()
        .and_then(|a| a.split_once('/'))
        .ok_or_else(bad)?;
    let mac = ip["interface"]
        .as_u64()
        .and_then(|i| result["interfaces"][i as usize]["mac"].as_str())
        .unwrap_or_default();
    Ok(Attachment {
        network_id: net.id.clone(),
        network: net.name.clone(),
        ip: addr.parse().map_err(|_| bad())?,
        prefix: prefix.parse().map_err(|_| bad())?,
        gateway: ip["gateway"]
            .as_str()
            .and_then(|g| g.parse().ok())
            .unwrap_or(net.gateway),
        mac: mac.to_string(),
        ports: wired.ports.clone(),
    })
}
