//! What runs in the cloned child, inside the new namespaces, before the
//! user's process: the overlay root, /proc, /dev, /sys, bind mounts,
//! pivot_root, hostname, loopback, working directory, stdio, then exec
//! (directly, or under berth's init).

#![allow(unsafe_code)]

mod confine;
mod exec;
mod init;
pub mod join;
mod mounts;
mod tuning;
mod volumes;

use super::protocol::{Config, Failure, GoReceiver, Step, NAMES_FILES};
use super::stdio::Theirs;
use crate::spec::Network;
use crate::sys::{cgroup::Cgroup, fds, linux, pty};
use exec::Exec;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, pivot_root, sethostname};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `r`, its error tagged with the step that failed.
pub(super) fn step<T, E: std::fmt::Display>(name: Step, r: Result<T, E>) -> Result<T, Failure> {
    r.map_err(|e| Failure::new(name, e))
}

/// Runs in the child; returns only on failure.
pub fn main(
    dir: &Path,
    config: &Config,
    cgroup: Option<&Cgroup>,
    go: GoReceiver,
    stdio: &Theirs,
) -> Failure {
    match prepare(dir, config, cgroup, go, stdio) {
        Ok((exec, Some(init))) => init.run(&exec),
        Ok((exec, None)) => exec.run(),
        Err(e) => e,
    }
}

fn prepare(
    dir: &Path,
    config: &Config,
    cgroup: Option<&Cgroup>,
    go: GoReceiver,
    stdio: &Theirs,
) -> Result<(Exec, Option<init::Image>), Failure> {
    go.wait()?;
    // Into the container's cgroup unless born there, before anything it
    // should be charged for. The process moves itself: on cgroup v1 moving
    // the calling thread skips the kernel's global migration lock (and the
    // RCU grace period it waits for), which a move by the monitor would
    // take.
    if let Some(cgroup) = cgroup {
        step(Step::JoinCgroup, cgroup.join_self())?;
    }
    let spec = &config.spec;
    // The namespace the CNI plugins wire, before /sys is mounted (it
    // shows the mounter's network devices).
    if spec.network.wired() {
        let ns = step(
            Step::JoinNetwork,
            File::open(dir.join(crate::network::netns::PIN)),
        )?;
        step(Step::JoinNetwork, setns(&ns, CloneFlags::CLONE_NEWNET))?;
    }
    // A namespace of its own: ping for every group, as the bridge's
    // namespaces have it (network/netns.rs). Written through the host's
    // /proc, which names the writer's namespace, while it is still there.
    if spec.network == Network::None {
        step(Step::Loopback, linux::allow_ping())?;
    }
    umask(Mode::empty());
    // Device nodes in the rootfs or /dev cannot be opened (bar the standard
    // ones, bind-mounted), whatever the cgroup version; privileged: they can.
    // Device cgroup rules are asked for to make and use nodes: the cgroup
    // alone then says which.
    let nodev = match spec.privileged || !spec.tuning.device_cgroup_rules.is_empty() {
        true => MsFlags::empty(),
        false => MsFlags::MS_NODEV,
    };
    enter_root(dir, config, nodev)?;
    // The host's UTS namespace keeps the host's name.
    if spec.namespaces.uts.is_own() {
        step(Step::Hostname, sethostname(&spec.hostname))?;
    }
    if spec.network == Network::None {
        step(Step::Loopback, linux::loopback_up())?;
    }
    step(Step::WorkingDir, std::fs::create_dir_all(&spec.working_dir))?;
    step(Step::WorkingDir, chdir(spec.working_dir.as_str()))?;
    if spec.read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nodev;
        step(
            Step::ReadOnlyRootfs,
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>),
        )?;
    }
    // The daemon wires the namespace meanwhile: its byte on the
    // monitor's stdin (inherited) says the networks are ready; EOF, that
    // it failed or went away.
    if spec.network.wired() {
        step(Step::JoinNetwork, networks_wired())?;
    }
    // Sysctls once eth0 is there, before /proc/sys is made read-only.
    tuning::namespaces(&spec.tuning)?;
    tuning::process(&spec.tuning)?;
    set_stdio(stdio)?;
    let exec = exec::resolve(spec)?;
    let init = match spec.init {
        true => Some(init::Image::new()?),
        false => None,
    };
    confine::confine(spec, config.seccomp.as_ref())?;
    Ok((exec, init))
}

fn networks_wired() -> std::io::Result<()> {
    use std::io::Read;
    let mut byte = [0u8; 1];
    match std::io::stdin().read(&mut byte)? {
        1 => Ok(()),
        _ => Err(std::io::Error::other("its networks were not wired")),
    }
}

/// The overlay root with /proc, /dev, /sys and the bind mounts in it,
/// made the root (the host's unmounted).
fn enter_root(dir: &Path, config: &Config, nodev: MsFlags) -> Result<(), Failure> {
    let spec = &config.spec;
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    // Mounts are private to the container unless a bind mount is to
    // receive the host's (the host's mounts become slaves here) or send
    // its own (they stay shared here, and the mount the container's
    // directory is on is made private, so that what is mounted for the
    // container goes nowhere else).
    let sends = spec.mounts.iter().any(|m| m.propagation.sends());
    let receives = spec.mounts.iter().any(|m| m.propagation.receives());
    let root = match (sends, receives) {
        (true, _) => MsFlags::MS_REC | MsFlags::MS_SHARED,
        (false, true) => MsFlags::MS_REC | MsFlags::MS_SLAVE,
        (false, false) => private,
    };
    step(
        Step::MakeMountsPrivate,
        mount(None::<&str>, "/", None::<&str>, root, None::<&str>),
    )?;
    if sends {
        let on = step(Step::MakeMountsPrivate, crate::sys::mounts::mount_of(dir))?;
        let flags = MsFlags::MS_PRIVATE;
        step(
            Step::MakeMountsPrivate,
            mount(None::<&str>, &on.point, None::<&str>, flags, None::<&str>),
        )?;
    }
    let merged = dir.join("merged");
    // An image's layers are named relative to their directory, so that
    // many fit in the one page overlay's options may take.
    let lower = match &spec.image {
        Some(image) => {
            step(Step::MountRootfs, chdir(image.layers_dir.as_str()))?;
            image.lower.join(":")
        }
        None => spec.rootfs.clone(),
    };
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower,
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let overlay = Some("overlay");
    step(
        Step::MountRootfs,
        mount(overlay, &merged, overlay, nodev, Some(options.as_str())),
    )?;
    let shm = match &config.shm {
        Some(source) => mounts::Shm::Bind(source),
        None => mounts::Shm::New(spec.tuning.shm_size),
    };
    mounts::proc_dev_sys(&merged, nodev, shm)?;
    if spec.privileged {
        mounts::host_devices(&merged.join("dev"))?;
    }
    for d in &spec.tuning.devices {
        mounts::bind(&merged, &d.host_path, &d.container_path, false)?;
    }
    // berthd's names files, under the request's mounts: one at their path
    // wins.
    let names = config.names.as_deref().map_or(dir, Path::new);
    for (file, dest) in NAMES_FILES {
        let source = names.join(file);
        if source.exists() {
            mounts::bind(&merged, &source.to_string_lossy(), dest, false)?;
        }
    }
    if sends {
        // berth's own mounts so far: the container's alone.
        step(
            Step::MakeMountsPrivate,
            mount(None::<&str>, &merged, None::<&str>, private, None::<&str>),
        )?;
    }
    let anonymous = dir.join("volumes");
    for m in &spec.mounts {
        let source = Path::new(&m.source);
        if source.parent() == Some(anonymous.as_path()) {
            volumes::populate(&merged, source, &m.destination)?;
        }
        let target = mounts::bind(&merged, &m.source, &m.destination, m.read_only)?;
        if m.recursive_read_only {
            step(
                Step::BindMount,
                crate::sys::mounts::read_only_recursive(&target),
            )?;
        }
        if sends || receives {
            mounts::propagate(&target, m.propagation)?;
        }
    }
    for t in &spec.tuning.tmpfs {
        mounts::tmpfs(&merged, t)?;
    }
    // With shared mounts here, the host's root (on top after the pivot)
    // is made a slave before it goes: its unmount must not reach the host.
    let old_root = match sends {
        true => Some(step(Step::PivotRoot, File::open("/"))?),
        false => None,
    };
    step(Step::PivotRoot, chdir(&merged))?;
    step(Step::PivotRoot, pivot_root(".", "."))?;
    if let Some(old) = old_root {
        step(Step::PivotRoot, nix::unistd::fchdir(&old))?;
        let slave = MsFlags::MS_REC | MsFlags::MS_SLAVE;
        step(
            Step::PivotRoot,
            mount(None::<&str>, ".", None::<&str>, slave, None::<&str>),
        )?;
    }
    step(Step::PivotRoot, umount2(".", MntFlags::MNT_DETACH))?;
    step(Step::PivotRoot, chdir("/"))
}

/// PID 1's stdin, stdout and stderr, and nothing else: the process gets
/// fds 0, 1 and 2 whatever the monitor holds (the failure pipe closes on
/// exec, telling the monitor so). Pipes: stdin from the monitor's pipe or
/// /dev/null. A terminal: made in the container's /dev/pts, its master
/// sent to the monitor, its other side the controlling terminal.
fn set_stdio(stdio: &Theirs) -> Result<(), Failure> {
    match stdio {
        Theirs::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            match stdin {
                Some(fd) => step(Step::Stdio, nix::unistd::dup2_stdin(fd))?,
                None => {
                    let null = step(Step::Stdio, File::open("/dev/null"))?;
                    step(Step::Stdio, nix::unistd::dup2_stdin(&null))?
                }
            }
            step(Step::Stdio, nix::unistd::dup2_stdout(stdout))?;
            step(Step::Stdio, nix::unistd::dup2_stderr(stderr))?;
        }
        Theirs::Terminal { size, console } => {
            let (master, path) = step(Step::Stdio, pty::open(*size))?;
            step(Step::Stdio, pty::take(&path))?;
            step(
                Step::Stdio,
                fds::send_with_fd(console, b"t", Some(master.as_raw_fd())),
            )?;
        }
    }
    step(Step::Stdio, linux::cloexec_inherited())
}
