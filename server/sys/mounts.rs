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
