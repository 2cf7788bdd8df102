//! The steps of a start, named in failures the monitor reports, and which
//! of them are the request's fault or the host's limit.

use serde::{Deserialize, Serialize};

/// Every step of starting a container that can fail, in the order they
/// run: in the monitor, then in the child before it execs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    ReadConfig,
    ParseConfig,
    CreateCgroup,
    LimitDevices,
    SetLimits,
    Pipe,
    Attach,
    Clone,
    SyncWithChild,
    WaitForMonitor,
    JoinCgroup,
    JoinNetwork,
    MakeMountsPrivate,
    MountRootfs,
    MountProc,
    MountDev,
    DeviceNodes,
    MountDevPts,
    MountDevShm,
    MountSys,
    BindMount,
    PivotRoot,
    Hostname,
    Loopback,
    WorkingDir,
    ReadOnlyRootfs,
    Stdio,
    MaskPaths,
    Capabilities,
    User,
    NoNewPrivs,
    Seccomp,
    Init,
    Exec,
    /// An exec: into the namespaces of the container's PID 1.
    JoinNamespaces,
    /// After the start: waiting for PID 1 and recording its exit.
    Wait,
    WriteExit,
    Tmpfs,
    Sysctls,
    Domainname,
    OomScoreAdj,
    Ulimits,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::ReadConfig => "read config",
            Step::ParseConfig => "parse config",
            Step::CreateCgroup => "create cgroup",
            Step::LimitDevices => "limit devices",
            Step::SetLimits => "set resource limits",
            Step::Pipe => "pipe",
            Step::Attach => "listen for attachers",
            Step::Clone => "clone",
            Step::SyncWithChild => "sync with container",
            Step::WaitForMonitor => "wait for the monitor",
            Step::JoinCgroup => "join cgroup",
            Step::JoinNetwork => "join the network namespace",
            Step::MakeMountsPrivate => "make mounts private",
            Step::MountRootfs => "mount overlay rootfs",
            Step::MountProc => "mount /proc",
            Step::MountDev => "mount /dev",
            Step::DeviceNodes => "create device nodes",
            Step::MountDevPts => "mount /dev/pts",
            Step::MountDevShm => "mount /dev/shm",
            Step::MountSys => "mount /sys",
            Step::BindMount => "bind mount",
            Step::PivotRoot => "pivot_root",
            Step::JoinNamespaces => "join the container's namespaces",
            Step::Hostname => "set hostname",
            Step::Loopback => "bring loopback up",
            Step::WorkingDir => "working directory",
            Step::ReadOnlyRootfs => "read-only rootfs",
            Step::Stdio => "stdio",
            Step::MaskPaths => "mask paths",
            Step::Capabilities => "capabilities",
            Step::User => "user",
            Step::NoNewPrivs => "no_new_privs",
            Step::Seccomp => "seccomp",
            Step::Init => "init",
            Step::Exec => "exec",
            Step::Wait => "wait",
            Step::WriteExit => "write exit status",
            Step::Tmpfs => "mount tmpfs",
            Step::Sysctls => "set sysctls",
            Step::Domainname => "set domainname",
            Step::OomScoreAdj => "set oom_score_adj",
            Step::Ulimits => "set ulimits",
        }
    }

    /// Whether a failure here is the request's fault (the program or the
    /// user is not in the rootfs), as a bad path is.
    pub fn is_request_fault(self) -> bool {
        matches!(self, Step::Exec | Step::User | Step::Sysctls)
    }

    /// Whether a failure here is what the host allows berthd (an OOM
    /// score or a resource limit it may not set).
    pub fn is_host_limit(self) -> bool {
        matches!(self, Step::OomScoreAdj | Step::Ulimits)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
