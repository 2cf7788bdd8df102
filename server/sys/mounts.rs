//! A container's filesystem, read through an overlay mounted in a mount
//! namespace of the calling thread's own, so nothing outlives the thread.

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
