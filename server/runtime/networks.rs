//! Networks: their records, in the store with create and destroy events.
//! A container's places on them are endpoints.rs.

use super::error::{failed, Error, Result};
use super::Runtime;
use crate::events::timestamp;
use crate::network::{self, Attachment, NetworkRecord, PortSpec};
use crate::spec::Input;
use crate::store::{Batch, Table};
use crate::sys::{linux, time::now_nanos};
use berth::pb::{self, Action, EventType};
use std::collections::BTreeMap;

/// What a network create asks for: empty strings for what is picked.
#[derive(Debug, Default)]
pub struct NewNetwork {
    pub name: String,
    pub subnet: String,
    pub gateway: String,
    /// IPv6 too (implied by an IPv6 subnet or gateway).
    pub ipv6: bool,
    pub ipv6_subnet: String,
    pub ipv6_gateway: String,
    /// 0: the default.
    pub mtu: u32,
    pub labels: BTreeMap<String, String>,
    /// Docker's --ip-range (a CIDR in the subnet) and --aux-address
    /// ("name=address"); both need a subnet.
    pub ip_range: String,
    pub aux_addresses: Vec<String>,
    /// Docker's --internal.
    pub internal: bool,
}

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

pub(super) fn event(action: Action, net: &NetworkRecord, container: &str) -> pb::Event {
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
    pub(super) fn networks_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, NetworkRecord>> {
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
        for (_, net) in &stored {
            self.serve_dns(net);
        }
        *self.networks.write().unwrap_or_else(|p| p.into_inner()) = stored.into_iter().collect();
        let has_default = self
            .networks_read()
            .values()
            .any(|n| n.name == network::DEFAULT);
        if !has_default {
            // Without it the daemon still serves; starts on it fail until
            // a later daemon start can make it.
            let new = NewNetwork {
                name: network::DEFAULT.into(),
                ..Default::default()
            };
            if let Err(e) = self.add_network(new, false) {
                tracing::warn!(error = %e, "cannot make the default bridge network");
            }
        }
        Ok(())
    }

    /// Finds a network by id, name or unique id prefix.
    pub(super) fn find_network(&self, key: &str) -> Result<NetworkRecord> {
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

    pub fn network_create(&self, new: NewNetwork) -> Result<NetworkRecord> {
        self.add_network(new, true)
    }

    /// Makes a network; a create event if `announce` (not for the default
    /// network, predefined as Docker's is).
    fn add_network(&self, new: NewNetwork, announce: bool) -> Result<NetworkRecord> {
        let name = new.name.as_str();
        network::validate_name(name).map_err(from_network)?;
        if ["none", "host"].contains(&name) {
            return Err(Error::InvalidArgument(format!(
                "network name {name:?} is a network mode: choose another name"
            )));
        }
        let (subnet, gateway) =
            network::addresses(&new.subnet, &new.gateway).map_err(from_network)?;
        let ipv6 = network::addresses6(new.ipv6, &new.ipv6_subnet, &new.ipv6_gateway)
            .map_err(from_network)?;
        let mtu = network::mtu(new.mtu, ipv6.is_some()).map_err(from_network)?;
        let (ip_range, aux) =
            network::ipam_options(subnet, gateway, &new.ip_range, &new.aux_addresses)
                .map_err(from_network)?;
        let asked = network::Asked {
            subnet,
            gateway,
            ipv6,
            mtu,
        };
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
            .claim_network(&self.root, &id, name, asked)
            .map_err(from_network)?;
        net.labels = new.labels;
        net.created_at = now_nanos();
        if ip_range.is_some() || !aux.is_empty() || new.internal {
            (net.ip_range, net.aux, net.internal) = (ip_range, aux, new.internal);
            // The config list other CNI runtimes may read says so too.
            if let Err(e) = network::write_conflist(&self.root, &net) {
                self.host.release_network(&self.root, &net);
                return Err(from_network(e));
            }
        }
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
        // The copy is for rebuilding without the database.
        if let Err(e) = network::write_copy(&self.root, &net) {
            tracing::warn!(network = %net.name, error = %e, "cannot write the network's record copy");
        }
        self.serve_dns(&net);
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
                let a = st
                    .record
                    .networks
                    .iter()
                    .find(|a| a.network_id == record.id)?;
                Some((c.id.clone(), c.name(), a.clone()))
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
                .filter(|c| c.spec().net.endpoints().iter().any(|e| e.id == net.id))
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
        self.stop_dns(&net.id);
        self.host.destroy_network(&self.root, &net).await;
        tracing::info!(network = %net.name, "network removed");
        Ok(())
    }
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
        interface: a.ifname.clone(),
        global_ipv6_address: a.ipv6.map(|v6| v6.ip.to_string()).unwrap_or_default(),
        global_ipv6_prefix_length: a.ipv6.map(|v6| v6.prefix as u32).unwrap_or_default(),
        ipv6_gateway: a.ipv6.map(|v6| v6.gateway.to_string()).unwrap_or_default(),
        // A port on every address shows once per family, as Docker's:
        // 0.0.0.0 (as "") and "::".
        ports: a
            .ports
            .iter()
            .flat_map(|p| {
                let v6 = (a.ipv6_ports && p.host_ip.is_none()).then(|| pb::PortBinding {
                    host_ip: "::".into(),
                    ..port_binding(p)
                });
                std::iter::once(port_binding(p)).chain(v6)
            })
            .collect(),
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
        ipv6: net.ipv6.is_some(),
        ipv6_subnet: net.ipv6.map(|v6| v6.subnet.to_string()).unwrap_or_default(),
        mtu: net.mtu,
        ipv6_gateway: net
            .ipv6
            .map(|v6| v6.gateway.to_string())
            .unwrap_or_default(),
        internal: net.internal,
        ip_range: net.ip_range.map(|r| r.to_string()).unwrap_or_default(),
        aux_addresses: net
            .aux
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
    }
}
