//! The daemon: its listeners (the unix socket, and TCP with mutual TLS if
//! asked), its services, and its shutdown.

mod authority;
mod hpack;
mod lock;
mod notify;
mod rewritten;
mod tcp;

pub use tcp::TcpArgs;

use crate::api::{ContainersService, EventsService, ImagesService, NetworksService, SystemService};
use crate::logs::Limits;
use crate::runtime::{host::Real, Options, Runtime};
use crate::sys::cgroup::Parent;
use crate::Args;
use berth::pb::{
    containers_server::ContainersServer, events_server::EventsServer, images_server::ImagesServer,
    networks_server::NetworksServer, system_server::SystemServer,
};
use rewritten::Rewritten;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

type BoxError = Box<dyn std::error::Error>;

/// How much less CPU the threads serving connections get than those
/// running container operations when both want it (a nice value, for those
/// threads alone): delivering events to a thousand subscribers must not
/// slow a start.
pub const SERVER_NICE: i32 = 10;

/// The largest request message accepted; bigger ones are refused
/// (OUT_OF_RANGE) before they are decoded.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The largest header block a request may send.
const MAX_HEADER_BYTES: u32 = 64 << 10;

/// Serves the API until a shutdown signal: opens the runtime on `ops`
/// (where every container operation runs), then listens on the unix
/// socket and, if asked, on TCP.
pub async fn serve(args: Args, ops: tokio::runtime::Handle) -> Result<(), BoxError> {
    let signalled = shutdown_signals()?;
    let (shutdown_tx, shutdown) = watch::channel(false);
    // Before anything else: a daemon that cannot secure its socket does
    // not start.
    secure_dir(&args.socket)?;
    let gid = group_id(args.group.as_deref())?;
    let server = || {
        tonic::transport::Server::builder()
            .max_concurrent_streams(args.max_streams)
            .http2_max_header_list_size(MAX_HEADER_BYTES)
    };
    // A TCP address in use stops the daemon before it opens its root.
    let tcp = match args.tcp.config(server())? {
        Some(config) => Some(config.bind().await?),
        None => None,
    };
    // Before anything else touches the root or the socket: one daemon per
    // root.
    private_root(&args.root)?;
    let _lock = lock::RootLock::take(&args.root)?;
    let options = Options {
        log_limits: Limits {
            max_size: args.log_max_size,
            max_files: args.log_max_files,
        },
        rebuild: args.rebuild,
        dns: true,
    };
    let (root, stop) = (args.root.clone(), shutdown.clone());
    let parent = Parent::setup(&args.cgroup_parent)?;
    tracing::info!(cgroup_parent = %parent.path(), "containers' cgroups");
    let parent_path = parent.path().to_string();
    // Helpers that enter containers run from a sealed copy of this
    // binary, never from its file (sys/sealed.rs says why).
    let exe = crate::sys::sealed::own_binary()
        .map_err(|e| format!("cannot make the sealed copy of berthd: {e}"))?;
    // Monitors are forks of the launcher, unless BERTH_MONITOR_LAUNCHER=0
    // (benches/lifecycle.rs compares both). It starts beside the daemon's
    // own start; a monitor needed before it is ready is exec'd.
    let launcher = Arc::new(std::sync::OnceLock::new());
    if std::env::var_os("BERTH_MONITOR_LAUNCHER").is_none_or(|v| v != "0") {
        let (slot, exe) = (launcher.clone(), exe.clone());
        std::thread::spawn(move || {
            // Monitors and containers inherit its priority: the
            // operations' (this thread may come from the server runtime's).
            crate::sys::linux::set_nice(0);
            match crate::monitor::launcher::Launcher::start(&exe) {
                Ok(l) => {
                    let _ = slot.set(l);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the monitors' launcher; monitors will be started from berthd's binary")
                }
            }
        });
    }
    let host = Box::new(Real {
        placed: Default::default(),
        wiring: crate::network::Wiring::new(
            crate::network::dir(&args.root).join("ipam"),
            args.cni_path.clone(),
        ),
        exe,
        parent,
        launcher,
    });
    let rt = ops
        .spawn(async move { Runtime::open(&root, host, options, stop).await })
        .await??;
    let registries = args.registries.clone().or_else(|| {
        let default = Path::new("/etc/berth/registries.toml");
        default.exists().then(|| default.to_path_buf())
    });
    let image_options = crate::image::Options {
        registries,
        limits: crate::image::Limits {
            max_bytes: args.max_layer_size,
            ..Default::default()
        },
    };
    let images = crate::image::Images::open(&args.root, rt.clone(), image_options)?;
    let bus = rt.bus();
    bus.spawn_retention(args.events_retention, shutdown.clone());
    // The CRI socket first: whoever sees the API's socket finds it there.
    let cri_socket = std::path::PathBuf::from(&args.cri_socket);
    let cri = match args.cri_socket.is_empty() {
        true => None,
        false => {
            secure_dir(&cri_socket)?;
            let streams =
                crate::cri::Streams::serve(&args.cri_stream_address, rt.clone(), ops.clone())
                    .await
                    .map_err(|e| {
                        format!(
                            "serve the CRI's streams on {}: {e}",
                            args.cri_stream_address
                        )
                    })?;
            let routes = crate::cri::routes(
                rt.clone(),
                images.clone(),
                ops.clone(),
                args.cni_conf_dir.clone(),
                streams,
            );
            Some((bind(&cri_socket, gid)?, routes))
        }
    };
    let listener = bind(&args.socket, gid)?;
    let system = SystemService {
        rt: rt.clone(),
        root: args.root.clone(),
        cgroup_parent: format!("/{}", parent_path),
    };
    let routes = routes(rt, images, ops, system).await?;
    tokio::spawn(async move {
        signalled.await;
        notify::notify("STOPPING=1");
        tracing::info!("shutting down; containers keep running");
        let _ = shutdown_tx.send(true);
        bus.close();
    });
    let stopped = || {
        let mut shutdown = shutdown.clone();
        async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        }
    };
    tracing::info!(socket = %args.socket.display(), root = %args.root.display(), "berthd serving");
    // The socket listens: connections wait in its backlog from now on.
    notify::notify("READY=1");
    let unix = server()
        .add_routes(routes.clone())
        .serve_with_incoming_shutdown(logged(listener), stopped());
    let tcp = async {
        match tcp {
            Some(tcp) => tcp.serve(routes, stopped()).await.map_err(Into::into),
            None => Ok(()),
        }
    };
    let cri = async {
        match cri {
            Some((listener, routes)) => {
                tracing::info!(socket = %args.cri_socket, "serving the CRI");
                server()
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(logged(listener), stopped())
                    .await
                    .map_err(BoxError::from)
            }
            None => Ok(()),
        }
    };
    tokio::try_join!(async { unix.await.map_err(BoxError::from) }, tcp, cri)?;
    let _ = std::fs::remove_file(&args.socket);
    if !args.cri_socket.is_empty() {
        let _ = std::fs::remove_file(&cri_socket);
    }
    Ok(())
}

fn group_id(group: Option<&str>) -> Result<Option<nix::unistd::Gid>, BoxError> {
    let Some(name) = group else { return Ok(None) };
    let group = nix::unistd::Group::from_name(name)
        .map_err(|e| format!("look up group {name:?}: {e}"))?
        .ok_or_else(|| format!("no group {name:?} on this host"))?;
    Ok(Some(group.gid))
}

/// The services, health and reflection (both versions: grpcurl and many
/// other tools still ask for v1alpha).
async fn routes(
    rt: Arc<Runtime>,
    images: Arc<crate::image::Images>,
    ops: tokio::runtime::Handle,
    system: SystemService,
) -> Result<tonic::service::Routes, BoxError> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(berth::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ContainersServer<ContainersService>>()
        .await;
    health.set_serving::<EventsServer<EventsService>>().await;
    health.set_serving::<SystemServer<SystemService>>().await;
    health.set_serving::<ImagesServer<ImagesService>>().await;
    health
        .set_serving::<NetworksServer<NetworksService>>()
        .await;
    let images_service = ImagesService {
        images: images.clone(),
        rt: rt.clone(),
        ops: ops.clone(),
    };
    let bus = rt.bus();
    let networks = NetworksService {
        rt: rt.clone(),
        ops: ops.clone(),
    };
    Ok(tonic::service::Routes::new(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(
            ContainersServer::new(ContainersService { rt, images, ops })
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            EventsServer::new(EventsService { bus }).max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(SystemServer::new(system).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(ImagesServer::new(images_service).max_decoding_message_size(MAX_REQUEST_BYTES))
        .add_service(NetworksServer::new(networks).max_decoding_message_size(MAX_REQUEST_BYTES)))
}

/// The unix socket's connections, each caller logged with its peer
/// credentials, and each read through the authority rewriter (so that
/// clients that send the socket's path as :authority are served).
fn logged(
    listener: tokio::net::UnixListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<Rewritten<tokio::net::UnixStream>>> {
    tokio_stream::StreamExt::map(
        tokio_stream::wrappers::UnixListenerStream::new(listener),
        |conn| {
            if let Ok(cred) = conn.as_ref().map(|c| c.peer_cred()) {
                match cred {
                    Ok(c) => tracing::info!(
                        uid = c.uid(),
                        gid = c.gid(),
                        pid = c.pid().unwrap_or(0),
                        "client connected"
                    ),
                    Err(e) => tracing::warn!(error = %e, "client connected; no peer credentials"),
                }
            }
            conn.map(|c| Rewritten::new(c, 4 * MAX_HEADER_BYTES as usize))
        },
    )
}

/// The state directory, root's alone (0700), as Docker keeps its own: it
/// holds containers' configurations (their environment), logs, attach
/// sockets and filesystems.
fn private_root(root: &Path) -> Result<(), BoxError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| format!("create {}: {e}", root.display()))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("make {} root's alone: {e}", root.display()).into())
}

/// Creates the socket's directory if needed, and refuses a path that
/// anyone but root could change: every directory from the socket's up to
/// / (as given and with symlinks resolved) must be root's and not writable
/// by others unless sticky, as sshd's StrictModes wants. Whoever could
/// write one of them could swap the socket for their own and receive
/// root's requests.
fn secure_dir(path: &Path) -> Result<(), BoxError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    let given = std::path::absolute(dir)?;
    let real = std::fs::canonicalize(dir)?;
    for p in given.ancestors().chain(real.ancestors()) {
        check_owner(path, p)?;
    }
    Ok(())
}

/// `p` (not followed if a symlink) must be root's, and a directory must
/// not be writable by group or others unless sticky.
fn check_owner(socket: &Path, p: &Path) -> Result<(), BoxError> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).map_err(|e| format!("check {}: {e}", p.display()))?;
    let writable = m.is_dir() && m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0;
    if m.uid() != 0 || writable {
        return Err(format!(
            "cannot secure the socket {}: {} must be owned by root and not writable by others (it is uid {}, mode {:o}); use a socket path under root's directories only",
            socket.display(),
            p.display(),
            m.uid(),
            m.mode() & 0o7777
        )
        .into());
    }
    Ok(())
}

/// Binds the socket, owned by root and `gid` (root if none) with mode
/// 0660, replacing a stale socket file but never a live one or anything
/// that is not a socket. Owner and mode are final before it listens, so
/// no client ever connects to it with others.
fn bind(path: &Path, gid: Option<nix::unistd::Gid>) -> Result<tokio::net::UnixListener, BoxError> {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket", path.display()).into());
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!("{} is in use by another daemon", path.display()).into());
        }
        std::fs::remove_file(path)?;
    }
    let fail = |step: &str, e: &dyn std::fmt::Display| format!("{step} {}: {e}", path.display());
    let sock = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| fail("socket for", &e))?;
    let addr = UnixAddr::new(path).map_err(|e| fail("address", &e))?;
    // Nobody but root can open it until the mode and owner are set.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = socket::bind(sock.as_raw_fd(), &addr);
    nix::sys::stat::umask(old);
    bound.map_err(|e| fail("bind", &e))?;
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), gid)
        .map_err(|e| fail("chown", &e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| fail("chmod", &e))?;
    socket::listen(&sock, Backlog::MAXCONN).map_err(|e| fail("listen on", &e))?;
    Ok(tokio::net::UnixListener::from_std(
        std::os::unix::net::UnixListener::from(sock),
    )?)
}

/// SIGTERM and SIGINT, caught from the moment this is called: one that
/// comes while the daemon starts up is a shutdown too, never the default
/// action (which would leave the socket behind).
fn shutdown_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
