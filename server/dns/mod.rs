//! The resolver of user networks. Each network but the default bridge
//! gets one on its gateway's address, port 53 (UDP and TCP), and its
//! containers' /etc/resolv.conf names it. It answers a container's peers
//! (their names, aliases and short ids on the networks they share with
//! it, also as NAME.NETWORK, and the reverse of their addresses) from the
//! runtime as it is at the moment of the query, so renames, connects and
//! disconnects count at once; everything else goes to the container's
//! `--dns` servers or the host's. The asker is known by its source
//! address: a query from anything that is not a running container is
//! refused.
//!
//! Upstream queries leave from the host, so the host's own loopback
//! resolvers serve containers too (Docker's resolver, inside the
//! container, cannot reach them).

mod answer;
mod forward;

use crate::sys::sockets;
use answer::Outcome;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The port the resolver serves on.
pub const PORT: u16 = 53;

/// Queries going upstream at once; one more is answered SERVFAIL.
const IN_FLIGHT: usize = 256;

/// How long a TCP client may stay silent.
const TCP_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot serve DNS on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A name the asker can resolve: one address of a peer on one network.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// Its name first, then its aliases there and short id.
    pub names: Vec<String>,
    pub network: String,
    pub ip: IpAddr,
}

impl Peer {
    /// Whether `wanted` (lower case, no final dot) is one of its names,
    /// alone or followed by its network's name.
    fn answers(&self, wanted: &str) -> bool {
        let on_network = wanted
            .strip_suffix(&self.network.to_ascii_lowercase())
            .and_then(|w| w.strip_suffix('.'));
        self.names.iter().any(|n| {
            n.eq_ignore_ascii_case(wanted) || on_network.is_some_and(|w| n.eq_ignore_ascii_case(w))
        })
    }
}

/// A container asking, as the runtime knows it now.
#[derive(Debug, Clone, Default)]
pub struct Asker {
    pub peers: Vec<Peer>,
    /// Where other names are asked; none: they are refused (a container
    /// on internal networks only).
    pub upstream: Vec<SocketAddr>,
}

/// Who is at an address.
pub trait Directory: Send + Sync + 'static {
    /// The running container at `from`, if one is.
    fn asker(&self, from: IpAddr) -> Option<Asker>;
}

/// The resolvers of the daemon's networks.
pub struct Resolver {
    directory: Arc<dyn Directory>,
    in_flight: Arc<Semaphore>,
    serving: Mutex<HashMap<String, Serving>>,
}

/// One network's resolver: its UDP and TCP tasks, ended when dropped.
struct Serving {
    addr: Ipv4Addr,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Serving {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Resolver {
    pub fn new(directory: Arc<dyn Directory>) -> Resolver {
        Resolver {
            directory,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            serving: Mutex::new(HashMap::new()),
        }
    }

    fn serving(&self) -> std::sync::MutexGuard<'_, HashMap<String, Serving>> {
        self.serving.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves network `id` on `addr`:53, which need not exist yet (the
    /// bridge gets it with its first container). Called again with the
    /// same address, nothing changes.
    pub fn serve(&self, id: &str, addr: Ipv4Addr) -> Result<(), Error> {
        if self.serving().get(id).is_some_and(|s| s.addr == addr) {
            return Ok(());
        }
        let at = SocketAddr::V4(SocketAddrV4::new(addr, PORT));
        let bind = |source| Error::Bind { addr: at, source };
        let socket = |stream| {
            let o = sockets::Options {
                stream,
                freebind: true,
            };
            sockets::bound(at, o).map_err(bind)
        };
        let udp = UdpSocket::from_std(socket(false)?.into()).map_err(bind)?;
        let tcp = TcpListener::from_std(socket(true)?.into()).map_err(bind)?;
        let udp_task = tokio::spawn(serve_udp(
            Arc::new(udp),
            self.directory.clone(),
            self.in_flight.clone(),
        ));
        let tcp_task = tokio::spawn(serve_tcp(
            tcp,
            self.directory.clone(),
            self.in_flight.clone(),
        ));
        let serving = Serving {
            addr,
            tasks: [udp_task, tcp_task],
        };
        self.serving().insert(id.to_string(), serving);
        tracing::info!(network = id, %at, "resolver serving");
        Ok(())
    }

    /// The address network `id` is served on, if it is.
    pub fn address(&self, id: &str) -> Option<Ipv4Addr> {
        self.serving().get(id).map(|s| s.addr)
    }

    /// Stops serving network `id`.
    pub fn stop(&self, id: &str) {
        self.serving().remove(id);
    }
}

/// The answer to `packet` from `from`; None: nothing to send back.
async fn respond(
    packet: &[u8],
    from: IpAddr,
    udp: bool,
    directory: &dyn Directory,
    in_flight: &Semaphore,
) -> Option<Vec<u8>> {
    let Some(asker) = directory.asker(from) else {
        tracing::debug!(%from, "DNS query from an address no container has");
        return answer::refuse(packet);
    };
    match answer::answer(packet, &asker, udp)? {
        Outcome::Reply(bytes) => Some(bytes),
        Outcome::Forward => {
            let Ok(_permit) = in_flight.try_acquire() else {
                tracing::warn!(%from, "too many DNS queries upstream at once");
                return answer::server_failure(packet);
            };
            match forward::ask(packet, &asker.upstream, udp).await {
                Some(bytes) => Some(bytes),
                None => answer::server_failure(packet),
            }
        }
    }
}

async fn serve_udp(sock: Arc<UdpSocket>, directory: Arc<dyn Directory>, in_flight: Arc<Semaphore>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                tracing::warn!(error = %e, "DNS receive failed");
                continue;
            }
        };
        let packet = buf[..n].to_vec();
        let (sock, directory, in_flight) = (sock.clone(), directory.clone(), in_flight.clone());
        // Each query on its own: one waiting upstream holds no other.
        tokio::spawn(async move {
            if let Some(reply) = respond(&packet, from.ip(), true, &*directory, &in_flight).await {
                let _ = sock.send_to(&reply, from).await;
            }
        });
    }
}

async fn serve_tcp(
    listener: TcpListener,
    directory: Arc<dyn Directory>,
    in_flight: Arc<Semaphore>,
) {
    loop {
        let (conn, from) = match listener.accept().await {
            Ok(got) => got,
            Err(e) => {
                tracing::warn!(error = %e, "DNS accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (directory, in_flight) = (directory.clone(), in_flight.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                TCP_IDLE * 6,
                serve_connection(conn, from.ip(), &*directory, &in_flight),
            )
            .await;
        });
    }
}

/// Length-prefixed queries on one connection, answered in turn, until
/// the client closes it or is silent for TCP_IDLE.
async fn serve_connection(
    mut conn: TcpStream,
    from: IpAddr,
    directory: &dyn Directory,
    in_flight: &Semaphore,
) -> std::io::Result<()> {
    loop {
        let packet = match tokio::time::timeout(TCP_IDLE, forward::read_framed(&mut conn)).await {
            Ok(Ok(p)) => p,
            _ => return Ok(()),
        };
        let Some(reply) = respond(&packet, from, false, directory, in_flight).await else {
            return Ok(());
        };
        conn.write_all(&forward::framed(&reply)).await?;
        conn.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_answers_its_names_alone_or_on_its_network() {
        let p = Peer {
            names: vec!["Db".into(), "postgres".into()],
            network: "Back-End".into(),
            ip: "10.0.0.2".parse().unwrap(),
        };
        for yes in ["db", "postgres", "db.back-end", "postgres.back-end"] {
            assert!(p.answers(yes), "{yes}");
        }
        for no in ["d", "db.back", "dbback-end", "back-end", "db.back-end.x"] {
            assert!(!p.answers(no), "{no}");
        }
    }
}
