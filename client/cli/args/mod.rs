//! The command line: global options and every verb's arguments, as clap
//! parses them.

mod create;
pub mod forms;
mod images;
mod network;

pub use create::{CreateArgs, HealthArgs, LimitArgs};
pub use images::{ExecArgs, ImageCommand, ImagesArgs, SystemCommand};
pub use network::NetworkCommand;

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
        /// Attach to STDIN, STDOUT or STDERR only (default: the output
        /// streams; STDIN is -i's attach).
        #[arg(short = 'a', long = "attach")]
        attach: Vec<String>,
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
        /// not-running (default), next-exit, removed, healthy or
        /// unhealthy (these print nothing: the exit status says).
        #[arg(long, default_value = "not-running")]
        condition: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers.
    Ps(PsArgs),
    /// Show a container's output.
    Logs(LogsArgs),
    /// Change the resource limits or the restart policy of one or more
    /// containers.
    Update {
        #[command(flatten)]
        limits: LimitArgs,
        /// Restart policy: no, always, unless-stopped,
        /// on-failure[:MAX-RETRIES].
        #[arg(long)]
        restart: Option<String>,
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
    /// Show the configuration and state of containers, images or
    /// networks (each name is looked up in that order).
    Inspect {
        /// json, table, or a Go template ({{.State.ExitCode}}).
        #[arg(short, long, default_value = "json")]
        format: String,
        /// Only this kind of object: container, image or network.
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
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
    /// Manage networks: create, ls, inspect, rm.
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// Show a running container's published ports: berth port CONTAINER
    /// [PORT[/PROTOCOL]]
    Port {
        container: String,
        port: Option<String>,
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
    /// Show each container's size: what it wrote, and with its image's.
    #[arg(short, long)]
    pub size: bool,
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
