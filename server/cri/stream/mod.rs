//! The CRI's streaming server. Exec, Attach and PortForward answer a URL
//! of this server (`http://ADDR/exec/TOKEN`); the client (crictl, critest,
//! the kubelet for `kubectl exec`) requests it with an HTTP/1.1 upgrade to
//! SPDY/3.1 or WebSocket and then speaks Kubernetes' stream protocols over
//! it (channels.rs, portforward.rs). A token serves one request and
//! expires after 30 s: a URL is useless once used or stale.

mod channels;
mod conn;
mod portforward;
mod session;
pub mod spdy;

use crate::runtime::Runtime;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a URL may wait for its client.
const TOKEN_TTL: Duration = Duration::from_secs(30);

/// What a URL was made for.
pub enum Call {
    Exec(cri::ExecRequest),
    Attach(cri::AttachRequest),
    /// The pod's network namespace (None: the host's).
    PortForward(Option<PathBuf>),
}

impl Call {
    fn path(&self) -> &'static str {
        match self {
            Call::Exec(_) => "exec",
            Call::Attach(_) => "attach",
            Call::PortForward(_) => "portforward",
        }
    }
}

/// The calls waiting for their client, by token.
struct Tokens {
    ttl: Duration,
    pending: Mutex<HashMap<String, (Instant, Call)>>,
}

impl Tokens {
    fn new(ttl: Duration) -> Tokens {
        Tokens {
            ttl,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// A new token for `call` (made at `now`); expired ones are dropped.
    fn insert(&self, call: Call, now: Instant) -> std::io::Result<String> {
        let mut raw = [0u8; 24];
        crate::sys::linux::random_bytes(&mut raw)?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut pending = self.pending.lock().unwrap();
        pending.retain(|_, (made, _)| now.duration_since(*made) < self.ttl);
        pending.insert(token.clone(), (now, call));
        Ok(token)
    }

    /// The call of an unexpired token for a `kind` path, which is then
    /// spent.
    fn take(&self, kind: &str, token: &str, now: Instant) -> Option<Call> {
        let mut pending = self.pending.lock().unwrap();
        match pending.get(token) {
            Some((made, call)) if now.duration_since(*made) < self.ttl && call.path() == kind => {
                pending.remove(token).map(|(_, call)| call)
            }
            _ => None,
        }
    }
}

pub struct Streams {
    addr: SocketAddr,
    tokens: Tokens,
    rt: Arc<Runtime>,
    ops: tokio::runtime::Handle,
}

impl Streams {
    /// Listens on `addr` (port 0: any free one) and serves from there.
    pub async fn serve(
        addr: &str,
        rt: Arc<Runtime>,
        ops: tokio::runtime::Handle,
    ) -> std::io::Result<Arc<Streams>> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            // A URL needs a host: the kubelet is on this one.
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let streams = Arc::new(Streams {
            addr,
            tokens: Tokens::new(TOKEN_TTL),
            rt,
            ops,
        });
        tracing::info!(address = %addr, "serving the CRI's streams");
        let serving = streams.clone();
        tokio::spawn(async move {
            loop {
                let tcp = match listener.accept().await {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        // Out of descriptors, most likely: not a busy loop.
                        tracing::warn!(error = %e, "the CRI's stream server cannot accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let s = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { Ok::<_, std::convert::Infallible>(s.handle(req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(streams)
    }

    /// A one-time URL for `call`.
    pub fn url(&self, call: Call) -> Result<String, tonic::Status> {
        let kind = call.path();
        let token = self
            .tokens
            .insert(call, Instant::now())
            .map_err(|e| tonic::Status::internal(format!("make a stream token: {e}")))?;
        Ok(format!("http://{}/{kind}/{token}", self.addr))
    }

    fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
        let call = match path[..] {
            [kind, token] => self.tokens.take(kind, token, Instant::now()),
            _ => None,
        };
        let Some(call) = call else {
            return refuse(
                StatusCode::NOT_FOUND,
                "no such stream: its URL is unknown, used or expired",
            );
        };
        let upgrade = header(&req, "upgrade")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let offered = offered(&req, &upgrade);
        let supported: &[&str] = match (&call, upgrade.as_str()) {
            (Call::PortForward(_), "websocket") => &[portforward::TUNNELED],
            (Call::PortForward(_), _) => &[portforward::PROTOCOL],
            (_, "websocket") => channels::WEBSOCKET_PROTOCOLS,
            _ => channels::SPDY_PROTOCOLS,
        };
        // The client's first that berth speaks; a SPDY client that names
        // none gets the oldest exec protocol, as the kubelet's server does.
        let chosen = match offered.iter().find(|p| supported.contains(&p.as_str())) {
            Some(p) => p.clone(),
            None if offered.is_empty()
                && upgrade == "spdy/3.1"
                && !matches!(call, Call::PortForward(_)) =>
            {
                String::new()
            }
            None => {
                let why = format!(
                    "no protocol in common: berth speaks {}",
                    supported.join(", ")
                );
                return refuse(StatusCode::FORBIDDEN, &why);
            }
        };
        let mut res = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
        match upgrade.as_str() {
            "spdy/3.1" => {
                res = res
                    .header("connection", "Upgrade")
                    .header("upgrade", "SPDY/3.1")
                    .header("x-stream-protocol-version", chosen.as_str());
            }
            "websocket" => {
                let Some(key) = header(&req, "sec-websocket-key") else {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        "a WebSocket upgrade needs Sec-WebSocket-Key",
                    );
                };
                let accept =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                res = res
                    .header("connection", "Upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-accept", accept)
                    .header("sec-websocket-protocol", chosen.as_str());
            }
            _ => return refuse(StatusCode::BAD_REQUEST, "upgrade to SPDY/3.1 or websocket"),
        }
        let websocket = upgrade == "websocket";
        let s = self.clone();
        tokio::spawn(async move {
            let io = match hyper::upgrade::on(req).await {
                Ok(up) => TokioIo::new(up),
                Err(e) => {
                    tracing::debug!(error = %e, "a stream's upgrade failed");
                    return;
                }
            };
            s.run(call, io, websocket, chosen).await;
        });
        res.body(Full::default()).expect("a valid response")
    }

    async fn run(
        &self,
        call: Call,
        io: TokioIo<hyper::upgrade::Upgraded>,
        websocket: bool,
        protocol: String,
    ) {
        let (rt, ops) = (self.rt.clone(), self.ops.clone());
        match (call, websocket) {
            (Call::PortForward(netns), true) => portforward::tunneled(io, netns).await,
            (Call::PortForward(netns), false) => portforward::spdy(io, netns).await,
            (Call::Exec(req), ws) => {
                let opts = channels::Opts::exec(&req);
                let run = move |s, gone| session::exec(rt, ops, req, s, gone);
                channels::serve(io, ws, &protocol, opts, run).await
            }
            (Call::Attach(req), ws) => {
                let opts = channels::Opts::attach(&req);
                let run = move |s, gone| session::attach(rt, ops, req, s, gone);
                channels::serve(io, ws, &protocol, opts, run).await
            }
        }
    }
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The protocols the client offers, in its order: WebSocket's
/// subprotocols, or SPDY's X-Stream-Protocol-Version (repeated or
/// comma-separated).
fn offered(req: &Request<Incoming>, upgrade: &str) -> Vec<String> {
    let name = match upgrade {
        "websocket" => "sec-websocket-protocol",
        _ => "x-stream-protocol-version",
    };
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn refuse(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(format!("{why}\n"))))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_serves_once_its_own_kind_and_expires() {
        let tokens = Tokens::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let exec = tokens.insert(Call::PortForward(None), t0).unwrap();
        assert_eq!(exec.len(), 48);
        assert!(
            tokens.take("exec", &exec, t0).is_none(),
            "another kind's path"
        );
        assert!(tokens.take("portforward", &exec, t0).is_some());
        assert!(tokens.take("portforward", &exec, t0).is_none(), "spent");
        let stale = tokens.insert(Call::PortForward(None), t0).unwrap();
        let late = t0 + Duration::from_secs(30);
        assert!(
            tokens.take("portforward", &stale, late).is_none(),
            "expired"
        );
        // A stale one is dropped when the next is made.
        let again = tokens.insert(Call::PortForward(None), t0).unwrap();
        tokens.insert(Call::PortForward(None), late).unwrap();
        assert!(!tokens.pending.lock().unwrap().contains_key(&again));
        assert!(tokens.take("portforward", "nothing", t0).is_none());
    }
}
