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
    let all = listed(&mut api).await;
    assert_eq!(all.len(), made + 1);
    assert_eq!(
        std::fs::read_dir(d.root.join("containers"))
            .unwrap()
            .count(),
        made + 1
    );

    // The container dies while the disk is full: its exit is kept.
    common::kill(pid as i32, libc::SIGKILL);
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

/// Two containers on a network of their own, one running, one created;
/// the daemon is then killed.
async fn two_containers(d: &mut Daemon) -> (String, String, u32) {
    let mut api = d.api().await;
    let app = pb::CreateNetworkRequest {
        name: "app".into(),
        ..Default::default()
    };
    networks(d).await.create(app).await.unwrap();
    let on_app = |mut req: pb::CreateRequest| {
        req.network = "app".into();
        req
    };
    let alive = started(&mut api, on_app(spec("alive", &["sleep", "1000"]))).await;
    let pid = status(&mut api, &alive).await.pid;
    let made = created(&mut api, on_app(spec("made", &["true"]))).await;
    d.stop_daemon(libc::SIGKILL);
    (alive, made, pid)
}

/// berthd on this root refuses to start; its stderr.
fn refused_start(d: &Daemon) -> String {
    let o = berthd_fails(&[
        "--socket",
        d.socket.to_str().unwrap(),
        "--root",
        d.root.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let db = d.root.join("berth.redb");
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(err.contains("--rebuild"), "{err}");
    err
}

/// After --rebuild: both containers and their network are back as they
/// were, and work.
async fn rebuilt(d: &mut Daemon, alive: &str, made: &str, pid: u32) {
    d.args = vec!["--rebuild".into()];
    d.spawn().await;
    let mut api = d.api().await;
    let st = status(&mut api, alive).await;
    assert_eq!((st.status, st.pid), (pb::Status::Running as i32, pid));
    let app = bridge_of(d, "app").await;
    let on = st.network.unwrap_or_default();
    assert_eq!(
        (on.network_id.as_str(), on.network.as_str()),
        (app.id.as_str(), "app")
    );
    assert_eq!(
        status(&mut api, made).await.status,
        pb::Status::Created as i32
    );
    let mut ev = d.events(&[alive]).await;
    api.stop(pb::StopRequest {
        id: alive.into(),
        timeout_seconds: Some(0),
        signal: None,
    })
    .await
    .unwrap();
    assert_eq!(
        brief(&ev.until(Action::Stop).await),
        vec![
            (Action::Kill, 15, None),
            (Action::Kill, 9, None),
            (Action::Die, 9, Some(137)),
            (Action::Stop, 0, None)
        ]
    );
    assert_eq!(finished(&mut api, made).await.0, 0, "never started: exit 0");
    for id in [alive, made] {
        assert_eq!(traces(&d.root, id), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_or_missing_database_is_refused_and_rebuilt_from_the_directories() {
    let mut d = Daemon::start("nodb").await;
    let (alive, made, pid) = two_containers(&mut d).await;
    let db = d.root.join("berth.redb");
    // Empty, then gone: refused both times, nothing deleted, nothing killed.
    std::fs::File::create(&db).unwrap();
    refused_start(&d);
    std::fs::remove_file(&db).unwrap();
    let err = refused_start(&d);
    assert!(err.contains("missing or empty"), "{err}");
    assert!(d.container_dir(&alive).exists() && d.container_dir(&made).exists());
    assert!(common::alive(pid));
    rebuilt(&mut d, &alive, &made, pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_database_is_refused_without_a_panic_and_set_aside() {
    let mut d = Daemon::start("baddb").await;
    let (alive, made, pid) = two_containers(&mut d).await;
    let db = d.root.join("berth.redb");
    // Its header overwritten.
    let mut data = std::fs::read(&db).unwrap();
    data[..4096].fill(0x5a);
    std::fs::write(&db, &data).unwrap();
    let err = refused_start(&d);
    assert!(err.contains("cannot be read"), "{err}");
    assert!(common::alive(pid));
    rebuilt(&mut d, &alive, &made, pid).await;
    // The damaged file is kept beside the new one.
    let kept = std::fs::read_dir(&d.root).unwrap().flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with("berth.redb.damaged-")
    });
    assert!(kept);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_it_cannot_read_is_an_error_to_the_subscriber() {
    let mut d = Daemon::start("badjournal").await;
    let mut api = d.api().await;
    let filler = started(&mut api, spec("filler", &["sleep", "1000"])).await;
    let kill = |api: &mut Api| {
        let id = filler.clone();
        let mut api = api.clone();
        async move {
            api.kill(pb::KillRequest {
                id,
                signal: "CONT".into(),
                all: false,
            })
            .await
            .unwrap();
        }
    };
    for _ in 0..1500 {
        kill(&mut api).await;
    }
    // One container whose events carry a marker, then gone.
    let mut req = spec("marked", &["true"]);
    req.labels
        .insert("m".into(), "MARKER-0123456789-MARKER".into());
    let id = created(&mut api, req).await;
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
    for _ in 0..1500 {
        kill(&mut api).await;
    }
    d.stop_daemon(libc::SIGTERM);
    // Cut the length of the marker's field in the journal's protobuf (not
    // in JSON, where a quote comes before it).
    let db = d.root.join("berth.redb");
    let mut data = std::fs::read(&db).unwrap();
    let marker = b"MARKER-0123456789-MARKER";
    let mut hit = 0;
    for i in 1..data.len() - marker.len() {
        if &data[i..i + marker.len()] == marker && data[i - 1] != b'"' {
            data[i - 1] = 0xff;
            hit += 1;
        }
    }
    assert!(hit > 0, "marker not found");
    std::fs::write(&db, &data).unwrap();
    d.spawn().await;
    // A replay of everything never ends as if it were complete.
    let mut ev = d.replay().await;
    let mut n = 0;
    let end = loop {
        match ev.message().await {
            Ok(Some(_)) => n += 1,
            other => break other,
        }
    };
    let err = end.expect_err(&format!("the replay ended with OK after {n} events"));
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert!(err.message().contains("damaged"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn directories_the_database_does_not_know_are_set_aside_not_deleted() {
    let mut d = Daemon::start("orphans").await;
    let mut api = d.api().await;
    let id = created(&mut api, spec("real", &["true"])).await;
    d.stop_daemon(libc::SIGTERM);
    // A container the database does not know, with a file in its layer;
    // and a directory that never held a container.
    let stray = "f".repeat(64);
    let dir = d.container_dir(&stray);
    std::fs::create_dir_all(dir.join("upper")).unwrap();
    std::fs::write(dir.join("upper/precious"), "data\n").unwrap();
    let copy = std::fs::read_to_string(d.container_dir(&id).join("container.json")).unwrap();
    std::fs::write(dir.join("container.json"), copy.replace(&id, &stray)).unwrap();
    std::fs::create_dir_all(d.container_dir("junk").join("upper")).unwrap();
    d.spawn().await;
    let aside = d.root.join("orphaned").join(&stray);
    assert_eq!(
        std::fs::read_to_string(aside.join("upper/precious")).unwrap(),
        "data\n"
    );
    assert!(!dir.exists() && !d.container_dir("junk").exists());
    assert!(d.log().contains("set aside"), "{}", d.log());
    let mut api = d.api().await;
    let all = listed(&mut api).await;
    assert_eq!(all.len(), 1);
}

/// A removed container's directory leaves `containers/` before the
/// remove is answered and is deleted after; what a daemon killed meanwhile
/// left under `removed/` is deleted at its next start.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_containers_directory_goes_even_across_a_kill() {
    let mut d = Daemon::start("discard").await;
    let mut api = d.api().await;
    let id = created(&mut api, spec("gone", &["true"])).await;
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: false,
    })
    .await
    .unwrap();
    assert!(!d.container_dir(&id).exists());
    let trash = d.root.join("removed");
    until(
        || !trash.join(&id).exists(),
        "the removed directory deleted",
    )
    .await;
    // As a kill -9 leaves one: moved, not yet deleted.
    d.stop_daemon(libc::SIGKILL);
    let left = trash.join("e".repeat(64));
    std::fs::create_dir_all(left.join("upper/etc")).unwrap();
    std::fs::write(left.join("upper/etc/data"), "x").unwrap();
    d.spawn().await;
    until(|| !left.exists(), "the leftover deleted at start").await;
}

async fn until(done: impl Fn() -> bool, what: &str) {
    let t = std::time::Instant::now();
    while !done() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A second berthd on a live root is refused up front, --rebuild
/// included, and changes nothing: the first keeps its database and its
/// containers. The lock dies with its holder: after a kill -9 the root is
/// free again.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_in_use_is_refused_to_a_second_daemon() {
    let mut d = Daemon::start("root-in-use").await;
    let mut api = d.api().await;
    let id = started(&mut api, spec("kept", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    let before = std::fs::read_dir(&d.root).unwrap().count();
    let other = d.dir.join("other.sock");
    for extra in [&[][..], &["--rebuild"][..]] {
        for socket in [&d.socket, &other] {
            let mut args = vec![
                "--socket",
                socket.to_str().unwrap(),
                "--root",
                d.root.to_str().unwrap(),
            ];
            args.extend_from_slice(extra);
            let o = berthd_fails(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{err}");
            let expected = format!(
                "another berthd (pid {}) holds {}",
                d.pid(),
                d.root.display()
            );
            assert!(err.contains(&expected), "{args:?}: {err}");
        }
    }
    // Nothing was set aside or added, and the first daemon still serves.
    assert_eq!(std::fs::read_dir(&d.root).unwrap().count(), before);
    assert!(!other.exists());
    let st = status(&mut api, &id).await;
    assert_eq!((st.status, st.pid), (pb::Status::Running as i32, pid));
    // A kill -9 leaves no stale lock: the next daemon starts, picks the
    // container up, and says who holds the root now.
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    let mut api = d.api().await;
    assert_eq!(status(&mut api, &id).await.pid, pid);
    let held = std::fs::read_to_string(d.root.join("berthd.lock")).unwrap();
    assert_eq!(held.trim(), d.pid().to_string());
    stop(&mut api, &id, Some(0)).await;
}
