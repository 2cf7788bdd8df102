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
    /// Addresses asked for on the network it was created on.
    #[serde(default, skip_serializing_if = "Fixed::is_empty")]
    pub fixed: Fixed,
}

/// Docker's --ip, --ip6 and --mac-address: on the network named at create
/// (`network_id`, the runtime's to fill in), whatever its place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixed {
    #[serde(default)]
    pub network_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<std::net::Ipv6Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl Fixed {
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.ip6.is_none() && self.mac.is_none()
    }

    /// The addresses as a request gives them ("" for none), checked: an
    /// IP only on a network of the user's (not the default bridge), a MAC
    /// a unicast one.
    pub fn parse(network: &str, ip: &str, ip6: &str, mac: &str) -> Result<Fixed, Error> {
        let bad = |what: &str, why| Error::Address(what.into(), why);
        let fixed = Fixed {
            network_id: String::new(),
            ip: match ip {
                "" => None,
                a => Some(a.parse().map_err(|_| bad(a, "not an IPv4 address"))?),
            },
            ip6: match ip6 {
                "" => None,
                a => Some(a.parse().map_err(|_| bad(a, "not an IPv6 address"))?),
            },
            mac: match mac {
                "" => None,
                m if is_unicast_mac(m) => Some(m.to_ascii_lowercase()),
                m => return Err(bad(m, "not a unicast MAC address (xx:xx:xx:xx:xx:xx)")),
            },
        };
        if (fixed.ip.is_some() || fixed.ip6.is_some()) && network == DEFAULT_NETWORK {
            return Err(bad(
                if ip.is_empty() { ip6 } else { ip },
                "an address of one's own is for a network of the user's, not the default bridge",
            ));
        }
        Ok(fixed)
    }
}

fn is_unicast_mac(m: &str) -> bool {
    let bytes: Vec<Option<u8>> = m
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
        .collect();
    bytes.len() == 6 && bytes.iter().all(Option::is_some) && bytes[0].is_some_and(|b| b & 1 == 0)
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
    fixed: Fixed,
) -> Result<(Network, NetworkSpec), Error> {
    let publishes = !ports.is_empty() || publish_all;
    let mode = match network {
        "" | "default" => DEFAULT_NETWORK,
        "none" | "host" if publishes => return Err(Error::PortsOffBridge(network.into())),
        "none" | "host" if !fixed.is_empty() => {
            return Err(Error::Address(
                network.into(),
                "addresses of one's own are for a bridge network",
            ))
        }
        "none" => return no_network(Network::None, &aliases),
        "host" => return no_network(Network::Host, &aliases),
        other if other.starts_with("container:") => {
            if publishes {
                return Err(Error::NamespaceConflict(
                    "port publishing and the container type network mode",
                ));
            }
            if !fixed.is_empty() {
                return Err(Error::NamespaceConflict(
                    "addresses of its own and the container type network mode",
                ));
            }
            if other.len() == "container:".len() {
                return Err(Error::Network(network.into()));
            }
            return no_network(Network::Container, &aliases);
        }
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
            fixed,
        },
    ))
}

/// A namespace of its own wired by the plugins of a CNI configuration
/// list (`conflist`, JSON: a name, a cniVersion and at least one plugin
/// with a type), publishing `ports` through the list's portmap.
pub fn cni(conflist: &str, ports: Vec<PortRequest>) -> Result<(Network, NetworkSpec), Error> {
    let bad = |why: &'static str| Error::CniConfig(why);
    let v: serde_json::Value = serde_json::from_str(conflist).map_err(|_| bad("it is not JSON"))?;
    let named = |k: &str| v[k].as_str().is_some_and(|s| !s.is_empty());
    if !named("name") || !named("cniVersion") {
        return Err(bad("it needs a name and a cniVersion"));
    }
    let plugins = v["plugins"].as_array().filter(|p| !p.is_empty());
    if plugins.is_none_or(|p| {
        p.iter()
            .any(|p| p["type"].as_str().is_none_or(str::is_empty))
    }) {
        return Err(bad("it needs plugins, each with a type"));
    }
    let ports = ports.into_iter().map(port).collect::<Result<_, _>>()?;
    Ok((
        Network::Cni,
        NetworkSpec {
            name: v["name"].as_str().unwrap_or_default().to_string(),
            ports,
            ..Default::default()
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
        let (mode, net) =
            validate("", vec![req(8080, 80, "")], false, vec![], Fixed::default()).unwrap();
        assert_eq!(mode, Network::Bridge);
        assert_eq!(net.name, "bridge");
        assert_eq!(net.ports[0].protocol, Protocol::Tcp);
        assert_eq!(net.ports[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        for default in ["", "default"] {
            let (mode, net) = validate(default, vec![], false, vec![], Fixed::default()).unwrap();
            assert_eq!((mode, net.name.as_str()), (Network::Bridge, "bridge"));
        }
        assert_eq!(
            validate("none", vec![], false, vec![], Fixed::default())
                .unwrap()
                .0,
            Network::None
        );
        assert_eq!(
            validate("host", vec![], false, vec![], Fixed::default())
                .unwrap()
                .0,
            Network::Host
        );
        assert!(matches!(
            validate("none", vec![], true, vec![], Fixed::default()),
            Err(Error::PortsOffBridge(_))
        ));
        assert!(matches!(
            validate("none", vec![], false, vec!["a".into()], Fixed::default()),
            Err(Error::Alias(_))
        ));
        let (_, net) = validate("app", vec![], false, vec!["db".into()], Fixed::default()).unwrap();
        assert_eq!((net.name.as_str(), net.aliases.len()), ("app", 1));
        for bad in [req(8080, 0, ""), req(70000, 80, ""), req(1, 80, "sctp")] {
            assert!(matches!(
                validate("", vec![bad], false, vec![], Fixed::default()),
                Err(Error::Port(..))
            ));
        }
        assert!(validate("a b", vec![], false, vec![], Fixed::default()).is_err());
        assert_eq!(exposed("80").unwrap(), (80, Protocol::Tcp));
        assert_eq!(exposed("53/udp").unwrap(), (53, Protocol::Udp));
        assert!(exposed("0/tcp").is_err() && exposed("x").is_err() && exposed("80/").is_err());
    }

    #[test]
    fn addresses_of_ones_own() {
        let f = Fixed::parse("app", "172.30.0.9", "fd00::9", "02:42:AC:11:00:09").unwrap();
        assert_eq!(f.mac.as_deref(), Some("02:42:ac:11:00:09"));
        assert!(Fixed::parse("bridge", "", "", "02:42:ac:11:00:09").is_ok());
        for (net, ip, ip6, mac) in [
            ("bridge", "172.17.0.9", "", ""),
            ("app", "300.1.1.1", "", ""),
            ("app", "", "x", ""),
            ("app", "", "", "03:00:00:00:00:01"),
            ("app", "", "", "02:00:00:00:01"),
            ("app", "", "", "02:00:00:00:00:1"),
        ] {
            assert!(
                Fixed::parse(net, ip, ip6, mac).is_err(),
                "{net} {ip} {ip6} {mac}"
            );
        }
        let fixed = Fixed::parse("", "", "", "02:00:00:00:00:01").unwrap();
        assert!(validate("none", vec![], false, vec![], fixed).is_err());
    }

    #[test]
    fn endpoints_keep_their_order_and_the_first_network_name() {
        let ep = |name: &str| Endpoint {
            name: name.into(),
            id: format!("{name}-id"),
            aliases: vec![format!("{name}-alias")],
        };
        let (_, mut net) = validate(
            "app",
            vec![],
            false,
            vec!["app-alias".into()],
            Fixed::default(),
        )
        .unwrap();
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
