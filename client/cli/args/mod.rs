//! The command line: global options and every verb's arguments, as clap
//! parses them.

mod images;

pub use images::{ExecArgs, ImageCommand, ImagesArgs, SystemCommand};

use crate::Failure;
use berth::pb;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Run and manage containers through berthd"
)]
pub struct Cli {
    /// The daemon: unix:///path/to.sock, tcp://host:port or http://host:port.
    #[arg(long, global = true, env = "BERTH_HOST", default_value = berth::DEFAULT_HOST)]
    pub host: String,
    /// CA that signed the daemon's certificate (PEM), for a tcp:// host
    /// with mutual TLS.
    #[arg(long, global = true, env = "BERTH_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// This client's certificate (PEM).
    #[arg(long, global = true, env = "BERTH_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, global = true, env = "BERTH_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a container: berth create [OPTIONS] IMAGE|ROOTFS [COMMAND] [ARG...]
    #[command(disable_help_flag = true)]
    Create(CreateArgs),
    /// Create and start a container, and wait for it unless -d is given.
    #[command(disable_help_flag = true)]
    Run {
        /// Run in the background and print the container id.
        #[arg(short, long)]
        detach: bool,
        /// Remove the container when it exits.
        #[arg(long)]
        rm: bool,
        /// In the foreground, pass the signals this CLI receives (INT, TERM,
        /// HUP, QUIT, USR1, USR2, WINCH) on to the container.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
        sig_proxy: bool,
        /// The keys that detach from the container (with -i): e.g.
        /// "ctrl-p,ctrl-q", the default.
        #[arg(long)]
        detach_keys: Option<String>,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Start one or more containers.
    Start {
        /// Attach to the container's output (one container).
        #[arg(short, long)]
        attach: bool,
        /// Attach this CLI's stdin too (one container).
        #[arg(short, long)]
        interactive: bool,
        /// The keys that detach from the container: e.g. "ctrl-p,ctrl-q",
        /// the default.
        #[arg(long)]
        detach_keys: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Attach this CLI's stdin and terminal (or output) to a running
    /// container's PID 1; ctrl-p ctrl-q detaches.
    Attach {
        /// Do not attach stdin.
        #[arg(long)]
        no_stdin: bool,
        /// The keys that detach: e.g. "ctrl-p,ctrl-q", the default.
        #[arg(long)]
        detach_keys: Option<String>,
        /// Without a terminal, pass the signals this CLI receives on to
        /// the container.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
        sig_proxy: bool,
        container: String,
    },
    /// Stop (if running) and start one or more containers.
    Restart {
        /// Seconds to wait before SIGKILL (default: the container's, 10).
        #[arg(short = 't', long = "time", allow_negative_numbers = true)]
        time: Option<i32>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container: berth rename CONTAINER NEW_NAME
    Rename { container: String, name: String },
    /// Show the processes of a running container.
    Top { container: String },
    /// Manage containers: berth container prune.
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// Show the client's and the daemon's versions.
    Version {
        /// json, or a Go template.
        #[arg(short, long, default_value = "")]
        format: String,
    },
    /// Show the daemon's settings and what it holds.
    Info {
        /// json, or a Go template.
        #[arg(short, long, default_value = "")]
        format: String,
    },
    /// Stop one or more containers: stop signal, grace period, then SIGKILL.
    Stop {
        /// Seconds to wait before SIGKILL (default: the container's, 10).
        #[arg(short = 't', long = "time", allow_negative_numbers = true)]
        time: Option<i32>,
        /// Signal to send instead of the container's stop signal.
        #[arg(short, long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to one or more containers.
    Kill {
        /// Signal to send.
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        /// Signal every process of the container, not only its PID 1.
        #[arg(long)]
        all: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Freeze all processes of one or more containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw one or more paused containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers.
    Rm {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Wait for containers to stop and print their exit codes. Keeps
    /// waiting through a restart of the daemon.
    Wait {
        /// not-running (default), next-exit or removed.
        #[arg(long, default_value = "not-running")]
        condition: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers.
    Ps(PsArgs),
    /// Show a container's output.
    Logs(LogsArgs),
    /// Change the resource limits of one or more containers.
    Update {
        #[command(flatten)]
        limits: LimitArgs,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show containers' resource usage live (all running ones if none is
    /// named).
    Stats {
        /// Print one sample and exit.
        #[arg(long)]
        no_stream: bool,
        /// table, json, or a Go template ({{.Name}} {{.CPUPerc}}; "table
        /// {{…}}" adds a header).
        #[arg(long, default_value = "table")]
        format: String,
        containers: Vec<String>,
    },
    /// Show the configuration and state of containers.
    Inspect {
        /// json, table, or a Go template ({{.State.ExitCode}}).
        #[arg(short, long, default_value = "json")]
        format: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stream events: --filter container=NAME, event=die, label=k=v,
    /// type=container.
    Events(EventsArgs),
    /// Run a command in a running container: berth exec [OPTIONS] CONTAINER COMMAND [ARG...]
    Exec(ExecArgs),
    /// Pull an image from a registry: berth pull NAME[:TAG|@DIGEST]
    Pull {
        /// Platform (os/arch[/variant]) of an image with several.
        #[arg(long)]
        platform: Option<String>,
        /// Print only the reference.
        #[arg(short, long)]
        quiet: bool,
        reference: String,
    },
    /// List images.
    Images(ImagesArgs),
    /// Remove images (untag, and delete the last reference's image).
    Rmi {
        /// Untag even if containers use the image.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another reference: berth tag SOURCE TARGET
    Tag { source: String, target: String },
    /// Write images to a tar (docker-archive and OCI layout in one).
    Save {
        /// File to write (default: standard output).
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from a tar (docker-archive or OCI layout).
    Load {
        /// File to read (default: standard input).
        #[arg(short, long)]
        input: Option<std::path::PathBuf>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Make an image of a root filesystem tar: berth import FILE|- [REFERENCE]
    Import {
        /// CMD ["a","b"] or ENV KEY=VALUE, as in a Dockerfile.
        #[arg(short, long)]
        change: Vec<String>,
        file: String,
        reference: Option<String>,
    },
    /// Write a container's filesystem as a tar.
    Export {
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
        container: String,
    },
    /// Manage images: inspect, ls, rm, pull, prune.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Keep credentials for a registry (checked against it first).
    Login {
        #[arg(short, long)]
        username: Option<String>,
        #[arg(short, long)]
        password: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        /// The registry (default: docker.io).
        registry: Option<String>,
    },
    /// Forget a registry's credentials.
    Logout { registry: Option<String> },
    /// The daemon's disk usage: berth system df.
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable: KEY=VALUE, or KEY for this shell's
    /// value of KEY (left out if it has none).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file: KEY=VALUE or KEY per line,
    /// "#" comments and blank lines skipped; -e wins.
    #[arg(long)]
    pub env_file: Vec<std::path::PathBuf>,
    /// Set a label (KEY=VALUE).
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Bind mount: /host/path:/container/path[:ro].
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Hostname of the container (-h, as Docker's; help is --help here).
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run berth's init as PID 1 (forwards signals, reaps zombies).
    #[arg(long)]
    pub init: bool,
    /// Keep PID 1's stdin open (run: attach this CLI's stdin to it).
    #[arg(short, long)]
    pub interactive: bool,
    /// A terminal for PID 1.
    #[arg(short, long)]
    pub tty: bool,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds to wait before killing the container on stop.
    #[arg(long, allow_negative_numbers = true)]
    pub stop_timeout: Option<i32>,
    /// Network: none (default, own loopback) or host.
    #[arg(long)]
    pub network: Option<String>,
    /// A nameserver for /etc/resolv.conf (replaces the host's).
    #[arg(long)]
    pub dns: Vec<String>,
    /// A search domain for /etc/resolv.conf ("." for none).
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// An option for /etc/resolv.conf (e.g. ndots:2).
    #[arg(long)]
    pub dns_option: Vec<String>,
    /// A line for /etc/hosts: NAME:ADDRESS.
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Rotate the container's log at this size (e.g. 20m; default: the daemon's).
    #[arg(long)]
    pub log_max_size: Option<String>,
    /// Log files to keep, the current one included (default: the daemon's).
    #[arg(long)]
    pub log_max_files: Option<u32>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Add a capability to the default set (e.g. NET_ADMIN, or ALL).
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set (or ALL).
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give the container every capability and no masked paths: it can
    /// do what root on the host can.
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// Run as this user: uid[:gid] or name[:group].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the image's entrypoint ("" clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Pull the image before creating: missing (default), always, never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Platform of the image to pull (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Set by run -d --rm, not a flag.
    #[arg(skip)]
    pub auto_remove: bool,
    /// Set by run -i in the foreground, not a flag.
    #[arg(skip)]
    pub stdin_once: bool,
    /// An image (reference or id), or a host directory used as the root
    /// filesystem (a path: absolute or starting with ".").
    pub image: String,
    /// Command and arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct LimitArgs {
    /// Memory limit (e.g. 64m; at least 6m).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory plus swap (e.g. 128m; equal to --memory: no swap); -1:
    /// unlimited swap.
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// CPUs the container may use (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Relative CPU weight (default 1024).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// Most processes at once (-1: no limit).
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
}

impl LimitArgs {
    pub fn resources(&self) -> Result<pb::Resources, Failure> {
        let size = |s: &Option<String>| -> Result<Option<i64>, Failure> {
            match s.as_deref() {
                None => Ok(None),
                Some("-1") => Ok(Some(-1)),
                Some(v) => berth::parse_size(v)
                    .and_then(|n| i64::try_from(n).map_err(|_| format!("invalid size {v:?}")))
                    .map(Some)
                    .map_err(|e| Failure(e, 125)),
            }
        };
        Ok(pb::Resources {
            memory_limit_bytes: size(&self.memory)?,
            memory_swap_limit_bytes: size(&self.memory_swap)?,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            pids_limit: self.pids_limit,
        })
    }
}

#[derive(Args)]
pub struct LogsArgs {
    /// Keep streaming new output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all" for everything).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Prefix each line with its time.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only output since this RFC 3339 time or duration ago (10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Only output until this RFC 3339 time or duration ago.
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

#[derive(Args)]
pub struct EventsArgs {
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Replay stored events first: after a seq (1042), from an RFC 3339
    /// time (2026-11-22T08:00:00Z), or from a duration ago (10m, 2h).
    #[arg(long)]
    pub since: Option<String>,
    /// End after the events recorded up to this RFC 3339 time or
    /// duration ago.
    #[arg(long)]
    pub until: Option<String>,
    /// table, json, or a Go template ({{.Action}} {{.Actor.Attributes.name}}).
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only show ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the last N created containers (all states).
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// Show the latest created container (all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter: status=(created|running|paused|exited), name=, label=KEY or
    /// label=KEY=VALUE, id=, exited=CODE.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// table, json, or a Go template ({{.ID}} {{.Names}}; "table {{…}}"
    /// adds a header).
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Remove all containers that are not running.
    Prune {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
        /// label=KEY, label=KEY=VALUE, until=TIME (RFC 3339 or a duration ago).
        #[arg(long)]
        filter: Vec<String>,
    },
}
