//! Health checks: Docker's counting, events and output, probes that time
//! out, the on_failure actions, the image's HEALTHCHECK, waits for a
//! health, and health across pauses and daemon restarts.

mod common;

use berth::pb::{self, Action, HealthStatus};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

/// A check of `cmd` through the shell, probing every 100 ms.
fn check(cmd: &str, retries: u32) -> pb::Healthcheck {
    pb::Healthcheck {
        test: vec!["CMD-SHELL".into(), cmd.into()],
        interval_milliseconds: 100,
        timeout_milliseconds: 2000,
        retries,
        ..Default::default()
    }
}

fn checked(d: &Daemon, name: &str, h: pb::Healthcheck) -> pb::CreateRequest {
    let mut req = shared(d, name, &["sleep", "1000"]);
    // sleep ends on the stop signal.
    req.init = true;
    req.healthcheck = Some(h);
    req
}

fn health(st: &pb::ContainerState) -> pb::Health {
    st.health.clone().unwrap_or_default()
}

async fn until_health(api: &mut Api, id: &str, want: HealthStatus) -> pb::ContainerState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = status(api, id).await;
        if health(&st).status == want as i32 {
            return st;
        }
        assert!(Instant::now() < deadline, "never {want:?}: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The health_status events among `events`.
fn changes(events: &[pb::Event]) -> Vec<i32> {
    events
        .iter()
        .filter(|e| e.action == Action::HealthStatus as i32)
        .map(|e| e.health_status)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_healthy_unhealthy_as_docker_counts_them() {
    let d = Daemon::start("health-count").await;
    let mut api = d.api().await;
    let ok = d.share("s").join("ok");
    let mut ev = d.events(&["svc"]).await;
    let id = started(&mut api, checked(&d, "svc", check("test -f /s/ok", 3))).await;
    assert_eq!(
        health(&status(&mut api, &id).await).status,
        HealthStatus::Starting as i32
    );
    // One probed only a minute from now stays starting, however slow
    // the host is.
    let mut idle = check("true", 3);
    idle.interval_milliseconds = 60_000;
    started(&mut api, checked(&d, "idle", idle)).await;
    let ps = ok_out(
        &d,
        &["ps", "--filter", "name=idle", "--format", "{{.Status}}"],
    );
    assert!(ps.ends_with("(health: starting)\n"), "{ps}");
    // Three failures in a row: unhealthy.
    let st = until_health(&mut api, &id, HealthStatus::Unhealthy).await;
    assert!(health(&st).failing_streak >= 3, "{st:?}");
    std::fs::write(&ok, "").unwrap();
    let st = until_health(&mut api, &id, HealthStatus::Healthy).await;
    assert_eq!(health(&st).failing_streak, 0);
    let ps = ok_out(
        &d,
        &[
            "ps",
            "--filter",
            "health=healthy",
            "--format",
            "{{.Names}} {{.Status}}",
        ],
    );
    assert!(
        ps.starts_with("svc Up ") && ps.ends_with("(healthy)\n"),
        "{ps}"
    );
    assert_eq!(
        ok_out(&d, &["ps", "-q", "--filter", "health=unhealthy"]),
        ""
    );
    std::fs::remove_file(&ok).unwrap();
    until_health(&mut api, &id, HealthStatus::Unhealthy).await;

    // Each probe is an exec; health_status only when the health changes.
    let mut seen = Vec::new();
    while let Some(e) = ev.next(Duration::from_millis(50)).await {
        seen.push(e);
    }
    let h = |s: HealthStatus| s as i32;
    assert_eq!(
        changes(&seen),
        [
            h(HealthStatus::Unhealthy),
            h(HealthStatus::Healthy),
            h(HealthStatus::Unhealthy)
        ]
    );
    let probe = &seen[2..5];
    assert_eq!(
        brief(probe),
        [
            (Action::ExecCreate, 0, None),
            (Action::ExecStart, 0, None),
            (Action::ExecDie, 0, Some(1))
        ]
    );
    assert_eq!(probe[0].exec_command, "/bin/sh -c test -f /s/ok");
    // The last five probes, as inspect shows them.
    let shown = ok_out(&d, &["inspect", "-f", "{{json .State.Health}}", "svc"]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["Status"], "unhealthy");
    let log = v["Log"].as_array().unwrap();
    assert_eq!(log.len(), 5);
    assert_eq!(log[4]["ExitCode"], 1);
    let cfg = ok_out(
        &d,
        &["inspect", "-f", "{{json .Config.Healthcheck}}", "svc"],
    );
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["Interval"], 100_000_000);
    assert_eq!(cfg["Retries"], 3);

    // Waits for a health: at once when it is there; refused without a
    // check.
    let waited = api
        .wait(pb::WaitRequest {
            id: id.clone(),
            condition: pb::WaitCondition::Unhealthy as i32,
            exit_count: None,
        })
        .await;
    assert!(waited.is_ok(), "{waited:?}");
    let plain = started(&mut api, spec("plain", &["sleep", "1000"])).await;
    let err = api
        .wait(pb::WaitRequest {
            id: plain,
            condition: pb::WaitCondition::Healthy as i32,
            exit_count: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    // `berth wait --condition healthy` returns once it gets there.
    let waiter = cli(&d, &["wait", "--condition", "healthy", "svc"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&ok, "").unwrap();
    let out = tokio::task::spawn_blocking(move || waiter.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ok_out(d: &Daemon, args: &[&str]) -> String {
    ok(berth(d, args))
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_in_the_start_period_do_not_count() {
    let d = Daemon::start("health-start").await;
    let mut api = d.api().await;
    let mut h = check("exit 1", 1);
    h.start_period_milliseconds = 2000;
    h.start_interval_milliseconds = 100;
    h.interval_milliseconds = 1000;
    let id = started(&mut api, checked(&d, "slow", h)).await;
    let st = until_health(&mut api, &id, HealthStatus::Unhealthy).await;
    let nanos = |t: Option<prost_types::Timestamp>| {
        let t = t.unwrap();
        i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
    };
    let period_ends = nanos(st.started_at) + 2_000_000_000;
    let log = health(&st).log;
    // With one retry, a failure that counted made it unhealthy at once:
    // the probe that did is past the period, the ones before it within
    // it, at the start interval (100 ms after the last, not a second).
    let last = log.last().unwrap();
    assert!(nanos(last.start) >= period_ends, "{log:?}");
    // (A loaded host may fit only one probe in the period.)
    let within: Vec<_> = log
        .iter()
        .filter(|p| nanos(p.start) < period_ends)
        .collect();
    assert!(!within.is_empty(), "{log:?}");
    for w in within.windows(2) {
        assert!(nanos(w[1].start) - nanos(w[0].end) < 500_000_000, "{log:?}");
    }
    assert!(log.iter().all(|p| p.exit_code == 1));
    assert_eq!(health(&st).failing_streak, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_probe_past_its_timeout_is_killed_with_what_it_started() {
    let d = Daemon::start("health-timeout").await;
    let mut api = d.api().await;
    let mut h = check("sleep 77 & sleep 78", 1);
    h.timeout_milliseconds = 300;
    h.interval_milliseconds = 60_000;
    h.start_interval_milliseconds = 100;
    h.start_period_milliseconds = 1;
    let mut ev = d.events(&["hung"]).await;
    let id = started(&mut api, checked(&d, "hung", h)).await;
    let st = until_health(&mut api, &id, HealthStatus::Unhealthy).await;
    let probe = health(&st).log[0].clone();
    assert_eq!(probe.exit_code, -1);
    assert_eq!(probe.output, "Health check exceeded timeout (300ms)");
    let took = probe.end.unwrap().seconds * 1000 + i64::from(probe.end.unwrap().nanos) / 1_000_000
        - (probe.start.unwrap().seconds * 1000 + i64::from(probe.start.unwrap().nanos) / 1_000_000);
    assert!((300..5000).contains(&took), "{took} ms");
    let seen = ev.until(Action::ExecDie).await;
    assert_eq!(brief(&seen).last(), Some(&(Action::ExecDie, 9, Some(137))));
    // Nothing of the probe is left.
    let top = api
        .top(pb::TopRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(
        top.processes.iter().all(|p| !p.command.contains("sleep 7")),
        "{:?}",
        top.processes
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn output_is_kept_up_to_4_kib() {
    let d = Daemon::start("health-output").await;
    let mut api = d.api().await;
    let script = "i=0; while [ $i -lt 500 ]; do echo 012345678x; i=$((i+1)); done; echo err >&2";
    let mut h = check(script, 3);
    h.interval_milliseconds = 60_000;
    h.start_period_milliseconds = 1;
    h.start_interval_milliseconds = 100;
    let id = started(&mut api, checked(&d, "loud", h)).await;
    let st = until_health(&mut api, &id, HealthStatus::Healthy).await;
    let out = &health(&st).log[0].output;
    assert_eq!(out.len(), 4096 + 3);
    assert!(
        out.starts_with("012345678x\n") && out.ends_with("..."),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unhealthy_containers_are_killed_stopped_or_restarted_as_asked() {
    let d = Daemon::start("health-act").await;
    let mut api = d.api().await;
    let failing = |action: &str| pb::Healthcheck {
        on_failure: action.into(),
        ..check("exit 1", 1)
    };
    let mut killed = checked(&d, "killed", failing("kill"));
    killed.restart_policy = Some(pb::RestartPolicy {
        name: "on-failure".into(),
        maximum_retry_count: 1,
    });
    let mut evk = d.events(&["killed"]).await;
    let mut evs = d.events(&["stopped"]).await;
    let mut evr = d.events(&["restarted"]).await;
    started(&mut api, killed).await;
    started(&mut api, checked(&d, "stopped", failing("stop"))).await;
    started(&mut api, checked(&d, "restarted", failing("restart"))).await;
    let just = |seen: Vec<pb::Event>| -> Vec<Action> {
        seen.iter()
            .map(|e| Action::try_from(e.action).unwrap())
            .filter(|a| {
                !matches!(
                    a,
                    Action::ExecCreate | Action::ExecStart | Action::ExecDie | Action::HealthStatus
                )
            })
            .collect()
    };
    // kill: SIGKILL, and its restart policy starts it again.
    let mut seen = evk.until(Action::Die).await;
    seen.extend(evk.until(Action::Start).await);
    assert_eq!(
        just(seen),
        [
            Action::Create,
            Action::Start,
            Action::Kill,
            Action::Die,
            Action::Start
        ]
    );
    // stop: a stop; it stays exited.
    let seen = evs.until(Action::Stop).await;
    assert_eq!(
        just(seen),
        [
            Action::Create,
            Action::Start,
            Action::Kill,
            Action::Die,
            Action::Stop
        ]
    );
    // restart: a Restart, journaled as one.
    let seen = evr.until(Action::Restart).await;
    assert_eq!(
        just(seen),
        [
            Action::Create,
            Action::Start,
            Action::Kill,
            Action::Die,
            Action::Stop,
            Action::Start,
            Action::Restart
        ]
    );
    let st = status(&mut api, "stopped").await;
    assert_eq!(st.status, pb::Status::Exited as i32);
    // The health is kept once it exited.
    assert_eq!(health(&st).status, HealthStatus::Unhealthy as i32);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_images_healthcheck_runs_unless_turned_off() {
    let d = Daemon::start("health-image").await;
    let mut api = d.api().await;
    let config = serde_json::json!({
        "Cmd": ["sleep", "1000"],
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 100_000_000u64, "Retries": 2},
    });
    load(&d, docker_archive("checked:1", config)).await.unwrap();
    let req = |name: &str| pb::CreateRequest {
        name: name.into(),
        image: "checked:1".into(),
        network: "none".into(),
        ..Default::default()
    };
    let id = started(&mut api, req("from-image")).await;
    until_health(&mut api, &id, HealthStatus::Healthy).await;
    let cfg = inspect(&mut api, &id)
        .await
        .config
        .unwrap()
        .healthcheck
        .unwrap();
    assert_eq!(cfg.test, ["CMD", "true"]);
    assert_eq!((cfg.interval_milliseconds, cfg.retries), (100, 2));
    // The request's fields go over the image's.
    let mut over = req("over");
    over.healthcheck = Some(pb::Healthcheck {
        test: vec!["CMD".into(), "false".into()],
        ..Default::default()
    });
    let id = started(&mut api, over).await;
    let st = until_health(&mut api, &id, HealthStatus::Unhealthy).await;
    // Unhealthy at the second failure; more may have come by the read.
    assert!(health(&st).failing_streak >= 2, "{st:?}");
    // --no-healthcheck turns it off.
    let out = berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "off",
            "--no-healthcheck",
            "checked:1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let c = inspect(&mut api, "off").await;
    assert!(c.config.unwrap().healthcheck.is_none());
    assert!(c.state.unwrap().health.is_none());
    let out = berth(
        &d,
        &[
            "run",
            "-d",
            "--no-healthcheck",
            "--health-retries",
            "2",
            "checked:1",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_probe_while_paused_and_the_streak_survives_a_daemon_restart() {
    let mut d = Daemon::start("health-restart").await;
    let mut api = d.api().await;
    let mut h = check("exit 1", 100);
    h.interval_milliseconds = 100;
    let id = started(&mut api, checked(&d, "streak", h)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(&status(&mut api, &id).await).failing_streak < 3 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.pause(pb::PauseRequest { id: id.clone() })
        .await
        .unwrap();
    let before = health(&status(&mut api, &id).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(health(&status(&mut api, &id).await), before);
    api.unpause(pb::UnpauseRequest { id: id.clone() })
        .await
        .unwrap();

    let streak = health(&status(&mut api, &id).await).failing_streak;
    d.stop_daemon(libc::SIGKILL);
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.spawn().await;
    let mut api = d.api().await;
    let after = health(&status(&mut api, &id).await);
    assert!(after.failing_streak >= streak, "{after:?}");
    assert_eq!(after.status, HealthStatus::Starting as i32);
    // Probing goes on from there.
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(&status(&mut api, &id).await).failing_streak < streak + 3 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
