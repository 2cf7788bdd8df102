//! A container's network namespace, pinned by a bind mount at DIR/netns:
//! it is made before PID 1 (which joins it) so its networks can be wired
//! into it, and it outlives PID 1 until they are taken down (the CNI
//! plugins look inside it for what they made). It is made on a thread of
//! its own that ends once it has pinned it (netlink.rs): no thread of the
//! runtime leaves the host's namespace.

use crate::sys::linux;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::path::Path;

/// The pin's name in the container's directory.
pub const PIN: &str = "netns";

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

/// A new network namespace with loopback up, pinned at `path` (which
/// must not exist); nothing is left if it fails.
pub async fn pin(path: &Path) -> std::io::Result<()> {
    let at = path.to_path_buf();
    let made = super::netlink::on_own_thread(move || make(&at)).await;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
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

/// A TCP connection to `port` on loopback inside the namespace pinned at
/// `pin` (the host's with None): 127.0.0.1, else ::1. The socket is made
/// on a thread of its own that enters the namespace; it stays in it.
pub async fn connect_local(pin: Option<&Path>, port: u16) -> std::io::Result<std::net::TcpStream> {
    let pin = pin.map(Path::to_path_buf);
    let connect = move || {
        if let Some(pin) = &pin {
            let ns = std::fs::File::open(pin)?;
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)?;
        }
        let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let timeout = std::time::Duration::from_secs(10);
        std::net::TcpStream::connect_timeout(&v4, timeout).or_else(|e| {
            let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            std::net::TcpStream::connect_timeout(&v6, timeout).map_err(|_| e)
        })
    };
    super::netlink::on_own_thread(connect).await
}
