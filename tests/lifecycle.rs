//! Every row of DESIGN.md's reference table, end to end: a real berthd,
//! real containers, the exact events with their signals and exit codes.

mod common;

use berth::pb::{self, Action, Status};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

use Action::{Destroy, Die, Kill, Pause, Stop, Unpause};

/// A shell PID 1 that exits 3 on TERM, once its trap is in place.
const TERM_EXITS_3: &str = "trap 'exit 3' TERM; echo ready > /out/ready; sleep 1000 & wait";

#[tokio::test(flavor = "multi_thread")]
async fn create_start_runs_pid1_with_hostname() {
    let d = Daemon::start("run").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["web"]).await;
    let mut req = with_out(
        &d,
        "web",
        &["sh", "-c", "echo $$ > /out/pid; cat /proc/sys/kernel/hostname > /out/host; echo $FOO $HOSTNAME > /out/env; pwd > /out/pwd; sleep 1000"],
    );
    req.hostname = "box".into();
    req.env = vec!["FOO=bar".into()];
    req.working_dir = "/work/dir".into();
    let id = run(&mut api, &mut ev, req).await;
    let share = d.share("web");
    assert_eq!(read_when_ready(&share.join("pid")).await, "1\n");
    assert_eq!(read_when_ready(&share.join("host")).await, "box\n");
    assert_eq!(read_when_ready(&share.join("env")).await, "bar box\n");
    assert_eq!(read_when_ready(&share.join("pwd")).await, "/work/dir\n");
    let st = status(&mut api, &id).await;
    assert_eq!(st.status, Status::Running as i32);
    assert!(alive(st.pid));
    assert!(st.started_at.is_some());
    // Its own pid namespace: the host pid is not 1, and only its processes
    // are visible inside.
    assert_ne!(st.pid, 1);
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_without_term_handler_waits_the_default_grace() {
    let d = Daemon::start("grace").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["g"]).await;
    let id = run(&mut api, &mut ev, spec("g", &["sleep", "1000"])).await;
    let t = Instant::now();
    stop(&mut api, &id, None).await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(9900),
        "stop took {took:?}, grace is 10 s"
    );
    assert!(took < Duration::from_secs(20), "stop took {took:?}");
    let seen = ev.until(Stop).await;
    assert_eq!(brief(&seen), escalated());
    assert_ordered(&seen);
    let st = status(&mut api, &id).await;
    assert_eq!(
        (st.status, st.exit_code, st.signal),
        (Status::Exited as i32, 137, 9)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_returns_at_once_when_term_exits() {
    let d = Daemon::start("term").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["t"]).await;
    let id = run(
        &mut api,
        &mut ev,
        with_out(&d, "t", &["sh", "-c", TERM_EXITS_3]),
    )
    .await;
    read_when_ready(&d.share("t").join("ready")).await;
    let t = Instant::now();
    stop(&mut api, &id, None).await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop waited {:?}",
        t.elapsed()
    );
    let seen = ev.until(Stop).await;
    assert_eq!(
        brief(&seen),
        vec![(Kill, 15, None), (Die, 0, Some(3)), (Stop, 0, None)]
    );
    let waited = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            condition: 0,
            exit_count: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((waited.exit_code, waited.signal), (3, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_timeout_zero_on_sleep_is_137() {
    let d = Daemon::start("zero137").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["z"]).await;
    let id = run(&mut api, &mut ev, spec("z", &["sleep", "1000"])).await;
    stop(&mut api, &id, Some(0)).await;
    let seen = ev.until(Stop).await;
    assert_eq!(brief(&seen), escalated());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_defaults_to_sigkill_without_stop_event() {
    let d = Daemon::start("kill").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["k"]).await;
    let id = run(&mut api, &mut ev, spec("k", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    api.kill(pb::KillRequest {
        id: id.clone(),
        signal: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = ev.until(Die).await;
    assert_eq!(brief(&seen), vec![(Kill, 9, None), (Die, 9, Some(137))]);
    ev.quiet().await;
    assert!(!alive(pid));
    let st = status(&mut api, &id).await;
    assert_eq!(
        (st.status, st.exit_code, st.pid),
        (Status::Exited as i32, 137, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_hup_without_handler_leaves_it_running() {
    let d = Daemon::start("hup").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["h"]).await;
    let id = run(&mut api, &mut ev, spec("h", &["sleep", "1000"])).await;
    for signal in ["HUP", "SIGHUP", "1"] {
        api.kill(pb::KillRequest {
            id: id.clone(),
            signal: signal.into(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(
            brief(&[ev.next(Duration::from_secs(5)).await.unwrap()]),
            vec![(Kill, 1, None)]
        );
    }
    ev.quiet().await;
    let st = status(&mut api, &id).await;
    assert_eq!(st.status, Status::Running as i32);
    assert!(alive(st.pid));
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}

/// Reads the counter a container keeps writing.
fn counter(d: &Daemon, name: &str) -> u64 {
    std::fs::read_to_string(d.share(name).join("n"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_freezes_and_unpause_resumes() {
    let d = Daemon::start("pause").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["p"]).await;
    let script = "i=0; while :; do i=$((i+1)); echo $i > /out/n; done";
    let id = run(&mut api, &mut ev, with_out(&d, "p", &["sh", "-c", script])).await;
    while counter(&d, "p") < 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    api.pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(brief(&ev.until(Pause).await), vec![(Pause, 0, None)]);
    let st = status(&mut api, &id).await;
    assert_eq!(st.status, Status::Paused as i32);
    assert!(frozen(&id), "the cgroup is not frozen");
    // Frozen: the counter does not move.
    let before = counter(&d, "p");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counter(&d, "p"), before);
    // Pausing twice is refused; so is unpausing twice, later.
    let err = api
        .pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    api.unpause(pb::UnpauseRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(brief(&ev.until(Unpause).await), vec![(Unpause, 0, None)]);
    let t = Instant::now();
    while counter(&d, "p") <= before {
        assert!(t.elapsed() < Duration::from_secs(5), "did not resume");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = api
        .unpause(pb::UnpauseRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("not paused"), "{}", err.message());
    ev.quiet().await;
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_of_paused_container_unpauses_then_kills() {
    let d = Daemon::start("pstop").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["ps"]).await;
    let id = run(&mut api, &mut ev, spec("ps", &["sleep", "1000"])).await;
    api.pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap();
    ev.until(Pause).await;
    stop(&mut api, &id, Some(1)).await;
    let seen = ev.until(Stop).await;
    assert_eq!(
        brief(&seen),
        vec![
            (Kill, 15, None),
            (Unpause, 0, None),
            (Kill, 9, None),
            (Die, 9, Some(137)),
            (Stop, 0, None)
        ]
    );
    assert_eq!(status(&mut api, &id).await.exit_code, 137);
}

/// A server that saves on TERM, paused, then stopped with the default
/// grace: thawed right after the TERM, it saves and exits 0 (held frozen
/// until the grace ran out, it would be killed and lose its data). A TERM
/// sent with kill to a paused container thaws it the same way.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_server_stopped_or_sent_term_saves_and_exits_0() {
    let d = Daemon::start("psave").await;
    let mut api = d.api().await;
    let share = d.share("s");
    let server = |file: &str| {
        format!(
            "trap 'echo saved > /s/{file}; exit 0' TERM; echo up > /s/{file}.up; \
             while :; do sleep 0.05; done"
        )
    };
    for (name, by_stop) in [("saver", true), ("termed", false)] {
        let mut ev = d.events(&[name]).await;
        let script = server(name);
        let id = run(&mut api, &mut ev, shared(&d, name, &["sh", "-c", &script])).await;
        read_when_ready(&share.join(format!("{name}.up"))).await;
        api.pause(pb::PauseRequest { id: id.clone() })
            .await
            .unwrap();
        ev.until(Pause).await;
        match by_stop {
            true => stop(&mut api, &id, None).await,
            false => {
                api.kill(pb::KillRequest {
                    id: id.clone(),
                    signal: "TERM".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            }
        }
        let mut expected = vec![(Kill, 15, None), (Unpause, 0, None), (Die, 0, Some(0))];
        let seen = match by_stop {
            true => {
                expected.push((Stop, 0, None));
                ev.until(Stop).await
            }
            false => ev.until(Die).await,
        };
        assert_eq!(brief(&seen), expected, "{name}");
        assert_eq!(status(&mut api, &id).await.exit_code, 0, "{name}");
        let saved = std::fs::read_to_string(share.join(name)).unwrap();
        assert_eq!(saved, "saved\n", "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_of_paused_container() {
    let d = Daemon::start("pkill").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["pk"]).await;
    let id = run(&mut api, &mut ev, spec("pk", &["sleep", "1000"])).await;
    api.pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap();
    ev.until(Pause).await;
    api.kill(pb::KillRequest {
        id: id.clone(),
        signal: "KILL".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        brief(&ev.until(Die).await),
        vec![(Kill, 9, None), (Die, 9, Some(137))]
    );
    ev.quiet().await;
    assert_eq!(status(&mut api, &id).await.status, Status::Exited as i32);
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_refuses_running_or_paused_without_force() {
    let d = Daemon::start("rmrun").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["r"]).await;
    let id = run(&mut api, &mut ev, spec("r", &["sleep", "1000"])).await;
    for paused in [false, true] {
        if paused {
            api.pause(pb::PauseRequest { id: id.clone() })
                .await
                .unwrap();
            ev.until(Pause).await;
        }
        let err = api
            .remove(pb::RemoveRequest {
                id: id.clone(),
                force: false,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(
            err.message().contains("stop") && err.message().contains("force"),
            "{}",
            err.message()
        );
        ev.quiet().await;
        assert!(alive(status(&mut api, &id).await.pid));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn remove_force_kills_and_leaves_nothing() {
    let d = Daemon::start("rmforce").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["f"]).await;
    let id = run(&mut api, &mut ev, spec("f", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    assert!(!cgroup_dirs(&id).is_empty());
    api.pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap();
    ev.until(Pause).await;
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: true,
    })
    .await
    .unwrap();
    assert_eq!(
        brief(&ev.until(Destroy).await),
        vec![(Kill, 9, None), (Die, 9, Some(137)), (Destroy, 0, None)]
    );
    assert_gone(&d, &mut api, &id, pid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn init_forwards_term_and_exits_143() {
    let d = Daemon::start("init").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["i"]).await;
    let mut req = with_out(
        &d,
        "i",
        &["sh", "-c", "echo $$ > /out/pid; exec sleep 1000"],
    );
    req.init = true;
    let id = run(&mut api, &mut ev, req).await;
    // The user's process is not PID 1: berth's init is.
    assert_eq!(read_when_ready(&d.share("i").join("pid")).await, "2\n");
    let t = Instant::now();
    stop(&mut api, &id, None).await;
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        brief(&ev.until(Stop).await),
        vec![(Kill, 15, None), (Die, 0, Some(143)), (Stop, 0, None)]
    );
}

/// A monitor is a fork of the daemon's launcher (with
/// BERTH_MONITOR_LAUNCHER=0, an exec of berthd by the daemon); either way
/// its command line names its container, a daemon started after a kill -9
/// finds it, and the exit that ends it is recorded.
#[tokio::test(flavor = "multi_thread")]
async fn monitors_forked_or_execd_are_found_after_a_kill_9() {
    for launcher in [true, false] {
        let mut d = Daemon::start("monitors").await;
        if !launcher {
            d.stop_daemon(libc::SIGTERM);
            d.env.push(("BERTH_MONITOR_LAUNCHER".into(), "0".into()));
            d.spawn().await;
        }
        if launcher {
            // It starts beside the daemon: a monitor needed before it is
            // there is exec'd.
            until_launcher(&d).await;
        }
        let mut api = d.api().await;
        let id = started(&mut api, spec("m", &["sleep", "1000"])).await;
        let monitors = monitor_pids(&d.root);
        assert_eq!(monitors.len(), 1, "launcher {launcher}");
        let cmd = std::fs::read(format!("/proc/{}/cmdline", monitors[0])).unwrap();
        let dir = d.root.join("containers").join(&id);
        let want = format!("berthd\0monitor\0{}\0", dir.display());
        assert!(
            cmd.starts_with(want.as_bytes()),
            "{:?}",
            String::from_utf8_lossy(&cmd)
        );
        let (parent, parent_cmd) = parent_of(monitors[0]);
        match launcher {
            true => {
                assert!(
                    parent_cmd.starts_with("berthd\0launcher\0"),
                    "{parent_cmd:?}"
                );
                assert_eq!(parent_of(parent).0, d.pid() as i32);
            }
            false => assert_eq!(parent, d.pid() as i32),
        }
        d.stop_daemon(libc::SIGKILL);
        d.spawn().await;
        let mut api = d.api().await;
        assert_eq!(status(&mut api, &id).await.status, Status::Running as i32);
        api.kill(pb::KillRequest {
            id: id.clone(),
            signal: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
        let exit = wait(&mut api, &id).await;
        assert_eq!(
            (exit.exit_code, exit.signal),
            (137, 9),
            "launcher {launcher}"
        );
        api.remove(pb::RemoveRequest { id, force: false })
            .await
            .unwrap();
    }
}
