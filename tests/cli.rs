//! The command line as a Docker user drives it: a foreground run passes
//! signals on; ps, inspect, events and stats take Docker's flags and Go
//! templates; restart, top, rename, prune, version and info; events
//! follows the daemon through restarts.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Waits until `name` is running, and returns its PID 1.
async fn running(d: &Daemon, name: &str) -> u32 {
    let mut api = d.api().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let req = berth::pb::InspectRequest { id: name.into() };
        if let Ok(r) = api.inspect(req).await {
            let state = r.into_inner().container.and_then(|c| c.state);
            if let Some(s) = state.filter(|s| s.status == berth::pb::Status::Running as i32) {
                return s.pid;
            }
        }
        assert!(Instant::now() < deadline, "{name} never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a spawned CLI to end.
fn ended(mut child: std::process::Child) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the CLI did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreground_run_passes_signals_on() {
    use std::os::unix::process::ExitStatusExt;
    let d = Daemon::start("cli-sigproxy").await;
    let rootfs = rootfs().display().to_string();
    // Ctrl-C reaches the container, which exits 3; the CLI exits 3.
    let script = r#"trap 'echo got INT; exit 3' INT; echo ready; while :; do sleep 0.1; done"#;
    let child = cli(&d, &["run", "--name", "int", &rootfs, "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    running(&d, "int").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(child.id() as i32, libc::SIGINT);
    let o = ended(child);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(stdout(&o), "ready\ngot INT\n");

    // USR1, then TERM, each as the container's own.
    let script =
        r#"trap 'echo usr1' USR1; trap 'echo term; exit 4' TERM; while :; do sleep 0.1; done"#;
    let child = cli(&d, &["run", "--name", "term", &rootfs, "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    running(&d, "term").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(child.id() as i32, libc::SIGUSR1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill(child.id() as i32, libc::SIGTERM);
    let o = ended(child);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert_eq!(stdout(&o), "usr1\nterm\n");

    // --sig-proxy=false: the signal ends the CLI alone.
    let child = cli(
        &d,
        &[
            "run",
            "--sig-proxy=false",
            "--name",
            "alone",
            &rootfs,
            "sleep",
            "1000",
        ],
    )
    .spawn()
    .unwrap();
    running(&d, "alone").await;
    kill(child.id() as i32, libc::SIGINT);
    let o = ended(child);
    assert_eq!(o.status.signal(), Some(libc::SIGINT), "{o:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    running(&d, "alone").await;
    ok(berth(&d, &["rm", "-f", "alone"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn events_follow_the_daemon_through_restarts() {
    let mut d = Daemon::start("cli-events-restart").await;
    let rootfs = rootfs().display().to_string();
    let err = d.dir.join("events.err");
    let mut cmd = cli(&d, &["events", "--since", "0", "--format", "json"]);
    cmd.stderr(std::fs::File::create(&err).unwrap());
    let (mut child, lines) = stream_lines(cmd);
    let next = || {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("an event line");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let what = match v["action"].as_str().unwrap() {
            "daemon_start" => "daemon start".to_string(),
            action => format!("{action} {}", v["name"].as_str().unwrap()),
        };
        (v["seq"].as_u64().unwrap(), what)
    };
    assert_eq!(next(), (1, "daemon start".into()));
    ok(berth(&d, &["create", "--name", "a", &rootfs, "true"]));
    // Killed at once: the CLI may not have read the create yet.
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    ok(berth(&d, &["create", "--name", "b", &rootfs, "true"]));
    assert_eq!(next(), (2, "create a".into()));
    assert_eq!(next(), (3, "daemon start".into()));
    assert_eq!(next(), (4, "create b".into()));
    // A clean shutdown is an end the CLI did not ask for either.
    d.stop_daemon(libc::SIGTERM);
    d.spawn().await;
    ok(berth(&d, &["rm", "a", "b"]));
    assert_eq!(next(), (5, "daemon start".into()));
    assert_eq!(next(), (6, "destroy a".into()));
    assert_eq!(next(), (7, "destroy b".into()));
    assert!(child.try_wait().unwrap().is_none(), "the CLI ended");
    let _ = child.kill();
    let _ = child.wait();
    let said = std::fs::read_to_string(&err).unwrap();
    let lost: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("lost the connection"))
        .collect();
    assert_eq!(lost.len(), 2, "{said}");
    assert!(
        lost[1].contains("the daemon is shutting down") && lost[1].ends_with("after seq 4"),
        "{said}"
    );
    assert_eq!(
        said.lines()
            .filter(|l| l.contains("reconnected to berthd; resuming after seq"))
            .count(),
        2,
        "{said}"
    );
}
