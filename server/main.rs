//! `berthd`: the berth daemon. Serves the berth API on a unix socket (and
//! on TCP with mutual TLS if asked) and runs containers; `berthd monitor DIR` is the per-container monitor it
//! starts for itself (not for users).

mod api;
mod events;
mod runtime;
mod store;
mod tcp;

use berth::pb::{containers_server::ContainersServer, events_server::EventsServer};
use clap::Parser;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "The berth container daemon")]
struct Args {
    /// Unix socket to serve the API on. Created 0660, owned by root and
    /// --group; its directory must be root's and not writable by others.
    #[arg(long, env = "BERTH_SOCKET", default_value = berth::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Group whose members may use the socket (default: root only).
    #[arg(long, env = "BERTH_GROUP")]
    group: Option<String>,
    /// Directory for the daemon's state: database and containers.
    #[arg(long, env = "BERTH_ROOT", default_value = "/var/lib/berth")]
    root: PathBuf,
    /// How many events the journal keeps, and for how long: a count, an
    /// age (s, m, h, d) or both, e.g. "1000000,7d". Older events are
    /// removed in the background.
    #[arg(long, env = "BERTH_EVENTS_RETENTION", default_value = "1000000,7d")]
    events_retention: events::Retention,
    /// Default size at which a container's log is rotated (k, m, g suffixes).
    #[arg(long, env = "BERTH_LOG_MAX_SIZE", default_value = "10m", value_parser = berth::parse_size)]
    log_max_size: u64,
    /// Default number of log files kept per container, the current one included.
    #[arg(long, env = "BERTH_LOG_MAX_FILES", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    log_max_files: u32,
    /// Log filter (tracing's env-filter syntax), e.g. "info" or "berthd=debug".
    #[arg(long, env = "BERTH_LOG", default_value = "info")]
    log: String,
    /// Set the database aside and rebuild the container records from the
    /// container directories (when the database is damaged or lost; the
    /// event journal starts anew).
    #[arg(long)]
    rebuild: bool,
    #[command(flatten)]
    tcp: tcp::TcpArgs,
    /// Most requests and streams one connection may have open at once;
    /// more wait until one ends.
    #[arg(long, env = "BERTH_MAX_STREAMS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_streams: u32,
}

/// How much less CPU the threads serving connections get than those
/// running container operations when both want it (a nice value, for those
/// threads alone): delivering events to a thousand subscribers must not
/// slow a start.
const SERVER_NICE: i32 = 10;

/// The largest request message accepted; bigger ones are refused
/// (OUT_OF_RANGE) before they are decoded.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// The largest header block a request may send.
const MAX_HEADER_BYTES: u32 = 64 << 10;

fn main() {
    // Nothing berthd inherited reaches a monitor or a container: an open
    // directory passed down would be a way out of a container's root.
    if let Err(e) = runtime::linux::cloexec_inherited() {
        eprintln!("berthd: cannot mark inherited file descriptors close-on-exec: {e}");
        std::process::exit(1);
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "monitor") {
        // The monitor forks: it must stay single-threaded, so no tokio.
        init_tracing("info");
        match argv.get(2) {
            Some(dir) => runtime::monitor::main(Path::new(dir)),
            None => {
                eprintln!("usage: berthd monitor DIR");
                std::process::exit(2)
            }
        }
    }
    let args = Args::parse();
    init_tracing(&args.log);
    // Two runtimes: one serves connections (gRPC, event delivery, logs),
    // the other runs container operations and watchers. However many
    // subscribers and log followers keep the first busy, an operation's
    // next step never queues behind their work.
    let runtime = |name: &str, nice: i32| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name(name)
            .on_thread_start(move || runtime::linux::set_nice(nice))
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot start the async runtime");
                std::process::exit(1)
            })
    };
    let (server, ops) = (
        runtime("berthd-server", SERVER_NICE),
        runtime("berthd-ops", 0),
    );
    if let Err(e) = server.block_on(serve(args, ops.handle().clone())) {
        tracing::error!(error = %e, "berthd failed");
        std::process::exit(1);
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(args: Args, ops: tokio::runtime::Handle) -> Result<(), Box<dyn std::error::Error>> {
    let signalled = shutdown_signals()?;
    let (shutdown_tx, shutdown) = watch::channel(false);
    // Before anything else: a daemon that cannot secure its socket does
    // not start.
    secure_dir(&args.socket)?;
    let gid = match &args.group {
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .map_err(|e| format!("look up group {name:?}: {e}"))?
                .ok_or_else(|| format!("no group {name:?} on this host"))?
                .gid,
        ),
        None => None,
    };
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
    let limits = runtime::logs::Limits {
        max_size: args.log_max_size,
        max_files: args.log_max_files,
    };
    let (root, stop, rebuild) = (args.root.clone(), shutdown.clone(), args.rebuild);
    let rt = ops
        .spawn(async move { runtime::Runtime::open(&root, limits, stop, rebuild).await })
        .await??;
    let bus = rt.bus();
    bus.spawn_retention(args.events_retention, shutdown.clone());
    let listener = bind(&args.socket, gid)?;

    // Both reflection versions: grpcurl and many other tools still ask for
    // v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(berth::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ContainersServer<api::ContainersService>>()
        .await;
    health
        .set_serving::<EventsServer<api::EventsService>>()
        .await;

    let routes = tonic::service::Routes::new(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            ContainersServer::new(api::ContainersService { rt, ops })
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            EventsServer::new(api::EventsService { bus: bus.clone() })
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        );

    // Every caller is logged with its peer credentials.
    let incoming = tokio_stream::StreamExt::map(
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
            conn
        },
    );
    tokio::spawn(async move {
        signalled.await;
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
    let unix = server()
        .add_routes(routes.clone())
        .serve_with_incoming_shutdown(incoming, stopped());
    let tcp = async {
        match tcp {
            Some(tcp) => tcp.serve(routes, stopped()).await.map_err(Into::into),
            None => Ok(()),
        }
    };
    tokio::try_join!(
        async { unix.await.map_err(Box::<dyn std::error::Error>::from) },
        tcp
    )?;
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}

/// Creates the socket's directory if needed, and refuses a path that
/// anyone but root could change: every directory from the socket's up to
/// / (as given and with symlinks resolved) must be root's and not writable
/// by others unless sticky, as sshd's StrictModes wants. Whoever could
/// write one of them could swap the socket for their own and receive
/// root's requests.
fn secure_dir(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
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
fn check_owner(socket: &Path, p: &Path) -> Result<(), Box<dyn std::error::Error>> {
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
fn bind(
    path: &Path,
    gid: Option<nix::unistd::Gid>,
) -> Result<tokio::net::UnixListener, Box<dyn std::error::Error>> {
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
