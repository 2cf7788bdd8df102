//! The runtime as the resolver of user networks sees it (dns/): who is
//! at an address, the names it may resolve and where its other queries
//! go; and which networks have a resolver.

use super::container::Status;
use super::Runtime;
use crate::dns::{Asker, Directory, Peer};
use crate::network::{self, Attachment, NetworkRecord};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Weak;

/// Upstream servers when neither the container nor the host names one
/// (Docker's).
const FALLBACK: [Ipv4Addr; 2] = [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];

/// The runtime, for its resolvers (which it owns: a weak reference).
pub(super) struct Peers(pub Weak<Runtime>);

impl Directory for Peers {
    fn asker(&self, from: IpAddr) -> Option<Asker> {
        self.0.upgrade()?.asker(from)
    }
}

/// Whether `a` is at `ip`.
fn at(a: &Attachment, ip: IpAddr) -> bool {
    IpAddr::V4(a.ip) == ip || a.ipv6.is_some_and(|v6| IpAddr::V6(v6.ip) == ip)
}

/// Whether a network has a resolver: all but the default bridge, as in
/// Docker.
fn resolved(net: &NetworkRecord) -> bool {
    net.name != network::DEFAULT
}

impl Runtime {
    /// Serves DNS on network `net` if it has a resolver and the daemon
    /// runs them; a failure leaves its containers with the host's servers.
    pub(super) fn serve_dns(&self, net: &NetworkRecord) {
        let Some(resolver) = self.resolver.as_ref().filter(|_| resolved(net)) else {
            return;
        };
        if let Err(e) = resolver.serve(&net.id, net.gateway) {
            tracing::warn!(network = %net.name, error = %e, "no resolver: containers use the host's DNS servers");
        }
    }

    pub(super) fn stop_dns(&self, id: &str) {
        if let Some(r) = &self.resolver {
            r.stop(id);
        }
    }

    /// The resolver a container at `attached` asks: that of its first
    /// network which has one.
    pub(super) fn resolver_for(&self, attached: &[Attachment]) -> Option<Ipv4Addr> {
        let r = self.resolver.as_ref()?;
        attached.iter().find_map(|a| r.address(&a.network_id))
    }

    /// The running container at `from` on a network with a resolver.
    fn asker(&self, from: IpAddr) -> Option<Asker> {
        let all = self.all();
        let nets = self.networks_read();
        let with_resolver = |id: &str| nets.get(id).filter(|n| resolved(n));
        let (me, mine) = all.iter().find_map(|c| {
            let st = c.state();
            let r = &st.record;
            let on = r.status == Status::Running
                && r.networks
                    .iter()
                    .any(|a| at(a, from) && with_resolver(&a.network_id).is_some());
            on.then(|| (c.clone(), r.networks.clone()))
        })?;
        let mut peers = Vec::new();
        for c in &all {
            let st = c.state();
            let r = &st.record;
            if r.status != Status::Running {
                continue;
            }
            let endpoints = r.spec.net.endpoints();
            for a in &r.networks {
                let Some(net) = mine
                    .iter()
                    .find(|m| m.network_id == a.network_id)
                    .and_then(|_| with_resolver(&a.network_id))
                else {
                    continue;
                };
                let mut names = vec![r.spec.name.clone()];
                if let Some(e) = endpoints.iter().find(|e| e.id == a.network_id) {
                    names.extend(e.aliases.iter().cloned());
                }
                names.push(c.id[..12].to_string());
                let ips = std::iter::once(IpAddr::V4(a.ip)).chain(a.ipv6.map(|v| v.ip.into()));
                peers.extend(ips.map(|ip| Peer {
                    names: names.clone(),
                    network: net.name.clone(),
                    ip,
                }));
            }
        }
        // Only internal networks: nothing leaves them, names neither.
        let outside = mine
            .iter()
            .any(|a| nets.get(&a.network_id).is_some_and(|n| !n.internal));
        let upstream = match outside {
            true => upstream(&me.spec().resolve.dns),
            false => Vec::new(),
        };
        Some(Asker { peers, upstream })
    }
}

/// The container's `--dns` servers, else the host's (loopback ones too:
/// the resolver asks from the host), else Docker's fallback; port 53.
fn upstream(own: &[String]) -> Vec<SocketAddr> {
    let host;
    let servers: Vec<&str> = match own.is_empty() {
        false => own.iter().map(String::as_str).collect(),
        true => {
            host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            host.lines()
                .filter_map(|l| {
                    let mut words = l.split_whitespace();
                    (words.next() == Some("nameserver")).then(|| words.next())?
                })
                .collect()
        }
    };
    let mut out: Vec<SocketAddr> = servers
        .iter()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, crate::dns::PORT))
        .collect();
    if out.is_empty() {
        out = FALLBACK
            .iter()
            .map(|ip| SocketAddr::new((*ip).into(), crate::dns::PORT))
            .collect();
    }
    out
}
