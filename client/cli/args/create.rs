//! What makes a container: `create` and `run`'s arguments, and the
//! resource limits `update` takes too.

use crate::Failure;
use berth::pb;
use clap::Args;

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
    /// Network: a network's name ("bridge", the default bridge, when
    /// none is given), none (only its own loopback), or host.
    #[arg(long)]
    pub network: Option<String>,
    /// Publish a container port on the host:
    /// [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp] (no host port: a free one).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every exposed port on a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port for -P: PORT[/tcp|udp].
    #[arg(long)]
    pub expose: Vec<String>,
    /// Its IPv4 address on the network it is created on (a network of the
    /// user's).
    #[arg(long)]
    pub ip: Option<String>,
    /// Its IPv6 address there (a network with IPv6).
    #[arg(long)]
    pub ip6: Option<String>,
    /// Its MAC address there.
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Another name the container is known by on its network.
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
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
    #[command(flatten)]
    pub create_limits: CreateLimitArgs,
    #[command(flatten)]
    pub health: HealthArgs,
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
    /// Security options: "no-new-privileges" (=true, berth's default) or
    /// "no-new-privileges=false" (setuid programs work, as on Docker);
    /// "seccomp=unconfined" (no filter); "label=…" and "apparmor=…" (with
    /// a warning where the host has neither).
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
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
    /// A resource limit: NAME=SOFT[:HARD] (-1: unlimited), e.g.
    /// nofile=1024:2048.
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (e.g. 128m; default 64m).
    #[arg(long)]
    pub shm_size: Option<String>,
    /// A namespaced kernel parameter: KEY=VALUE (net.*, kernel.msg*,
    /// kernel.sem, kernel.shm*, fs.mqueue.*, kernel.domainname).
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// A supplementary group (name or number) for the processes.
    #[arg(long)]
    pub group_add: Vec<String>,
    /// The container's NIS domain name.
    #[arg(long)]
    pub domainname: Option<String>,
    /// The OOM killer's score adjustment, -1000 to 1000.
    #[arg(long, allow_negative_numbers = true)]
    pub oom_score_adj: Option<i32>,
    /// A tmpfs: /path[:OPTIONS] (mount options, e.g. size=64m,mode=1777,exec).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// A mount: type=bind,source=/host,target=/path[,readonly] or
    /// type=tmpfs,target=/path[,tmpfs-size=BYTES][,tmpfs-mode=OCTAL].
    #[arg(long)]
    pub mount: Vec<String>,
    /// Read labels from a file: KEY=VALUE per line, "#" comments and
    /// blank lines skipped; -l wins.
    #[arg(long)]
    pub label_file: Vec<std::path::PathBuf>,
    /// A host device: HOST[:CONTAINER][:PERMISSIONS] (some of rwm).
    #[arg(long)]
    pub device: Vec<String>,
    /// A device cgroup rule: "c 10:237 rw" (TYPE MAJOR:MINOR ACCESS).
    #[arg(long)]
    pub device_cgroup_rule: Vec<String>,
    /// PID namespace: host, or container:NAME (default: its own).
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC namespace: private (default), shareable, host, or
    /// container:NAME (one started shareable).
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace: host (default: its own).
    #[arg(long)]
    pub uts: Option<String>,
    /// Realtime CPU time: berth does not schedule containers realtime, so
    /// it is refused.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// Write the container's id to this file (which must not exist).
    #[arg(long)]
    pub cidfile: Option<std::path::PathBuf>,
    /// Restart policy when the process exits: no, always, unless-stopped,
    /// on-failure[:MAX-RETRIES].
    #[arg(long)]
    pub restart: Option<String>,
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

/// The health check's flags, as Docker's (durations as Go writes them:
/// 30s, 1m30s, 500ms).
#[derive(Args, Default)]
pub struct HealthArgs {
    /// Command to run to check health (by /bin/sh -c).
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between running the check (default 30s).
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (default 30s).
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy (default 3).
    #[arg(long)]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before failures count.
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period (default 5s).
    #[arg(long)]
    pub health_start_interval: Option<String>,
    /// What to do when it becomes unhealthy: none, kill, restart, stop.
    #[arg(long)]
    pub health_on_failure: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
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
    /// CFS period in microseconds (1000 to 1000000).
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period (at least 1000; -1: none).
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs it may run on (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes it may use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory soft limit (e.g. 32m).
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Kernel memory limit: accepted and shown, not enforced.
    #[arg(long)]
    pub kernel_memory: Option<String>,
    /// Block I/O weight, 10 to 1000 (0: the default).
    #[arg(long)]
    pub blkio_weight: Option<u32>,
}

/// Limits only create and run take.
#[derive(Args)]
pub struct CreateLimitArgs {
    /// Swappiness of its memory, 0 to 100 (-1: the kernel's; cgroup v1).
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swappiness: Option<i64>,
    /// Out of memory, wait instead of being killed (cgroup v1).
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Read rate of a device: /dev/sda:1mb.
    #[arg(long)]
    pub device_read_bps: Vec<String>,
    /// Write rate of a device: /dev/sda:1mb.
    #[arg(long)]
    pub device_write_bps: Vec<String>,
    /// Read operations per second of a device: /dev/sda:1000.
    #[arg(long)]
    pub device_read_iops: Vec<String>,
    /// Write operations per second of a device: /dev/sda:1000.
    #[arg(long)]
    pub device_write_iops: Vec<String>,
}

impl CreateLimitArgs {
    /// These flags added to `r`.
    pub fn add_to(&self, r: &mut pb::Resources) -> Result<(), Failure> {
        r.memory_swappiness = self.memory_swappiness;
        r.oom_kill_disable = self.oom_kill_disable.then_some(true);
        let rates = |list: &[String], sizes: bool| -> Result<Vec<pb::DeviceRate>, Failure> {
            list.iter()
                .map(|d| {
                    let bad =
                        |why: String| Failure(format!("invalid device rate {d:?}: {why}"), 125);
                    let (path, rate) = d
                        .rsplit_once(':')
                        .ok_or_else(|| bad("use DEVICE:RATE".into()))?;
                    let rate = match sizes {
                        true => berth::parse_size(rate).map_err(bad)?,
                        false => rate.parse().map_err(|e| bad(format!("{e}")))?,
                    };
                    Ok(pb::DeviceRate {
                        path: path.into(),
                        rate,
                    })
                })
                .collect()
        };
        r.device_read_bps = rates(&self.device_read_bps, true)?;
        r.device_write_bps = rates(&self.device_write_bps, true)?;
        r.device_read_iops = rates(&self.device_read_iops, false)?;
        r.device_write_iops = rates(&self.device_write_iops, false)?;
        Ok(())
    }
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
            cpu_period_us: self.cpu_period,
            cpu_quota_us: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            memory_reservation_bytes: size(&self.memory_reservation)?,
            kernel_memory_bytes: size(&self.kernel_memory)?,
            blkio_weight: self.blkio_weight,
            ..Default::default()
        })
    }
}
