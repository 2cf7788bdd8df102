//! Registries through the OCI distribution API: anonymous, basic and
//! bearer-token auth (the WWW-Authenticate challenge), TLS with the system
//! roots plus a CA per host, plain HTTP only for hosts configured
//! insecure and, as Docker's default, for loopback ones (127.0.0.0/8, ::1
//! and localhost) that have no CA and are not set `insecure = false`, and
//! mirrors tried in order before the registry itself.
//!
//! The hosts file (`--registries`, TOML), like containerd's hosts.toml:
//!
//! ```toml
//! ["docker.io"]
//! mirrors = ["https://mirror.example:5000", "http://10.0.0.2:5000"]
//!
//! ["registry.example:5000"]
//! ca = "/etc/berth/certs/example-ca.pem"
//!
//! ["10.0.0.2:5000"]
//! insecure = true      # plain HTTP
//! ```

use super::Error;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Plain HTTP; unset: only for a loopback host without a CA.
    #[serde(default)]
    pub insecure: Option<bool>,
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

impl HostConfig {
    /// Whether `host` ("name[:port]") is reached over plain HTTP.
    fn plain_http(&self, host: &str) -> bool {
        self.insecure
            .unwrap_or_else(|| self.ca.is_none() && is_loopback(host))
    }
}

/// Whether a registry's "host[:port]" names this machine's loopback.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

pub struct Registries {
    hosts: HashMap<String, HostConfig>,
    /// Credentials kept by Login, in a file only root reads.
    auth_file: PathBuf,
    auth: Mutex<HashMap<String, Credentials>>,
    clients: Mutex<HashMap<String, reqwest::Client>>,
}

/// Where a repository is fetched from.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// "https://host:port".
    pub base: String,
    /// "host:port", for its settings and credentials.
    pub host: String,
}

impl Registries {
    pub fn open(config: Option<&Path>, auth_file: PathBuf) -> Result<Registries, Error> {
        let hosts = match config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| Error::io(format!("read {}", p.display()), e))?;
                toml::from_str(&text)
                    .map_err(|e| Error::Invalid(format!("registries file {}: {e}", p.display())))?
            }
            None => HashMap::new(),
        };
        let auth = match std::fs::read(&auth_file) {
            Ok(raw) => serde_json::from_slice(&raw).unwrap_or_default(),
            Err(_) => HashMap::new(),
        };
        Ok(Registries {
            hosts,
            auth_file,
            auth: Mutex::new(auth),
            clients: Mutex::new(HashMap::new()),
        })
    }

    fn host(&self, host: &str) -> HostConfig {
        self.hosts.get(host).cloned().unwrap_or_default()
    }

    /// The mirrors of `registry`, then the registry.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .host(registry)
            .mirrors
            .iter()
            .map(|m| self.endpoint(m))
            .collect();
        out.push(match registry {
            super::reference::DOCKER_HUB => Endpoint {
                base: "https://registry-1.docker.io".into(),
                host: registry.into(),
            },
            r => self.endpoint(r),
        });
        out
    }

    fn endpoint(&self, given: &str) -> Endpoint {
        let given = given.trim_end_matches('/');
        if let Some(host) = given
            .strip_prefix("http://")
            .or_else(|| given.strip_prefix("https://"))
        {
            return Endpoint {
                base: given.into(),
                host: host.into(),
            };
        }
        let scheme = match self.host(given).plain_http(given) {
            true => "http",
            false => "https",
        };
        Endpoint {
            base: format!("{scheme}://{given}"),
            host: given.into(),
        }
    }

    pub fn client(&self, host: &str) -> Result<reqwest::Client, Error> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(host) {
            return Ok(c.clone());
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &self.host(host).ca {
            let pem =
                std::fs::read(ca).map_err(|e| Error::io(format!("read CA {}", ca.display()), e))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| Error::Invalid(format!("CA {}: {e}", ca.display())))?;
            b = b.add_root_certificate(cert);
        }
        let c = b
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        clients.insert(host.to_string(), c.clone());
        Ok(c)
    }

    pub fn credentials(&self, host: &str) -> Option<Credentials> {
        self.auth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned()
    }

    /// Keeps (Some) or forgets (None) a host's credentials, in the file
    /// first.
    pub fn set_credentials(&self, host: &str, c: Option<Credentials>) -> Result<bool, Error> {
        let mut auth = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = auth.clone();
        let had = match c {
            Some(c) => next.insert(host.to_string(), c).is_some(),
            None => next.remove(host).is_some(),
        };
        let raw = serde_json::to_vec(&next).map_err(|e| Error::Internal(e.to_string()))?;
        write_private(&self.auth_file, &raw)?;
        *auth = next;
        Ok(had)
    }

    /// A session with one endpoint for one repository.
    pub fn session(
        &self,
        e: &Endpoint,
        repository: &str,
        creds: Option<Credentials>,
    ) -> Result<Session, Error> {
        Ok(Session {
            client: self.client(&e.host)?,
            base: e.base.clone(),
            repository: repository.to_string(),
            creds: creds.or_else(|| self.credentials(&e.host)),
            authorization: None,
        })
    }
}

/// Writes a file only root can read, atomically.
fn write_private(path: &Path, data: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

#[derive(Clone)]
pub struct Session {
    client: reqwest::Client,
    base: String,
    repository: String,
    creds: Option<Credentials>,
    /// The Authorization header that worked.
    authorization: Option<String>,
}

impl Session {
    /// GET a path of the repository ("manifests/…", "blobs/…"), answering
    /// an auth challenge once.
    pub async fn get(&mut self, path: &str, accept: &[&str]) -> Result<reqwest::Response, Error> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        self.get_url(&url, accept).await
    }

    async fn get_url(&mut self, url: &str, accept: &[&str]) -> Result<reqwest::Response, Error> {
        for attempt in 0..2 {
            let mut req = self.client.get(url);
            if !accept.is_empty() {
                req = req.header(reqwest::header::ACCEPT, accept.join(", "));
            }
            if let Some(a) = &self.authorization {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(|e| unreachable(&self.base, e))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                let challenge = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.authorization = Some(self.authenticate(&challenge).await?);
                continue;
            }
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                let hint = match self.creds {
                    Some(_) => "",
                    None => " (none were given: berth login first)",
                };
                return Err(Error::Unauthenticated(format!(
                    "{url}: the registry refused the credentials{hint}"
                )));
            }
            return check(resp, url).await;
        }
        Err(Error::Unauthenticated(format!(
            "{url}: the registry refused the credentials"
        )))
    }

    /// The Authorization header a challenge asks for.
    async fn authenticate(&self, challenge: &str) -> Result<String, Error> {
        let (scheme, params) = parse_challenge(challenge);
        let basic = self.creds.as_ref().map(|c| {
            let raw = format!("{}:{}", c.username, c.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        });
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => basic.ok_or_else(|| {
                Error::Unauthenticated(format!(
                    "{} asks for credentials: berth login first",
                    self.base
                ))
            }),
            "bearer" => {
                let realm = params.get("realm").ok_or_else(|| {
                    Error::Registry(format!("{}: a bearer challenge without realm", self.base))
                })?;
                let scope = params
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let mut query = vec![("scope", scope)];
                if let Some(s) = params.get("service") {
                    query.push(("service", s.clone()));
                }
                let mut req = self.client.get(realm).query(&query);
                if let Some(b) = &basic {
                    req = req.header(reqwest::header::AUTHORIZATION, b);
                }
                let resp = req.send().await.map_err(|e| unreachable(realm, e))?;
                if matches!(resp.status().as_u16(), 401 | 403) {
                    return Err(Error::Unauthenticated(format!(
                        "the token server {realm} refused the credentials"
                    )));
                }
                let resp = check(resp, realm).await?;
                #[derive(Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: String,
                    #[serde(default)]
                    access_token: String,
                }
                let t: Token = resp
                    .json()
                    .await
                    .map_err(|e| Error::Registry(format!("token from {realm}: {e}")))?;
                let token = if t.token.is_empty() {
                    t.access_token
                } else {
                    t.token
                };
                if token.is_empty() {
                    return Err(Error::Registry(format!("{realm} sent no token")));
                }
                Ok(format!("Bearer {token}"))
            }
            _ => Err(Error::Registry(format!(
                "{} asks for an authentication berth does not know: {challenge:?}",
                self.base
            ))),
        }
    }

    /// Checks the credentials (GET /v2/ with the challenge answered).
    pub async fn ping(&mut self) -> Result<(), Error> {
        let url = format!("{}/v2/", self.base);
        self.get_url(&url, &[]).await.map(drop)
    }
}

fn unreachable(what: &str, e: reqwest::Error) -> Error {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    Error::Unavailable(format!("{what}: {msg}"))
}

/// A response that is not a success becomes the matching error.
async fn check(resp: reqwest::Response, url: &str) -> Result<reqwest::Response, Error> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    Err(match status.as_u16() {
        404 => Error::NotFound(format!("{url}: not found in the registry")),
        401 | 403 => Error::Unauthenticated(format!("{url}: {status}: {}", body.trim())),
        _ => Error::Registry(format!("{url}: {status}: {}", body.trim())),
    })
}

/// `Bearer realm="…",service="…"` as the scheme and its parameters.
pub fn parse_challenge(h: &str) -> (String, HashMap<String, String>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests;
