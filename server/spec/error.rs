//! What is wrong with a create request: one variant per kind of mistake,
//! each message saying what to give instead.

use super::bounds::{MAX_ARG_BYTES, MAX_LABEL_BYTES, MAX_PORTS_AND_VOLUMES, MAX_PROCESS_BYTES};
use super::{Input, MAX_LOG_FILES, MAX_LOG_SIZE, MAX_PIDS, MIN_LOG_SIZE};

/// What is wrong with a request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed")]
    Name(Input),
    #[error("invalid CRI log path {0:?}: it must be absolute")]
    CriLog(Input),
    #[error("invalid masked or read-only path {0:?}: it must be absolute and not the root")]
    ConfinedPath(Input),
    #[error("invalid mount at {0}: a recursively read-only mount must be read-only and receive no mounts (private or rprivate propagation)")]
    MountRecursiveReadOnly(String),
    #[error("invalid cgroup parent {0:?}: give an absolute path below the hierarchy's root, without \".\" or \"..\"")]
    CgroupParent(Input),
    #[error("invalid CNI configuration list: {0}")]
    CniConfig(&'static str),
    #[error("give either a rootfs or an image, not both")]
    RootfsAndImage,
    #[error("no root filesystem: give an image or a rootfs directory")]
    NoRootfs,
    #[error("invalid restart policy {0:?}: use no, always, unless-stopped or on-failure")]
    RestartPolicy(Input),
    #[error("invalid restart policy {0:?}: only on-failure takes a maximum retry count")]
    RestartRetries(Input),
    #[error("invalid health check {0:?}: {1}")]
    Healthcheck(Input, &'static str),
    #[error("invalid health on_failure {0:?}: use none, kill, restart or stop")]
    HealthOnFailure(Input),
    #[error("a restart policy cannot go with auto_remove (--rm): the container would be removed at its first exit")]
    RestartAutoRemove,
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
    #[error("invalid dns server {0:?}: use an IPv4 or IPv6 address")]
    Dns(Input),
    #[error("invalid dns search domain {0:?}: use a domain name, or \".\" for none")]
    DnsSearch(Input),
    #[error("invalid dns option {0:?}: it must not be empty or hold blanks")]
    DnsOption(Input),
    #[error("invalid extra host {0:?}: use NAME:ADDRESS, e.g. db:10.0.0.5")]
    ExtraHost(Input),
    #[error("invalid network {0:?}: use \"none\", \"host\" or a network's name")]
    Network(Input),
    #[error("network {0:?} cannot publish ports: publish them on a bridge network")]
    PortsOffBridge(Input),
    #[error("invalid published port {0:?}: {1}")]
    Port(Input, &'static str),
    #[error("invalid exposed port {0:?}: use PORT or PORT/PROTOCOL (tcp or udp)")]
    Expose(Input),
    #[error("invalid network alias {0:?}: only on a bridge network, [a-zA-Z0-9][a-zA-Z0-9_.-]*")]
    Alias(Input),
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
    #[error("invalid cpu period {0}: CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000); 0: the default")]
    CpuPeriod(u64),
    #[error(
        "invalid cpu quota {0}: CPU cfs quota can not be less than 1ms (i.e. 1000); 0 or -1: none"
    )]
    CpuQuota(i64),
    #[error("Conflicting options: cpus and a CPU period or quota cannot both be set")]
    CpusAndQuota,
    #[error("invalid cpuset {0} {1:?}: {2}")]
    Cpuset(&'static str, Input, String),
    #[error("invalid memory reservation {0}: use 0 for none, or from 6 MiB (6291456 bytes) to the memory limit ({1}, 0: none)")]
    MemoryReservation(i64, i64),
    #[error(
        "invalid memory swappiness {0}: valid memory swappiness range is 0-100 (-1: the kernel's)"
    )]
    Swappiness(i64),
    #[error("invalid blkio weight {0}: Range of blkio weight is from 10 to 1000 (0: the default)")]
    BlkioWeight(u32),
    #[error("invalid {0} for {1:?}: {2}")]
    Throttle(&'static str, Input, String),
    #[error(
        "invalid capability {0:?}: use a name like \"NET_ADMIN\" or \"CAP_NET_ADMIN\", or \"ALL\""
    )]
    Capability(Input),
    #[error("invalid user {0:?}: use uid[:gid] or name[:group]")]
    User(Input),
    #[error("invalid ulimit {0:?}: {1}")]
    Ulimit(Input, &'static str),
    #[error("invalid sysctl {0:?}: {1}")]
    Sysctl(Input, &'static str),
    #[error("invalid tmpfs options {0:?}: {1}")]
    Tmpfs(Input, &'static str),
    #[error("invalid group {0:?}: use a group name or number")]
    Group(Input),
    #[error("invalid domainname {0:?}: use at most 64 letters, digits, '-' and '.'")]
    Domainname(Input),
    #[error("invalid oom_score_adj {0}: use -1000 to 1000")]
    OomScoreAdj(i32),
    #[error("invalid {0} mode {1:?}: use private, host or container:NAME (ipc: shareable too; uts: host only)")]
    Namespace(&'static str, Input),
    #[error("conflicting options: {0}")]
    NamespaceConflict(&'static str),
    #[error("invalid seccomp profile: give \"unconfined\" for none, a profile in Docker's JSON format (at most 256 KiB), or nothing for berth's (Docker's default)")]
    SeccompProfile,
    #[error(
        "invalid mount propagation {0:?}: use private, rprivate, slave, rslave, shared or rshared"
    )]
    MountPropagation(Input),
    #[error("invalid mount of volume {0:?}: named volumes are not supported yet; bind-mount a host path")]
    MountVolume(Input),
    #[error("invalid address {0:?}: {1}")]
    Address(Input, &'static str),
    #[error("invalid device {0:?}: {1}")]
    Device(Input, &'static str),
    #[error("invalid device cgroup rule {0:?}: use TYPE MAJOR:MINOR ACCESS, e.g. \"c 1:3 rwm\" (TYPE a, b or c; * for any number; ACCESS some of rwm)")]
    DeviceRule(Input),
    #[error("the argument or environment entry {0:?} is longer than the kernel runs ({max} bytes); with an image, its config's Env, Entrypoint or Cmd holds it", max = MAX_ARG_BYTES)]
    ArgTooLong(Input),
    #[error("the command and environment come to {0} bytes, more than {max}; with an image, its config's Env, Entrypoint or Cmd adds them", max = MAX_PROCESS_BYTES)]
    ProcessTooLarge(usize),
    #[error("the labels come to {0} bytes, more than {max}; with an image, its config's Labels adds them", max = MAX_LABEL_BYTES)]
    LabelsTooLarge(usize),
    #[error("the exposed ports and volumes number {0}, more than {max}; with an image, its config's ExposedPorts and Volumes add them", max = MAX_PORTS_AND_VOLUMES)]
    TooManyPortsAndVolumes(usize),
}
