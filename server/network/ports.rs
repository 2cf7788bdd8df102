//! Published ports: what a create asks for, and the host ports a start
//! takes (a free one for host port 0; a clear error for one in use).

use super::Error;
pub use crate::spec::{PortSpec, Protocol};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};

/// What the network side does with a published port.
trait Publish {
    fn clashes(&self, other: &PortSpec) -> bool;
    fn host_addr(&self) -> SocketAddrV4;
}

impl Publish for PortSpec {
    /// Whether the two would take the same host port.
    fn clashes(&self, other: &PortSpec) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }

    fn host_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(
            self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.host_port,
        )
    }
}

/// The portmap plugin's entry for `p`: IPv4 only (0.0.0.0 for every
/// address). The IPv6 side is berthd's proxy (proxy.rs), also on
/// dual-stack networks, where the plugin's IPv6 NAT would catch what is
/// sent to [::1] and leave it nowhere to go.
pub fn mapping(p: &PortSpec) -> serde_json::Value {
    serde_json::json!({
        "hostPort": p.host_port,
        "containerPort": p.container_port,
        "protocol": p.protocol.as_str(),
        "hostIP": p.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
    })
}

/// Binds the host port as the published one will take it (on every
/// address: on IPv6 too, where the host has it): Err if a listener (or a
/// UDP socket) has it; the port bound (for port 0).
fn probe(p: &PortSpec) -> std::io::Result<u16> {
    let port = match p.protocol {
        Protocol::Tcp => TcpListener::bind(p.host_addr())?.local_addr(),
        Protocol::Udp => UdpSocket::bind(p.host_addr())?.local_addr(),
    }?
    .port();
    if p.host_ip.is_none() && super::host_has_ipv6() {
        let at = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        let o = crate::sys::sockets::Options {
            stream: p.protocol == Protocol::Tcp,
            freebind: false,
        };
        crate::sys::sockets::bound(at, o)?;
    }
    Ok(port)
}

/// The ports of a start: each host port 0 replaced by a free one; Conflict
/// if a host port is in use on the host or published by `taken` (this
/// daemon's running containers) or twice in `wanted`.
pub fn take(wanted: &[PortSpec], taken: &[PortSpec]) -> Result<Vec<PortSpec>, Error> {
    let mut out: Vec<PortSpec> = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut p = w.clone();
        let busy = |e: Option<std::io::Error>| {
            let why = e.map(|e| format!(": {e}")).unwrap_or_default();
            Error::Conflict(format!(
                "Bind for {}/{} failed: port is already allocated{why}",
                p.host_addr(),
                p.protocol.as_str()
            ))
        };
        let clashes = |p: &PortSpec| taken.iter().chain(&out).any(|t| t.clashes(p));
        if p.host_port != 0 {
            if clashes(&p) {
                return Err(busy(None));
            }
            p.host_port = probe(&p).map_err(|e| busy(Some(e)))?;
        } else {
            // A free port the kernel gives may still be one a container
            // publishes (not bound on the host): another, then.
            let mut tries = 0;
            // (Or one taken on IPv6 only.)
            loop {
                let mut picked = p.clone();
                let got = probe(&p);
                tries += 1;
                match got {
                    Ok(port) => picked.host_port = port,
                    Err(e) if tries == 64 => return Err(busy(Some(e))),
                    Err(_) => continue,
                }
                if !clashes(&picked) {
                    p = picked;
                    break;
                }
                if tries == 64 {
                    return Err(busy(None));
                }
            }
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ip: Option<Ipv4Addr>, host_port: u16, protocol: Protocol) -> PortSpec {
        PortSpec {
            host_ip: ip,
            host_port,
            container_port: 80,
            protocol,
        }
    }

    #[test]
    fn a_port_in_use_or_published_twice_is_refused_and_zero_picks_one() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let lo = Some(Ipv4Addr::LOCALHOST);
        let e = take(&[spec(lo, port, Protocol::Tcp)], &[]).unwrap_err();
        assert!(e.to_string().contains("port is already allocated"), "{e}");
        drop(held);
        let got = take(
            &[spec(lo, port, Protocol::Tcp), spec(None, 0, Protocol::Udp)],
            &[],
        )
        .unwrap();
        assert_eq!(got[0].host_port, port);
        assert_ne!(got[1].host_port, 0);
        let published = [spec(None, port, Protocol::Tcp)];
        assert!(take(&[spec(lo, port, Protocol::Tcp)], &published).is_err());
        assert!(take(&[spec(lo, port, Protocol::Udp)], &published).is_ok());
        let twice = [
            spec(lo, port, Protocol::Tcp),
            spec(None, port, Protocol::Tcp),
        ];
        assert!(take(&twice, &[]).is_err());
    }
}
