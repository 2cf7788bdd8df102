//! What runs in the cloned child, inside the new namespaces, before the
//! user's process: the overlay root, /proc, /dev, /sys, bind mounts,
//! pivot_root, hostname, loopback, working directory, stdio, then exec
//! (directly, or under berth's init).

use super::cgroup::Cgroup;
use super::init;
use super::monitor::{Config, StepError};
use super::spec::{Network, Spec};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, pivot_root, sethostname};
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Every step name a failure can carry back to berthd.
pub const STEPS: &[&str] = &[
    "wait for the monitor",
    "join cgroup",
    "make mounts private",
    "mount overlay rootfs",
    "mount /proc",
    "mount /dev",
    "create device nodes",
    "mount /dev/pts",
    "mount /dev/shm",
    "mount /sys",
    "bind mount",
    "pivot_root",
    "set hostname",
    "bring loopback up",
    "working directory",
    "read-only rootfs",
    "stdio",
    "mask paths",
    "capabilities",
    "user",
    "no_new_privs",
    "seccomp",
    "exec",
    "init",
];

fn step<T, E: std::fmt::Display>(name: &'static str, r: Result<T, E>) -> Result<T, StepError> {
    r.map_err(|e| StepError::new(name, e))
}

/// Runs in the child; returns only on failure.
pub fn container_main(
    dir: &Path,
    config: &Config,
    cgroup: &Cgroup,
    sync_r: OwnedFd,
    stdio: [&OwnedFd; 2],
) -> StepError {
    match prepare(dir, config, cgroup, sync_r, stdio) {
        Ok((exec, Some(init))) => init.run(&exec),
        Ok((exec, None)) => exec.run(),
        Err(e) => e,
    }
}

/// A resolved program, ready to exec.
pub struct Exec {
    path: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    shown: String,
}

impl Exec {
    /// Resets what the process inherited from berth, then execs. Returns
    /// only on failure.
    pub fn run(&self) -> StepError {
        self.reset();
        match nix::unistd::execve(&self.path, &self.args, &self.env) {
            Err(e) => StepError::new("exec", format!("cannot exec {:?}: {e}", self.shown)),
            Ok(never) => match never {},
        }
    }

    /// What a program must not inherit from berth: signal dispositions and
    /// mask, and the umask.
    pub fn reset(&self) {
        reset_signals();
        umask(Mode::from_bits_truncate(0o022));
    }
}

/// Signal dispositions set to default and nothing blocked: ignored signals
/// survive exec, and berth's processes ignore SIGPIPE.
fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting a default disposition installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn prepare(
    dir: &Path,
    config: &Config,
    cgroup: &Cgroup,
    sync_r: OwnedFd,
    [stdout, stderr]: [&OwnedFd; 2],
) -> Result<(Exec, Option<init::Image>), StepError> {
    // Wait until the monitor is ready for us; EOF means it died.
    let mut byte = [0u8; 1];
    match File::from(sync_r).read(&mut byte) {
        Ok(1) => {}
        _ => {
            return Err(StepError::new(
                "wait for the monitor",
                "the monitor went away",
            ))
        }
    }
    // Into the container's cgroup, before anything it should be charged
    // for. The process moves itself: on cgroup v1 moving the calling
    // thread skips the kernel's global migration lock (and the RCU grace
    // period it waits for), which a move by the monitor would take.
    step("join cgroup", cgroup.join_self())?;
    let spec = &config.spec;
    umask(Mode::empty());
    step(
        "make mounts private",
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        ),
    )?;
    let merged = dir.join("merged");
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        spec.rootfs,
        dir.join("upper").display(),
        dir.join("work").display()
    );
    // Device nodes in the rootfs or /dev cannot be opened (bar the standard
    // ones, bind-mounted), whatever the cgroup version; privileged: they can.
    let nodev = match spec.privileged {
        true => MsFlags::empty(),
        false => MsFlags::MS_NODEV,
    };
    step(
        "mount overlay rootfs",
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nodev,
            Some(options.as_str()),
        ),
    )?;
    mount_proc_dev_sys(&merged, nodev)?;
    for m in &spec.mounts {
        bind_mount(&merged, &m.source, &m.destination, m.read_only)?;
    }
    step("pivot_root", chdir(&merged))?;
    step("pivot_root", pivot_root(".", "."))?;
    step("pivot_root", umount2(".", MntFlags::MNT_DETACH))?;
    step("pivot_root", chdir("/"))?;
    step("set hostname", sethostname(&spec.hostname))?;
    if spec.network == Network::None {
        step("bring loopback up", super::linux::loopback_up())?;
    }
    step(
        "working directory",
        std::fs::create_dir_all(&spec.working_dir),
    )?;
    step("working directory", chdir(spec.working_dir.as_str()))?;
    if spec.read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nodev;
        step(
            "read-only rootfs",
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>),
        )?;
    }
    let null = step("stdio", File::open("/dev/null"))?;
    step("stdio", nix::unistd::dup2_stdin(&null))?;
    step("stdio", nix::unistd::dup2_stdout(stdout))?;
    step("stdio", nix::unistd::dup2_stderr(stderr))?;
    // The process gets fds 0, 1 and 2 and nothing else, whatever the
    // monitor holds (the error pipe closes on exec, telling it so).
    step("stdio", super::linux::cloexec_inherited())?;
    let exec = resolve(spec)?;
    let init = match spec.init {
        true => Some(init::Image::new()?),
        false => None,
    };
    super::confine::confine(spec, config.seccomp.as_ref())?;
    Ok((exec, init))
}

/// `nodev`: the flag for /dev (MS_NODEV unless privileged).
fn mount_proc_dev_sys(root: &Path, nodev: MsFlags) -> Result<(), StepError> {
    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let proc = mkdir(root, "proc", "mount /proc")?;
    step(
        "mount /proc",
        mount(
            Some("proc"),
            &proc,
            Some("proc"),
            nosuid_noexec_nodev,
            None::<&str>,
        ),
    )?;
    let dev = mkdir(root, "dev", "mount /dev")?;
    step(
        "mount /dev",
        mount(
            Some("tmpfs"),
            &dev,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | nodev,
            Some("mode=755,size=65536k"),
        ),
    )?;
    // The host's device nodes, bind-mounted: on a nodev /dev a node made
    // with mknod cannot be opened.
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let node = dev.join(name);
        let host = Path::new("/dev").join(name);
        step("create device nodes", File::create(&node))?;
        step(
            "create device nodes",
            mount(
                Some(&host),
                &node,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
        )?;
    }
    let pts = mkdir(&dev, "pts", "mount /dev/pts")?;
    step(
        "mount /dev/pts",
        mount(
            Some("devpts"),
            &pts,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ),
    )?;
    step("mount /dev/pts", symlink("pts/ptmx", dev.join("ptmx")))?;
    let shm = mkdir(&dev, "shm", "mount /dev/shm")?;
    step(
        "mount /dev/shm",
        mount(
            Some("shm"),
            &shm,
            Some("tmpfs"),
            nosuid_noexec_nodev,
            Some("mode=1777,size=65536k"),
        ),
    )?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        step("mount /dev", symlink(target, dev.join(link)))?;
    }
    let sys = mkdir(root, "sys", "mount /sys")?;
    step(
        "mount /sys",
        mount(
            Some("sysfs"),
            &sys,
            Some("sysfs"),
            nosuid_noexec_nodev | MsFlags::MS_RDONLY,
            None::<&str>,
        ),
    )?;
    Ok(())
}

fn mkdir(parent: &Path, name: &str, what: &'static str) -> Result<PathBuf, StepError> {
    let p = parent.join(name);
    step(what, std::fs::create_dir_all(&p))?;
    Ok(p)
}

fn bind_mount(root: &Path, source: &str, dest: &str, read_only: bool) -> Result<(), StepError> {
    let err = |e: &dyn std::fmt::Display| {
        StepError::new("bind mount", format!("{source} on {dest}: {e}"))
    };
    let meta = std::fs::metadata(source).map_err(|e| err(&e))?;
    // The destination as the container will see it: symlinks in the
    // rootfs resolve inside it, never to the host.
    let target = in_root(root, Path::new(dest), meta.is_dir()).map_err(|e| err(&e))?;
    if !meta.is_dir() && std::fs::symlink_metadata(&target).is_err() {
        File::options()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .map_err(|e| err(&e))?;
        let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644));
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(source), &target, None::<&str>, flags, None::<&str>).map_err(|e| err(&e))?;
    if read_only {
        let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, &target, None::<&str>, ro, None::<&str>).map_err(|e| err(&e))?;
    }
    Ok(())
}

/// The host path of `path` inside the container's root `root`, resolving
/// symlinks as the container would (an absolute target starts again at
/// `root`; ".." stops at it), so no component can lead outside. Missing
/// directories are created (all but the last component unless `dir`).
/// Runs before the container's process exists, so nothing changes the
/// tree meanwhile.
pub fn in_root(root: &Path, path: &Path, dir: bool) -> std::io::Result<PathBuf> {
    use std::path::Component;
    const MAX_LINKS: usize = 40;
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut at = root.to_path_buf();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            if at != root {
                at.pop();
            }
            continue;
        }
        let next = at.join(&name);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&next)?;
                if target.is_absolute() {
                    at = root.to_path_buf();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(_) => at = next,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !todo.is_empty() || dir {
                    std::fs::DirBuilder::new().mode(0o755).create(&next)?;
                }
                at = next;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Finds the executable (through the container's PATH when it has no "/")
/// and builds argv and envp.
fn resolve(spec: &Spec) -> Result<Exec, StepError> {
    let cs = |s: &str| step("exec", super::linux::cstring(s));
    let env = spec.environment();
    let program = &spec.args[0];
    let path = if program.contains('/') {
        program.clone()
    } else {
        let search = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(super::spec::DEFAULT_PATH);
        search
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{program}"))
            .find(|p| nix::unistd::access(p.as_str(), nix::unistd::AccessFlags::X_OK).is_ok())
            .ok_or_else(|| {
                StepError::new(
                    "exec",
                    format!("executable file {program:?} not found in $PATH"),
                )
            })?
    };
    Ok(Exec {
        path: cs(&path)?,
        args: spec.args.iter().map(|a| cs(a)).collect::<Result<_, _>>()?,
        env: env.iter().map(|e| cs(e)).collect::<Result<_, _>>()?,
        shown: program.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_resolve_inside_the_root() {
        let base = std::env::temp_dir().join(format!("berth-in-root-{}", std::process::id()));
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("var")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // Links as an image or a container could leave them.
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../../../..", root.join("var/up")).unwrap();
        symlink("/var", root.join("rel")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let at = |p: &str, dir| in_root(&root, Path::new(p), dir).unwrap();
        assert_eq!(at("/a/b", true), root.join("a/b"));
        assert!(root.join("a/b").is_dir());
        // An absolute link starts again at the root, not the host's /.
        assert_eq!(
            at("/abs/x", true),
            root.join(outside.strip_prefix("/").unwrap()).join("x")
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // ".." never climbs above the root, through links or not.
        assert_eq!(at("/var/up/etc", true), root.join("etc"));
        assert_eq!(at("/../../etc2", true), root.join("etc2"));
        assert_eq!(at("/rel/run", true), root.join("var/run"));
        // A file destination: its directory is made, the file is not.
        assert_eq!(at("/f/file", false), root.join("f/file"));
        assert!(root.join("f").is_dir() && !root.join("f/file").exists());
        let err = in_root(&root, Path::new("/loop/x"), true).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
