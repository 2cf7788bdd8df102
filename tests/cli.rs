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
