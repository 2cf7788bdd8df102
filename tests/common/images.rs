//! Images for the tests, and real registries to serve them: OCI image
//! layouts written here (layers as tars, compressed as asked), pushed by
//! skopeo into Debian's docker-registry (distribution 2.8) started on
//! loopback, anonymous, with htpasswd over TLS, or with token auth from a
//! token server of the test's own.

use super::*;
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::net::TcpListener;

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Packing {
    Plain,
    Gzip,
    Zstd,
}

/// A layer: a tar and how it is compressed.
pub struct Layer {
    pub tar: Vec<u8>,
    pub packing: Packing,
}

impl Layer {
    pub fn blob(&self) -> (Vec<u8>, &'static str) {
        match self.packing {
            Packing::Plain => (self.tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
            Packing::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&self.tar).unwrap();
                (
                    gz.finish().unwrap(),
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                )
            }
            Packing::Zstd => (
                zstd::encode_all(self.tar.as_slice(), 3).unwrap(),
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
        }
    }
}

/// A tar built entry by entry; names and link names are written raw.
#[derive(Default)]
pub struct TarBuilder {
    b: Option<tar::Builder<Vec<u8>>>,
}

impl TarBuilder {
    pub fn new() -> TarBuilder {
        TarBuilder {
            b: Some(tar::Builder::new(Vec::new())),
        }
    }

    fn add(
        &mut self,
        kind: tar::EntryType,
        name: &str,
        link: &str,
        (mode, owner): (u32, u64),
        data: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_uid(owner);
        h.set_gid(owner);
        h.set_cksum();
        self.b.as_mut().unwrap().append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.add(tar::EntryType::Regular, name, "", (0o644, 0), data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.add(tar::EntryType::Directory, name, "", (0o755, 0), b"")
    }

    /// A directory (`data` None) or file with this mode, owned by
    /// `owner` (uid and gid).
    pub fn owned(&mut self, name: &str, mode: u32, owner: u64, data: Option<&[u8]>) -> &mut Self {
        match data {
            Some(d) => self.add(tar::EntryType::Regular, name, "", (mode, owner), d),
            None => self.add(tar::EntryType::Directory, name, "", (mode, owner), b""),
        }
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(tar::EntryType::Symlink, name, target, (0o777, 0), b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(tar::EntryType::Link, name, target, (0o644, 0), b"")
    }

    pub fn device(&mut self, name: &str) -> &mut Self {
        self.add(tar::EntryType::Char, name, "", (0o600, 0), b"")
    }

    /// A directory tree from the host, as it is.
    pub fn tree(&mut self, dir: &Path) -> &mut Self {
        let b = self.b.as_mut().unwrap();
        b.follow_symlinks(false);
        b.append_dir_all(".", dir).unwrap();
        self
    }

    pub fn layer(&mut self, packing: Packing) -> Layer {
        Layer {
            tar: self.b.take().unwrap().into_inner().unwrap(),
            packing,
        }
    }
}

/// The test rootfs (a shell and tools, without perl) as a layer, made
/// once per test binary.
pub fn base_layer(packing: Packing) -> Layer {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    let tar = TAR.get_or_init(|| {
        let slim = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("image-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&slim);
        copy_tree(rootfs(), &slim, &|p: &Path| {
            !p.to_string_lossy().contains("perl")
        });
        let tar = TarBuilder::new().tree(&slim).layer(Packing::Plain).tar;
        let _ = std::fs::remove_dir_all(&slim);
        tar
    });
    Layer {
        tar: tar.clone(),
        packing,
    }
}

/// The whole test rootfs, perl included, as a layer.
pub fn full_layer(packing: Packing) -> Layer {
    TarBuilder::new().tree(rootfs()).layer(packing)
}

/// Copies a tree (files, directories, symlinks) but what `keep` refuses.
fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if !keep(&src) {
            continue;
        }
        let t = e.file_type().unwrap();
        if t.is_dir() {
            copy_tree(&src, &dst, keep);
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// An image to write into a layout.
pub struct TestImage {
    pub layers: Vec<Layer>,
    /// The "config" part of the image config (Cmd, Env, …).
    pub config: serde_json::Value,
    pub architecture: &'static str,
}

impl TestImage {
    pub fn new(layers: Vec<Layer>, config: serde_json::Value) -> TestImage {
        TestImage {
            layers,
            config,
            architecture: host_arch(),
        }
    }
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// Writes blobs into an OCI layout at `dir`; returns the descriptor of
/// what it wrote (a manifest).
fn put_blob(dir: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    let p = dir.join("blobs/sha256").join(&d["sha256:".len()..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    d
}

/// Writes the image's blobs; returns its manifest's descriptor (JSON) and
/// the config digest (the image id).
pub fn write_image(dir: &Path, image: &TestImage) -> (serde_json::Value, String) {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for l in &image.layers {
        let (blob, media_type) = l.blob();
        let digest = put_blob(dir, &blob);
        layers.push(
            serde_json::json!({"mediaType": media_type, "digest": digest, "size": blob.len()}),
        );
        diff_ids.push(sha256(&l.tar));
    }
    let config = serde_json::json!({
        "architecture": image.architecture,
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": image.config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put_blob(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let digest = put_blob(dir, &manifest);
    (
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": manifest.len(),
            "platform": {"architecture": image.architecture, "os": "linux"},
        }),
        config_digest,
    )
}

/// An OCI layout at `dir` with one entry tagged `tag`: the image, or an
/// index of several (one per platform). Returns the config digests.
pub fn layout(dir: &Path, tag: &str, images: &[TestImage]) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let written: Vec<_> = images.iter().map(|i| write_image(dir, i)).collect();
    let mut entry = match written.len() {
        1 => written[0].0.clone(),
        _ => {
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": written.iter().map(|w| w.0.clone()).collect::<Vec<_>>(),
            });
            let index = serde_json::to_vec(&index).unwrap();
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": put_blob(dir, &index),
                "size": index.len(),
            })
        }
    };
    entry["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    written.into_iter().map(|w| w.1).collect()
}

/// Runs skopeo; panics with its output if it fails.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo (Debian's skopeo package)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pushes the layout's `tag` to `dest` ("host:port/repo:tag") over plain
/// HTTP, with `creds` ("user:pass") if given.
pub fn push(layout: &Path, tag: &str, dest: &str, creds: Option<&str>) {
    let src = format!("oci:{}:{tag}", layout.display());
    let dst = format!("docker://{dest}");
    let mut args = vec!["copy", "--all", "--quiet", "--dest-tls-verify=false"];
    if let Some(c) = creds {
        args.extend(["--dest-creds", c]);
    }
    args.extend([src.as_str(), dst.as_str()]);
    skopeo(&args);
}

/// Writes `images` as an OCI layout under `dir` and pushes it to `reg`
/// as `repo_tag` ("team/app:v1"), with `creds` if given; returns the
/// images' ids (config digests) and the full name pushed.
pub fn publish(
    reg: &Registry,
    dir: &Path,
    repo_tag: &str,
    images: &[TestImage],
    creds: Option<&str>,
) -> (Vec<String>, String) {
    let tag = repo_tag.rsplit_once(':').map_or("latest", |(_, t)| t);
    let at = dir.join(format!("layout-{}", repo_tag.replace(['/', ':'], "-")));
    let ids = layout(&at, tag, images);
    let name = format!("{}/{repo_tag}", reg.addr);
    push(&at, tag, &name, creds);
    (ids, name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a registry checks its clients.
pub enum Auth {
    None,
    /// htpasswd (bcrypt) with this user and password, over TLS with a
    /// certificate for 127.0.0.1 signed by the CA written to `ca.pem`.
    Htpasswd(&'static str, &'static str),
    /// Bearer tokens from a token server of the test's, which takes this
    /// user and password.
    Token(&'static str, &'static str),
}

/// A docker-registry on loopback, killed when dropped.
pub struct Registry {
    pub addr: String,
    pub dir: PathBuf,
    child: Child,
    _token: Option<TokenServer>,
}

impl Registry {
    pub fn start(dir: &Path, auth: Auth) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        );
        let mut token = None;
        match auth {
            Auth::None => {}
            Auth::Htpasswd(user, pass) => {
                let hash = bcrypt::hash(pass, 5).unwrap();
                std::fs::write(dir.join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
                let (cert, key) = tls_files(dir);
                config += &format!(
                    "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    cert.display(),
                    key.display(),
                    dir.join("htpasswd").display()
                );
            }
            Auth::Token(user, pass) => {
                let t = TokenServer::start(dir, user, pass);
                config += &format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
                    t.addr,
                    t.cert.display()
                );
                token = Some(t);
            }
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian's docker-registry package)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "the registry did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Registry {
            addr,
            dir: dir.to_path_buf(),
            child,
            _token: token,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// How many times a blob was fetched (GET, from the access log).
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&format!("/blobs/{digest}")))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it.
fn tls_files(dir: &Path) -> (PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "berth test CA");
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (c, k) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// A token server: Basic credentials in, an ES256 JWT out, granting what
/// the scope asks; the registry trusts its certificate (rootcertbundle)
/// and finds it in the token's x5c header.
pub struct TokenServer {
    pub addr: String,
    cert: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TokenServer {
    fn start(dir: &Path, user: &'static str, pass: &'static str) -> TokenServer {
        use base64::Engine as _;
        use rcgen::{CertificateParams, DnType, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "berth-test-issuer");
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.join("token.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        std::thread::spawn(move || {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let mut buf = vec![0u8; 16 << 10];
                let n = std::io::Read::read(&mut conn, &mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let authorized = req.lines().any(|l| {
                    l.to_ascii_lowercase().starts_with("authorization:")
                        && l[14..].trim() == expected
                });
                if !authorized {
                    let _ = conn.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                }
                let path = req.split_whitespace().nth(1).unwrap_or("");
                let access: Vec<serde_json::Value> = path
                    .split(['?', '&'])
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(|s| s.replace("%3A", ":").replace("%2F", "/").replace("%2C", ","))
                    .filter_map(|s| {
                        let mut parts = s.splitn(3, ':');
                        let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                        Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": "berth-test-issuer", "sub": user, "aud": "berth-test-registry",
                    "exp": now + 600, "nbf": now - 10, "iat": now, "jti": format!("{now}-{n}"),
                    "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    b64.encode(serde_json::to_vec(&header).unwrap()),
                    b64.encode(serde_json::to_vec(&claims).unwrap())
                );
                let sig = signer.sign(&rng, signing_input.as_bytes()).unwrap();
                let token = format!("{signing_input}.{}", b64.encode(sig.as_ref()));
                let body = serde_json::json!({"token": token}).to_string();
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        TokenServer {
            addr,
            cert: cert_path,
            stop,
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A registries file for berthd.
pub fn registries_file(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("registries.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Whether docker-registry and skopeo are here (.ci/run installs them);
/// without them a test says so and passes, unless BERTH_REQUIRE_TOOLS=1.
pub fn registry_tools() -> bool {
    let works = |tool: &str, arg: &str| {
        Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = works("docker-registry", "--version") && works("skopeo", "--version");
    if !ok {
        skip(
            Need::Tools,
            "docker-registry and skopeo are not installed (apt-get install docker-registry skopeo)",
        );
    }
    ok
}

/// A tar, zstd-compressed as it is written: files of zeros take no room.
pub struct Archive(tar::Builder<zstd::Encoder<'static, Vec<u8>>>);

impl Archive {
    pub fn new() -> Archive {
        Archive(tar::Builder::new(
            zstd::Encoder::new(Vec::new(), 1).unwrap(),
        ))
    }

    pub fn file(&mut self, name: &str, size: u64, data: impl Read) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        self.0.append_data(&mut h, name, data).unwrap();
        self
    }

    pub fn json(&mut self, name: &str, v: serde_json::Value) -> &mut Self {
        let data = serde_json::to_vec(&v).unwrap();
        self.file(name, data.len() as u64, &data[..])
    }

    pub fn zeros(&mut self, name: &str, size: u64) -> &mut Self {
        self.file(name, size, std::io::repeat(0).take(size))
    }

    pub fn done(self) -> Vec<u8> {
        self.0.into_inner().unwrap().finish().unwrap()
    }
}

/// A docker-archive of one image: the test rootfs as its layer and
/// `config` as its config's "config".
pub fn docker_archive(tag: &str, config: serde_json::Value) -> Vec<u8> {
    docker_archive_of(tag, config, base_layer(Packing::Plain).tar)
}

/// A docker-archive of one image of one layer.
pub fn docker_archive_of(tag: &str, config: serde_json::Value, layer: Vec<u8>) -> Vec<u8> {
    let image_config = serde_json::json!({
        "architecture": host_arch(), "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    });
    let mut a = Archive::new();
    a.json(
        "manifest.json",
        serde_json::json!([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]),
    )
    .json("config.json", image_config)
    .file("layer.tar", layer.len() as u64, &layer[..]);
    a.done()
}

/// Loads an archive through the API, in chunks.
pub async fn load(d: &Daemon, archive: Vec<u8>) -> Result<Vec<String>, tonic::Status> {
    let chunks: Vec<pb::LoadRequest> = archive
        .chunks(512 << 10)
        .map(|c| pb::LoadRequest { data: c.to_vec() })
        .collect();
    d.images()
        .await
        .load(tokio_stream::iter(chunks))
        .await
        .map(|r| r.into_inner().loaded)
}
