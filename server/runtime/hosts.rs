//! /etc/hosts of containers on bridge networks: each names itself and
//! its running peers on the networks it shares with them (their name and
//! aliases there), rewritten in place as peers come and go.

use super::container::{Container, Status};
use super::Runtime;
use crate::network::Attachment;
use std::sync::Arc;

impl Runtime {
    /// The lines /etc/hosts of `c` gets: its own address on each network
    /// `own`, then each running peer's on the first network they share,
    /// with its aliases there.
    pub(super) fn hosts_lines(&self, c: &Container, own: &[Attachment]) -> Vec<String> {
        hosts_from(&c.id, &c.spec().hostname, own, &self.named())
    }

    /// Every running container as its peers' /etc/hosts name it: read
    /// once for all the files a change rewrites.
    fn named(&self) -> Vec<Named> {
        self.all()
            .iter()
            .filter_map(|p| {
                let st = p.state();
                if st.record.status != Status::Running {
                    return None;
                }
                let endpoints = st.record.spec.net.endpoints();
                let name = st.record.spec.name.clone();
                let on = st
                    .record
                    .networks
                    .iter()
                    .map(|a| {
                        let aliases = endpoints
                            .iter()
                            .filter(|e| e.id == a.network_id)
                            .take(1)
                            .flat_map(|e| e.aliases.iter().map(String::as_str));
                        let names: Vec<&str> =
                            std::iter::once(name.as_str()).chain(aliases).collect();
                        let lines: Vec<String> = addresses(a)
                            .map(|ip| format!("{ip}\t{}", names.join(" ")))
                            .collect();
                        (a.network_id.clone(), lines.join("\n"))
                    })
                    .collect();
                Some(Named {
                    id: p.id.clone(),
                    name,
                    on,
                })
            })
            .collect()
    }

    /// Writes /etc/hosts again, in place, for each running container on
    /// network `id`: a peer came or went.
    pub(super) fn refresh_hosts(&self, id: &str) {
        let on: Vec<Arc<Container>> = self
            .all()
            .iter()
            .filter(|c| {
                let st = c.state();
                st.record.status.is_running()
                    && st.record.networks.iter().any(|a| a.network_id == id)
            })
            .cloned()
            .collect();
        let named = self.named();
        for c in on {
            let own = c.state().record.networks.clone();
            let spec = c.spec();
            let lines = hosts_from(&c.id, &spec.hostname, &own, &named);
            if let Err(e) = super::start::write_hosts(&c.dir, &spec, &lines) {
                tracing::warn!(container = %c.id, error = %e, "cannot update /etc/hosts");
            }
        }
    }
}

/// A running container as its peers' /etc/hosts name it: per network it
/// is on, its lines there (its addresses, its name and aliases there).
struct Named {
    id: String,
    name: String,
    on: Vec<(String, String)>,
}

/// The lines /etc/hosts of container `id` gets (see hosts_lines), from
/// `named`.
fn hosts_from(id: &str, hostname: &str, own: &[Attachment], named: &[Named]) -> Vec<String> {
    let mut lines: Vec<String> = own
        .iter()
        .flat_map(|a| addresses(a).map(|ip| format!("{ip}\t{hostname}")))
        .collect();
    let mut peers: Vec<(&str, &str)> = named
        .iter()
        .filter(|p| p.id != id)
        .filter_map(|p| {
            let (_, l) = own
                .iter()
                .find_map(|mine| p.on.iter().find(|(n, _)| *n == mine.network_id))?;
            Some((p.name.as_str(), l.as_str()))
        })
        .collect();
    peers.sort();
    lines.extend(peers.into_iter().map(|(_, l)| l.to_string()));
    lines
}

/// The addresses of a place on a network: IPv4, then IPv6 if it has it.
pub(super) fn addresses(a: &Attachment) -> impl Iterator<Item = std::net::IpAddr> {
    std::iter::once(a.ip.into()).chain(a.ipv6.map(|v6| v6.ip.into()))
}
