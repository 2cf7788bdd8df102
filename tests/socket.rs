//! The API socket, end to end: berthd refuses a socket whose directories
//! others could change, and the socket is never connectable with the wrong
//! mode.

mod common;

use common::*;

#[test]
fn every_directory_above_the_socket_must_be_roots() {
    let base = test_dir("ancestors");
    // nobody owns an ancestor two levels up: it could rename the
    // root-owned directory below it away and put its own socket there.
    let owned = base.join("owned");
    let inner = owned.join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    std::os::unix::fs::chown(&owned, Some(65534), Some(65534)).unwrap();
    // A group-writable ancestor, not sticky.
    let group = base.join("group");
    std::fs::create_dir_all(group.join("inner")).unwrap();
    std::fs::set_permissions(&group, std::os::unix::fs::PermissionsExt::from_mode(0o775)).unwrap();
    // A link through a directory nobody owns.
    std::os::unix::fs::symlink(&inner, base.join("link")).unwrap();
    for (dir, culprit) in [
        (inner.clone(), owned.clone()),
        (group.join("inner"), group.clone()),
        (base.join("link"), owned.clone()),
    ] {
        let root = base.join("root");
        let sock = dir.join("berth.sock");
        let o = berthd_fails(&[
            "--socket",
            sock.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(err.contains("cannot secure the socket"), "{err}");
        assert!(
            err.contains(&format!("{} must be", culprit.display())),
            "{err}"
        );
        assert!(!sock.exists() && !root.exists(), "something was set up");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_is_never_connectable_with_the_wrong_mode() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut d = Daemon::start_with_args("sockmode", &["--group", "nogroup"]).await;
    for _ in 0..10 {
        d.stop_daemon(libc::SIGTERM);
        assert!(!d.socket.exists(), "{}", d.log());
        // Connect as fast as possible while the daemon comes up; the first
        // connection that succeeds must see the final owner and mode.
        let stop = Arc::new(AtomicBool::new(false));
        let (sock, flag) = (d.socket.clone(), stop.clone());
        let spinner = std::thread::spawn(move || loop {
            if flag.load(Ordering::Relaxed) {
                return None;
            }
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                let m = std::fs::metadata(&sock).unwrap();
                return Some((m.mode() & 0o7777, m.uid(), m.gid()));
            }
        });
        d.spawn().await;
        stop.store(true, Ordering::Relaxed);
        if let Some(seen) = spinner.join().unwrap() {
            assert_eq!(seen, (0o660, 0, 65534));
        }
    }
}
