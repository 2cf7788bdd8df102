//! Networks: network create, ls, inspect, rm, connect, disconnect,
//! prune; and port.

use crate::args::NetworkCommand;
use crate::output::{self, outln};
use crate::{views, Api, Failure};
use berth::pb::{self, networks_client::NetworksClient};
use serde_json::json;
use tonic::transport::Channel;

pub async fn network(channel: Channel, command: NetworkCommand) -> Result<u8, Failure> {
    let mut api = NetworksClient::new(channel);
    match command {
        NetworkCommand::Create {
            subnet,
            gateway,
            ipv6,
            opt,
            label,
            ip_range,
            aux_address,
            internal,
            name,
        } => {
            let labels = label
                .iter()
                .map(|l| super::key_value(l, "label"))
                .collect::<Result<_, _>>()?;
            let (subnet, ipv6_subnet) = by_family(subnet, "--subnet")?;
            let (gateway, ipv6_gateway) = by_family(gateway, "--gateway")?;
            let mtu = mtu_option(&opt)?;
            let created = api
                .create(pb::CreateNetworkRequest {
                    name,
                    subnet,
                    gateway,
                    labels,
                    ipv6,
                    ipv6_subnet,
                    ipv6_gateway,
                    mtu,
                    ip_range: ip_range.unwrap_or_default(),
                    aux_addresses: aux_address,
                    internal,
                })
                .await?
                .into_inner();
            outln!("{}", created.network.unwrap_or_default().id);
            Ok(0)
        }
        NetworkCommand::Ls { quiet, no_trunc } => {
            let nets = api
                .list(pb::ListNetworksRequest {})
                .await?
                .into_inner()
                .networks;
            let id = |n: &pb::Network| match no_trunc {
                true => n.id.clone(),
                false => n.id.chars().take(12).collect(),
            };
            if quiet {
                for n in &nets {
                    outln!("{}", id(n));
                }
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = nets
                .iter()
                .map(|n| vec![id(n), n.name.clone(), n.driver.clone(), "local".into()])
                .collect();
            output::out!(
                "{}",
                output::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows)
            );
            Ok(0)
        }
        NetworkCommand::Inspect { format, networks } => {
            let mut values = Vec::new();
            let mut failed = false;
            for n in networks {
                match api.inspect(pb::InspectNetworkRequest { network: n }).await {
                    Ok(r) => values.push(view(&r.into_inner().network.unwrap_or_default())),
                    Err(s) => {
                        eprintln!("Error response from daemon: {}", s.message());
                        failed = true;
                    }
                }
            }
            views::print_values(&format, &values)?;
            Ok(u8::from(failed))
        }
        NetworkCommand::Rm { networks } => {
            super::each(&networks, |n| {
                let mut api = api.clone();
                async move {
                    api.remove(pb::RemoveNetworkRequest { network: n })
                        .await
                        .map(|_| ())
                }
            })
            .await
        }
        NetworkCommand::Connect {
            alias,
            network,
            container,
        } => {
            let req = pb::ConnectContainerRequest {
                network,
                container,
                aliases: alias,
            };
            api.connect_container(req).await?;
            Ok(0)
        }
        NetworkCommand::Disconnect { network, container } => {
            let req = pb::DisconnectContainerRequest { network, container };
            api.disconnect_container(req).await?;
            Ok(0)
        }
        NetworkCommand::Prune { force } => {
            let warning =
                "WARNING! This will remove all custom networks not used by at least one container.";
            if !force && !super::system::confirmed(warning)? {
                return Ok(0);
            }
            let removed = prune(&mut api).await?;
            if !removed.is_empty() {
                outln!("Deleted Networks:");
                for name in removed {
                    outln!("{name}");
                }
            }
            Ok(0)
        }
    }
}

/// Removes every network but the default bridge that no container uses
/// (the daemon refuses the others); the names removed.
pub async fn prune(api: &mut NetworksClient<Channel>) -> Result<Vec<String>, Failure> {
    let nets = api
        .list(pb::ListNetworksRequest {})
        .await?
        .into_inner()
        .networks;
    let mut removed = Vec::new();
    for n in nets
        .into_iter()
        .filter(|n| n.name != crate::DEFAULT_NETWORK)
    {
        let gone = api
            .remove(pb::RemoveNetworkRequest {
                network: n.id.clone(),
            })
            .await;
        match gone {
            Ok(_) => removed.push(n.name),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::NotFound
                ) => {}
            Err(s) => return Err(s.into()),
        }
    }
    Ok(removed)
}

/// The IPv4 and the IPv6 one of a flag given once per family (an IPv6
/// value has a ':').
fn by_family(values: Vec<String>, flag: &str) -> Result<(String, String), Failure> {
    let (v6, v4): (Vec<String>, Vec<String>) = values.into_iter().partition(|v| v.contains(':'));
    if v4.len() > 1 || v6.len() > 1 {
        return Err(Failure(format!("{flag} is given once per IP family"), 125));
    }
    Ok((
        v4.into_iter().next().unwrap_or_default(),
        v6.into_iter().next().unwrap_or_default(),
    ))
}

const MTU: &str = "com.docker.network.driver.mtu";

/// The MTU among `docker network create`'s driver options (0: none).
fn mtu_option(opts: &[String]) -> Result<u32, Failure> {
    let mut mtu = 0;
    for o in opts {
        let (k, v) = super::key_value(o, "option")?;
        match (k.as_str(), v.parse()) {
            (MTU, Ok(n)) => mtu = n,
            (MTU, Err(_)) => return Err(Failure(format!("invalid MTU {v:?}"), 125)),
            _ => {
                return Err(Failure(
                    format!("unknown network option {k:?}: berth knows {MTU}"),
                    125,
                ))
            }
        }
    }
    Ok(mtu)
}

/// A network as `docker network inspect` shows it.
pub fn view(n: &pb::Network) -> serde_json::Value {
    let mut config = Vec::new();
    if !n.subnet.is_empty() {
        let mut v4 = json!({"Subnet": n.subnet, "Gateway": n.gateway});
        if !n.ip_range.is_empty() {
            v4["IPRange"] = json!(n.ip_range);
        }
        if !n.aux_addresses.is_empty() {
            v4["AuxiliaryAddresses"] = json!(n.aux_addresses);
        }
        config.push(v4);
    }
    if n.ipv6 {
        config.push(json!({"Subnet": n.ipv6_subnet, "Gateway": n.ipv6_gateway}));
    }
    let containers: serde_json::Map<String, serde_json::Value> = n
        .containers
        .iter()
        .map(|c| {
            let v = json!({
                "Name": c.name,
                "MacAddress": c.mac_address,
                "IPv4Address": c.ip_address,
                "IPv6Address": c.ipv6_address,
            });
            (c.id.clone(), v)
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created_at.map(|t| t.to_string()).unwrap_or_default(),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": n.ipv6,
        "Internal": n.internal,
        "IPAM": {"Driver": "default", "Config": config},
        "Containers": containers,
        "Options": match n.bridge.is_empty() {
            true => json!({}),
            false => json!({"com.docker.network.bridge.name": n.bridge, MTU: n.mtu.to_string()}),
        },
        "Labels": n.labels,
    })
}

/// `docker port`: "80/tcp -> 0.0.0.0:8080", one line per published port.
pub async fn port(api: &mut Api, container: String, port: Option<String>) -> Result<u8, Failure> {
    let c = api
        .inspect(pb::InspectRequest {
            id: container.clone(),
        })
        .await?
        .into_inner()
        .container
        .unwrap_or_default();
    let ports = c
        .state
        .and_then(|s| s.network)
        .map(|n| n.ports)
        .unwrap_or_default();
    let wanted = port.map(|p| match p.contains('/') {
        true => p,
        false => format!("{p}/tcp"),
    });
    let mut shown = 0;
    for p in &ports {
        let private = format!("{}/{}", p.container_port, p.protocol);
        let ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &p.host_ip
        };
        match &wanted {
            Some(w) if *w == private => outln!("{ip}:{}", p.host_port),
            Some(_) => continue,
            None => outln!("{private} -> {ip}:{}", p.host_port),
        }
        shown += 1;
    }
    match (wanted, shown) {
        (Some(w), 0) => Err(Failure(
            format!("Error: No public port '{w}' published for {container}"),
            1,
        )),
        _ => Ok(0),
    }
}
