//! Restart policies: Docker's delays and rules, what each request does to
//! a container that waits for its restart, and restarts across daemon
//! restarts and host boots.

mod common;

use berth::pb::{self, Action};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

fn policy(name: &str, max: u32) -> Option<pb::RestartPolicy> {
    Some(pb::RestartPolicy {
        name: name.into(),
        maximum_retry_count: max,
    })
}

fn with_policy(mut req: pb::CreateRequest, name: &str, max: u32) -> pb::CreateRequest {
    req.restart_policy = policy(name, max);
    req
}

fn millis(e: &pb::Event) -> i64 {
    let t = e.time.unwrap();
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

/// Waits until the container is RESTARTING with at least `count` restarts.
async fn until_restarting(api: &mut Api, id: &str, count: u64) -> pb::ContainerState {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = status(api, id).await;
        if st.status == pb::Status::Restarting as i32 && st.restart_count >= count {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "never restarting {count}: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the container waits for its restart with at least 2.5 s
/// of its delay left (its count at least 6: a delay of 3.2 s or more,
/// ample for a few requests and CLI calls on a slow host).
async fn until_waiting(api: &mut Api, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = until_restarting(api, id, 6).await;
        let due = st.restart_due.unwrap();
        let due = Duration::new(due.seconds as u64, due.nanos as u32);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        if due.saturating_sub(now) >= Duration::from_millis(2500) {
            return;
        }
        assert!(Instant::now() < deadline, "never a long wait: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_status(api: &mut Api, id: &str, want: pb::Status) -> pb::ContainerState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = status(api, id).await;
        if st.status == want as i32 {
            return st;
        }
        assert!(Instant::now() < deadline, "never {want:?}: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn always_restarts_with_docker_backoff_until_stopped() {
    let d = Daemon::start("rp-always").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["loop"]).await;
    let req = with_policy(spec("loop", &["sh", "-c", "exit 3"]), "always", 0);
    let id = started(&mut api, req).await;
    // create, start, then die → start four times.
    let mut seen = Vec::new();
    while seen.len() < 10 {
        seen.push(ev.next(Duration::from_secs(10)).await.expect("an event"));
    }
    let mut want = vec![(Action::Create, 0, None), (Action::Start, 0, None)];
    for _ in 0..4 {
        want.push((Action::Die, 0, Some(3)));
        want.push((Action::Start, 0, None));
    }
    assert_eq!(brief(&seen), want);
    // 100 ms, doubled each time.
    for (i, pair) in seen[2..].chunks(2).enumerate() {
        let gap = millis(&pair[1]) - millis(&pair[0]);
        assert!(gap >= 100 << i, "restart {i} after {gap} ms");
    }
    // With time left in its delay for what follows, on a slow host too.
    until_waiting(&mut api, &id).await;
    let st = status(&mut api, &id).await;
    assert_eq!(st.exit_code, 3);
    assert_eq!(st.pid, 0);
    assert!(st.restart_due.is_some());
    // Not running while it waits: a wait for that returns at once.
    let w = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.exit_code, 3);
    // ps shows it as Docker does, and without -a.
    let ps = ok(berth(&d, &["ps", "--format", "{{.Status}}"]));
    assert!(ps.starts_with("Restarting (3) "), "{ps}");
    let shown = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Running}} {{.HostConfig.RestartPolicy.Name}}",
            "loop",
        ],
    ));
    assert_eq!(shown.trim(), "restarting true true always");
    // A stop ends the restarts, and it stays exited. (The stop of a
    // waiting container, a stop event alone, is checked below with the
    // other requests; on a slow host the CLI calls above can outlast the
    // delay, and the stop meet a run.)
    let mut ev = d.events(&["loop"]).await;
    api.stop(pb::StopRequest {
        id: id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = ev.until(Action::Stop).await;
    assert!(
        brief(&seen) == [(Action::Stop, 0, None)]
            || brief(&seen).ends_with(&[(Action::Die, 0, Some(3)), (Action::Stop, 0, None)]),
        "{:?}",
        brief(&seen)
    );
    ev.quiet().await;
    let st = status(&mut api, &id).await;
    assert_eq!(st.status, pb::Status::Exited as i32);
    assert!(st.stopped_by_user);
    assert_eq!(st.exit_code, 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(&mut api, &id).await.status,
        pb::Status::Exited as i32
    );
    // A start by the user starts over: the count is 0 again.
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let st = until_restarting(&mut api, &id, 1).await;
    assert!(st.restart_count < 3, "{st:?}");
    assert!(!st.stopped_by_user);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_gives_up_after_its_retries_and_never_restarts_a_success() {
    let d = Daemon::start("rp-onfail").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["twice", "fine"]).await;
    let twice = with_policy(spec("twice", &["sh", "-c", "exit 3"]), "on-failure", 2);
    let id = started(&mut api, twice).await;
    let fine = with_policy(spec("fine", &["true"]), "on-failure", 0);
    let fine = started(&mut api, fine).await;
    let st = until_status(&mut api, &id, pb::Status::Exited).await;
    assert_eq!((st.exit_code, st.restart_count), (3, 2));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut seen = Vec::new();
    while let Some(e) = ev.next(Duration::from_millis(300)).await {
        seen.push(e);
    }
    let of = |name: &str| {
        let mine: Vec<pb::Event> = seen.iter().filter(|e| e.name == name).cloned().collect();
        brief(&mine)
    };
    assert_eq!(
        of("twice"),
        vec![
            (Action::Create, 0, None),
            (Action::Start, 0, None),
            (Action::Die, 0, Some(3)),
            (Action::Start, 0, None),
            (Action::Die, 0, Some(3)),
            (Action::Start, 0, None),
            (Action::Die, 0, Some(3)),
        ]
    );
    assert_eq!(
        of("fine"),
        vec![
            (Action::Create, 0, None),
            (Action::Start, 0, None),
            (Action::Die, 0, Some(0)),
        ]
    );
    let st = status(&mut api, &fine).await;
    assert_eq!(
        (st.status, st.restart_count),
        (pb::Status::Exited as i32, 0)
    );
    let shown = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .HostConfig.RestartPolicy}} {{.RestartCount}}",
            "twice",
        ],
    ));
    assert_eq!(
        shown.trim(),
        r#"{"MaximumRetryCount":2,"Name":"on-failure"} 2"#
    );
}

/// What each request does to a container that waits for its restart, all
/// at once: each crash-loops until its delay is 3.2 s, then gets its
/// request.
#[tokio::test(flavor = "multi_thread")]
async fn requests_to_a_container_waiting_for_its_restart() {
    let d = Daemon::start("rp-waiting").await;
    let mut api = d.api().await;
    let cases = [
        "kill", "hup", "stop", "pause", "restart", "rm", "rmf", "update", "start",
    ];
    let mut ids = Vec::new();
    for name in cases {
        let req = with_policy(spec(name, &["sh", "-c", "exit 5"]), "always", 0);
        ids.push(started(&mut api, req).await);
    }
    let mut results = Vec::new();
    for (name, id) in cases.iter().zip(&ids) {
        until_waiting(&mut api, id).await;
        let mut ev = d.events(&[id.as_str()]).await;
        let id = id.clone();
        let answer = match *name {
            "kill" | "hup" => api
                .kill(pb::KillRequest {
                    id: id.clone(),
                    signal: if *name == "hup" { "HUP" } else { "" }.into(),
                    all: false,
                })
                .await
                .map(drop),
            "stop" => api
                .stop(pb::StopRequest {
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .map(drop),
            "pause" => api
                .pause(pb::PauseRequest { id: id.clone() })
                .await
                .map(drop),
            "restart" => api
                .restart(pb::RestartRequest {
                    id: id.clone(),
                    timeout_seconds: None,
                })
                .await
                .map(drop),
            "rm" | "rmf" => api
                .remove(pb::RemoveRequest {
                    id: id.clone(),
                    force: *name == "rmf",
                })
                .await
                .map(drop),
            "update" => api
                .update(pb::UpdateRequest {
                    id: id.clone(),
                    restart_policy: policy("no", 0),
                    ..Default::default()
                })
                .await
                .map(drop),
            _ => api
                .start(pb::StartRequest { id: id.clone() })
                .await
                .map(drop),
        };
        let code = answer.map_or_else(|s| s.code(), |()| Code::Ok);
        let mut seen = Vec::new();
        while let Some(e) = ev.next(Duration::from_millis(400)).await {
            seen.push(e);
        }
        let now = api
            .inspect(pb::InspectRequest { id: id.clone() })
            .await
            .ok()
            .map(|r| r.into_inner().container.unwrap().state.unwrap());
        results.push((*name, code, brief(&seen), now));
    }
    let exited = |st: &Option<pb::ContainerState>| {
        st.as_ref()
            .is_some_and(|s| s.status == pb::Status::Exited as i32 && s.exit_code == 5)
    };
    let restarting = |st: &Option<pb::ContainerState>| {
        st.as_ref()
            .is_some_and(|s| s.status == pb::Status::Restarting as i32)
    };
    for (name, code, seen, st) in results {
        match name {
            "kill" | "hup" => {
                assert_eq!((code, seen), (Code::Ok, vec![]), "{name}");
                assert!(exited(&st), "{name}: {st:?}");
            }
            "stop" => {
                assert_eq!((code, seen), (Code::Ok, vec![(Action::Stop, 0, None)]));
                assert!(exited(&st), "{st:?}");
            }
            "pause" | "rm" => {
                assert_eq!((code, seen), (Code::FailedPrecondition, vec![]), "{name}");
                assert!(restarting(&st), "{name}: {st:?}");
            }
            "restart" => {
                assert_eq!(code, Code::Ok);
                assert_eq!(
                    seen[..3],
                    [
                        (Action::Stop, 0, None),
                        (Action::Start, 0, None),
                        (Action::Restart, 0, None)
                    ]
                );
                // The count started over with the user's start (it was 6).
                assert!(st.unwrap().restart_count < 5);
            }
            "rmf" => {
                assert_eq!((code, seen), (Code::Ok, vec![(Action::Destroy, 0, None)]));
                assert!(st.is_none());
            }
            "update" => {
                assert_eq!((code, seen), (Code::Ok, vec![(Action::Update, 0, None)]));
                assert!(exited(&st), "{st:?}");
            }
            _ => {
                // start: a no-op; the wait goes on.
                assert_eq!((code, seen), (Code::Ok, vec![]));
                assert!(restarting(&st), "{st:?}");
            }
        }
    }
    // Nothing started later either.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for (name, id) in cases.iter().zip(&ids) {
        if matches!(*name, "kill" | "hup" | "stop" | "update") {
            let st = status(&mut api, id).await;
            assert_eq!(st.status, pb::Status::Exited as i32, "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_stops_for_good_but_a_reload_signal_does_not() {
    let d = Daemon::start("rp-kill").await;
    let mut api = d.api().await;
    let script = "trap 'exit 7' HUP; sleep 1000 & wait";
    let id = started(
        &mut api,
        with_policy(spec("svc", &["sh", "-c", script]), "always", 0),
    )
    .await;
    let mut ev = d.events(&["svc"]).await;
    // HUP ends it, but is no stop: the policy starts it again.
    api.kill(pb::KillRequest {
        id: id.clone(),
        signal: "HUP".into(),
        all: false,
    })
    .await
    .unwrap();
    let seen = ev.until(Action::Start).await;
    assert_eq!(
        brief(&seen),
        vec![
            (Action::Kill, 1, None),
            (Action::Die, 0, Some(7)),
            (Action::Start, 0, None)
        ]
    );
    until_status(&mut api, &id, pb::Status::Running).await;
    // SIGKILL is a stop: it stays exited.
    api.kill(pb::KillRequest {
        id: id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = ev.until(Action::Die).await;
    assert_eq!(
        brief(&seen),
        vec![(Action::Kill, 9, None), (Action::Die, 9, Some(137))]
    );
    ev.quiet().await;
    let st = status(&mut api, &id).await;
    assert_eq!(st.status, pb::Status::Exited as i32);
    assert_eq!(st.restart_count, 1);
    // So is a stop, for unless-stopped too.
    let id = started(
        &mut api,
        with_policy(spec("svc2", &["sleep", "1000"]), "unless-stopped", 0),
    )
    .await;
    let mut ev = d.events(&["svc2"]).await;
    api.stop(pb::StopRequest {
        id: id.clone(),
        timeout_seconds: Some(0),
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = ev.until(Action::Stop).await;
    assert_eq!(brief(&seen).last(), Some(&(Action::Stop, 0, None)));
    ev.quiet().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oom_kill_restarts_and_a_start_that_fails_does_not() {
    let d = Daemon::start("rp-oom").await;
    let mut api = d.api().await;
    let mut ev = d.events(&["hog"]).await;
    let mut hog = spec(
        "hog",
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
    );
    hog.resources = Some(pb::Resources {
        memory_limit_bytes: Some(32 << 20),
        ..Default::default()
    });
    let hog = started(&mut api, with_policy(hog, "on-failure", 1)).await;
    let mut seen = ev.until(Action::Start).await;
    seen.extend(ev.until(Action::Start).await);
    seen.extend(ev.until(Action::Die).await);
    let dies: Vec<&pb::Event> = seen
        .iter()
        .filter(|e| e.action == Action::Die as i32)
        .collect();
    assert_eq!(dies.len(), 2);
    assert!(dies
        .iter()
        .all(|e| e.oom_killed && e.exit_code == Some(137)));
    let st = until_status(&mut api, &hog, pb::Status::Exited).await;
    assert!(st.oom_killed);
    assert_eq!(st.restart_count, 1);

    // A command that does not exist: the start fails, nothing restarts.
    let mut ev = d.events(&["nocmd"]).await;
    let id = created(
        &mut api,
        with_policy(spec("nocmd", &["/no/such/command"]), "always", 0),
    )
    .await;
    let err = api
        .start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_ne!(err.code(), Code::Ok);
    let seen = ev.until(Action::Create).await;
    assert_eq!(brief(&seen), vec![(Action::Create, 0, None)]);
    ev.quiet().await;
    let st = status(&mut api, &id).await;
    assert_eq!(
        (st.status, st.restart_count),
        (pb::Status::Created as i32, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_policy_with_auto_remove_is_refused() {
    let d = Daemon::start("rp-rm").await;
    let mut api = d.api().await;
    let mut req = with_policy(spec("rm", &["true"]), "always", 0);
    req.auto_remove = true;
    let err = api.create(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("auto_remove"), "{err:?}");
    for (name, max) in [("sometimes", 0), ("always", 3)] {
        let req = with_policy(spec("bad", &["true"]), name, max);
        let err = api.create(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    assert!(listed(&mut api).await.is_empty());
    // In the foreground, run returns the first exit; the container goes
    // on.
    let out = berth(
        &d,
        &[
            "run",
            "--name",
            "fg",
            "--network",
            "none",
            "--restart",
            "always",
            &rootfs().display().to_string(),
            "sh",
            "-c",
            "exit 6",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = until_restarting(&mut api, "fg", 1).await;
    assert_eq!(st.exit_code, 6);
    // The CLI refuses it as Docker's does.
    let out = berth(
        &d,
        &[
            "run",
            "--rm",
            "--restart",
            "always",
            &rootfs().display().to_string(),
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--restart and --rm"));
    // An update cannot give one to an auto_remove container.
    let mut req = spec("auto", &["sleep", "1000"]);
    req.auto_remove = true;
    let id = started(&mut api, req).await;
    let err = api
        .update(pb::UpdateRequest {
            id: id.clone(),
            restart_policy: policy("always", 0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // berth update --restart changes it, and inspect shows it.
    let id = created(&mut api, spec("later", &["true"])).await;
    ok(berth(&d, &["update", "--restart", "on-failure:4", "later"]));
    let c = inspect(&mut api, &id).await;
    assert_eq!(c.config.unwrap().restart_policy, policy("on-failure", 4));
}

/// A stop that comes as the process exits by itself (its exit not yet
/// recorded) still holds: the policy does not start it again.
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_racing_the_exit_still_stops() {
    let d = Daemon::start("rp-race").await;
    let mut api = d.api().await;
    let req = with_policy(spec("racer", &["sh", "-c", "exit 1"]), "always", 0);
    let id = created(&mut api, req).await;
    for round in 0..30 {
        api.start(pb::StartRequest { id: id.clone() })
            .await
            .unwrap();
        api.stop(pb::StopRequest {
            id: id.clone(),
            timeout_seconds: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
        let st = status(&mut api, &id).await;
        assert_eq!(
            st.status,
            pb::Status::Exited as i32,
            "round {round}: {st:?}"
        );
        assert!(st.stopped_by_user, "round {round}");
    }
    let before = status(&mut api, &id).await.exit_count;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let st = status(&mut api, &id).await;
    assert_eq!(
        (st.status, st.exit_count),
        (pb::Status::Exited as i32, before)
    );
}

/// A run of 10 s or more starts the delay over at 100 ms (the count goes
/// on), and `always` restarts an exit 0 too.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_run_starts_the_delay_over() {
    let d = Daemon::start("rp-reset").await;
    let mut api = d.api().await;
    let script = "if [ -f /s/long ]; then rm /s/long; sleep 10.2; fi; exit 0";
    let id = started(
        &mut api,
        with_policy(shared(&d, "long", &["sh", "-c", script]), "always", 0),
    )
    .await;
    // Five quick restarts: the next delay would be 1.6 s.
    let st = until_restarting(&mut api, &id, 5).await;
    assert_eq!(st.exit_code, 0);
    std::fs::write(d.share("s").join("long"), "").unwrap();
    let mut ev = d.events(&["long"]).await;
    // The run that lasts 10 s (seen from its start).
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut started_at = None;
    let (died, restarted) = loop {
        let seen = ev.until(Action::Die).await;
        if let Some(s) = seen.iter().rev().find(|e| e.action == Action::Start as i32) {
            started_at = Some(millis(s));
        }
        let die = seen.last().unwrap().clone();
        let start = ev.until(Action::Start).await.last().unwrap().clone();
        if started_at.is_some_and(|at| millis(&die) - at >= 10_000) {
            break (die, start);
        }
        started_at = Some(millis(&start));
        assert!(Instant::now() < deadline, "no long run");
    };
    // Without the reset the delay would be 3.2 s; a slow host takes up to
    // a second or so to start it after the 100 ms.
    let gap = millis(&restarted) - millis(&died);
    assert!(
        (100..3000).contains(&gap),
        "restart {gap} ms after a 10 s run"
    );
}
