//! A container's configuration as the runtime keeps it, and the validation
//! that turns a request into one. Everything a request can get wrong is
//! caught here, before anything is created.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path};

/// Default `PATH` inside a container, as Docker sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Seconds Stop waits before SIGKILL when nothing else is said.
pub const DEFAULT_STOP_TIMEOUT: i32 = 10;

/// A bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}

impl MountSpec {
    /// Checks source and destination; the destination comes back
    /// normalised. As runc, nothing may be mounted on the root, /proc,
    /// /sys or /dev, nor anywhere below /proc and /sys.
    fn validate(self) -> Result<MountSpec, Error> {
        let source = |why| Err(Error::MountSource(self.source.as_str().into(), why));
        if !Path::new(&self.source).is_absolute() || self.source.contains('\0') {
            return source("it must be an absolute path");
        }
        if std::fs::symlink_metadata(&self.source).is_err() {
            return source("no such file or directory");
        }
        let dest = |why| {
            Err(Error::MountDestination(
                self.destination.as_str().into(),
                why,
            ))
        };
        let Some(clean) = normalize(&self.destination) else {
            return dest("it must be an absolute path without \"..\" or NUL");
        };
        if clean == "/" || clean == "/dev" {
            return dest("it would hide the container's own root or /dev");
        }
        if within(&clean, "/proc") || within(&clean, "/sys") {
            return dest("nothing may be mounted on or under /proc and /sys");
        }
        Ok(MountSpec {
            destination: clean,
            ..self
        })
    }
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Its own network namespace with loopback up.
    None,
    /// The host's network namespace.
    Host,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
        }
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
    /// "uid[:gid]" or "name[:group]", as given; empty: root.
    #[serde(default)]
    pub user: String,
}

/// Capability names by number, as Linux numbers them.
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capabilities.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// "net_admin", "CAP_NET_ADMIN" -> "NET_ADMIN"; "all" -> "ALL".
fn capability_name(s: &str) -> Result<String, Error> {
    let upper = s.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if name == "ALL" || CAPABILITIES.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(Error::Capability(s.into()))
    }
}

fn bit(name: &str) -> u64 {
    CAPABILITIES
        .iter()
        .position(|c| *c == name)
        .map_or(0, |n| 1 << n)
}

impl Spec {
    /// The container's capabilities as a bit set, as Docker computes them:
    /// every one when privileged or when "ALL" is added (less those
    /// dropped); otherwise the default set less those dropped ("ALL":
    /// every one) plus those added.
    pub fn capabilities(&self) -> u64 {
        let all = (1u64 << CAPABILITIES.len()) - 1;
        let set = |names: &[String]| names.iter().fold(0, |acc, n| acc | bit(n));
        let (add, drop) = (set(&self.cap_add), set(&self.cap_drop));
        if self.privileged {
            return all;
        }
        if self.cap_add.iter().any(|c| c == "ALL") {
            return all & !drop;
        }
        let mut caps = DEFAULT_CAPABILITIES.iter().fold(0, |acc, n| acc | bit(n));
        if self.cap_drop.iter().any(|c| c == "ALL") {
            caps = 0;
        }
        (caps & !drop) | add
    }
}

/// A container's resource limits, as enforced; 0 is "no limit" for each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: i64,
    /// Memory plus swap in bytes; -1: unlimited swap; 0: not limited
    /// separately (no memory limit, or a host without swap accounting).
    pub memory_swap: i64,
    /// CPU time in billionths of a CPU (Docker's NanoCpus).
    pub nano_cpus: i64,
    /// Relative CPU weight (cpu.shares); 0: the kernel's default.
    pub cpu_shares: u64,
    /// Most processes at once.
    pub pids_limit: i64,
}

/// Limits as a request gives them: `None` is "not given".
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourcesRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
}

/// What the host offers that validation depends on.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    pub cpus: u32,
    /// Whether the memory controller accounts swap.
    pub swap: bool,
}

/// The smallest memory limit accepted, as Docker's.
pub const MIN_MEMORY: i64 = 6 << 20;

/// Docker's range of cpu.shares.
pub const SHARES: std::ops::RangeInclusive<u64> = 2..=262_144;

impl Resources {
    /// These limits with the given fields of `req` changed, checked. A new
    /// memory limit without a swap limit, where none was set, gets
    /// twice the memory as memory plus swap (Docker's default) if the host
    /// accounts swap.
    pub fn merge(&self, req: &ResourcesRequest, host: Host) -> Result<Resources, Error> {
        let mut r = *self;
        if let Some(m) = req.memory {
            if m != 0 && m < MIN_MEMORY {
                return Err(Error::Memory(m));
            }
            r.memory = m;
        }
        match req.memory_swap.filter(|s| *s != 0) {
            Some(s) if s < -1 => return Err(Error::MemorySwap(s, r.memory)),
            Some(s) => r.memory_swap = s,
            // A memory limit given alone: swap follows it unless it has a
            // limit of its own.
            None if req.memory.is_some() && (self.memory_swap == 0 || r.memory == 0) => {
                r.memory_swap = if r.memory > 0 && host.swap {
                    r.memory.saturating_mul(2)
                } else {
                    0
                };
            }
            None => {}
        }
        if r.memory == 0 && r.memory_swap > 0 {
            return Err(Error::SwapWithoutMemory);
        }
        if r.memory_swap > 0 && r.memory_swap < r.memory {
            return Err(Error::MemorySwap(r.memory_swap, r.memory));
        }
        if let Some(c) = req.cpus {
            let max = f64::from(host.cpus);
            if !c.is_finite() || c < 0.0 || (c > 0.0 && c < 0.01) || c > max {
                return Err(Error::Cpus(c, host.cpus));
            }
            r.nano_cpus = (c * 1e9).round() as i64;
        }
        if let Some(s) = req.cpu_shares {
            if s != 0 && !SHARES.contains(&s) {
                return Err(Error::CpuShares(s));
            }
            r.cpu_shares = s;
        }
        if let Some(p) = req.pids_limit {
            r.pids_limit = match p {
                -1 | 0 => 0,
                p if p > 0 && p <= MAX_PIDS => p,
                p => return Err(Error::PidsLimit(p)),
            };
        }
        Ok(r)
    }
}

/// Text a client sent, as error messages quote it: at most
/// `Input::SHOWN` bytes of it, so that a huge value is never echoed back
/// (a reply bigger than the client accepts would hide the error itself).
#[derive(Clone, PartialEq, Eq)]
pub struct Input(pub String);

impl Input {
    pub const SHOWN: usize = 100;
}

impl Input {
    /// The text shown, and how long the whole was if it was cut.
    fn shown(&self) -> (&str, Option<usize>) {
        let s = &self.0;
        if s.len() <= Input::SHOWN {
            return (s, None);
        }
        let mut cut = Input::SHOWN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        (&s[..cut], Some(s.len()))
    }
}

/// Quoted: `"abc"`, or `"abc…"… (123456 bytes)` when cut.
impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shown() {
            (s, None) => write!(f, "{s:?}"),
            (s, Some(n)) => write!(f, "{s:?}… ({n} bytes)"),
        }
    }
}

/// As given: `abc`, or `abc… (123456 bytes)` when cut.
impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shown() {
            (s, None) => f.write_str(s),
            (s, Some(n)) => write!(f, "{s}… ({n} bytes)"),
        }
    }
}

impl From<&str> for Input {
    fn from(s: &str) -> Input {
        Input(s.to_string())
    }
}

impl From<String> for Input {
    fn from(s: String) -> Input {
        Input(s)
    }
}

/// What is wrong with a request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed")]
    Name(Input),
    #[error("invalid rootfs {0:?}: {1}")]
    Rootfs(Input, &'static str),
    #[error("args must not be empty: give the command to run")]
    EmptyArgs,
    #[error("invalid env entry {0:?}: use KEY=VALUE")]
    Env(Input),
    #[error("invalid working_dir {0:?}: {1}")]
    WorkingDir(Input, &'static str),
    #[error("invalid hostname {0:?}: use at most 64 letters, digits, '-' and '.'")]
    Hostname(Input),
    #[error(
        "invalid signal {0:?}: use a name like \"TERM\", \"SIGTERM\" or a number from 1 to 64"
    )]
    Signal(Input),
    #[error("invalid mount source {0:?}: {1}")]
    MountSource(Input, &'static str),
    #[error("invalid mount destination {0:?}: {1}")]
    MountDestination(Input, &'static str),
    #[error("invalid network {0:?}: use \"none\" or \"host\"")]
    Network(Input),
    #[error("invalid label key {0:?}: it must not be empty or hold NUL")]
    Label(Input),
    #[error("invalid argument {0:?}: it must not hold NUL")]
    Args(Input),
    #[error("invalid log_max_files {0}: use 0 for the daemon's default, or 1 to {max}", max = MAX_LOG_FILES)]
    LogMaxFiles(u32),
    #[error("invalid log_max_size_bytes {0}: use 0 for the daemon's default, or {min} to {max}", min = MIN_LOG_SIZE, max = MAX_LOG_SIZE)]
    LogMaxSize(u64),
    #[error("invalid memory limit {0}: use 0 for none or at least 6 MiB (6291456 bytes)")]
    Memory(i64),
    #[error("invalid memory+swap limit {0}: use -1 for unlimited swap, or at least the memory limit ({1}); change both together")]
    MemorySwap(i64, i64),
    #[error("a memory+swap limit needs a memory limit: set memory_limit_bytes too")]
    SwapWithoutMemory,
    #[error("invalid cpus {0}: use 0 for no limit or 0.01 to {1}, the CPUs of this host")]
    Cpus(f64, u32),
    #[error("invalid cpu shares {0}: use 0 for the default or 2 to 262144")]
    CpuShares(u64),
    #[error("invalid pids limit {0}: use 0 or -1 for none, or 1 to {max}", max = MAX_PIDS)]
    PidsLimit(i64),
    #[error(
        "invalid capability {0:?}: use a name like \"NET_ADMIN\" or \"CAP_NET_ADMIN\", or \"ALL\""
    )]
    Capability(Input),
    #[error("invalid user {0:?}: use uid[:gid] or name[:group]")]
    User(Input),
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

/// Whether `path` is absolute and has no `..` component.
fn clean_absolute(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute() && !p.components().any(|c| c == Component::ParentDir) && !path.contains('\0')
}

/// `path` in its plain form: "/a//b/./c/" is "/a/b/c", "/." and "//" are
/// "/". None unless it is absolute, without "..", without NUL.
pub fn normalize(path: &str) -> Option<String> {
    if !clean_absolute(path) {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for c in Path::new(path).components() {
        if let Component::Normal(n) = c {
            out.push('/');
            out.push_str(n.to_str()?);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Whether `path` (normalised) is `dir` or below it.
fn within(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The rootfs must be a directory, and not one of the kernel's
/// pseudo-filesystems (/proc/1/root is the host's root).
fn validate_rootfs(rootfs: String) -> Result<String, Error> {
    if !Path::new(&rootfs).is_absolute() || rootfs.contains('\0') {
        return Err(Error::Rootfs(rootfs.into(), "it must be an absolute path"));
    }
    let real = match std::fs::canonicalize(&rootfs) {
        Ok(p) => p,
        Err(_) => return Err(Error::Rootfs(rootfs.into(), "no such directory")),
    };
    // As given and as it resolves: /proc/1/root resolves to a root, but
    // what it names depends on a process.
    let given = normalize(&rootfs).unwrap_or_default();
    let real = real.to_string_lossy();
    let kernel = |p: &str| within(p, "/proc") || within(p, "/sys");
    if kernel(&given) || kernel(&real) {
        return Err(Error::Rootfs(
            rootfs.into(),
            "it must not be under /proc or /sys",
        ));
    }
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => Ok(rootfs),
        _ => Err(Error::Rootfs(rootfs.into(), "it is not a directory")),
    }
}

/// The working directory, normalised ("/" if none); one the rootfs has as
/// something other than a directory is refused now rather than at start.
fn validate_working_dir(rootfs: &str, dir: String) -> Result<String, Error> {
    if dir.is_empty() {
        return Ok("/".into());
    }
    let Some(clean) = normalize(&dir) else {
        return Err(Error::WorkingDir(
            dir.into(),
            "it must be an absolute path without \"..\" or NUL",
        ));
    };
    let in_rootfs = Path::new(rootfs).join(clean.trim_start_matches('/'));
    match std::fs::symlink_metadata(in_rootfs) {
        Ok(m) if !m.is_dir() && !m.file_type().is_symlink() => Err(Error::WorkingDir(
            dir.into(),
            "the rootfs has a file there, not a directory",
        )),
        _ => Ok(clean),
    }
}

/// Signal names and numbers as Linux knows them (x86_64 and most others).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Parses "KILL", "SIGKILL", "sigkill", "9", "RTMIN+3" into a number.
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    let bad = || Error::Signal(s.into());
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(n);
    }
    // Real-time signals: RTMIN is 34 on Linux with glibc, RTMAX 64.
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32, Error> {
        let off = if rest.is_empty() {
            0
        } else {
            rest.parse::<i32>().map_err(|_| bad())?
        };
        let n = base + sign * off;
        if (34..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(34, rest.strip_prefix('+').unwrap_or(rest), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(64, rest.strip_prefix('-').unwrap_or(rest), -1);
    }
    Err(bad())
}

/// A user given as "uid[:gid]" or "name[:group]".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id<'a> {
    Number(u32),
    Name(&'a str),
}

/// A uid or gid as a number: 0 to 2^32-2. (uid_t)-1 means "unchanged" to
/// the kernel (setresuid(-1, -1, -1) keeps root), so it is never an id.
pub fn parse_id(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|n| *n != u32::MAX)
}

/// Splits and checks a user: numbers (see `parse_id`), or names of
/// letters, digits and "_.-" (not starting with '-', not all digits).
pub fn parse_user(user: &str) -> Option<(Id<'_>, Option<Id<'_>>)> {
    fn id(s: &str) -> Option<Id<'_>> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return parse_id(s).map(Id::Number);
        }
        let ok = !s.is_empty()
            && s.len() <= 32
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        ok.then_some(Id::Name(s))
    }
    match user.split_once(':') {
        Some((u, g)) => Some((id(u)?, Some(id(g)?))),
        None => Some((id(user)?, None)),
    }
}

/// The unvalidated fields of a create request.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub name: String,
    pub rootfs: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub init: bool,
    pub stop_signal: String,
    pub stop_timeout: Option<i32>,
    pub mounts: Vec<MountSpec>,
    pub network: String,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub resources: ResourcesRequest,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub user: String,
}

impl From<berth::pb::CreateRequest> for Request {
    fn from(r: berth::pb::CreateRequest) -> Request {
        Request {
            name: r.name,
            rootfs: r.rootfs,
            args: r.args,
            env: r.env,
            working_dir: r.working_dir,
            hostname: r.hostname,
            labels: r.labels.into_iter().collect(),
            init: r.init,
            stop_signal: r.stop_signal,
            stop_timeout: r.stop_timeout_seconds,
            mounts: r
                .mounts
                .into_iter()
                .map(|m| MountSpec {
                    source: m.source,
                    destination: m.destination,
                    read_only: m.read_only,
                })
                .collect(),
            network: r.network,
            log_max_size: r.log_max_size_bytes,
            log_max_files: r.log_max_files,
            resources: r.resources.unwrap_or_default().into(),
            cap_add: r.cap_add,
            cap_drop: r.cap_drop,
            privileged: r.privileged,
            read_only: r.read_only,
            user: r.user,
        }
    }
}

impl From<berth::pb::Resources> for ResourcesRequest {
    fn from(r: berth::pb::Resources) -> ResourcesRequest {
        ResourcesRequest {
            memory: r.memory_limit_bytes,
            memory_swap: r.memory_swap_limit_bytes,
            cpus: r.cpus,
            cpu_shares: r.cpu_shares,
            pids_limit: r.pids_limit,
        }
    }
}

impl Request {
    /// Checks every field; `name` must already be set (given or generated)
    /// and `hostname_default` is used when no hostname is given.
    pub fn validate(self, hostname_default: &str, host: Host) -> Result<Spec, Error> {
        validate_name(&self.name)?;
        let resources = Resources::default().merge(&self.resources, host)?;
        let caps = |names: &[String]| -> Result<Vec<String>, Error> {
            names.iter().map(|n| capability_name(n)).collect()
        };
        let (cap_add, cap_drop) = (caps(&self.cap_add)?, caps(&self.cap_drop)?);
        let rootfs = validate_rootfs(self.rootfs)?;
        if self.args.is_empty() || self.args[0].is_empty() {
            return Err(Error::EmptyArgs);
        }
        if let Some(a) = self.args.iter().find(|a| a.contains('\0')) {
            return Err(Error::Args(a.as_str().into()));
        }
        for e in &self.env {
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() && !e.contains('\0') => {}
                _ => return Err(Error::Env(e.as_str().into())),
            }
        }
        let working_dir = validate_working_dir(&rootfs, self.working_dir)?;
        let hostname = if self.hostname.is_empty() {
            hostname_default.to_string()
        } else if self.hostname.len() <= 64
            && self
                .hostname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            self.hostname
        } else {
            return Err(Error::Hostname(self.hostname.into()));
        };
        if let Some(k) = self
            .labels
            .keys()
            .find(|k| k.is_empty() || k.contains('\0'))
        {
            return Err(Error::Label(k.as_str().into()));
        }
        if self.log_max_files > MAX_LOG_FILES {
            return Err(Error::LogMaxFiles(self.log_max_files));
        }
        if self.log_max_size != 0 && !(MIN_LOG_SIZE..=MAX_LOG_SIZE).contains(&self.log_max_size) {
            return Err(Error::LogMaxSize(self.log_max_size));
        }
        let stop_signal = if self.stop_signal.is_empty() {
            libc::SIGTERM
        } else {
            parse_signal(&self.stop_signal)?
        };
        let mounts = self
            .mounts
            .into_iter()
            .map(MountSpec::validate)
            .collect::<Result<Vec<_>, _>>()?;
        let user = match self.user.as_str() {
            "" => String::new(),
            u if parse_user(u).is_some() => self.user,
            _ => return Err(Error::User(self.user.into())),
        };
        let network = match self.network.as_str() {
            "" | "none" => Network::None,
            "host" => Network::Host,
            _ => return Err(Error::Network(self.network.into())),
        };
        Ok(Spec {
            name: self.name,
            rootfs,
            args: self.args,
            env: self.env,
            working_dir,
            hostname,
            labels: self.labels,
            init: self.init,
            stop_signal,
            stop_timeout: self.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            mounts,
            network,
            log_max_size: self.log_max_size,
            log_max_files: self.log_max_files,
            resources,
            cap_add,
            cap_drop,
            privileged: self.privileged,
            read_only: self.read_only,
            user,
        })
    }
}

impl Spec {
    /// The environment the process gets: PATH and HOSTNAME defaulted, the
    /// given entries after them (a later entry wins).
    pub fn environment(&self) -> Vec<String> {
        let mut env = Vec::with_capacity(self.env.len() + 2);
        if !self.env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        if !self.env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push(format!("HOSTNAME={}", self.hostname));
        }
        env.extend(self.env.iter().cloned());
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Host = Host {
        cpus: 2,
        swap: true,
    };

    const MIB: i64 = 1 << 20;

    fn merged(from: Resources, req: ResourcesRequest) -> Result<Resources, Error> {
        from.merge(&req, HOST)
    }

    #[test]
    fn capabilities_as_docker_computes_them() {
        let with = |add: &[&str], drop: &[&str], privileged| {
            let mut req = request();
            req.cap_add = add.iter().map(|s| s.to_string()).collect();
            req.cap_drop = drop.iter().map(|s| s.to_string()).collect();
            req.privileged = privileged;
            req.validate("h", HOST).map(|s| s.capabilities())
        };
        let default = 0xa804_25fb;
        let all = (1u64 << 41) - 1;
        assert_eq!(with(&[], &[], false), Ok(default));
        let raw = 1 << 13;
        let admin = 1 << 21;
        assert_eq!(
            with(&["sys_admin"], &["CAP_NET_RAW"], false),
            Ok(default & !raw | admin)
        );
        assert_eq!(with(&["NET_RAW"], &["ALL"], false), Ok(raw));
        assert_eq!(with(&["ALL"], &["SYS_ADMIN"], false), Ok(all & !admin));
        assert_eq!(with(&[], &["ALL"], true), Ok(all));
        assert_eq!(
            with(&["FLY"], &[], false),
            Err(Error::Capability("FLY".into()))
        );
    }

    #[test]
    fn resources_on_create() {
        let none = Resources::default();
        let r = merged(
            none,
            ResourcesRequest {
                memory: Some(64 * MIB),
                cpus: Some(0.5),
                cpu_shares: Some(512),
                pids_limit: Some(50),
                ..Default::default()
            },
        )
        .unwrap();
        // Docker's default: swap as much as memory.
        assert_eq!(
            r,
            Resources {
                memory: 64 * MIB,
                memory_swap: 128 * MIB,
                nano_cpus: 500_000_000,
                cpu_shares: 512,
                pids_limit: 50,
            }
        );
        let no_swap = Host {
            swap: false,
            ..HOST
        };
        let r = none
            .merge(
                &ResourcesRequest {
                    memory: Some(64 * MIB),
                    ..Default::default()
                },
                no_swap,
            )
            .unwrap();
        assert_eq!(r.memory_swap, 0);
        let r = merged(
            none,
            ResourcesRequest {
                memory: Some(64 * MIB),
                memory_swap: Some(64 * MIB),
                pids_limit: Some(-1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((r.memory_swap, r.pids_limit), (64 * MIB, 0));
        assert_eq!(merged(none, ResourcesRequest::default()).unwrap(), none);
    }

    #[test]
    fn bad_resources() {
        let none = Resources::default();
        let bad = |req: ResourcesRequest| merged(none, req).unwrap_err();
        let mem = |m| ResourcesRequest {
            memory: Some(m),
            ..Default::default()
        };
        assert_eq!(bad(mem(MIB)), Error::Memory(MIB));
        assert_eq!(bad(mem(-5)), Error::Memory(-5));
        assert_eq!(
            bad(ResourcesRequest {
                memory: Some(64 * MIB),
                memory_swap: Some(32 * MIB),
                ..Default::default()
            }),
            Error::MemorySwap(32 * MIB, 64 * MIB)
        );
        assert_eq!(
            bad(ResourcesRequest {
                memory_swap: Some(64 * MIB),
                ..Default::default()
            }),
            Error::SwapWithoutMemory
        );
        for c in [-1.0, 0.001, 2.5, f64::NAN, f64::INFINITY] {
            let err = bad(ResourcesRequest {
                cpus: Some(c),
                ..Default::default()
            });
            assert!(matches!(err, Error::Cpus(_, 2)), "{c}");
        }
        for s in [1, 262_145] {
            let err = bad(ResourcesRequest {
                cpu_shares: Some(s),
                ..Default::default()
            });
            assert_eq!(err, Error::CpuShares(s));
        }
        let err = bad(ResourcesRequest {
            pids_limit: Some(-2),
            ..Default::default()
        });
        assert_eq!(err, Error::PidsLimit(-2));
    }

    #[test]
    fn resources_on_update() {
        let limited = Resources {
            memory: 64 * MIB,
            memory_swap: 128 * MIB,
            ..Default::default()
        };
        let up = |m| ResourcesRequest {
            memory: Some(m),
            ..Default::default()
        };
        // Within the memory+swap limit: swap keeps its limit.
        assert_eq!(
            merged(limited, up(100 * MIB)).unwrap().memory_swap,
            128 * MIB
        );
        // Past it: both must change together, as on Docker.
        assert_eq!(
            merged(limited, up(256 * MIB)).unwrap_err(),
            Error::MemorySwap(128 * MIB, 256 * MIB)
        );
        let both = ResourcesRequest {
            memory: Some(256 * MIB),
            memory_swap: Some(-1),
            ..Default::default()
        };
        assert_eq!(merged(limited, both).unwrap().memory_swap, -1);
        // No memory limit: no swap limit either.
        assert_eq!(merged(limited, up(0)).unwrap(), Resources::default());
        // Unset fields keep their value.
        let pids = ResourcesRequest {
            pids_limit: Some(10),
            ..Default::default()
        };
        let r = merged(limited, pids).unwrap();
        assert_eq!(
            (r.memory, r.memory_swap, r.pids_limit),
            (64 * MIB, 128 * MIB, 10)
        );
    }

    fn request() -> Request {
        Request {
            name: "web-1".into(),
            rootfs: "/".into(),
            args: vec!["sh".into()],
            ..Default::default()
        }
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL"), Ok(9));
        assert_eq!(parse_signal("SIGKILL"), Ok(9));
        assert_eq!(parse_signal("sigterm"), Ok(15));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("HUP"), Ok(1));
        assert_eq!(parse_signal("RTMIN+2"), Ok(36));
        assert_eq!(parse_signal("RTMAX"), Ok(64));
        for bad in ["", "0", "65", "-1", "SIGFOO", "KILLL", "RTMIN+40"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        for good in ["a", "web-1", "A.b_c-9", "0"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "_a", ".a", "a b", "a/b", "../x", "é"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults() {
        let spec = request().validate("abc", HOST).unwrap();
        assert_eq!(spec.working_dir, "/");
        assert_eq!(spec.hostname, "abc");
        assert_eq!(spec.stop_signal, 15);
        assert_eq!(spec.stop_timeout, 10);
        assert_eq!(spec.network, Network::None);
        assert_eq!(
            spec.environment(),
            vec![format!("PATH={DEFAULT_PATH}"), "HOSTNAME=abc".to_string()]
        );
    }

    #[test]
    fn rejects() {
        let cases: Vec<(Request, &str)> = vec![
            (
                Request {
                    rootfs: "rel".into(),
                    ..request()
                },
                "rootfs",
            ),
            (
                Request {
                    rootfs: "/no/such/dir".into(),
                    ..request()
                },
                "rootfs",
            ),
            (
                Request {
                    args: vec![],
                    ..request()
                },
                "args",
            ),
            (
                Request {
                    env: vec!["NOEQ".into()],
                    ..request()
                },
                "env",
            ),
            (
                Request {
                    env: vec!["=v".into()],
                    ..request()
                },
                "env",
            ),
            (
                Request {
                    working_dir: "x".into(),
                    ..request()
                },
                "working_dir",
            ),
            (
                Request {
                    hostname: "a b".into(),
                    ..request()
                },
                "hostname",
            ),
            (
                Request {
                    stop_signal: "NOPE".into(),
                    ..request()
                },
                "signal",
            ),
            (
                Request {
                    network: "bridge".into(),
                    ..request()
                },
                "network",
            ),
            (
                Request {
                    mounts: vec![MountSpec {
                        source: "/".into(),
                        destination: "/a/../../etc".into(),
                        read_only: false,
                    }],
                    ..request()
                },
                "destination",
            ),
            (
                Request {
                    mounts: vec![MountSpec {
                        source: "tmp".into(),
                        destination: "/x".into(),
                        read_only: false,
                    }],
                    ..request()
                },
                "source",
            ),
        ];
        for (req, what) in cases {
            let err = req.validate("h", HOST).unwrap_err().to_string();
            assert!(err.contains(what), "{err} should mention {what}");
        }
    }
}
