//! Who may call the API: the unix socket is root's and its group's only,
//! and the daemon refuses a socket it cannot secure.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;
/// The "daemon" group: not nobody's.
const OTHER_GROUP: u32 = 1;

/// `berth ps` run as `uid`:`gid` without supplementary groups.
fn ps_as(d: &Daemon, uid: u32, gid: u32) -> Output {
    Command::new(berth_cli())
        .args(["--host", &d.host(), "ps"])
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_is_for_root_and_its_group_only() {
    // Without --group: root only.
    let d = Daemon::start("sockroot").await;
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o660, 0, 0)
    );
    let o = ps_as(&d, NOBODY, NOGROUP);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{o:?}"
    );
    drop(d);

    // With --group nogroup: its members, and nobody else.
    let d = Daemon::start_with_args("sockgroup", &["--group", "nogroup"]).await;
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o660, 0, NOGROUP)
    );
    let o = ps_as(&d, NOBODY, NOGROUP);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("CONTAINER ID"));
    let o = ps_as(&d, NOBODY, OTHER_GROUP);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{o:?}"
    );
    // Each caller is logged with its credentials.
    assert!(
        d.log().lines().any(|l| l.contains("client connected")
            && l.contains("uid=65534")
            && l.contains("gid=65534")),
        "{}",
        d.log()
    );
}

/// Runs berthd with `args` and returns how it ended (it must end).
fn berthd_fails(args: &[&str]) -> Output {
    let mut child = Command::new(berthd())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("berthd {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_daemon_refuses_a_socket_it_cannot_secure() {
    let mut raw = [0u8; 4];
    getrandom(&mut raw);
    let dir = std::env::temp_dir().join(format!(
        "berth-test-insecure-{:02x}{:02x}{:02x}{:02x}",
        raw[0], raw[1], raw[2], raw[3]
    ));
    let open = dir.join("open");
    std::fs::create_dir_all(&open).unwrap();
    // Anyone could replace a socket here.
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let sock = open.join("berth.sock");
    let root = dir.join("root");
    let o = berthd_fails(&[
        "--socket",
        sock.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("cannot secure the socket"), "{err}");
    assert!(!sock.exists());
    // Nor without the group it is told to use.
    let o = berthd_fails(&[
        "--socket",
        dir.join("berth.sock").to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--group",
        "no-such-group-here",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no group \"no-such-group-here\""));
    assert!(
        !root.exists(),
        "nothing is set up before the socket is secured"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_mount_destination_stays_inside_the_container() {
    let d = Daemon::start("symlinkdest").await;
    let mut api = d.api().await;
    std::fs::write(d.share("s").join("marker"), "shared\n").unwrap();
    let outside = d.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // The mount goes to /evil/m; /evil is a link to a host directory, as
    // a container could have left one in its own layer.
    let mut req = spec("esc", &["cat", "/evil/m/marker"]);
    req.mounts.push(berth::pb::Mount {
        source: d.share("s").display().to_string(),
        destination: "/evil/m".into(),
        read_only: true,
    });
    let id = api.create(req).await.unwrap().into_inner().id;
    std::os::unix::fs::symlink(&outside, d.container_dir(&id).join("upper/evil")).unwrap();
    api.start(berth::pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let exit = api
        .wait(berth::pb::WaitRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The link resolved inside the container: the host directory is
    // untouched, and the container reads the mount through its link.
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(exit.exit_code, 0);
    let mut logs = api
        .logs(berth::pb::LogsRequest {
            id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(logs.message().await.unwrap().unwrap().line, b"shared\n");
}
