//! A container's network namespace, pinned by a bind mount at DIR/netns:
//! it is made as PID 1 is set up (PID 1 joins it) so the CNI plugins can
//! wire it meanwhile, and it outlives PID 1 until they have taken their
//! wiring down (the bridge plugin finds the veth and the address it
//! masquerades only inside the namespace). A thread of its own makes it:
//! unsharing a network namespace changes only the calling thread's, and
//! the thread ends with the pin made, so no other work runs in it.

use crate::sys::linux;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::path::{Path, PathBuf};

/// The pin's name in the container's directory.
pub const PIN: &str = "netns";

/// A new network namespace with loopback up, pinned at `path` (which
/// must not exist); in the calling thread, which is left in it.
fn make(path: &Path) -> std::io::Result<()> {
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)?;
    unshare(CloneFlags::CLONE_NEWNET)?;
    linux::loopback_up()?;
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

/// Makes the pin at `path`, from a thread that ends with it.
pub async fn pin(path: &Path) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path: PathBuf = path.to_path_buf();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let made = make(&path);
            if made.is_err() {
                unpin(&path);
            }
            let _ = tx.send(made);
        })?;
    rx.await
        .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread died")))
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
