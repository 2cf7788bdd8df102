//! The container's filesystem: /proc, /dev with its nodes, /sys, and bind
//! mounts, all inside the new root.

use super::step;
use crate::monitor::protocol::{Failure, Step};
use crate::spec::{Propagation, Tmpfs};
use nix::mount::{mount, MsFlags};
use std::fs::File;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The container's /dev/shm.
pub enum Shm<'a> {
    /// A tmpfs of its own, of this many bytes.
    New(u64),
    /// The one at this path (the host's, or the IPC namespace's owner's).
    Bind(&'a str),
}

/// `nodev`: the flag for /dev (MS_NODEV unless privileged).
pub fn proc_dev_sys(root: &Path, nodev: MsFlags, shm: Shm) -> Result<(), Failure> {
    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let proc = Fs("proc", "proc", nosuid_noexec_nodev, None);
    proc.mount_on(root, "proc", Step::MountProc)?;
    let tmpfs = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | nodev;
    let dev = Fs("tmpfs", "tmpfs", tmpfs, Some("mode=755,size=65536k"));
    let dev = dev.mount_on(root, "dev", Step::MountDev)?;
    // The host's device nodes, bind-mounted: on a nodev /dev a node made
    // with mknod cannot be opened.
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let node = dev.join(name);
        let host = Path::new("/dev").join(name);
        step(Step::DeviceNodes, File::create(&node))?;
        let bind = MsFlags::MS_BIND;
        step(
            Step::DeviceNodes,
            mount(Some(&host), &node, None::<&str>, bind, None::<&str>),
        )?;
    }
    let pts_options = "newinstance,ptmxmode=0666,mode=0620,gid=5";
    let pts = Fs(
        "devpts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(pts_options),
    );
    pts.mount_on(&dev, "pts", Step::MountDevPts)?;
    step(Step::MountDevPts, symlink("pts/ptmx", dev.join("ptmx")))?;
    let at = mkdir(&dev, "shm", Step::MountDevShm)?;
    let mounted = match shm {
        Shm::New(size) => {
            let data = format!("mode=1777,size={size}");
            let flags = nosuid_noexec_nodev;
            mount(Some("shm"), &at, Some("tmpfs"), flags, Some(data.as_str()))
        }
        Shm::Bind(source) => {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(Some(source), &at, None::<&str>, flags, None::<&str>)
        }
    };
    step(Step::MountDevShm, mounted)?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        step(Step::MountDev, symlink(target, dev.join(link)))?;
    }
    let sys = Fs(
        "sysfs",
        "sysfs",
        nosuid_noexec_nodev | MsFlags::MS_RDONLY,
        None,
    );
    sys.mount_on(root, "sys", Step::MountSys)?;
    Ok(())
}

/// Every device node of the host's /dev in the container's (`dev`), as
/// Docker gives a privileged container: made with their numbers, owners
/// and modes, those already there kept; pts, shm and mqueue are the
/// container's own.
pub fn host_devices(dev: &Path) -> Result<(), Failure> {
    copy_nodes(Path::new("/dev"), dev)
        .map_err(|e| Failure::new(Step::DeviceNodes, format!("the host's devices: {e}")))
}

fn copy_nodes(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if ["pts", "shm", "mqueue", "hugepages"]
            .iter()
            .any(|n| name == *n)
        {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let meta = std::fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_nodes(&src, &dst)?;
            continue;
        }
        let sflag = match kind {
            k if k.is_char_device() => nix::sys::stat::SFlag::S_IFCHR,
            k if k.is_block_device() => nix::sys::stat::SFlag::S_IFBLK,
            _ => continue,
        };
        if std::fs::symlink_metadata(&dst).is_ok() {
            continue;
        }
        let mode = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
        nix::sys::stat::mknod(&dst, sflag, mode, meta.rdev())?;
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

/// A filesystem to mount: source, type, flags and options.
struct Fs(&'static str, &'static str, MsFlags, Option<&'static str>);

impl Fs {
    /// Mounts it on a new directory `name` under `parent`; its path.
    fn mount_on(&self, parent: &Path, name: &str, what: Step) -> Result<PathBuf, Failure> {
        let Fs(source, fstype, flags, data) = *self;
        let dir = mkdir(parent, name, what)?;
        step(what, mount(Some(source), &dir, Some(fstype), flags, data))?;
        Ok(dir)
    }
}

fn mkdir(parent: &Path, name: &str, what: Step) -> Result<PathBuf, Failure> {
    let p = parent.join(name);
    step(what, std::fs::create_dir_all(&p))?;
    Ok(p)
}

/// Bind-mounts `source` at `dest` inside `root`: where it went.
pub fn bind(root: &Path, source: &str, dest: &str, read_only: bool) -> Result<PathBuf, Failure> {
    let err = |e: &dyn std::fmt::Display| {
        Failure::new(Step::BindMount, format!("{source} on {dest}: {e}"))
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
    Ok(target)
}

/// Gives the mount at `target` its propagation.
pub fn propagate(target: &Path, p: Propagation) -> Result<(), Failure> {
    let flags = match p {
        Propagation::Private => MsFlags::MS_PRIVATE,
        Propagation::Rprivate => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Propagation::Slave => MsFlags::MS_SLAVE,
        Propagation::Rslave => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Propagation::Shared => MsFlags::MS_SHARED,
        Propagation::Rshared => MsFlags::MS_SHARED | MsFlags::MS_REC,
    };
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(|e| {
        let what = format!("{}: propagation {}: {e}", target.display(), p.as_str());
        Failure::new(Step::BindMount, what)
    })
}

/// A tmpfs at its destination inside `root`, with its flags and data.
pub fn tmpfs(root: &Path, t: &Tmpfs) -> Result<(), Failure> {
    let err =
        |e: &dyn std::fmt::Display| Failure::new(Step::Tmpfs, format!("{}: {e}", t.destination));
    let (f, data) = t.parse().map_err(|e| err(&e))?;
    let target = in_root(root, Path::new(&t.destination), true).map_err(|e| err(&e))?;
    let mut flags = MsFlags::empty();
    for (on, flag) in [
        (f.read_only, MsFlags::MS_RDONLY),
        (f.noexec, MsFlags::MS_NOEXEC),
        (f.nosuid, MsFlags::MS_NOSUID),
        (f.nodev, MsFlags::MS_NODEV),
        (f.atime == Some("noatime"), MsFlags::MS_NOATIME),
        (f.atime == Some("relatime"), MsFlags::MS_RELATIME),
        (f.atime == Some("strictatime"), MsFlags::MS_STRICTATIME),
    ] {
        if on {
            flags |= flag;
        }
    }
    let data = Some(data.as_str()).filter(|d| !d.is_empty());
    mount(Some("tmpfs"), &target, Some("tmpfs"), flags, data).map_err(|e| err(&e))
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
