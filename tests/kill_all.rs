//! Nothing outlives a container, end to end: what PID 1 leaves behind is
//! killed when it exits, and kill --all reaches every process.

mod common;

use berth::pb::{self, Action};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn nothing_outlives_pid1() {
    let d = Daemon::start("outlive").await;
    let mut api = d.api().await;
    let share = d.share("s");
    // Background children and a daemonized grandchild (its parent gone),
    // then PID 1 waits.
    let script =
        "sleep 1000 & sh -c 'sleep 1000 & exit 0'; sleep 1000 & echo ready > /s/ready; wait";
    let id = started(&mut api, shared(&d, "leaky", &["sh", "-c", script])).await;
    read_when_ready(&share.join("ready")).await;
    // And a process from outside, put into the container's cgroup (as an
    // exec'd process would be): the pid namespace's end does not reach it.
    let mut outsider = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    for dir in cgroup_dirs(&id) {
        std::fs::write(dir.join("cgroup.procs"), outsider.id().to_string()).unwrap();
    }
    let pids = cgroup_pids(&id);
    assert_eq!(
        pids.len(),
        5,
        "sh, two sleeps, orphaned sleep, outsider: {pids:?}"
    );
    assert!(pids.contains(&outsider.id()));
    let pid1 = status(&mut api, &id).await.pid;
    // SIGKILL to PID 1 alone.
    nix_kill(pid1 as i32);
    assert_eq!(wait(&mut api, &id).await.exit_code, 137);
    let deadline = Instant::now() + Duration::from_secs(5);
    let reaped = loop {
        if let Some(status) = outsider.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = outsider.kill();
            panic!("the process put into the container's cgroup outlived it");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&reaped),
        Some(9)
    );
    for p in &pids {
        assert!(!alive(*p), "pid {p} outlived its container");
    }
    assert!(
        cgroup_dirs(&id).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(&id)
    );
}

fn nix_kill(pid: i32) {
    assert!(common::kill(pid, libc::SIGKILL));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_all_signals_every_process() {
    let d = Daemon::start("killall").await;
    let mut api = d.api().await;
    let mut events = d.events(&[]).await;
    let share = d.share("s");
    // PID 1 has no TERM handler, so TERM to it alone does nothing; its
    // children die of it, and then it exits 5.
    let script =
        "sleep 1000 & sleep 1000 & echo ready > /s/ready; wait; echo children gone; exit 5";
    let id = started(&mut api, shared(&d, "family", &["sh", "-c", script])).await;
    read_when_ready(&share.join("ready")).await;
    let term = |all| pb::KillRequest {
        id: id.clone(),
        signal: "TERM".into(),
        all,
    };
    api.kill(term(false)).await.unwrap();
    let kill = events.until(Action::Kill).await;
    assert_eq!(kill.last().unwrap().signal, 15);
    events.quiet().await;
    assert_eq!(cgroup_pids(&id).len(), 3);
    api.kill(term(true)).await.unwrap();
    let seen = events.until(Action::Die).await;
    assert_eq!(
        brief(&seen),
        vec![(Action::Kill, 15, None), (Action::Die, 0, Some(5))]
    );
    let logs = api
        .logs(pb::LogsRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(logs.line, b"children gone\n");
    let err = api.kill(term(true)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}
