//! A container's network as a create gives it: the mode or network name,
//! its published ports, exposed ports and aliases.

use super::{Error, Input, Network};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// The network a container joins when its create names none (or
/// "default"), as Docker's do: the default bridge.
pub const DEFAULT_NETWORK: &str = "bridge";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "" | "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

/// A container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec {
    /// The host address; None: every address of the host.
    pub host_ip: Option<Ipv4Addr>,
    /// 0: a free port, picked at each start.
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// A published port as a request gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortRequest {
    pub host_ip: String,
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: String,
}

/// Where a container on a bridge network is, and what it publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The network's name and id (the id is the runtime's to fill in).
    pub name: String,
    #[serde(default)]
    pub id: String,
    /// Other names peers on the network know it by.
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Every exposed port published on a free host port (Docker's -P).
    #[serde(default)]
    pub publish_all: bool,
    /// The networks joined after the first (`network connect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<Endpoint>,
}

/// A network a container is on, by name and id, and its aliases there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl NetworkSpec {
    pub fn is_empty(&self) -> bool {
        *self == NetworkSpec::default()
    }

    /// The networks a start joins, in order: the first gets eth0, the
    /// default route and the published ports. Empty once every network
    /// was disconnected.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let first = (!self.id.is_empty()).then(|| Endpoint {
            name: self.name.clone(),
            id: self.id.clone(),
            aliases: self.aliases.clone(),
        });
        first.into_iter().chain(self.more.iter().cloned()).collect()
    }

    /// Sets the networks joined. With none left the name stays, as the
    /// network it was created on.
    pub fn set_endpoints(&mut self, mut endpoints: Vec<Endpoint>) {
        self.more = match endpoints.is_empty() {
            true => Vec::new(),
            false => endpoints.split_off(1),
        };
        let first = endpoints.pop().unwrap_or(Endpoint {
            name: std::mem::take(&mut self.name),
            ..Endpoint::default()
        });
        (self.name, self.id, self.aliases) = (first.name, first.id, first.aliases);
    }
}

/// The network part of a create, checked. A container that names no
/// network joins the default bridge.
pub fn validate(
    network: &str,
    ports: Vec<PortRequest>,
    publish_all: bool,
    aliases: Vec<String>,
) -> Result<(Network, NetworkSpec), Error> {
    let publishes = !ports.is_empty() || publish_all;
    let mode = match network {
        "" | "default" => DEFAULT_NETWORK,
        "none" | "host" if publishes => return Err(Error::PortsOffBridge(network.into())),
        "none" => return no_network(Network::None, &aliases),
        "host" => return no_network(Network::Host, &aliases),
        name => name,
    };
    super::validate_name(mode).map_err(|_| Error::Network(network.into()))?;
    for a in &aliases {
        super::validate_name(a).map_err(|_| Error::Alias(a.as_str().into()))?;
    }
    let ports = ports.into_iter().map(port).collect::<Result<_, _>>()?;
    Ok((
        Network::Bridge,
        NetworkSpec {
            name: mode.to_string(),
            id: String::new(),
            aliases,
            ports,
            publish_all,
            more: Vec::new(),
        },
    ))
}

fn no_network(mode: Network, aliases: &[String]) -> Result<(Network, NetworkSpec), Error> {
    match aliases.first() {
        Some(a) => Err(Error::Alias(a.as_str().into())),
        None => Ok((mode, NetworkSpec::default())),
    }
}

fn port(p: PortRequest) -> Result<PortSpec, Error> {
    let what = || {
        let ip = match p.host_ip.as_str() {
            "" => String::new(),
            ip => format!("{ip}:"),
        };
        Input::from(format!("{ip}{}:{}/{}", p.host_port, p.container_port, p.protocol).as_str())
    };
    let host_ip = match p.host_ip.as_str() {
        "" | "0.0.0.0" => None,
        ip => match ip.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => return Err(Error::Port(what(), "the host address must be IPv4")),
        },
    };
    let protocol =
        Protocol::parse(&p.protocol).ok_or_else(|| Error::Port(what(), "use tcp or udp"))?;
    let container_port = match p.container_port {
        1..=65535 => p.container_port as u16,
        _ => return Err(Error::Port(what(), "the container port must be 1 to 65535")),
    };
    let host_port = match p.host_port {
        0..=65535 => p.host_port as u16,
        _ => {
            return Err(Error::Port(
                what(),
                "the host port must be 0 (any) to 65535",
            ))
        }
    };
    Ok(PortSpec {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

/// An exposed port as Docker writes it: "80/tcp" ("80" is tcp).
pub fn exposed(s: &str) -> Result<(u16, Protocol), Error> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    match (port.parse::<u16>(), Protocol::parse(proto)) {
        (Ok(p), Some(proto)) if p > 0 && !s.ends_with('/') => Ok((p, proto)),
        _ => Err(Error::Expose(s.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host_port: u32, container_port: u32, protocol: &str) -> PortRequest {
        PortRequest {
            host_ip: "127.0.0.1".into(),
            host_port,
            container_port,
            protocol: protocol.into(),
        }
    }

    #[test]
    fn no_network_named_is_the_default_bridge_and_modes_refuse_ports() {
        let (mode, net) = validate("", vec![req(8080, 80, "")], false, vec![]).unwrap();
        assert_eq!(mode, Network::Bridge);
        assert_eq!(net.name, "bridge");
        assert_eq!(net.ports[0].protocol, Protocol::Tcp);
        assert_eq!(net.ports[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        for default in ["", "default"] {
            let (mode, net) = validate(default, vec![], false, vec![]).unwrap();
            assert_eq!((mode, net.name.as_str()), (Network::Bridge, "bridge"));
        }
        assert_eq!(
            validate("none", vec![], false, vec![]).unwrap().0,
            Network::None
        );
        assert_eq!(
            validate("host", vec![], false, vec![]).unwrap().0,
            Network::Host
        );
        assert!(matches!(
            validate("none", vec![], true, vec![]),
            Err(Error::PortsOffBridge(_))
        ));
        assert!(matches!(
            validate("none", vec![], false, vec!["a".into()]),
            Err(Error::Alias(_))
        ));
        let (_, net) = validate("app", vec![], false, vec!["db".into()]).unwrap();
        assert_eq!((net.name.as_str(), net.aliases.len()), ("app", 1));
        for bad in [req(8080, 0, ""), req(70000, 80, ""), req(1, 80, "sctp")] {
            assert!(matches!(
                validate("", vec![bad], false, vec![]),
                Err(Error::Port(..))
            ));
        }
        assert!(validate("a b", vec![], false, vec![]).is_err());
        assert_eq!(exposed("80").unwrap(), (80, Protocol::Tcp));
        assert_eq!(exposed("53/udp").unwrap(), (53, Protocol::Udp));
        assert!(exposed("0/tcp").is_err() && exposed("x").is_err() && exposed("80/").is_err());
    }

    #[test]
    fn endpoints_keep_their_order_and_the_first_network_name() {
        let ep = |name: &str| Endpoint {
            name: name.into(),
            id: format!("{name}-id"),
            aliases: vec![format!("{name}-alias")],
        };
        let (_, mut net) = validate("app", vec![], false, vec!["app-alias".into()]).unwrap();
        net.id = "app-id".into();
        assert_eq!(net.endpoints(), vec![ep("app")]);
        net.set_endpoints(vec![ep("app"), ep("db")]);
        assert_eq!(net.endpoints(), vec![ep("app"), ep("db")]);
        net.set_endpoints(vec![ep("db")]);
        assert_eq!((net.name.as_str(), net.more.len()), ("db", 0));
        net.set_endpoints(vec![]);
        assert_eq!(net.endpoints(), vec![]);
        assert_eq!(net.name, "db");
    }
}
