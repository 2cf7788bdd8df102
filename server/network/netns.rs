//! A container's network namespace, pinned by a bind mount at DIR/netns:
//! it is made before PID 1 (which joins it) so the CNI plugins can wire it,
//! and it outlives PID 1 until they have taken their wiring down (the
//! bridge plugin finds the veth and the address it masquerades only inside
//! the namespace). `berthd netns PATH` makes it: the daemon never unshares
//! in its own (multi-threaded) process.

use crate::sys::linux;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::path::Path;

/// The pin's name in the container's directory.
pub const PIN: &str = "netns";

/// `berthd netns PATH`: a new network namespace with loopback up, pinned
/// at PATH (which must not exist).
pub fn helper_main(path: &Path) -> ! {
    match make(path) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("berthd netns {}: {e}", path.display());
            let _ = std::fs::remove_file(path);
            std::process::exit(1)
        }
    }
}

fn make(path: &Path) -> std::io::Result<()> {
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)?;
    unshare(CloneFlags::CLONE_NEWNET)?;
    linux::loopback_up()?;
    linux::allow_ping()?;
    // No duplicate address detection on the interfaces to come (the
    // addresses are leased, not guessed): an IPv6 address is usable at
    // once instead of after a second. No IPv6 on the host: nothing to do.
    for scope in ["all", "default"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{scope}/accept_dad"), "0");
    }
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    Ok(())
}

/// Makes the pin at `path` with the helper `exe`.
pub async fn pin(exe: &Path, path: &Path) -> std::io::Result<()> {
    let mut cmd = tokio::process::Command::new(exe);
    crate::sys::linux::spawn_dying_with_us(&mut cmd);
    let out = cmd
        .arg0("berthd")
        .arg("netns")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .await?;
    match out.status.success() {
        true => Ok(()),
        false => Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )),
    }
}

/// Whether `path` is a pinned namespace (not the empty file a helper
/// killed halfway leaves).
pub fn is_pinned(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(pin), Some(parent)) = (std::fs::metadata(path), path.parent()) else {
        return false;
    };
    std::fs::metadata(parent).is_ok_and(|p| p.dev() != pin.dev())
}

/// Unmounts and removes the pin: the namespace goes once nothing else
/// holds it.
pub fn unpin(path: &Path) {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot unmount a network namespace")
        }
    }
    let _ = std::fs::remove_file(path);
}
