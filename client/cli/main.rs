//! `berth`: the command-line client, with Docker's verbs.

mod output;

use berth::pb::{
    self, containers_client::ContainersClient, events_client::EventsClient, CreateRequest,
};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::process::ExitCode;
use tonic::transport::Channel;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Run and manage containers through berthd"
)]
struct Cli {
    /// The daemon: unix:///path/to.sock, tcp://host:port or http://host:port.
    #[arg(long, global = true, env = "BERTH_HOST", default_value = berth::DEFAULT_HOST)]
    host: String,
    /// CA that signed the daemon's certificate (PEM), for a tcp:// host
    /// with mutual TLS.
    #[arg(long, global = true, env = "BERTH_TLS_CA")]
    tls_ca: Option<std::path::PathBuf>,
    /// This client's certificate (PEM).
    #[arg(long, global = true, env = "BERTH_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// This client's private key (PEM).
    #[arg(long, global = true, env = "BERTH_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container: berth create [OPTIONS] ROOTFS COMMAND [ARG...]
    Create(CreateArgs),
    /// Create and start a container, and wait for it unless -d is given.
    Run {
        /// Run in the background and print the container id.
        #[arg(short, long)]
        detach: bool,
        /// Remove the container when it exits.
        #[arg(long)]
        rm: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Start one or more containers.
    Start { containers: Vec<String> },
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
    Ps {
        /// Show all containers (default shows just running).
        #[arg(short, long)]
        all: bool,
        /// Only show ids.
        #[arg(short, long)]
        quiet: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a container's output.
    Logs {
        /// Keep streaming new output until the container stops.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines ("all" for everything).
        #[arg(short = 'n', long, default_value = "all")]
        tail: String,
        /// Prefix each line with its time.
        #[arg(short, long)]
        timestamps: bool,
        /// Only output since this RFC 3339 time or duration ago (10m).
        #[arg(long)]
        since: Option<String>,
        /// Only output until this RFC 3339 time or duration ago.
        #[arg(long)]
        until: Option<String>,
        container: String,
    },
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
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        containers: Vec<String>,
    },
    /// Show the configuration and state of containers.
    Inspect {
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stream events: --filter container=NAME, event=die, label=k=v.
    Events {
        #[arg(short, long)]
        filter: Vec<String>,
        /// Replay stored events first: after a seq (1042), from an RFC 3339
        /// time (2026-11-22T08:00:00Z), or from a duration ago (10m, 2h).
        #[arg(long)]
        since: Option<String>,
        /// End after the events recorded up to this RFC 3339 time or
        /// duration ago.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Args)]
struct CreateArgs {
    /// Assign a name to the container.
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (KEY=VALUE).
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Set a label (KEY=VALUE).
    #[arg(short, long = "label")]
    label: Vec<String>,
    /// Bind mount: /host/path:/container/path[:ro].
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Hostname of the container.
    #[arg(long)]
    hostname: Option<String>,
    /// Run berth's init as PID 1 (forwards signals, reaps zombies).
    #[arg(long)]
    init: bool,
    /// Signal to stop the container.
    #[arg(long)]
    stop_signal: Option<String>,
    /// Seconds to wait before killing the container on stop.
    #[arg(long, allow_negative_numbers = true)]
    stop_timeout: Option<i32>,
    /// Network: none (default, own loopback) or host.
    #[arg(long)]
    network: Option<String>,
    /// Rotate the container's log at this size (e.g. 20m; default: the daemon's).
    #[arg(long)]
    log_max_size: Option<String>,
    /// Log files to keep, the current one included (default: the daemon's).
    #[arg(long)]
    log_max_files: Option<u32>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Add a capability to the default set (e.g. NET_ADMIN, or ALL).
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop a capability from the default set (or ALL).
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Give the container every capability and no masked paths: it can
    /// do what root on the host can.
    #[arg(long)]
    privileged: bool,
    /// Mount the container's root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// Run as this user: uid[:gid] or name[:group].
    #[arg(short, long)]
    user: Option<String>,
    /// Host directory used as the container's root filesystem.
    rootfs: String,
    /// Command and arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct LimitArgs {
    /// Memory limit (e.g. 64m; at least 6m).
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory plus swap (e.g. 128m; equal to --memory: no swap); -1:
    /// unlimited swap.
    #[arg(long, allow_negative_numbers = true)]
    memory_swap: Option<String>,
    /// CPUs the container may use (e.g. 0.5).
    #[arg(long)]
    cpus: Option<f64>,
    /// Relative CPU weight (default 1024).
    #[arg(short = 'c', long)]
    cpu_shares: Option<u64>,
    /// Most processes at once (-1: no limit).
    #[arg(long, allow_negative_numbers = true)]
    pids_limit: Option<i64>,
}

impl LimitArgs {
    fn resources(&self) -> Result<pb::Resources, Failure> {
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

/// A failure: the message printed and the exit code.
struct Failure(String, u8);

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Failure(format!("Error response from daemon: {}", s.message()), 1)
    }
}

impl From<berth::ConnectError> for Failure {
    fn from(e: berth::ConnectError) -> Self {
        Failure(format!("{e}: is berthd running?"), 1)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(Failure(msg, code)) => {
            eprintln!("{msg}");
            ExitCode::from(code)
        }
    }
}

fn key_value(s: &str, what: &str) -> Result<(String, String), Failure> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Failure(format!("invalid {what} {s:?}: use KEY=VALUE"), 125)),
    }
}

fn create_request(a: CreateArgs) -> Result<CreateRequest, Failure> {
    let resources = a.limits.resources()?;
    let rootfs = std::path::absolute(&a.rootfs)
        .map_err(|e| Failure(format!("invalid rootfs {:?}: {e}", a.rootfs), 125))?;
    let mounts = a
        .volume
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            match parts.as_slice() {
                [s, d] => Ok((s.to_string(), d.to_string(), false)),
                [s, d, "ro"] => Ok((s.to_string(), d.to_string(), true)),
                [s, d, "rw"] => Ok((s.to_string(), d.to_string(), false)),
                _ => Err(Failure(
                    format!("invalid volume {v:?}: use /host/path:/container/path[:ro]"),
                    125,
                )),
            }
        })
        .map(|r| {
            r.map(|(source, destination, read_only)| pb::Mount {
                source,
                destination,
                read_only,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(CreateRequest {
        name: a.name.unwrap_or_default(),
        rootfs: rootfs.to_string_lossy().into_owned(),
        args: a.command,
        env: a.env,
        working_dir: a.workdir.unwrap_or_default(),
        hostname: a.hostname.unwrap_or_default(),
        labels: a
            .label
            .iter()
            .map(|l| key_value(l, "label"))
            .collect::<Result<_, _>>()?,
        init: a.init,
        stop_signal: a.stop_signal.unwrap_or_default(),
        stop_timeout_seconds: a.stop_timeout,
        mounts,
        network: a.network.unwrap_or_default(),
        log_max_size_bytes: a
            .log_max_size
            .as_deref()
            .map(berth::parse_size)
            .transpose()
            .map_err(|e| Failure(e, 125))?
            .unwrap_or(0),
        log_max_files: a.log_max_files.unwrap_or(0),
        resources: Some(resources),
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        privileged: a.privileged,
        read_only: a.read_only,
        user: a.user.unwrap_or_default(),
    })
}

/// Runs `f` for each container, printing the name on success like Docker;
/// fails (exit 1) if any failed.
async fn each<F, Fut>(containers: &[String], mut f: F) -> Result<u8, Failure>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let mut failed = false;
    for c in containers {
        match f(c.clone()).await {
            Ok(()) => println!("{c}"),
            Err(s) => {
                eprintln!("Error response from daemon: {}", s.message());
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    let tls = match (cli.tls_ca, cli.tls_cert, cli.tls_key) {
        (None, None, None) => None,
        (Some(ca), Some(cert), Some(key)) => Some(berth::Tls {
            ca,
            cert,
            key,
            server_name: None,
        }),
        _ => {
            return Err(Failure(
                "TLS needs all of --tls-ca, --tls-cert and --tls-key".into(),
                125,
            ))
        }
    };
    let channel = berth::connect_with(&cli.host, tls.as_ref()).await?;
    let mut api = ContainersClient::new(channel.clone());
    match cli.command {
        Command::Create(a) => {
            let created = api.create(create_request(a)?).await?.into_inner();
            println!("{}", created.id);
            Ok(0)
        }
        Command::Run { detach, rm, create } => run_container(&mut api, detach, rm, create).await,
        Command::Start { containers } => {
            each(&containers, |id| {
                let mut api = api.clone();
                async move { api.start(pb::StartRequest { id }).await.map(drop) }
            })
            .await
        }
        Command::Stop {
            time,
            signal,
            containers,
        } => {
            each(&containers, |id| {
                let mut api = api.clone();
                let signal = signal.clone();
                async move {
                    api.stop(pb::StopRequest {
                        id,
                        timeout_seconds: time,
                        signal,
                    })
                    .await
                    .map(drop)
                }
            })
            .await
        }
        Command::Kill {
            signal,
            all,
            containers,
        } => {
            each(&containers, |id| {
                let mut api = api.clone();
                let signal = signal.clone();
                async move {
                    api.kill(pb::KillRequest { id, signal, all })
                        .await
                        .map(drop)
                }
            })
            .await
        }
        Command::Update { limits, containers } => {
            let resources = limits.resources()?;
            each(&containers, |id| {
                let mut api = api.clone();
                let resources = Some(resources);
                async move {
                    api.update(pb::UpdateRequest { id, resources })
                        .await
                        .map(drop)
                }
            })
            .await
        }
        Command::Stats {
            no_stream,
            format,
            containers,
        } => {
            let req = pb::StatsRequest {
                ids: containers,
                stream: !no_stream,
                interval_ms: 0,
            };
            let mut stream = api.stats(req).await?.into_inner();
            let mut first = true;
            while let Some(sample) = stream.message().await? {
                match format {
                    Format::Json => {
                        for c in &sample.containers {
                            println!("{}", output::stats_json(c));
                        }
                    }
                    Format::Table => {
                        // Like `docker stats`: redraw in place on a terminal.
                        if !no_stream && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                            print!("\x1b[2J\x1b[H");
                        } else if !first {
                            println!();
                        }
                        print!("{}", output::stats_table(&sample.containers));
                    }
                }
                first = false;
            }
            Ok(0)
        }
        Command::Pause { containers } => {
            each(&containers, |id| {
                let mut api = api.clone();
                async move { api.pause(pb::PauseRequest { id }).await.map(drop) }
            })
            .await
        }
        Command::Unpause { containers } => {
            each(&containers, |id| {
                let mut api = api.clone();
                async move { api.unpause(pb::UnpauseRequest { id }).await.map(drop) }
            })
            .await
        }
        Command::Rm { force, containers } => {
            each(&containers, |id| {
                let mut api = api.clone();
                async move { api.remove(pb::RemoveRequest { id, force }).await.map(drop) }
            })
            .await
        }
        Command::Wait {
            condition,
            containers,
        } => {
            let cond = match condition.as_str() {
                "not-running" => pb::WaitCondition::NotRunning,
                "next-exit" => pb::WaitCondition::NextExit,
                "removed" => pb::WaitCondition::Removed,
                _ => {
                    return Err(Failure(
                        format!(
                        "invalid condition {condition:?}: use not-running, next-exit or removed"
                    ),
                        125,
                    ))
                }
            };
            let mut failed = false;
            for id in containers {
                match wait(&mut api, id, cond).await {
                    Ok(r) => println!("{}", r.exit_code),
                    Err(s) => {
                        eprintln!("Error response from daemon: {}", s.message());
                        failed = true;
                    }
                }
            }
            Ok(u8::from(failed))
        }
        Command::Logs {
            follow,
            tail,
            timestamps,
            since,
            until,
            container,
        } => {
            let tail = match tail.as_str() {
                "all" => None,
                n => Some(n.parse().map_err(|_| {
                    Failure(format!("invalid tail {n:?}: use a number or all"), 125)
                })?),
            };
            let req = pb::LogsRequest {
                id: container,
                follow,
                tail,
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                timestamps,
                stdout: false,
                stderr: false,
            };
            print_logs(&mut api, req).await?;
            Ok(0)
        }
        Command::Ps { all, quiet, format } => {
            let list = api.list(pb::ListRequest { all }).await?.into_inner();
            if quiet {
                for c in &list.containers {
                    println!("{}", &c.id[..12.min(c.id.len())]);
                }
            } else if format == Format::Json {
                for c in &list.containers {
                    println!("{}", output::container_json(c));
                }
            } else {
                print!("{}", output::ps_table(&list.containers));
            }
            Ok(0)
        }
        Command::Inspect { format, containers } => {
            let mut found = Vec::new();
            let mut failed = false;
            for id in containers {
                match api.inspect(pb::InspectRequest { id }).await {
                    Ok(r) => found.extend(r.into_inner().container),
                    Err(s) => {
                        eprintln!("Error response from daemon: {}", s.message());
                        failed = true;
                    }
                }
            }
            let values: Vec<_> = found.iter().map(output::container_json).collect();
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&values).unwrap_or_default()
                ),
                Format::Table => print!("{}", output::ps_table(&found)),
            }
            Ok(u8::from(failed))
        }
        Command::Events {
            filter,
            since,
            until,
            format,
        } => {
            let mut req = pb::SubscribeRequest::default();
            match since.as_deref().map(parse_since).transpose()? {
                Some(Since::Seq(n)) => req.since_seq = Some(n),
                Some(Since::Time(t)) => req.since = Some(t),
                None => {}
            }
            req.until = until.as_deref().map(parse_time).transpose()?;
            for f in &filter {
                let (k, v) = key_value(f, "filter")?;
                match k.as_str() {
                    "container" => req.containers.push(v),
                    "event" | "action" => {
                        let name = format!("ACTION_{}", v.to_ascii_uppercase());
                        let a = pb::Action::from_str_name(&name)
                            .ok_or_else(|| Failure(format!("invalid event filter {v:?}"), 125))?;
                        req.actions.push(a as i32);
                    }
                    "label" => {
                        let (lk, lv) = key_value(&v, "label filter")?;
                        req.labels.insert(lk, lv);
                    }
                    _ => {
                        return Err(Failure(
                            format!("invalid filter {k:?}: use container=, event= or label="),
                            125,
                        ))
                    }
                }
            }
            let mut stream = EventsClient::new(channel)
                .subscribe(req)
                .await?
                .into_inner();
            while let Some(ev) = stream.message().await? {
                match format {
                    Format::Json => println!("{}", output::event_json(&ev)),
                    Format::Table => println!("{}", output::event_line(&ev)),
                }
            }
            Ok(0)
        }
    }
}

/// Writes log lines to stdout or stderr, as the container wrote them.
async fn print_logs(
    api: &mut ContainersClient<Channel>,
    req: pb::LogsRequest,
) -> Result<(), Failure> {
    use std::io::Write;
    let mut stream = api.logs(req).await?.into_inner();
    while let Some(e) = stream.message().await? {
        if e.lost_lines > 0 {
            eprintln!(
                "berth: {} lines were rotated away before they could be shown",
                e.lost_lines
            );
            continue;
        }
        let prefix = e.time.map(|t| format!("{t} ")).unwrap_or_default();
        let written = if e.stream == pb::LogStream::Stderr as i32 {
            let mut err = std::io::stderr().lock();
            err.write_all(prefix.as_bytes())
                .and_then(|()| err.write_all(&e.line))
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(prefix.as_bytes())
                .and_then(|()| out.write_all(&e.line))
                .and_then(|()| out.flush())
        };
        if written.is_err() {
            break;
        }
    }
    Ok(())
}

/// Waits for `cond`, asking again while the daemon is unavailable (a
/// restart): a next-exit wait passes the exit count it started from, so an
/// exit while the daemon was down is not missed.
async fn wait(
    api: &mut ContainersClient<tonic::transport::Channel>,
    id: String,
    cond: pb::WaitCondition,
) -> Result<pb::WaitResponse, tonic::Status> {
    let mut exit_count = None;
    let mut told = false;
    loop {
        if cond == pb::WaitCondition::NextExit && exit_count.is_none() {
            match api.inspect(pb::InspectRequest { id: id.clone() }).await {
                Ok(r) => {
                    exit_count = r
                        .into_inner()
                        .container
                        .and_then(|c| c.state)
                        .map(|s| s.exit_count)
                }
                Err(s) if unavailable(&s) => {}
                Err(s) => return Err(s),
            }
        }
        if cond != pb::WaitCondition::NextExit || exit_count.is_some() {
            let req = pb::WaitRequest {
                id: id.clone(),
                condition: cond as i32,
                exit_count,
            };
            match api.wait(req).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) if unavailable(&s) => {}
                Err(s) => return Err(s),
            }
        }
        if !told {
            eprintln!("berthd is unavailable; waiting for it to come back");
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The daemon is shutting down, restarting or gone.
fn unavailable(s: &tonic::Status) -> bool {
    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown)
        && (s.code() == tonic::Code::Unavailable || s.message().contains("transport"))
}

enum Since {
    Seq(u64),
    Time(prost_types::Timestamp),
}

/// A seq (digits only), an RFC 3339 time or a duration ago.
fn parse_since(s: &str) -> Result<Since, Failure> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Since::Seq)
            .map_err(|_| Failure(format!("invalid seq {s:?}"), 125));
    }
    parse_time(s).map(Since::Time)
}

/// An RFC 3339 time or a duration ago ("10m", "1h30m").
fn parse_time(s: &str) -> Result<prost_types::Timestamp, Failure> {
    let t = humantime::parse_rfc3339_weak(s)
        .or_else(|_| {
            humantime::parse_duration(s).map(|d| std::time::SystemTime::now() - d)
        })
        .map_err(|_| {
            Failure(
                format!("invalid time {s:?}: use an RFC 3339 time (2026-11-22T08:00:00Z) or a duration (10m)"),
                125,
            )
        })?;
    Ok(prost_types::Timestamp::from(t))
}

async fn run_container(
    api: &mut ContainersClient<Channel>,
    detach: bool,
    rm: bool,
    create: CreateArgs,
) -> Result<u8, Failure> {
    let created = api.create(create_request(create)?).await?.into_inner();
    let id = created.id;
    if let Err(s) = api.start(pb::StartRequest { id: id.clone() }).await {
        if rm {
            let _ = api.remove(pb::RemoveRequest { id, force: true }).await;
        }
        // Docker's code for a command that cannot be run.
        let code = if s.code() == tonic::Code::InvalidArgument {
            127
        } else {
            125
        };
        return Err(Failure(
            format!("Error response from daemon: {}", s.message()),
            code,
        ));
    }
    if detach {
        println!("{id}");
        return Ok(0);
    }
    // The container's output as it runs; the stream ends when it stops.
    let follow = pb::LogsRequest {
        id: id.clone(),
        follow: true,
        ..Default::default()
    };
    print_logs(api, follow).await?;
    let waited = wait(api, id.clone(), pb::WaitCondition::NotRunning).await?;
    if rm {
        api.remove(pb::RemoveRequest { id, force: true }).await?;
    }
    Ok(waited.exit_code.clamp(0, 255) as u8)
}
