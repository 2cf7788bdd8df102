//! The berth client library: the types and gRPC clients generated from
//! `proto/berth/v1`, and [`connect`] to reach a daemon.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use berth::pb::{containers_client::ContainersClient, ListRequest};
//! let channel = berth::connect("unix:///run/berth/berth.sock").await?;
//! let mut containers = ContainersClient::new(channel);
//! let list = containers.list(ListRequest { all: true, ..Default::default() }).await?.into_inner();
//! println!("{} containers", list.containers.len());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

pub mod codec;

/// Generated protobuf types, clients and servers of package `berth.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("berth.v1");
}

/// The encoded file descriptor set of `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/berth_descriptor.bin"));

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// The default host URI.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// The Events/Subscribe response header that holds the seq the stream
/// starts after: a client that loses the stream resumes from it (or from
/// the last seq it read) with since_seq, missing nothing.
pub const STARTS_AFTER_HEADER: &str = "berth-starts-after-seq";

/// A size in bytes: a number with an optional k, m or g suffix (powers of
/// 1024), e.g. "64m".
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, ' '),
    };
    let shift = match unit {
        ' ' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => {
            return Err(format!(
                "invalid size {s:?}: use bytes or a k, m or g suffix"
            ))
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: use bytes or a k, m or g suffix"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// The host is not a URI berth understands.
    BadHost(String),
    /// The transport failed.
    Transport(tonic::transport::Error),
    /// A TLS file could not be read, or TLS options do not fit the host.
    Tls(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::BadHost(h) => write!(
                f,
                "invalid host {h:?}: use unix:///path/to.sock, tcp://host:port or http://host:port"
            ),
            ConnectError::Tls(m) => write!(f, "TLS: {m}"),
            ConnectError::Transport(e) => {
                write!(f, "cannot connect: {e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConnectError {}

/// Where a host string points.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Unix(PathBuf),
    Http(String),
}

fn parse_host(host: &str) -> Result<Target, ConnectError> {
    if let Some(path) = host.strip_prefix("unix://") {
        return unix_target(path, host);
    }
    if let Some(path) = host.strip_prefix("unix:") {
        return unix_target(path, host);
    }
    if host.starts_with('/') {
        return unix_target(host, host);
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        return Ok(Target::Http(format!("http://{addr}")));
    }
    if host.starts_with("http://") || host.starts_with("https://") {
        return Ok(Target::Http(host.to_string()));
    }
    Err(ConnectError::BadHost(host.to_string()))
}

fn unix_target(path: &str, host: &str) -> Result<Target, ConnectError> {
    if path.starts_with('/') {
        Ok(Target::Unix(PathBuf::from(path)))
    } else {
        Err(ConnectError::BadHost(host.to_string()))
    }
}

/// TLS for a TCP connection: the CA that signed the daemon's certificate,
/// and this client's certificate and key (the daemon requires one).
/// The berth CLI reads them from --tls-ca, --tls-cert and --tls-key, or
/// BERTH_TLS_CA, BERTH_TLS_CERT and BERTH_TLS_KEY.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM file of the CA that signed the daemon's certificate.
    pub ca: PathBuf,
    /// PEM file of the client's certificate.
    pub cert: PathBuf,
    /// PEM file of the client's private key.
    pub key: PathBuf,
    /// The name to check the daemon's certificate against (default: the
    /// host of the address).
    pub server_name: Option<String>,
}

impl Tls {
    fn config(&self) -> Result<ClientTlsConfig, ConnectError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| ConnectError::Tls(format!("read {}: {e}", p.display())))
        };
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)?))
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?));
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        Ok(config)
    }
}

/// Connects to a daemon. `host` is `unix:///path/to.sock` (or a bare
/// absolute path), `tcp://host:port` or `http://host:port` (plain, for a
/// daemon run with --insecure-tcp). For mutual TLS use [`connect_with`].
pub async fn connect(host: &str) -> Result<Channel, ConnectError> {
    connect_with(host, None).await
}

/// Connects to a daemon, over mutual TLS if `tls` is given (`host` is then
/// `tcp://host:port` or `https://host:port`).
pub async fn connect_with(host: &str, tls: Option<&Tls>) -> Result<Channel, ConnectError> {
    let target = parse_host(host)?;
    let target = match (target, tls) {
        (Target::Unix(_), Some(_)) => {
            return Err(ConnectError::Tls(
                "TLS options are for tcp:// hosts, not a unix socket".into(),
            ))
        }
        (Target::Http(uri), Some(_)) => Target::Http(uri.replacen("http://", "https://", 1)),
        (Target::Http(uri), None) if uri.starts_with("https://") => {
            return Err(ConnectError::Tls(
                "an https:// host needs the TLS options (CA, certificate and key)".into(),
            ))
        }
        (target, _) => target,
    };
    match target {
        Target::Unix(path) => {
            // The URI is required by the API but unused: the connector
            // below always dials the socket.
            let endpoint = Endpoint::from_static("http://berth.sock");
            endpoint
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                    }
                }))
                .await
                .map_err(ConnectError::Transport)
        }
        Target::Http(uri) => {
            let mut endpoint =
                Endpoint::from_shared(uri.clone()).map_err(|_| ConnectError::BadHost(uri))?;
            if let Some(tls) = tls {
                endpoint = endpoint
                    .tls_config(tls.config()?)
                    .map_err(ConnectError::Transport)?;
            }
            endpoint.connect().await.map_err(ConnectError::Transport)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        for bad in ["", "m", "1x", "-1k", "99999999999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("unix:///run/b.sock").unwrap(),
            Target::Unix("/run/b.sock".into())
        );
        assert_eq!(
            parse_host("unix:/run/b.sock").unwrap(),
            Target::Unix("/run/b.sock".into())
        );
        assert_eq!(
            parse_host("/tmp/x.sock").unwrap(),
            Target::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:7000").unwrap(),
            Target::Http("http://127.0.0.1:7000".into())
        );
        assert!(parse_host("unix://relative.sock").is_err());
        assert!(parse_host("ftp://x").is_err());
    }
}
