//! Every row of DESIGN.md's reference table, end to end: a real berthd,
//! real containers, the exact events with their signals and exit codes.

mod common;

use berth::pb::{self, Action, Status};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

use Action::{Create, Destroy, Die, Kill, Pause, Start, Stop, Unpause};

/// A shell PID 1 that exits 3 on TERM, once its trap is in place.
const TERM_EXITS_3: &str = "trap 'exit 3' TERM; echo ready > /out/ready; sleep 1000 & wait";

/// Creates and starts `req`, asserting create then start.
async fn run(api: &mut Api, ev: &mut Events, req: pb::CreateRequest) -> String {
    let id = api.create(req).await.unwrap().into_inner().id;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let seen = ev.until(Start).await;
    assert_eq!(brief(&seen), vec![(Create, 0, None), (Start, 0, None)]);
    id
}

/// `args` with the test's share directory mounted at /out.
fn with_out(d: &Daemon, name: &str, args: &[&str]) -> pb::CreateRequest {
    let mut req = spec(name, args);
    req.mounts.push(pb::Mount {
        source: d.share(name).display().to_string(),
        destination: "/out".into(),
        read_only: false,
    });
    req
}

async fn stop(api: &mut Api, id: &str, timeout: Option<i32>) {
    api.stop(pb::StopRequest {
        id: id.into(),
        timeout_seconds: timeout,
        signal: None,
    })
    .await
    .unwrap();
}

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
    let frozen = cgroup_dirs(&id)
        .into_iter()
        .find_map(|d| {
            std::fs::read_to_string(d.join("freezer.state"))
                .ok()
                .or_else(|| std::fs::read_to_string(d.join("cgroup.events")).ok())
        })
        .unwrap();
    assert!(
        frozen.contains("FROZEN") || frozen.contains("frozen 1"),
        "{frozen}"
    );
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

/// Nothing of the container is left: record, process, cgroup, mount,
/// directory, monitor.
async fn assert_gone(d: &Daemon, api: &mut Api, id: &str, pid: u32) {
    let err = api
        .inspect(pb::InspectRequest { id: id.into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(!alive(pid), "process {pid} survived");
    assert!(
        cgroup_dirs(id).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(id)
    );
    assert!(!d.container_dir(id).exists(), "directory left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "mount left");
    assert!(monitor_pids(&d.root).is_empty(), "monitor left");
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

#[tokio::test(flavor = "multi_thread")]
async fn exit_code_and_restart_keep_the_filesystem() {
    let d = Daemon::start("exit7").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["e"]).await;
    let req = with_out(
        &d,
        "e",
        &[
            "sh",
            "-c",
            "echo run >> /data; cat /data > /out/data; exit 7",
        ],
    );
    let id = run(&mut api, &mut ev, req).await;
    assert_eq!(brief(&ev.until(Die).await), vec![(Die, 0, Some(7))]);
    let st = status(&mut api, &id).await;
    assert_eq!((st.status, st.exit_code), (Status::Exited as i32, 7));
    assert!(st.finished_at.is_some());
    let waited = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            condition: 0,
            exit_count: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(waited.exit_code, 7);
    // Start again: start, die(7), and the first run's write is still there.
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(
        brief(&ev.until(Die).await),
        vec![(Start, 0, None), (Die, 0, Some(7))]
    );
    assert_eq!(
        std::fs::read_to_string(d.share("e").join("data")).unwrap(),
        "run\nrun\n"
    );
    // The rootfs itself is untouched.
    assert!(!rootfs().join("data").exists());
    // Exited: stop is a no-op, kill is refused, remove destroys.
    stop(&mut api, &id, None).await;
    let err = api
        .kill(pb::KillRequest {
            id: id.clone(),
            signal: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("not running"), "{}", err.message());
    let err = api
        .pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    ev.quiet().await;
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: false,
    })
    .await
    .unwrap();
    assert_eq!(brief(&ev.until(Destroy).await), vec![(Destroy, 0, None)]);
    assert_gone(&d, &mut api, &id, 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn start_of_running_container_is_a_noop() {
    let d = Daemon::start("noop").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["n"]).await;
    let id = run(&mut api, &mut ev, spec("n", &["sleep", "1000"])).await;
    let pid = status(&mut api, &id).await.pid;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    ev.quiet().await;
    assert_eq!(status(&mut api, &id).await.pid, pid);
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn per_container_and_per_call_stop_settings() {
    let d = Daemon::start("stopcfg").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["s"]).await;
    let script = "trap 'exit 5' USR1; echo ready > /out/ready; sleep 1000 & wait";
    let mut req = with_out(&d, "s", &["sh", "-c", script]);
    req.stop_signal = "SIGUSR1".into();
    req.stop_timeout_seconds = Some(1);
    let id = run(&mut api, &mut ev, req).await;
    read_when_ready(&d.share("s").join("ready")).await;
    stop(&mut api, &id, None).await;
    assert_eq!(
        brief(&ev.until(Stop).await),
        vec![(Kill, 10, None), (Die, 0, Some(5)), (Stop, 0, None)]
    );
    // Per call: TERM, which the shell ignores (no trap), and the
    // container's 1 s grace.
    std::fs::remove_file(d.share("s").join("ready")).unwrap();
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    ev.until(Start).await;
    read_when_ready(&d.share("s").join("ready")).await;
    let t = Instant::now();
    api.stop(pb::StopRequest {
        id: id.clone(),
        timeout_seconds: None,
        signal: Some("TERM".into()),
    })
    .await
    .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(8));
    assert_eq!(brief(&ev.until(Stop).await), escalated());
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_prefixes_and_names_address_containers() {
    let d = Daemon::start("ids").await;
    let mut api = d.api().await;
    let mut ids: Vec<String> = Vec::new();
    // Create until two ids share their first character.
    let shared = loop {
        let id = api
            .create(spec(&format!("c{}", ids.len()), &["true"]))
            .await
            .unwrap()
            .into_inner()
            .id;
        assert_eq!(id.len(), 64);
        let first = id[..1].to_string();
        let clash = ids.iter().any(|i| i.starts_with(&first));
        ids.push(id);
        if clash {
            break first;
        }
    };
    let err = api
        .inspect(pb::InspectRequest { id: shared })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("ambiguous"), "{}", err.message());
    let c = api
        .inspect(pb::InspectRequest {
            id: ids[0][..12].to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .container
        .unwrap();
    assert_eq!((c.id.as_str(), c.name.as_str()), (ids[0].as_str(), "c0"));
    let by_name = api
        .inspect(pb::InspectRequest { id: "c0".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_name.container.unwrap().id, ids[0]);
    let list = api
        .list(pb::ListRequest { all: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.containers.len(), ids.len());
    assert!(api
        .list(pb::ListRequest { all: false })
        .await
        .unwrap()
        .into_inner()
        .containers
        .is_empty());
    for (code, key) in [
        (Code::NotFound, "nope"),
        (Code::NotFound, "fffffffffffff0"),
        (Code::InvalidArgument, ""),
    ] {
        let err = api
            .start(pb::StartRequest { id: key.into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{key:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_conditions() {
    let d = Daemon::start("wait").await;
    let mut api = d.api().await;
    let id = api
        .create(spec("w", &["sh", "-c", "exit 4"]))
        .await
        .unwrap()
        .into_inner()
        .id;
    // Registered before the start: next-exit sees this run's exit.
    let mut waiter = api.clone();
    let next = tokio::spawn({
        let id = id.clone();
        async move {
            waiter
                .wait(pb::WaitRequest {
                    id,
                    condition: pb::WaitCondition::NextExit as i32,
                    exit_count: None,
                })
                .await
                .map(|r| r.into_inner().exit_code)
        }
    });
    let mut waiter = api.clone();
    let removed = tokio::spawn({
        let id = id.clone();
        async move {
            waiter
                .wait(pb::WaitRequest {
                    id,
                    condition: pb::WaitCondition::Removed as i32,
                    exit_count: None,
                })
                .await
                .map(|r| r.into_inner().exit_code)
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(next.await.unwrap().unwrap(), 4);
    assert!(!removed.is_finished());
    api.remove(pb::RemoveRequest { id, force: false })
        .await
        .unwrap();
    assert_eq!(removed.await.unwrap().unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn network_none_has_only_loopback_up_and_host_shares() {
    let d = Daemon::start("net").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    for (name, network) in [("none", ""), ("host", "host")] {
        let mut req = with_out(&d, name, &["sh", "-c", "cat /proc/net/dev > /out/dev; cat /sys/class/net/lo/operstate > /out/lo 2>&1; exit 0"]);
        req.network = network.into();
        run(&mut api, &mut ev, req).await;
        ev.until(Die).await;
    }
    let ifaces = |name: &str| -> Vec<String> {
        std::fs::read_to_string(d.share(name).join("dev"))
            .unwrap()
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
            .collect()
    };
    assert_eq!(ifaces("none"), vec!["lo".to_string()]);
    let lo = std::fs::read_to_string(d.share("none").join("lo")).unwrap();
    assert!(lo.trim() == "unknown" || lo.trim() == "up", "lo is {lo}");
    let host: Vec<String> = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
        .collect();
    let mut seen = ifaces("host");
    seen.sort();
    let mut host = host;
    host.sort();
    assert_eq!(seen, host);
}

#[tokio::test(flavor = "multi_thread")]
async fn bind_mounts_read_only_and_read_write() {
    let d = Daemon::start("mounts").await;
    let mut api = d.api().await;
    let mut ev = d.events(&[]).await;
    let ro = d.share("ro");
    std::fs::write(ro.join("in"), "hello\n").unwrap();
    let mut req = with_out(
        &d,
        "m",
        &[
            "sh",
            "-c",
            "cat /ro/in > /out/copy; { echo x > /ro/new; } 2> /out/err; echo $? > /out/rc",
        ],
    );
    req.mounts.push(pb::Mount {
        source: ro.display().to_string(),
        destination: "/ro".into(),
        read_only: true,
    });
    run(&mut api, &mut ev, req).await;
    ev.until(Die).await;
    let out = d.share("m");
    assert_eq!(
        std::fs::read_to_string(out.join("copy")).unwrap(),
        "hello\n"
    );
    assert_ne!(std::fs::read_to_string(out.join("rc")).unwrap().trim(), "0");
    assert!(std::fs::read_to_string(out.join("err"))
        .unwrap()
        .contains("Read-only"));
    assert!(!ro.join("new").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_finishes_when_its_client_goes_away() {
    let d = Daemon::start("gone").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["gone"]).await;
    let id = run(&mut api, &mut ev, spec("gone", &["sleep", "1000"])).await;
    let mut other = d.api().await;
    let request = pb::StopRequest {
        id: id.clone(),
        timeout_seconds: Some(1),
        signal: None,
    };
    // Give up on the call half-way through the grace period.
    let cut = tokio::time::timeout(Duration::from_millis(300), other.stop(request)).await;
    assert!(cut.is_err(), "stop should still have been waiting");
    drop(other);
    assert_eq!(brief(&ev.until(Stop).await), escalated());
    assert_eq!(status(&mut api, &id).await.exit_code, 137);
}
