//! Networks: their records (in the store, with create and destroy events),
//! and a container's place on one during a run: wired before its start
//! (connect event), unwired after its exit (disconnect event), and the
//! /etc/hosts of everyone on the network kept naming the running peers.

use super::container::{Container, Status};
use super::error::{failed, Error, Result};
use super::Runtime;
use crate::events::timestamp;
use crate::network::{self, Attachment, NetworkRecord, PortSpec};
use crate::spec::{exposed, Input, Network, Spec};
use crate::store::{Batch, Table};
use crate::sys::{linux, time::now_nanos};
use berth::pb::{self, Action, EventType};
use std::collections::BTreeMap;
use tokio::sync::MutexGuard;

/// A network and the running containers on it.
pub struct NetworkView {
    pub record: NetworkRecord,
    /// (id, name, place) of each running container on it.
    pub endpoints: Vec<(String, String, Attachment)>,
}

pub(super) fn from_network(e: network::Error) -> Error {
    match e {
        network::Error::Invalid(m) => Error::InvalidArgument(m),
        network::Error::Conflict(m) => Error::FailedPrecondition(m),
        e @ (network::Error::Io { .. } | network::Error::Plugin(_)) => failed("network", e),
    }
}

fn event(action: Action, net: &NetworkRecord, container: &str) -> pb::Event {
    pb::Event {
        r#type: EventType::Network as i32,
        action: action as i32,
        id: net.id.clone(),
        name: net.name.clone(),
        labels: net.labels.clone().into_iter().collect(),
        container_id: container.to_string(),
        ..Default::default()
    }
}

impl Runtime {
    fn networks_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, NetworkRecord>> {
        self.networks.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the networks (making the default one the first time) and
    /// puts each one's config list and subnet claim back as recorded.
    pub(super) async fn open_networks(&self) -> Result<()> {
        let stored: Vec<(String, NetworkRecord)> = self
            .bus
            .store()
            .load_table(Table::Networks)
            .map_err(|e| failed("load networks", e))?;
        for (_, net) in &stored {
            self.host.restore_network(&self.root, net);
        }
        *self.networks.write().unwrap_or_else(|p| p.into_inner()) = stored.into_iter().collect();
        let has_default = self
            .networks_read()
            .values()
            .any(|n| n.name == network::DEFAULT);
        if !has_default {
            // Without it the daemon still serves; starts on it fail until
            // a later daemon start can make it.
            if let Err(e) = self.add_network(network::DEFAULT, "", "", BTreeMap::new(), false) {
                tracing::warn!(error = %e, "cannot make the default bridge network");
            }
        }
        Ok(())
    }

    /// Finds a network by id, name or unique id prefix.
    fn find_network(&self, key: &str) -> Result<NetworkRecord> {
        let nets = self.networks_read();
        if let Some(n) = nets.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = nets.values().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let mut found = nets
            .values()
            .filter(|n| !key.is_empty() && n.id.starts_with(key));
        match (found.next(), found.next()) {
            (Some(n), None) => Ok(n.clone()),
            (Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
                "network id prefix {:?} is ambiguous: give more characters or the name",
                Input::from(key)
            ))),
            _ => Err(Error::NoNetwork(key.into())),
        }
    }

    /// The id of the network a create names (`Spec::net.name`).
    pub(super) fn network_id(&self, name: &str) -> Result<String> {
        self.find_network(name).map(|n| n.id)
    }

    pub fn network_create(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<NetworkRecord> {
        self.add_network(name, subnet, gateway, labels, true)
    }

    /// Makes a network; a create event if `announce` (not for the default
    /// network, predefined as Docker's is).
    fn add_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        labels: BTreeMap<String, String>,
        announce: bool,
    ) -> Result<NetworkRecord> {
        network::validate_name(name).map_err(from_network)?;
        if ["none", "host"].contains(&name) {
            return Err(Error::InvalidArgument(format!(
                "network name {name:?} is a network mode: choose another name"
            )));
        }
        let (subnet, gateway) = network::addresses(subnet, gateway).map_err(from_network)?;
        // Held across the claim, so two creates cannot take one name.
        let mut nets = self.networks.write().unwrap_or_else(|p| p.into_inner());
        if nets.values().any(|n| n.name == name) {
            return Err(Error::AlreadyExists(format!(
                "network with name {name} already exists"
            )));
        }
        let mut raw = [0u8; 32];
        linux::random_bytes(&mut raw).map_err(|e| failed("generate id", e))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut net = self
            .host
            .claim_network(&self.root, &id, name, subnet, gateway)
            .map_err(from_network)?;
        net.labels = labels;
        net.created_at = now_nanos();
        let mut batch = Batch::default();
        let stored = batch
            .put_in(Table::Networks, &id, &net)
            .map_err(Error::from)
            .and_then(|()| {
                let events = match announce {
                    true => vec![event(Action::Create, &net, "")],
                    false => Vec::new(),
                };
                Ok(self.bus.commit(batch, events)?)
            });
        if let Err(e) = stored {
            self.host.release_network(&self.root, &net);
            return Err(e);
        }
        nets.insert(id, net.clone());
        tracing::info!(network = %net.name, subnet = %net.subnet, bridge = %net.bridge, "network created");
        Ok(net)
    }

    pub fn network_list(&self) -> Vec<NetworkRecord> {
        let mut nets: Vec<NetworkRecord> = self.networks_read().values().cloned().collect();
        nets.sort_by(|a, b| a.name.cmp(&b.name));
        nets
    }

    pub fn network_inspect(&self, key: &str) -> Result<NetworkView> {
        let record = self.find_network(key)?;
        let mut endpoints: Vec<(String, String, Attachment)> = self
            .all()
            .iter()
            .filter_map(|c| {
                let st = c.state();
                let a = st.record.network.as_ref()?;
                (a.network_id == record.id).then(|| (c.id.clone(), c.name(), a.clone()))
            })
            .collect();
        endpoints.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(NetworkView { record, endpoints })
    }

    pub async fn network_remove(&self, key: &str) -> Result<()> {
        let net = self.find_network(key)?;
        if net.name == network::DEFAULT {
            return Err(Error::FailedPrecondition(
                "bridge is a pre-defined network and cannot be removed".into(),
            ));
        }
        {
            // Under the write lock: one remove at a time. A create racing
            // this one can still record the network's id; its start then
            // fails (FAILED_PRECONDITION, the network was removed).
            let mut nets = self.networks.write().unwrap_or_else(|p| p.into_inner());
            let users: Vec<String> = self
                .all()
                .iter()
                .filter(|c| c.spec().net.id == net.id)
                .map(|c| c.name())
                .collect();
            if !users.is_empty() {
                return Err(Error::FailedPrecondition(format!(
                    "network {} is in use by container(s) {}: remove them first",
                    net.name,
                    users.join(", ")
                )));
            }
            let mut batch = Batch::default();
            batch.delete_in(Table::Networks, &net.id);
            self.bus
                .commit(batch, vec![event(Action::Destroy, &net, "")])?;
            nets.remove(&net.id);
        }
        self.host.destroy_network(&self.root, &net).await;
        tracing::info!(network = %net.name, "network removed");
        Ok(())
    }

    /// Wires `c` onto its network for the run about to start: its
    /// published ports (and, with publish_all, every exposed port) on
    /// host ports no running container of this daemon has. With ports, the
    /// guard returned is held until the start is recorded: the next start
    /// that publishes finds these ports among the running ones.
    pub(super) async fn connect(
        &self,
        c: &Container,
    ) -> Result<(Option<Attachment>, Option<MutexGuard<'_, ()>>)> {
        let spec = c.spec();
        if spec.network != Network::Bridge {
            return Ok((None, None));
        }
        let net = self.find_network(&spec.net.id).map_err(|_| {
            Error::FailedPrecondition(format!(
                "container {} is on network {}, which was removed",
                c.name(),
                spec.net.name
            ))
        })?;
        let wanted = published(&spec);
        let (ports, taken) = match wanted.is_empty() {
            true => (None, Vec::new()),
            false => (Some(self.ports_lock.lock().await), self.published_now()),
        };
        // Whatever an earlier run left wired (a crash cut its unwiring
        // short) goes first, with its disconnect event.
        self.disconnect(c).await;
        let conflist = net.conflist(&network::dir(&self.root).join("ipam"));
        let a = self
            .host
            .attach(&c.dir, &c.id, &net, conflist, &wanted, &taken)
            .await
            .map_err(|e| match from_network(e) {
                Error::FailedPrecondition(m) => {
                    Error::FailedPrecondition(format!("cannot start container {}: {m}", c.name()))
                }
                e => e,
            })?;
        if let Err(e) = self.bus.publish(event(Action::Connect, &net, &c.id)) {
            self.disconnect(c).await;
            return Err(e.into());
        }
        Ok((Some(a), ports))
    }

    /// The host ports the running containers of this daemon publish.
    fn published_now(&self) -> Vec<PortSpec> {
        self.all()
            .iter()
            .filter_map(|c| c.state().record.network.as_ref().map(|a| a.ports.clone()))
            .flatten()
            .collect()
    }

    /// Takes `c` off its network after its run (or a failed start), if it
    /// is on one still.
    pub(super) async fn disconnect(&self, c: &Container) {
        if c.spec().network != Network::Bridge {
            return;
        }
        let Some(id) = self.host.detach(&c.dir, &c.id).await else {
            return;
        };
        let net = self.networks_read().get(&id).cloned();
        if let Some(net) = net {
            if let Err(e) = self.bus.publish(event(Action::Disconnect, &net, &c.id)) {
                tracing::warn!(container = %c.id, error = %e, "cannot journal the disconnect");
            }
        }
        self.refresh_hosts(&id);
    }

    /// The lines /etc/hosts of a container at `own` on a network gets: its
    /// own address and names, then each running peer's.
    pub(super) fn hosts_lines(&self, c: &Container, own: &Attachment) -> Vec<String> {
        let spec = c.spec();
        let mut lines = vec![format!("{}\t{}", own.ip, spec.hostname)];
        let mut peers: Vec<(String, String)> = self
            .all()
            .iter()
            .filter(|p| p.id != c.id)
            .filter_map(|p| {
                let st = p.state();
                let a = st.record.network.as_ref()?;
                if a.network_id != own.network_id || st.record.status != Status::Running {
                    return None;
                }
                let s = &st.record.spec;
                let mut names = vec![s.name.clone()];
                names.extend(s.net.aliases.iter().cloned());
                Some((s.name.clone(), format!("{}\t{}", a.ip, names.join(" "))))
            })
            .collect();
        peers.sort();
        lines.extend(peers.into_iter().map(|(_, l)| l));
        lines
    }

    /// Writes /etc/hosts again, in place, for each running container on
    /// network `id`: a peer started or went.
    pub(super) fn refresh_hosts(&self, id: &str) {
        let on: Vec<std::sync::Arc<Container>> = self
            .all()
            .iter()
            .filter(|c| {
                let st = c.state();
                st.record.status.is_running()
                    && st
                        .record
                        .network
                        .as_ref()
                        .is_some_and(|a| a.network_id == id)
            })
            .cloned()
            .collect();
        for c in on {
            let Some(own) = c.state().record.network.clone() else {
                continue;
            };
            if let Err(e) =
                super::start::write_hosts(&c.dir, &c.spec(), &self.hosts_lines(&c, &own))
            {
                tracing::warn!(container = %c.id, error = %e, "cannot update /etc/hosts");
            }
        }
    }
}

/// The ports a run of `spec` publishes: those asked for, and with
/// publish_all each exposed port not among them, on a free host port.
fn published(spec: &Spec) -> Vec<PortSpec> {
    let mut wanted = spec.net.ports.clone();
    if !spec.net.publish_all {
        return wanted;
    }
    for (port, protocol) in spec.exposed_ports.iter().filter_map(|e| exposed(e).ok()) {
        let asked = |p: &PortSpec| p.container_port == port && p.protocol == protocol;
        if !wanted.iter().any(asked) {
            wanted.push(PortSpec {
                host_ip: None,
                host_port: 0,
                container_port: port,
                protocol,
            });
        }
    }
    wanted
}

/// A running container's network settings for the API.
pub fn settings(a: &Attachment) -> pb::NetworkSettings {
    pb::NetworkSettings {
        network_id: a.network_id.clone(),
        network: a.network.clone(),
        ip_address: a.ip.to_string(),
        prefix_length: a.prefix as u32,
        gateway: a.gateway.to_string(),
        mac_address: a.mac.clone(),
        ports: a.ports.iter().map(port_binding).collect(),
    }
}

pub fn port_binding(p: &PortSpec) -> pb::PortBinding {
    pb::PortBinding {
        host_ip: p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        host_port: p.host_port as u32,
        container_port: p.container_port as u32,
        protocol: p.protocol.as_str().to_string(),
    }
}

pub fn network_pb(net: &NetworkRecord) -> pb::Network {
    pb::Network {
        id: net.id.clone(),
        name: net.name.clone(),
        driver: "bridge".into(),
        subnet: net.subnet.to_string(),
        gateway: net.gateway.to_string(),
        bridge: net.bridge.clone(),
        labels: net.labels.clone().into_iter().collect(),
        created_at: Some(timestamp(net.created_at)),
        containers: Vec::new(),
    }
}
