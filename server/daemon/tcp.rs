//! The API on TCP: mutual TLS (the daemon's certificate and key, and the CA
//! whose client certificates are let in), or, explicitly, plain TCP on a
//! loopback address only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

#[derive(clap::Args, Debug)]
pub struct TcpArgs {
    /// Also serve the API on TCP: tcp://ADDR:PORT. Needs --tls-cert,
    /// --tls-key and --tls-client-ca (mutual TLS), or --insecure-tcp on a
    /// loopback address.
    #[arg(long, env = "BERTH_LISTEN")]
    listen: Option<String>,
    /// The daemon's certificate (PEM), with its chain.
    #[arg(long, env = "BERTH_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The daemon's private key (PEM).
    #[arg(long, env = "BERTH_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// The CA (PEM) that signs client certificates: only clients with a
    /// certificate it signed get in.
    #[arg(long, env = "BERTH_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// Serve TCP without TLS: anyone who can connect controls the host.
    /// Only on a loopback address.
    #[arg(long)]
    insecure_tcp: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid --listen {0:?}: use tcp://ADDR:PORT with an IP address, e.g. tcp://0.0.0.0:7443"
    )]
    Listen(String),
    #[error("--listen {0} needs --tls-cert, --tls-key and --tls-client-ca (mutual TLS), or --insecure-tcp on a loopback address")]
    NoTls(SocketAddr),
    #[error("--insecure-tcp is only allowed on a loopback address, not {0}: use mutual TLS")]
    NotLoopback(SocketAddr),
    #[error("--insecure-tcp and --tls-* are exclusive: choose one")]
    Both,
    #[error("--tls-* given without --listen")]
    TlsWithoutListen,
    #[error("read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("TLS configuration: {0}")]
    Tls(tonic::transport::Error),
    #[error("bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("serve {0}: {1}")]
    Serve(SocketAddr, tonic::transport::Error),
}

/// A checked TCP configuration: the address, and the server to run on it,
/// with TLS unless insecure.
pub struct Config {
    addr: SocketAddr,
    server: Server,
    tls: bool,
}

impl TcpArgs {
    /// Checks the flags and reads the certificates, so a bad certificate
    /// or key stops the daemon before it starts; None without --listen.
    /// `server` has the settings every listener shares.
    pub fn config(&self, server: Server) -> Result<Option<Config>, Error> {
        let tls_given = [&self.tls_cert, &self.tls_key, &self.tls_client_ca]
            .iter()
            .any(|f| f.is_some());
        let Some(listen) = &self.listen else {
            return match tls_given || self.insecure_tcp {
                true => Err(Error::TlsWithoutListen),
                false => Ok(None),
            };
        };
        let addr: SocketAddr = listen
            .strip_prefix("tcp://")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| Error::Listen(listen.clone()))?;
        if self.insecure_tcp {
            if tls_given {
                return Err(Error::Both);
            }
            if !addr.ip().is_loopback() {
                return Err(Error::NotLoopback(addr));
            }
            return Ok(Some(Config {
                addr,
                server,
                tls: false,
            }));
        }
        let (Some(cert), Some(key), Some(ca)) =
            (&self.tls_cert, &self.tls_key, &self.tls_client_ca)
        else {
            return Err(Error::NoTls(addr));
        };
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(read(cert)?, read(key)?))
            .client_ca_root(Certificate::from_pem(read(ca)?));
        Ok(Some(Config {
            addr,
            server: server.tls_config(tls).map_err(Error::Tls)?,
            tls: true,
        }))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Read(path.to_path_buf(), e))
}

/// A bound listener, ready to serve.
pub struct Listener {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    server: Server,
}

impl Config {
    pub async fn bind(self) -> Result<Listener, Error> {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|e| Error::Bind(self.addr, e))?;
        let addr = listener.local_addr().unwrap_or(self.addr);
        match self.tls {
            true => tracing::info!(%addr, "serving TCP with mutual TLS"),
            false => tracing::warn!(
                %addr,
                "serving plain TCP without TLS: every local user and process that can connect controls this host"
            ),
        }
        Ok(Listener {
            listener,
            addr,
            server: self.server,
        })
    }
}

impl Listener {
    /// Serves `routes` until `stop`; each connection is logged with its
    /// address.
    pub async fn serve(
        self,
        routes: tonic::service::Routes,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        let (addr, mut server) = (self.addr, self.server);
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(self.listener),
            |conn| {
                if let Ok(c) = &conn {
                    let _ = c.set_nodelay(true);
                    match c.peer_addr() {
                        Ok(peer) => tracing::info!(%peer, "client connected over TCP"),
                        Err(e) => {
                            tracing::warn!(error = %e, "client connected over TCP; no address")
                        }
                    }
                }
                conn
            },
        );
        server
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, stop)
            .await
            .map_err(|e| Error::Serve(addr, e))?;
        Ok(())
    }
}
