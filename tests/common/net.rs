//! Bridge networks as the tests use them: the Networks client, a web
//! server in a container and a client for it, and where a container is.

use super::{spec, Daemon};
use berth::pb::{self, networks_client::NetworksClient};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub async fn networks(d: &Daemon) -> NetworksClient<tonic::transport::Channel> {
    NetworksClient::new(berth::connect(&d.host()).await.unwrap())
}

/// Creates a network: the daemon's view of it.
pub async fn new_network(
    nets: &mut NetworksClient<tonic::transport::Channel>,
    req: pb::CreateNetworkRequest,
) -> pb::Network {
    let created = nets.create(req).await.unwrap().into_inner();
    created.network.unwrap()
}

/// busybox httpd serving "hello from NAME" on port 80, on the network a
/// create names by default (the default bridge).
pub fn web(name: &str) -> pb::CreateRequest {
    let script = format!(
        "mkdir -p /tmp/www && echo hello from {name} > /tmp/www/index.html && exec busybox httpd -f -p 80 -h /tmp/www"
    );
    pb::CreateRequest {
        network: String::new(),
        ..spec(name, &["sh", "-c", &script])
    }
}

/// GET / at `addr`, retried for a while (the server may still start):
/// the body.
pub fn get(addr: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = TcpStream::connect(addr).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        });
        match got {
            Ok(out) if out.contains("\r\n\r\n") => {
                return out.split_once("\r\n\r\n").unwrap().1.to_string()
            }
            r => assert!(Instant::now() < deadline, "GET {addr}: {r:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn settings(c: &pb::Container) -> pb::NetworkSettings {
    c.state.clone().unwrap().network.unwrap_or_default()
}

/// Host ports of a running container's published ports.
pub fn host_port(c: &pb::Container, container_port: u32, protocol: &str) -> u16 {
    settings(c)
        .ports
        .iter()
        .find(|p| p.container_port == container_port && p.protocol == protocol)
        .map(|p| p.host_port as u16)
        .unwrap()
}

pub async fn bridge_of(d: &Daemon, network: &str) -> pb::Network {
    let mut nets = networks(d).await;
    let req = pb::InspectNetworkRequest {
        network: network.into(),
    };
    nets.inspect(req)
        .await
        .unwrap()
        .into_inner()
        .network
        .unwrap()
}
