//! `berthd`: the berth daemon. Serves the berth API on a unix socket (and
//! on TCP with mutual TLS if asked) and runs containers (daemon.rs);
//! `berthd monitor DIR` is the per-container monitor it starts for itself
//! (forked by `berthd launcher`), `berthd exec` its helper for execs (not
//! for users).

mod api;
mod cri;
mod daemon;
mod dns;
mod events;
mod image;
mod logs;
mod monitor;
mod network;
mod runtime;
mod shutdown;
mod spec;
mod store;
mod sys;

use clap::Parser;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(name = "berthd", version, about = "The berth container daemon")]
pub struct Args {
    /// Unix socket to serve the API on. Created 0660, owned by root and
    /// --group; its directory must be root's and not writable by others.
    #[arg(long, env = "BERTH_SOCKET", default_value = berth::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Group whose members may use the socket (default: root only).
    #[arg(long, env = "BERTH_GROUP")]
    pub group: Option<String>,
    /// Directory for the daemon's state: database and containers.
    #[arg(long, env = "BERTH_ROOT", default_value = "/var/lib/berth")]
    pub root: PathBuf,
    /// How many events the journal keeps, and for how long: a count, an
    /// age (s, m, h, d) or both, e.g. "1000000,7d". Older events are
    /// removed in the background.
    #[arg(long, env = "BERTH_EVENTS_RETENTION", default_value = "1000000,7d")]
    pub events_retention: events::Retention,
    /// Default size at which a container's log is rotated (k, m, g suffixes).
    #[arg(long, env = "BERTH_LOG_MAX_SIZE", default_value = "10m", value_parser = berth::parse_size)]
    pub log_max_size: u64,
    /// Default number of log files kept per container, the current one included.
    #[arg(long, env = "BERTH_LOG_MAX_FILES", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub log_max_files: u32,
    /// Log filter (tracing's env-filter syntax), e.g. "info" or "berthd=debug".
    #[arg(long, env = "BERTH_LOG", default_value = "info")]
    pub log: String,
    /// Set the database aside and rebuild the container records from the
    /// container directories (when the database is damaged or lost; the
    /// event journal starts anew).
    #[arg(long)]
    pub rebuild: bool,
    /// The cgroup the containers' cgroups are made in. Absolute: below the
    /// hierarchy's root. Relative (cgroup v2): below berthd's own cgroup,
    /// e.g. the subtree systemd delegates to its unit; berthd then moves
    /// itself into the leaf "daemon" beside it.
    #[arg(long, env = "BERTH_CGROUP_PARENT", default_value = "/berth")]
    pub cgroup_parent: String,
    /// Registry settings (TOML: per host, mirrors, insecure, ca); default
    /// /etc/berth/registries.toml if it exists.
    #[arg(long, env = "BERTH_REGISTRIES")]
    pub registries: Option<PathBuf>,
    /// Most bytes one image layer may unpack to (k, m, g suffixes): larger
    /// layers, and decompression bombs, are refused.
    #[arg(long, env = "BERTH_MAX_LAYER_SIZE", default_value = "64g", value_parser = berth::parse_size)]
    pub max_layer_size: u64,
    /// Where the CNI plugins (portmap, for published ports) are: directories
    /// separated by ':'.
    #[arg(long, env = "BERTH_CNI_PATH", default_value = network::CNI_PATH)]
    pub cni_path: String,
    /// Unix socket to serve Kubernetes' CRI (runtime.v1) on, for a kubelet
    /// or crictl; an empty value serves none. Made like the API's socket.
    #[arg(long, env = "BERTH_CRI_SOCKET", default_value = "/run/berth/cri.sock")]
    pub cri_socket: String,
    /// Where pods' CNI configuration is looked for (the first .conf,
    /// .conflist or .json file, by name, as the kubelet expects); with
    /// none there, pods go on berth's own pod network.
    #[arg(long, env = "BERTH_CNI_CONF_DIR", default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// Where the CRI's streaming server (exec, attach, port-forward URLs)
    /// listens: ADDR:PORT, port 0 for any free one. Loopback by default:
    /// the kubelet on this host is its client.
    #[arg(long, env = "BERTH_CRI_STREAM_ADDRESS", default_value = "127.0.0.1:0")]
    pub cri_stream_address: String,
    #[command(flatten)]
    pub tcp: daemon::TcpArgs,
    /// Most requests and streams one connection may have open at once;
    /// more wait until one ends.
    #[arg(long, env = "BERTH_MAX_STREAMS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,
}

fn main() {
    // Nothing berthd inherited reaches a monitor or a container: an open
    // directory passed down would be a way out of a container's root.
    if let Err(e) = sys::linux::cloexec_inherited() {
        eprintln!("berthd: cannot mark inherited file descriptors close-on-exec: {e}");
        std::process::exit(1);
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv
        .get(1)
        .is_some_and(|a| a == "exec" || a == "monitor" || a == "launcher")
    {
        // These enter containers' namespaces (the monitor through its
        // clone, PID 1): no container may open their /proc files, whatever
        // fds they hold before their exec (sys/sealed.rs).
        if let Err(e) = sys::sealed::undumpable() {
            eprintln!("berthd: cannot make the helper non-dumpable: {e}");
            std::process::exit(126);
        }
    }
    if argv.get(1).is_some_and(|a| a == "exec") {
        // Joins namespaces: single-threaded, no tokio, as the monitor.
        init_tracing("warn");
        match (argv.get(2), argv.get(3)) {
            (Some(dir), Some(file)) => monitor::exec::main(Path::new(dir), Path::new(file), None),
            _ => {
                eprintln!("usage: berthd exec DIR FILE");
                std::process::exit(2)
            }
        }
    }
    if argv.get(1).is_some_and(|a| a == "launcher") {
        // Forks the monitors: single-threaded, no tokio, as they are.
        init_tracing("info");
        monitor::launcher::main()
    }
    if argv.get(1).is_some_and(|a| a == "monitor") {
        // The monitor forks: it must stay single-threaded, so no tokio.
        init_tracing("info");
        match argv.get(2) {
            Some(dir) => monitor::main(Path::new(dir)),
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
            .on_thread_start(move || sys::linux::set_nice(nice))
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot start the async runtime");
                std::process::exit(1)
            })
    };
    let (server, ops) = (
        runtime("berthd-server", daemon::SERVER_NICE),
        runtime("berthd-ops", 0),
    );
    if let Err(e) = server.block_on(daemon::serve(args, ops.handle().clone())) {
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
