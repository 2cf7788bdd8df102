//! Asking the upstream servers, in order, what the resolver does not
//! know: the query goes as it came (the asker's id and flags), over the
//! transport it came by, and the first answer goes back as it is.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream server has to answer.
const PATIENCE: Duration = Duration::from_secs(2);

/// The first answer to `packet` from `upstream`, tried in order; None if
/// none answered in time.
pub async fn ask(packet: &[u8], upstream: &[SocketAddr], udp: bool) -> Option<Vec<u8>> {
    for server in upstream {
        let answered = match udp {
            true => tokio::time::timeout(PATIENCE, over_udp(packet, *server)).await,
            false => tokio::time::timeout(PATIENCE, over_tcp(packet, *server)).await,
        };
        match answered {
            Ok(Ok(reply)) => return Some(reply),
            Ok(Err(e)) => tracing::debug!(%server, error = %e, "upstream DNS server failed"),
            Err(_) => tracing::debug!(%server, "upstream DNS server did not answer in time"),
        }
    }
    None
}

/// One exchange over a socket connected to `server`, which takes only
/// its datagrams; an answer to another id (a late one) is skipped.
async fn over_udp(packet: &[u8], server: SocketAddr) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(server).await?;
    sock.send(packet).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        if n >= 2 && packet.len() >= 2 && buf[..2] == packet[..2] {
            return Ok(buf[..n].to_vec());
        }
    }
}

async fn over_tcp(packet: &[u8], server: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut conn = TcpStream::connect(server).await?;
    conn.write_all(&framed(packet)).await?;
    read_framed(&mut conn).await
}

/// `packet` with its length before it, as DNS over TCP sends it.
pub fn framed(packet: &[u8]) -> Vec<u8> {
    let len = u16::try_from(packet.len()).unwrap_or(u16::MAX);
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&packet[..usize::from(len)]);
    out
}

/// One length-prefixed message from `conn`.
pub async fn read_framed(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).await?;
    let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
    conn.read_exact(&mut packet).await?;
    Ok(packet)
}
