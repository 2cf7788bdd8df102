//! berth under faults: a full disk and a damaged database never lose a
//! container or an exit status, never wedge the daemon, and say what is
//! wrong.

mod common;

use berth::pb::{self, Action};
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::Code;

/// A daemon whose root is a small tmpfs of its own; unmounted after the
/// daemon is gone.
struct OnTmpfs {
    d: Option<Daemon>,
    mount: PathBuf,
}

impl OnTmpfs {
    async fn start(test: &str, size: &str) -> OnTmpfs {
        let mut d = Daemon::start(test).await;
        d.stop_daemon(libc::SIGTERM);
        std::fs::remove_dir_all(&d.root).unwrap();
        std::fs::create_dir_all(&d.root).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "berth-test"])
            .arg(&d.root)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs");
        let mount = d.root.clone();
        d.spawn().await;
        OnTmpfs { d: Some(d), mount }
    }

    fn d(&self) -> &Daemon {
        self.d.as_ref().unwrap()
    }
}

impl Drop for OnTmpfs {
    fn drop(&mut self) {
        let dir = self.d.as_ref().map(|d| d.dir.clone());
        drop(self.d.take());
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
        if let Some(dir) = dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Fills the filesystem of `dir` with a file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 1 << 20];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            break;
        }
    }
    // Then byte by byte, so not even a page is left.
    while f.write_all(&chunk[..4096]).is_ok() {}
    while f.write_all(&chunk[..1]).is_ok() {}
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_resource_exhausted_and_loses_no_exit() {
    let t = OnTmpfs::start("diskfull", "48m").await;
    let d = t.d();
    let mut api = d.api().await;
    let id = started(&mut api, spec("victim", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    let mut ev = d.events(&[]).await;
    let filler = fill(&d.root);

    // The database has room inside its file for a while; then writes
    // fail, saying which filesystem is full, and leave nothing behind.
    // (Space a failed write gave back may let a later one through.)
    let (mut made, mut failed) = (0, 0);
    for i in 0..20_000 {
        match api.create(spec(&format!("new{i}"), &["true"])).await {
            Ok(_) => made += 1,
            Err(err) => {
                assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
                assert!(
                    err.message()
                        .contains(&format!("filesystem of {} is full", d.root.display())),
                    "{err:?}"
                );
                failed += 1;
                if failed == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(failed, 5, "the store never filled");
    let all = api
        .list(pb::ListRequest { all: true })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(all.len(), made + 1);
    assert_eq!(
        std::fs::read_dir(d.root.join("containers"))
            .unwrap()
            .count(),
        made + 1
    );

    // The container dies while the disk is full: its exit is kept.
    // SAFETY: kill(2) on the container's PID 1, a process of this test.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Space comes back: the daemon carries on by itself.
    std::fs::remove_file(&filler).unwrap();
    let got: Vec<_> = ev
        .until(Action::Die)
        .await
        .into_iter()
        .filter(|e| e.id == id)
        .collect();
    assert_eq!(brief(&got), vec![(Action::Die, 9, Some(137))]);
    let exit = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((exit.exit_code, exit.signal), (137, 9));
    let other = started(&mut api, spec("after", &["true"])).await;
    assert_eq!(finished(&mut api, &other).await.0, 0);
}
