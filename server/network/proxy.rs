//! Published ports on the host's IPv6 addresses ([::1] included), as
//! Docker's userland proxy gives them: a port published on every address
//! also listens on [::]:PORT (IPv6 only), and each TCP connection or UDP
//! peer there is relayed to the container's IPv4 address. The IPv4 side
//! stays with the portmap plugin's NAT rules. The relays run in berthd:
//! while it is down they do not answer (the IPv4 side does), and a daemon
//! started again brings them back for the containers still running.

use super::ports::{PortSpec, Protocol};
use super::Error;
use crate::sys::sockets;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How long a connection to the container may take.
const CONNECT: Duration = Duration::from_secs(5);
/// How long a UDP peer's relay lives without traffic.
const UDP_IDLE: Duration = Duration::from_secs(90);
/// The most UDP peers relayed at once per port.
const UDP_PEERS: usize = 1024;

/// The relays of each container, ended when dropped.
#[derive(Default)]
pub struct Proxies {
    running: Mutex<HashMap<String, Vec<Relay>>>,
}

struct Relay(JoinHandle<()>);

impl Drop for Relay {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The ports of `ports` that also go on IPv6: those published on every
/// address, where the host has IPv6.
pub fn on_ipv6(ports: &[PortSpec]) -> bool {
    super::host_has_ipv6() && ports.iter().any(|p| p.host_ip.is_none())
}

impl Proxies {
    /// Relays container `id`'s ports published on every address from
    /// [::]:HOST_PORT to `target`:CONTAINER_PORT. On failure none runs.
    pub fn start(&self, id: &str, target: Ipv4Addr, ports: &[PortSpec]) -> Result<(), Error> {
        let mut relays = Vec::new();
        for p in ports.iter().filter(|p| p.host_ip.is_none()) {
            let at = SocketAddr::from((Ipv6Addr::UNSPECIFIED, p.host_port));
            let to = SocketAddr::from((target, p.container_port));
            let busy = |e: std::io::Error| {
                Error::Conflict(format!(
                    "Bind for [::]:{}/{} failed: {e}",
                    p.host_port,
                    p.protocol.as_str()
                ))
            };
            let stream = p.protocol == Protocol::Tcp;
            let o = sockets::Options {
                stream,
                freebind: false,
            };
            let fd = sockets::bound(at, o).map_err(busy)?;
            let task = match stream {
                true => tokio::spawn(tcp(TcpListener::from_std(fd.into()).map_err(busy)?, to)),
                false => tokio::spawn(udp(UdpSocket::from_std(fd.into()).map_err(busy)?, to)),
            };
            relays.push(Relay(task));
        }
        if !relays.is_empty() {
            tracing::info!(container = id, ports = relays.len(), "published on IPv6");
            self.lock().insert(id.to_string(), relays);
        }
        Ok(())
    }

    /// Ends container `id`'s relays.
    pub fn stop(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Relay>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn tcp(listener: TcpListener, to: SocketAddr) {
    loop {
        let (mut client, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "IPv6 port accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let Ok(Ok(mut server)) = tokio::time::timeout(CONNECT, TcpStream::connect(to)).await
            else {
                tracing::debug!(%from, %to, "the container did not take the connection");
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

/// Each peer gets a socket connected to the container; what comes back
/// on it goes to the peer from the published port.
async fn udp(listener: UdpSocket, to: SocketAddr) {
    let listener = Arc::new(listener);
    let peers: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Default::default();
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, from)) = listener.recv_from(&mut buf).await else {
            continue;
        };
        let known = peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&from)
            .cloned();
        let upstream = match known {
            Some(u) => u,
            None => {
                if peers.lock().unwrap_or_else(|p| p.into_inner()).len() >= UDP_PEERS {
                    continue;
                }
                let Ok(u) = connected(to).await else {
                    continue;
                };
                let u = Arc::new(u);
                peers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(from, u.clone());
                tokio::spawn(back(u.clone(), listener.clone(), from, peers.clone()));
                u
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}

async fn connected(to: SocketAddr) -> std::io::Result<UdpSocket> {
    let u = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    u.connect(to).await?;
    Ok(u)
}

/// The container's answers to peer `from`, until it is silent UDP_IDLE.
async fn back(
    upstream: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    from: SocketAddr,
    peers: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
) {
    let mut buf = vec![0u8; 65535];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)).await {
        let _ = listener.send_to(&buf[..n], from).await;
    }
    peers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&from);
}
