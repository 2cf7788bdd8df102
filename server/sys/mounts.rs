//! A container's filesystem, read through an overlay mounted in a mount
//! namespace of the calling thread's own, so nothing outlives the thread;
//! and the /dev/shm a shareable IPC namespace keeps on the host.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes the merged view of `upper` over `lower` (top first) as a tar to
/// `out`, mounted at the empty directory `at`. Runs on a thread of its
/// own: the thread leaves the daemon's mount namespace for good.
pub fn export_overlay(
    lower: &[PathBuf],
    upper: &Path,
    at: &Path,
    out: &mut impl Write,
) -> io::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS).map_err(io::Error::from)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(io::Error::from)?;
    let merged = at;
    // The writable layer goes on top as one more read-only layer: its
    // whiteouts hide what the container deleted.
    let layers: Vec<String> = std::iter::once(upper.to_path_buf())
        .chain(lower.iter().cloned())
        .map(|p| p.display().to_string())
        .collect();
    let options = format!("lowerdir={}", layers.join(":"));
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID;
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        ro,
        Some(options.as_str()),
    )
    .map_err(io::Error::from)?;
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    tar.append_dir_all(".", merged)?;
    tar.finish()
}

/// Where a container with a shareable IPC namespace keeps its /dev/shm,
/// in its directory: a tmpfs mounted on the host for its run, which the
/// containers that join it bind-mount too.
pub const SHARED_SHM: &str = "shm";

/// Mounts the shared /dev/shm of the container in `dir` (`size` bytes);
/// its path.
pub fn mount_shared_shm(dir: &Path, size: u64) -> io::Result<PathBuf> {
    use nix::mount::{mount, MsFlags};
    let at = dir.join(SHARED_SHM);
    release_shared_shm(dir);
    std::fs::create_dir_all(&at)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let data = format!("mode=1777,size={size}");
    mount(Some("shm"), &at, Some("tmpfs"), flags, Some(data.as_str())).map_err(io::Error::from)?;
    Ok(at)
}

/// Unmounts it, if it is there (after the run, or before the directory
/// goes when a monitor died without doing it).
pub fn release_shared_shm(dir: &Path) {
    let at = dir.join(SHARED_SHM);
    while nix::mount::umount2(&at, nix::mount::MntFlags::MNT_DETACH).is_ok() {}
}

/// The mount a path is on, as /proc/self/mountinfo shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOf {
    pub point: PathBuf,
    /// In a peer group ("shared:N").
    pub shared: bool,
    /// A slave of a peer group ("master:N").
    pub slave: bool,
}

/// The mount `path` (resolved) is on: the last mounted of those whose
/// mount point holds it, the nearest.
pub fn mount_of(path: &Path) -> io::Result<MountOf> {
    let path = std::fs::canonicalize(path)?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut found: Option<MountOf> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| unescape(p)) else {
            continue;
        };
        let point = PathBuf::from(point);
        if !path.starts_with(&point) {
            continue;
        }
        let nearer = found
            .as_ref()
            .is_none_or(|f| point.components().count() >= f.point.components().count());
        if nearer {
            let optional = fields.iter().skip(6).take_while(|f| **f != "-");
            let (mut shared, mut slave) = (false, false);
            for f in optional {
                shared |= f.starts_with("shared:");
                slave |= f.starts_with("master:");
            }
            found = Some(MountOf {
                point,
                shared,
                slave,
            });
        }
    }
    found.ok_or_else(|| io::Error::other(format!("{} is on no mount", path.display())))
}

/// A mountinfo path with its octal escapes (\040 for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Makes the mount at `target` and every mount below it read-only
/// (mount_setattr(2) with AT_RECURSIVE, Linux 5.12).
pub fn read_only_recursive(target: &Path) -> io::Result<()> {
    /// struct mount_attr of linux/mount.h.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let path = crate::sys::linux::cstring(&target.to_string_lossy())?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: path is a NUL-terminated string and attr a live struct of
    // the size passed; the kernel reads both and keeps neither.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(super::unescape(r"/mnt/a\040b\134c"), r"/mnt/a b\c");
        assert_eq!(super::unescape(r"/x\04"), r"/x\04");
    }

    #[test]
    fn the_root_is_on_a_mount() {
        let m = super::mount_of(std::path::Path::new("/")).unwrap();
        assert_eq!(m.point, std::path::PathBuf::from("/"));
    }
}
