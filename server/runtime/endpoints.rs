//! A container's places on bridge networks: wired at each start (a
//! connect event per network) and unwired after its exit (a disconnect
//! event each), joined and left while it runs or not (`network connect`
//! and `disconnect`), and the /etc/hosts of everyone on a network kept
//! naming the running peers there.
//!
//! The first network is eth0, with the default route and the published
//! ports; a network connected later is the lowest free ethN, with a route
//! to its subnet only.

use super::container::{Container, IfUnsaved};
use super::error::{Error, Result};
use super::networks::{event, from_network};
use super::{records, Runtime};
use crate::network::{self, Attachment, Join, NetworkRecord, PortSpec};
use crate::spec::{exposed, Endpoint, Network, Spec};
use berth::pb::Action;
use std::io::Write;
use std::os::fd::OwnedFd;
use tokio::sync::MutexGuard;

/// What a start wires. With ports, it holds the ports lock until the
/// start is recorded (it is dropped with it): the next start that
/// publishes finds these ports among the running ones.
pub(super) struct Plan<'a> {
    nets: Vec<NetworkRecord>,
    wanted: Vec<PortSpec>,
    taken: Vec<PortSpec>,
    _ports: Option<MutexGuard<'a, ()>>,
}

impl Runtime {
    /// Before a start of `c`: its networks found, the ports lock taken if
    /// it publishes, what an earlier run left wired taken down (a crash
    /// cut its unwiring short; with its disconnect events), and its
    /// namespace pinned. None if it is not on bridge networks.
    pub(super) async fn plan(&self, c: &Container) -> Result<Option<Plan<'_>>> {
        let spec = c.spec();
        if !spec.network.wired() {
            return Ok(None);
        }
        let nets = spec
            .net
            .endpoints()
            .iter()
            .map(|e| {
                self.find_network(&e.id).map_err(|_| {
                    Error::FailedPrecondition(format!(
                        "container {} is on network {}, which was removed",
                        c.name(),
                        e.name
                    ))
                })
            })
            .collect::<Result<Vec<NetworkRecord>>>()?;
        let wanted = published(&spec);
        let (ports, taken) = match wanted.is_empty() {
            true => (None, Vec::new()),
            false => (Some(self.ports_lock.lock().await), self.published_now()),
        };
        // Whatever an earlier run left wired goes first (its exit
        // journaled the disconnects).
        self.disconnect(c, false).await;
        // Pinned before the monitor starts: PID 1's mount namespace is a
        // copy of the host's at its clone, so a pin mounted later (the
        // host's mounts need not propagate) would not be there for it.
        if let Err(e) = self.host.pin_netns(&c.dir).await {
            self.disconnect(c, false).await;
            return Err(from_network(e));
        }
        Ok(Some(Plan {
            nets,
            wanted,
            taken,
            _ports: ports,
        }))
    }

    /// Wires `c` onto the networks of `plan` while its PID 1 is set up,
    /// telling PID 1 on `gate` (a byte) once they and its /etc/hosts are
    /// ready (it execs). Its published ports (and, with publish_all, every
    /// exposed port) go on its first network, on host ports no running
    /// container of this daemon or another has. On failure the caller
    /// takes down what was wired.
    pub(super) async fn wire(
        &self,
        c: &Container,
        plan: &Plan<'_>,
        gate: OwnedFd,
    ) -> Result<Vec<Attachment>> {
        let spec = c.spec();
        let mut attached = Vec::new();
        if let Some(list) = &spec.cni {
            attached.push(self.join_plugins(c, list, plan).await?);
        }
        for (i, net) in plan.nets.iter().enumerate() {
            let ports = if i == 0 { &plan.wanted[..] } else { &[] };
            let ifname = format!("eth{i}");
            attached.push(self.join(c, net, &ifname, ports, &plan.taken).await?);
        }
        let own = self.hosts_lines(c, &attached);
        super::start::write_hosts(&c.dir, &spec, &own)
            .and_then(|()| match self.resolver_for(&attached) {
                Some(at) if !spec.sandbox => super::start::write_resolv(&c.dir, &spec, Some(at)),
                _ => Ok(()),
            })
            .map_err(|e| {
                let what = format!("start container {}: write /etc/hosts", c.name());
                super::error::io_failed(what, &c.dir, e)
            })?;
        // PID 1 may be gone already (its start failed): nothing to tell.
        let _ = std::fs::File::from(gate).write_all(b"1");
        Ok(attached)
    }

    /// Puts `c` (its namespace pinned) on the network of its CNI
    /// configuration list `list`, with its ports.
    async fn join_plugins(&self, c: &Container, list: &str, plan: &Plan<'_>) -> Result<Attachment> {
        let conflist: serde_json::Value = serde_json::from_str(list)
            .map_err(|e| Error::Internal(format!("the CNI configuration of {}: {e}", c.name())))?;
        self.host
            .attach_plugins(&c.dir, &c.id, conflist, &plan.wanted, &plan.taken)
            .await
            .map_err(|e| match from_network(e) {
                Error::FailedPrecondition(m) => {
                    Error::FailedPrecondition(format!("cannot start container {}: {m}", c.name()))
                }
                e => e,
            })
    }

    /// Puts `c` (its namespace pinned) on `net` as `ifname`, with a
    /// connect event; with the default route if it is eth0.
    async fn join(
        &self,
        c: &Container,
        net: &NetworkRecord,
        ifname: &str,
        ports: &[PortSpec],
        taken: &[PortSpec],
    ) -> Result<Attachment> {
        let place = match ifname {
            "eth0" => network::Place::First {
                ports: !ports.is_empty(),
            },
            _ => network::Place::More,
        };
        let mut conflist = net.conflist(&network::dir(&self.root).join("ipam"), place);
        // Addresses of its own on the network it was created on: the
        // plugins' args (host-local's ips, bridge's mac).
        let fixed = c.spec().net.fixed;
        if fixed.network_id == net.id && !fixed.is_empty() {
            let ips: Vec<String> = fixed
                .ip
                .map(|a| a.to_string())
                .into_iter()
                .chain(fixed.ip6.map(|a| a.to_string()))
                .collect();
            let mut cni = serde_json::json!({});
            if !ips.is_empty() {
                cni["ips"] = serde_json::json!(ips);
            }
            if let Some(mac) = &fixed.mac {
                cni["mac"] = serde_json::json!(mac);
            }
            conflist["plugins"][0]["args"] = serde_json::json!({ "cni": cni });
        }
        let join = Join {
            net,
            conflist,
            ifname,
            ports,
            taken,
            fixed: (fixed.network_id == net.id).then_some(&fixed),
            routes: place != network::Place::More && !net.internal,
        };
        let a = self
            .host
            .attach(&c.dir, &c.id, join)
            .await
            .map_err(|e| match from_network(e) {
                Error::FailedPrecondition(m) => {
                    Error::FailedPrecondition(format!("cannot start container {}: {m}", c.name()))
                }
                e => e,
            })?;
        if let Err(e) = self.bus.publish(event(Action::Connect, net, &c.id)) {
            self.host.detach(&c.dir, &c.id, Some(&net.id)).await;
            return Err(e.into());
        }
        Ok(a)
    }

    /// The host ports the running containers of this daemon publish.
    fn published_now(&self) -> Vec<PortSpec> {
        self.all()
            .iter()
            .flat_map(|c| {
                let st = c.state();
                let ports: Vec<PortSpec> = st
                    .record
                    .networks
                    .iter()
                    .flat_map(|a| a.ports.clone())
                    .collect();
                ports
            })
            .collect()
    }

    /// Takes `c` off every network after its run (or a failed start), if
    /// it is on any still; with disconnect events if `announce` (a failed
    /// start: after an exit they were journaled with its die).
    pub(super) async fn disconnect(&self, c: &Container, announce: bool) {
        if !c.spec().network.wired() {
            return;
        }
        for id in self.host.detach(&c.dir, &c.id, None).await {
            match announce {
                true => self.left(c, &id),
                false => self.refresh_hosts(&id),
            }
        }
    }

    /// `c` went from network `id`: the disconnect event, and its peers'
    /// /etc/hosts without it.
    fn left(&self, c: &Container, id: &str) {
        let net = self.networks_read().get(id).cloned();
        if let Some(net) = net {
            if let Err(e) = self.bus.publish(event(Action::Disconnect, &net, &c.id)) {
                tracing::warn!(container = %c.id, error = %e, "cannot journal the disconnect");
            }
        }
        self.refresh_hosts(id);
    }

    /// `network connect`: container `key` joins network `network` with
    /// `aliases` there, at once if it runs and at each start from now on.
    pub async fn network_connect(
        &self,
        network: &str,
        key: &str,
        aliases: Vec<String>,
    ) -> Result<()> {
        let net = self.find_network(network)?;
        for a in &aliases {
            crate::spec::validate_name(a)
                .map_err(|_| crate::spec::Error::Alias(a.as_str().into()))?;
        }
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let (spec, running, on) = self.endpoint_state(&c, key)?;
        let mut endpoints = spec.net.endpoints();
        if endpoints.iter().any(|e| e.id == net.id) {
            return Err(Error::AlreadyExists(format!(
                "container {} is already on network {}",
                c.name(),
                net.name
            )));
        }
        endpoints.push(Endpoint {
            name: net.name.clone(),
            id: net.id.clone(),
            aliases,
        });
        let wired = match running {
            true => Some(self.join(&c, &net, &free_interface(&on), &[], &[]).await?),
            false => None,
        };
        let saved = self.save_endpoints(&c, endpoints, |r| {
            // It may have exited meanwhile: its unwiring, waiting for the
            // op lock, takes this network down too.
            if let Some(a) = wired.clone().filter(|_| r.status.is_running()) {
                r.networks.push(a);
            }
        });
        if let Err(e) = saved {
            if wired.is_some() {
                self.host.detach(&c.dir, &c.id, Some(&net.id)).await;
                self.left(&c, &net.id);
            }
            return Err(e);
        }
        if let Some(a) = wired {
            self.refresh_hosts(&net.id);
            self.refresh_resolv(&c, on.into_iter().chain([a]).collect());
        }
        tracing::info!(container = %c.id, network = %net.name, running, "connected");
        Ok(())
    }

    /// `network disconnect`: container `key` leaves network `network`, at
    /// once if it runs, and joins it no more.
    pub async fn network_disconnect(&self, network: &str, key: &str) -> Result<()> {
        let net = self.find_network(network)?;
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let (spec, running, _) = self.endpoint_state(&c, key)?;
        let mut endpoints = spec.net.endpoints();
        if !endpoints.iter().any(|e| e.id == net.id) {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not on network {}",
                c.name(),
                net.name
            )));
        }
        endpoints.retain(|e| e.id != net.id);
        // Recorded first: if that fails nothing changed.
        self.save_endpoints(&c, endpoints, |r| {
            r.networks.retain(|a| a.network_id != net.id)
        })?;
        if running
            && !self
                .host
                .detach(&c.dir, &c.id, Some(&net.id))
                .await
                .is_empty()
        {
            self.left(&c, &net.id);
        }
        if running {
            let on = c.state().record.networks.clone();
            self.refresh_resolv(&c, on);
        }
        tracing::info!(container = %c.id, network = %net.name, running, "disconnected");
        Ok(())
    }

    /// A container's spec, whether it runs and where it is now, for
    /// connect and disconnect (under its op lock); only containers with
    /// a namespace for bridge networks can join them.
    fn endpoint_state(&self, c: &Container, key: &str) -> Result<(Spec, bool, Vec<Attachment>)> {
        let st = c.state();
        if st.removed {
            return Err(Error::NotFound(key.into()));
        }
        let r = &st.record;
        if r.spec.network != Network::Bridge {
            return Err(Error::FailedPrecondition(format!(
                "container {} is on network {}: it cannot be connected to or disconnected from other networks",
                c.name(),
                r.spec.network.as_str()
            )));
        }
        Ok((r.spec.clone(), r.status.is_running(), r.networks.clone()))
    }

    /// Records `endpoints` as the networks of `c`, with `also` done to
    /// the record in the same write.
    fn save_endpoints(
        &self,
        c: &Container,
        endpoints: Vec<Endpoint>,
        also: impl FnOnce(&mut super::Record),
    ) -> Result<()> {
        let mut st = c.state();
        c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
            r.spec.net.set_endpoints(endpoints);
            also(r);
            Vec::new()
        })?;
        // The copy is for rebuilding without the database.
        if let Err(e) = records::write_copy(&c.dir, &st.record) {
            tracing::warn!(container = %c.id, error = %e, "cannot write the record copy");
        }
        Ok(())
    }

    /// Writes /etc/resolv.conf of running `c` again for its places `on`:
    /// a user network's resolver once it is on one, the host's servers
    /// once it is on none.
    fn refresh_resolv(&self, c: &Container, on: Vec<Attachment>) {
        let spec = c.spec();
        let at = self.resolver_for(&on).filter(|_| !spec.sandbox);
        if let Err(e) = super::start::write_resolv(&c.dir, &spec, at) {
            tracing::warn!(container = %c.id, error = %e, "cannot update /etc/resolv.conf");
        }
    }
}

/// The lowest ethN none of `on` has.
fn free_interface(on: &[Attachment]) -> String {
    (0..)
        .map(|i| format!("eth{i}"))
        .find(|name| !on.iter().any(|a| &a.ifname == name))
        .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_network_takes_the_lowest_free_interface() {
        let on = |names: &[&str]| -> Vec<Attachment> {
            names
                .iter()
                .map(|n| Attachment {
                    network_id: String::new(),
                    network: String::new(),
                    ifname: n.to_string(),
                    ip: std::net::Ipv4Addr::UNSPECIFIED,
                    prefix: 0,
                    gateway: std::net::Ipv4Addr::UNSPECIFIED,
                    mac: String::new(),
                    ports: Vec::new(),
                    ipv6: None,
                    ipv6_ports: false,
                })
                .collect()
        };
        assert_eq!(free_interface(&on(&[])), "eth0");
        assert_eq!(free_interface(&on(&["eth0", "eth1"])), "eth2");
        assert_eq!(free_interface(&on(&["eth1"])), "eth0");
    }
}
