//! A container's configuration as the runtime keeps it, and the validation
//! that turns a request into one. Everything a request can get wrong is
//! caught here, before anything is created.

mod bounds;
mod caps;
mod devices;
mod error;
mod extension;
mod health;
mod input;
mod limits;
mod mounts;
mod namespaces;
mod network;
mod paths;
mod request;
mod resolve;
mod resources;
mod restart;
mod signal;
#[cfg(test)]
mod tests;
mod tuning;
mod user;

use caps::capability_name;
pub use caps::CAPABILITIES;
pub use devices::{parse_rule as parse_device_rule, CgroupRule, Device};
pub use error::Error;
pub use extension::Extension;
pub use health::{HealthAction, HealthRequest, Healthcheck};
pub use input::Input;
pub use limits::{Rate, Throttle};
pub use mounts::{volume_destination, MountRequest, MountSpec, Propagation};
pub use namespaces::{Mode as NamespaceMode, Namespaces};
pub use network::{
    cni as cni_config, exposed, Endpoint, Fixed, NetworkSpec, PortRequest, PortSpec, Protocol,
    DEFAULT_NETWORK,
};
pub use paths::normalize;
use paths::{validate_rootfs, validate_working_dir, within};
pub use request::Request;
pub use resolve::Resolve;
pub use resources::{Host, Resources, ResourcesRequest};
pub use restart::{next_delay, Ended, RestartPolicy};
pub use signal::{parse_signal, signal_name};
pub use tuning::{Tmpfs, Tuning, Ulimit};
pub use user::{home, parse_id, parse_user, passwd_entry, Id};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default `PATH` inside a container, as Docker sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Seconds Stop waits before SIGKILL when nothing else is said.
pub const DEFAULT_STOP_TIMEOUT: i32 = 10;

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Its own network namespace with loopback up.
    None,
    /// The host's network namespace.
    Host,
    /// Its own network namespace on a bridge network (`Spec::net`).
    Bridge,
    /// Another container's network namespace (`Namespaces::net`), with
    /// its hostname, /etc/hosts and /etc/resolv.conf.
    Container,
    /// Its own network namespace, wired by the plugins of a CNI
    /// configuration list (`Spec::cni`) at each start and unwired after
    /// its exit.
    Cni,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
            Network::Bridge => "bridge",
            Network::Container => "container",
            Network::Cni => "cni",
        }
    }

    /// Its namespace is pinned by berthd and wired before PID 1 runs.
    pub fn wired(self) -> bool {
        matches!(self, Network::Bridge | Network::Cni)
    }
}

/// The most processes a pids limit may allow: the kernel's PID_MAX_LIMIT
/// (pids.max refuses more).
pub const MAX_PIDS: i64 = 1 << 22;
/// Bounds of a container's log rotation: rotating is a rename per file
/// kept, so the count stays small.
pub const MAX_LOG_FILES: u32 = 100;
pub const MIN_LOG_SIZE: u64 = 1 << 10;
pub const MAX_LOG_SIZE: u64 = 1 << 40;

/// A validated container configuration, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub name: String,
    pub rootfs: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub init: bool,
    pub stop_signal: i32,
    pub stop_timeout: i32,
    pub mounts: Vec<MountSpec>,
    pub network: Network,
    /// Log rotation for this container; 0 means the daemon's default.
    #[serde(default)]
    pub log_max_size: u64,
    #[serde(default)]
    pub log_max_files: u32,
    #[serde(default)]
    pub resources: Resources,
    /// Capabilities added to and dropped from Docker's default set, as
    /// given (upper case, without "CAP_").
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// Every capability, no masked paths, no no_new_privs.
    #[serde(default)]
    pub privileged: bool,
    /// The rootfs is mounted read-only.
    #[serde(default)]
    pub read_only: bool,
    /// no_new_privs on its processes (records from before the setting:
    /// on unless privileged, as they ran).
    #[serde(default = "Option::default")]
    pub no_new_privs: Option<bool>,
    /// "uid[:gid]" or "name[:group]", as given; empty: root.
    #[serde(default)]
    pub user: String,
    /// Removed by the daemon once its process exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// Whether it starts again when its process exits.
    #[serde(default, skip_serializing_if = "RestartPolicy::is_no")]
    pub restart: RestartPolicy,
    /// Its health check, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Healthcheck>,
    /// The image whose layers are the root filesystem (`rootfs` is then
    /// empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageUse>,
    /// The image's exposed ports ("80/tcp"), kept for networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<String>,
    /// PID 1's stdin is a pipe attachers write to (else /dev/null).
    #[serde(default)]
    pub stdin_open: bool,
    /// The stdin pipe closes when its attacher is done with it.
    #[serde(default)]
    pub stdin_once: bool,
    /// PID 1 gets a terminal of this size (rows, columns) at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<(u16, u16)>,
    /// What /etc/hosts and /etc/resolv.conf add or replace.
    #[serde(default)]
    pub resolve: Resolve,
    /// With `Network::Bridge`: which network, ports and aliases.
    #[serde(default, skip_serializing_if = "NetworkSpec::is_empty")]
    pub net: NetworkSpec,
    /// Ulimits, /dev/shm, sysctls, groups, domain name, OOM score, tmpfs.
    #[serde(default)]
    pub tuning: Tuning,
    /// How many of `args` are the image's entrypoint (or its override);
    /// the rest are the command (Docker's Cmd).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub entrypoint_args: usize,
    /// Whose PID, IPC and UTS namespaces it has.
    #[serde(default)]
    pub namespaces: Namespaces,
    /// No seccomp filter (Docker's seccomp=unconfined).
    #[serde(default, skip_serializing_if = "is_false")]
    pub seccomp_unconfined: bool,
    /// A seccomp profile of its own, in Docker's JSON format, instead of
    /// berth's default filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<String>,
    /// A pod sandbox: PID 1 is berth's pause process (berth-init
    /// --pause), which holds the pod's namespaces for the containers
    /// that join them, reaps the zombies of a shared PID namespace and
    /// exits 0 on SIGTERM or SIGINT. Its /etc/resolv.conf is its DNS
    /// settings (or the host's), never a network's resolver.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
    /// The pod sandbox it belongs to (its id); empty: none. Removing the
    /// sandbox removes it first (with the same force).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// What the client that made it wants kept with it verbatim (the
    /// CRI's config of a pod or container), berth's own fields aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
    /// Its output is also written to this file in the CRI's log format
    /// (the kubelet's log_path), by its monitor: never rotated by berth,
    /// reopened when asked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cri_log: String,
    /// Paths hidden from it and paths it cannot write, instead of berth's
    /// (Docker's) in /proc and /sys; None: berth's. Not when privileged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_paths: Option<Vec<String>>,
    /// With `Network::Cni`: the configuration list (JSON) whose plugins
    /// wire it; `net.name` is the list's name, `net.ports` what its
    /// portmap publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<String>,
    /// The cgroup its cgroup is made in (below the hierarchy's root, as
    /// "/kubepods/besteffort/pod1"), instead of berthd's --cgroup-parent;
    /// empty: berthd's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup_parent: String,
}

/// The largest seccomp profile a create may give (Docker's default
/// profile is about 20 KiB).
pub const MAX_SECCOMP_PROFILE: usize = 256 << 10;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A container's image: its id, the name it was created from, and the
/// lower layers overlay stacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUse {
    pub id: String,
    pub reference: String,
    /// The layers directory; `lower` names layers relative to it, top
    /// first.
    pub layers_dir: String,
    pub lower: Vec<String>,
}

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    // Names also become parts of paths nowhere, but keep them sane in length.
    if ok && name.len() <= 128 {
        Ok(())
    } else {
        Err(Error::Name(name.into()))
    }
}

impl Spec {
    /// Whether its processes get a seccomp filter: not privileged ones,
    /// nor unconfined ones.
    pub fn filtered(&self) -> bool {
        !self.privileged && !self.seccomp_unconfined
    }

    /// Whether its processes get no_new_privs.
    pub fn no_new_privs(&self) -> bool {
        self.no_new_privs.unwrap_or(!self.privileged)
    }

    /// The environment the process gets: PATH and HOSTNAME defaulted, and
    /// TERM=xterm with a terminal (Docker's), the given entries after them
    /// (a later entry wins), then `home` as HOME unless one was given.
    pub fn environment(&self, home: &str) -> Vec<String> {
        let mut env = Vec::with_capacity(self.env.len() + 4);
        let given = |key: &str| self.env.iter().any(|e| e.starts_with(key));
        if !given("PATH=") {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        if !given("HOSTNAME=") {
            env.push(format!("HOSTNAME={}", self.hostname));
        }
        if self.tty.is_some() && !given("TERM=") {
            env.push("TERM=xterm".into());
        }
        env.extend(self.env.iter().cloned());
        if !given("HOME=") {
            env.push(format!("HOME={home}"));
        }
        env
    }
}
