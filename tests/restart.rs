//! Containers outlive the daemon: after SIGTERM or kill -9 of berthd they
//! keep running, the daemon re-attaches, and exits that happened while it
//! was down are reported with their real codes and times.

mod common;

use berth::pb::{self, Action};
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn until_dead(pid: u32) {
    let t = Instant::now();
    while alive(pid) {
        assert!(t.elapsed() < Duration::from_secs(10), "{pid} did not exit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn until_monitors_gone(d: &Daemon) {
    let t = Instant::now();
    while !monitor_pids(&d.root).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "monitors did not exit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn resume(seq: u64) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        since_seq: Some(seq),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_outlive_kill_9_and_everything_works_after() {
    let mut d = Daemon::start("kill9").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    let run_id = started(&mut api, spec("run", &["sleep", "1000"])).await;
    let paused = started(&mut api, spec("paused", &["sleep", "1000"])).await;
    api.pause(pb::PauseRequest { id: paused.clone() })
        .await
        .unwrap();
    let last = ev.until(Action::Pause).await.last().unwrap().seq;
    let pid = status(&mut api, &run_id).await.pid;
    let paused_pid = status(&mut api, &paused).await.pid;

    d.stop_daemon(libc::SIGKILL);
    assert!(
        alive(pid) && alive(paused_pid),
        "containers must outlive the daemon"
    );
    d.spawn().await;
    let mut api = d.api().await;
    let mut ev = d.subscribe(resume(last)).await.unwrap();
    let start = ev.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (start.action, start.resumed_from_seq),
        (Action::DaemonStart as i32, last)
    );
    let st = status(&mut api, &run_id).await;
    assert_eq!((st.status, st.pid), (pb::Status::Running as i32, pid));
    let st = status(&mut api, &paused).await;
    assert_eq!((st.status, st.pid), (pb::Status::Paused as i32, paused_pid));
    ev.quiet().await;

    // Pause, unpause, kill, wait and stop work on re-attached containers.
    api.unpause(pb::UnpauseRequest { id: paused.clone() })
        .await
        .unwrap();
    api.pause(pb::PauseRequest { id: run_id.clone() })
        .await
        .unwrap();
    api.unpause(pb::UnpauseRequest { id: run_id.clone() })
        .await
        .unwrap();
    let waiter = {
        let (host, id) = (d.host(), run_id.clone());
        tokio::spawn(async move {
            let mut api =
                pb::containers_client::ContainersClient::new(berth::connect(&host).await.unwrap());
            api.wait(pb::WaitRequest {
                id,
                condition: pb::WaitCondition::NextExit as i32,
                exit_count: None,
            })
            .await
            .unwrap()
            .into_inner()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    api.kill(pb::KillRequest {
        id: run_id.clone(),
        signal: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(waiter.await.unwrap().exit_code, 137);
    api.stop(pb::StopRequest {
        id: paused.clone(),
        timeout_seconds: Some(1),
        signal: None,
    })
    .await
    .unwrap();
    let got = ev.until(Action::Stop).await;
    let of = |id: &str| -> Seen {
        brief(
            &got.iter()
                .filter(|e| e.id == id)
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        of(&run_id),
        vec![
            (Action::Pause, 0, None),
            (Action::Unpause, 0, None),
            (Action::Kill, 9, None),
            (Action::Die, 9, Some(137)),
        ]
    );
    assert_eq!(
        of(&paused),
        vec![
            (Action::Unpause, 0, None),
            (Action::Kill, 15, None),
            (Action::Kill, 9, None),
            (Action::Die, 9, Some(137)),
            (Action::Stop, 0, None),
        ]
    );
    assert!(!alive(pid) && !alive(paused_pid));
    assert!(monitor_pids(&d.root).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn exits_while_the_daemon_is_down_are_reported_when_it_returns() {
    let mut d = Daemon::start("downdie").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    let go = d.share("s").join("go");
    // Exits 7 once /s/go exists.
    let quits = started(
        &mut api,
        shared(
            &d,
            "quits",
            &[
                "sh",
                "-c",
                "while [ ! -e /s/go ]; do sleep 0.05; done; exit 7",
            ],
        ),
    )
    .await;
    // On TERM, exits 3 once /s/go exists.
    let stopping = started(&mut api,
        shared(
            &d,
            "stopping",
            &[
                "sh",
                "-c",
                "trap 'while [ ! -e /s/go ]; do sleep 0.05; done; exit 3' TERM; echo ok > /s/ready; while :; do sleep 0.05; done",
            ],
        ),
    )
    .await;
    read_when_ready(&d.share("s").join("ready")).await;
    let pids = [
        status(&mut api, &quits).await.pid,
        status(&mut api, &stopping).await.pid,
    ];
    // A stop whose client and daemon both go away.
    let stop = d.stop_in_background(&stopping, 100);
    let last = ev.until(Action::Kill).await.last().unwrap().seq;
    d.stop_daemon(libc::SIGKILL);
    let _ = stop.await;
    std::fs::write(&go, "").unwrap();
    for pid in pids {
        until_dead(pid).await;
    }
    until_monitors_gone(&d).await;
    d.spawn().await;
    let mut api = d.api().await;
    let mut ev = d.subscribe(resume(last)).await.unwrap();
    let start = ev.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(start.action, Action::DaemonStart as i32);
    let mut rest = vec![];
    for _ in 0..3 {
        rest.push(ev.next(Duration::from_secs(5)).await.unwrap());
    }
    ev.quiet().await;
    let of = |id: &str| -> Vec<pb::Event> { rest.iter().filter(|e| e.id == id).cloned().collect() };
    assert_eq!(brief(&of(&quits)), vec![(Action::Die, 0, Some(7))]);
    assert_eq!(
        brief(&of(&stopping)),
        vec![(Action::Die, 0, Some(3)), (Action::Stop, 0, None)]
    );
    // The die events carry the real exit time, from before the restart.
    for id in [&quits, &stopping] {
        let die = of(id)[0].clone();
        let st = status(&mut api, id).await;
        assert_eq!(st.status, pb::Status::Exited as i32);
        assert_eq!(die.time, st.finished_at);
        assert!(die.time.unwrap().seconds <= start.time.unwrap().seconds);
        assert!(
            (die.time.unwrap().seconds, die.time.unwrap().nanos)
                < (start.time.unwrap().seconds, start.time.unwrap().nanos)
        );
        assert_eq!(st.exit_count, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_in_progress_finishes_after_a_restart() {
    let mut d = Daemon::start("stopresume").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["s"]).await;
    // PID 1 ignores TERM: only the stop's SIGKILL ends it.
    let id = started(&mut api, spec("s", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    let t = Instant::now();
    let stop = d.stop_in_background(&id, 2);
    let last = ev.until(Action::Kill).await.last().unwrap().seq;
    d.stop_daemon(libc::SIGKILL);
    let _ = stop.await;
    assert!(alive(pid));
    d.spawn().await;
    let mut ev = d
        .subscribe(pb::SubscribeRequest {
            since_seq: Some(last),
            containers: vec!["s".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        brief(&ev.until(Action::Stop).await),
        escalated()[1..].to_vec()
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(!alive(pid));
    let mut api = d.api().await;
    assert_eq!(status(&mut api, &id).await.exit_code, 137);
}

/// Until berthd has logged a connection from process `pid`.
async fn until_connected(d: &Daemon, pid: u32) {
    let t = Instant::now();
    let seen = |log: String| {
        log.lines()
            .filter(|l| l.contains("client connected"))
            .any(|l| l.split_whitespace().any(|w| w == format!("pid={pid}")))
    };
    while !seen(d.log()) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{pid} never connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Connections to the socket at `path`: /proc/net/unix lists each with
/// the listener's path, connecting (02) until accepted, then connected
/// (03).
fn connections_to(path: &std::path::Path) -> usize {
    let path = path.to_string_lossy();
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            matches!(f.get(5), Some(&"02" | &"03")) && f.get(7) == Some(&path.as_ref())
        })
        .count()
}

/// Waits until the daemon's socket has more connections than `before`: a
/// client reached it, though it is stopped and cannot log the connection.
async fn until_connection(d: &Daemon, before: usize) {
    let t = Instant::now();
    while connections_to(&d.socket) <= before {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the CLI never connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `berth wait [extra] w` against the test's daemon.
fn berth_wait(d: &Daemon, extra: &[&str]) -> std::process::Child {
    Command::new(berth_cli())
        .args(["--host", &d.host(), "wait"])
        .args(extra)
        .arg("w")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The daemon killed -9, container `pid` killed while it is down, the
/// daemon started again.
async fn restart_while_exiting(d: &mut Daemon, pid: u32) {
    d.stop_daemon(libc::SIGKILL);
    common::kill(pid as i32, libc::SIGKILL);
    until_dead(pid).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.spawn().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn berth_wait_keeps_waiting_through_a_restart() {
    let mut d = Daemon::start("waitcli").await;
    let mut api = d.api().await;
    let id = started(&mut api, spec("w", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    let not_running = berth_wait(&d, &[]);
    let next_exit = berth_wait(&d, &["--condition", "next-exit"]);
    // Both have reached the daemon (a CLI that cannot connect at all
    // fails, as docker's does).
    for cli in [&not_running, &next_exit] {
        until_connected(&d, cli.id()).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    restart_while_exiting(&mut d, pid).await;
    for child in [not_running, next_exit] {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "137\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_survive_a_daemon_restart() {
    let mut d = Daemon::start("restart").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    let exited = started(&mut api, spec("exited", &["sh", "-c", "exit 9"])).await;
    ev.until(Action::Die).await;
    let created = api
        .create(spec("created", &["true"]))
        .await
        .unwrap()
        .into_inner()
        .id;
    let running = api
        .create(spec("running", &["sleep", "1000"]))
        .await
        .unwrap()
        .into_inner()
        .id;
    api.start(pb::StartRequest {
        id: running.clone(),
    })
    .await
    .unwrap();
    let pid = status(&mut api, &running).await.pid;
    drop(ev);
    d.stop_daemon(libc::SIGTERM);
    assert!(alive(pid), "the container must outlive the daemon");
    d.spawn().await;
    let mut api = d.api().await;
    let list = api
        .list(pb::ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.containers.len(), 3);
    let st = status(&mut api, &exited).await;
    assert_eq!((st.status, st.exit_code), (pb::Status::Exited as i32, 9));
    assert_eq!(
        status(&mut api, &created).await.status,
        pb::Status::Created as i32
    );
    let st = status(&mut api, &running).await;
    assert_eq!((st.status, st.pid), (pb::Status::Running as i32, pid));
    // Re-attached: kill works and its exit is seen.
    let mut ev = d.events(&["running"]).await;
    api.kill(pb::KillRequest {
        id: running.clone(),
        signal: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        brief(&ev.until(Action::Die).await),
        vec![(Action::Kill, 9, None), (Action::Die, 9, Some(137))]
    );
    assert!(!alive(pid));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exit_while_the_daemon_is_down_is_recorded() {
    let mut d = Daemon::start("downexit").await;
    let mut api = d.api().await;
    let id = started(&mut api, spec("down", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    d.stop_daemon(libc::SIGTERM);
    common::kill(pid as i32, libc::SIGKILL);
    until_monitors_gone(&d).await;
    d.spawn().await;
    let mut api = d.api().await;
    let st = status(&mut api, &id).await;
    assert_eq!(
        (st.status, st.exit_code, st.signal, st.pid),
        (pb::Status::Exited as i32, 137, 9, 0)
    );
    assert!(st.finished_at.is_some());
    // And it can run again.
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(
        status(&mut api, &id).await.status,
        pb::Status::Running as i32
    );
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oom_kill_while_the_daemon_is_down_is_reported_when_it_returns() {
    let mut d = Daemon::start("oomdown").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    // Allocates 200 MiB under a 32 MiB limit once /s/go exists.
    let script =
        "while [ ! -e /s/go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=200M count=1";
    let mut req = shared(&d, "hog", &["sh", "-c", script]);
    req.resources = Some(pb::Resources {
        memory_limit_bytes: Some(32 << 20),
        ..Default::default()
    });
    let id = started(&mut api, req).await;
    let last = ev.until(Action::Start).await.last().unwrap().seq;
    d.stop_daemon(libc::SIGKILL);
    std::fs::write(d.share("s").join("go"), "").unwrap();
    until_monitors_gone(&d).await;
    d.spawn().await;
    let mut api = d.api().await;
    let mut ev = d.subscribe(resume(last)).await.unwrap();
    let mut seen = vec![];
    for _ in 0..3 {
        seen.push(ev.next(Duration::from_secs(5)).await.unwrap());
    }
    ev.quiet().await;
    // The monitor counted the kill; the OOM event comes before die, both
    // with times from before the restart. sh exits 137 for its child.
    assert_eq!(
        brief(&seen),
        vec![
            (Action::DaemonStart, 0, None),
            (Action::Oom, 0, None),
            (Action::Die, 0, Some(137)),
        ]
    );
    assert!(seen[2].oom_killed);
    assert_eq!(seen[1].time, seen[2].time);
    let st = status(&mut api, &id).await;
    assert!(st.oom_killed);
    assert_eq!(st.exit_code, 137);
}

#[tokio::test(flavor = "multi_thread")]
async fn next_exit_wait_survives_a_daemon_that_died_before_answering() {
    let mut d = Daemon::start("waitrace").await;
    let mut api = d.api().await;
    let id = started(&mut api, spec("w", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    // The daemon cannot answer the CLI's first question: it is stopped,
    // then killed, before the CLI learns the exit count to wait past.
    common::kill(d.pid() as i32, libc::SIGSTOP);
    let before = connections_to(&d.socket);
    let child = berth_wait(&d, &["--condition", "next-exit"]);
    until_connection(&d, before).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    restart_while_exiting(&mut d, pid).await;
    let child_pid = child.id() as i32;
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let Ok(out) = out else {
        common::kill(child_pid, libc::SIGKILL);
        panic!("berth wait --condition next-exit missed the exit");
    };
    let out = out.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "137\n", "{stderr}");
}
