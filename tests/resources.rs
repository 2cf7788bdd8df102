//! Resource limits, Update, Stats, OOM kills and kill-all, end to end: the
//! limits in the cgroup files, a memory hog OOM-killed, a fork bomb held by
//! the pids limit, CPU time within a CPU limit, and no process outliving
//! its container.

mod common;

use berth::pb::{self, Action};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

const MIB: i64 = 1 << 20;

fn limits(memory: i64, cpus: f64, shares: u64, pids: i64) -> pb::Resources {
    pb::Resources {
        memory_limit_bytes: Some(memory),
        cpus: Some(cpus),
        cpu_shares: Some(shares),
        pids_limit: Some(pids),
        ..Default::default()
    }
}

fn with_limits(mut req: pb::CreateRequest, r: pb::Resources) -> pb::CreateRequest {
    req.resources = Some(r);
    req
}

/// The limits as the cgroup files show them, in v1's terms on either
/// version: memory, memory+swap, CFS quota, shares (or weight), pids.max.
fn limits_shown(id: &str) -> [String; 5] {
    let [memory, memsw, quota, _period, shares, pids] = cgroup_limits(id);
    [memory, memsw, quota, shares, pids]
}

/// The finer limits as inspect shows them when none is set.
fn finer_unset() -> pb::Resources {
    pb::Resources {
        cpu_period_us: Some(0),
        cpu_quota_us: Some(0),
        cpuset_cpus: Some(String::new()),
        cpuset_mems: Some(String::new()),
        memory_reservation_bytes: Some(0),
        memory_swappiness: Some(-1),
        kernel_memory_bytes: Some(0),
        oom_kill_disable: Some(false),
        blkio_weight: Some(0),
        ..Default::default()
    }
}

async fn inspect_resources(api: &mut Api, id: &str) -> pb::Resources {
    inspect(api, id).await.config.unwrap().resources.unwrap()
}

async fn update(api: &mut Api, id: &str, r: pb::Resources) -> Result<pb::Resources, tonic::Status> {
    api.update(pb::UpdateRequest {
        id: id.into(),
        resources: Some(r),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().resources.unwrap())
}

/// The events of a container OOM-killed in its first run, up to the kill.
fn created_started_oom() -> Seen {
    vec![
        (Action::Create, 0, None),
        (Action::Start, 0, None),
        (Action::Oom, 0, None),
    ]
}

/// SIGKILL, and how the run ended.
async fn kill_and_wait(api: &mut Api, id: &str) -> pb::WaitResponse {
    api.kill(pb::KillRequest {
        id: id.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    wait(api, id).await
}

/// One stats sample of the given containers (all running if empty).
async fn stats_once(api: &mut Api, ids: &[&str]) -> Vec<pb::ContainerStats> {
    let req = pb::StatsRequest {
        ids: ids.iter().map(|s| s.to_string()).collect(),
        stream: false,
        interval_milliseconds: 200,
    };
    let mut stream = api.stats(req).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("a sample");
    assert!(stream.message().await.unwrap().is_none(), "one sample only");
    first.containers
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_reach_the_cgroup_and_update_changes_them() {
    let d = Daemon::start("limits").await;
    let mut api = d.api().await;
    let mut events = d.events(&[]).await;
    let req = with_limits(
        spec("lim", &["sleep", "1000"]),
        limits(64 * MIB, 0.5, 512, 50),
    );
    let id = started(&mut api, req).await;
    // Docker's default swap: as much again as memory.
    let expected = [
        "67108864",
        "134217728",
        "50000",
        &cpu_shares_shown(512),
        "50",
    ];
    assert_eq!(limits_shown(&id), expected);
    assert_eq!(cgroup_limits(&id)[3], "100000");
    let shown = inspect_resources(&mut api, &id).await;
    assert_eq!(
        shown,
        pb::Resources {
            memory_limit_bytes: Some(64 * MIB),
            memory_swap_limit_bytes: Some(128 * MIB),
            cpus: Some(0.5),
            cpu_shares: Some(512),
            pids_limit: Some(50),
            ..finer_unset()
        }
    );

    // A running container: the cgroup changes at once; unset fields stay.
    let now = update(
        &mut api,
        "lim",
        pb::Resources {
            memory_limit_bytes: Some(100 * MIB),
            cpus: Some(1.5),
            pids_limit: Some(-1),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(now.memory_limit_bytes, Some(100 * MIB));
    assert_eq!(now.cpu_shares, Some(512));
    assert_eq!(
        limits_shown(&id),
        [
            "104857600",
            "134217728",
            "150000",
            &cpu_shares_shown(512),
            "max"
        ]
    );
    // Raising memory past memory+swap takes both, in the order v1 needs.
    update(
        &mut api,
        "lim",
        pb::Resources {
            memory_limit_bytes: Some(256 * MIB),
            memory_swap_limit_bytes: Some(512 * MIB),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(limits_shown(&id)[..2], ["268435456", "536870912"]);

    // Bad updates are refused and change nothing.
    let before = limits_shown(&id);
    for (bad, says) in [
        (
            pb::Resources {
                memory_limit_bytes: Some(1024),
                ..Default::default()
            },
            "invalid memory limit",
        ),
        (
            pb::Resources {
                memory_limit_bytes: Some(600 * MIB),
                ..Default::default()
            },
            "invalid memory+swap limit",
        ),
        (
            pb::Resources {
                cpus: Some(1000.0),
                ..Default::default()
            },
            "invalid cpus",
        ),
        (
            pb::Resources {
                cpu_shares: Some(1),
                ..Default::default()
            },
            "invalid cpu shares",
        ),
        (
            pb::Resources {
                pids_limit: Some(-7),
                ..Default::default()
            },
            "invalid pids limit",
        ),
    ] {
        let err = update(&mut api, &id, bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains(says), "{}", err.message());
    }
    assert_eq!(limits_shown(&id), before);
    let err = update(&mut api, "nope", pb::Resources::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Removing every limit.
    update(&mut api, &id, limits(0, 0.0, 0, 0)).await.unwrap();
    let unlimited = limits_shown(&id);
    assert!(unlimited[0].parse::<u64>().unwrap() > 1 << 60);
    assert!(unlimited[1].parse::<u64>().unwrap() > 1 << 60);
    assert_eq!(unlimited[2..], ["-1", &cpu_shares_shown(1024), "max"]);

    // A stopped container: the record changes, the next start applies it.
    kill_and_wait(&mut api, &id).await;
    update(&mut api, &id, limits(32 * MIB, 0.25, 0, 7))
        .await
        .unwrap();
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    assert_eq!(
        limits_shown(&id),
        [
            "33554432",
            "67108864",
            "25000",
            &cpu_shares_shown(1024),
            "7"
        ]
    );
    let mut seen = events.until(Action::Start).await;
    seen.extend(events.until(Action::Start).await);
    let update = (Action::Update, 0, None);
    assert_eq!(
        brief(&seen),
        vec![
            (Action::Create, 0, None),
            (Action::Start, 0, None),
            update,
            update,
            update,
            (Action::Kill, 9, None),
            (Action::Die, 9, Some(137)),
            update,
            (Action::Start, 0, None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_limits_at_create_are_refused_and_leave_nothing() {
    let d = Daemon::start("badlimits").await;
    let mut api = d.api().await;
    for (r, says) in [
        (limits(5 * MIB, 0.0, 0, 0), "invalid memory limit"),
        (limits(0, 0.001, 0, 0), "invalid cpus"),
        (limits(0, 0.0, 300_000, 0), "invalid cpu shares"),
        (
            pb::Resources {
                memory_swap_limit_bytes: Some(64 * MIB),
                ..Default::default()
            },
            "needs a memory limit",
        ),
    ] {
        let err = api
            .create(with_limits(spec("bad", &["true"]), r))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(err.message().contains(says), "{}", err.message());
    }
    let all = api
        .list(pb::ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.into_inner().containers.is_empty());
    let dirs = std::fs::read_dir(d.root.join("containers"))
        .unwrap()
        .count();
    assert_eq!(dirs, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_hog_is_oom_killed_and_says_so() {
    let d = Daemon::start("oom").await;
    let mut api = d.api().await;
    let mut events = d.events(&[]).await;
    // dd reads 200 MiB from /dev/zero into one buffer under a 32 MiB limit.
    let hog = &["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"];
    let r = pb::Resources {
        memory_limit_bytes: Some(32 * MIB),
        ..Default::default()
    };
    let id = started(&mut api, with_limits(spec("hog", hog), r)).await;
    let seen = events.until(Action::Die).await;
    let mut expected = created_started_oom();
    expected.push((Action::Die, 9, Some(137)));
    assert_eq!(brief(&seen), expected);
    let die = seen.last().unwrap();
    assert!(die.oom_killed);
    let at = |e: &pb::Event| e.time.map(|t| (t.seconds, t.nanos)).unwrap();
    assert!(at(&seen[2]) <= at(die), "oom after the exit");
    let w = wait(&mut api, &id).await;
    assert_eq!((w.exit_code, w.signal, w.oom_killed), (137, 9, true));
    let st = status(&mut api, &id).await;
    assert!(st.oom_killed);
    assert_eq!(st.exit_code, 137);

    // A SIGKILL from a user also exits 137, but is not an OOM kill.
    let id2 = started(&mut api, spec("killed", &["sleep", "1000"])).await;
    let w = kill_and_wait(&mut api, &id2).await;
    assert_eq!((w.exit_code, w.signal, w.oom_killed), (137, 9, false));
    assert!(!status(&mut api, &id2).await.oom_killed);
    let seen = events.until(Action::Die).await;
    assert!(!seen.last().unwrap().oom_killed);

    // The flag belongs to a run: without the limit, the next run of the
    // hog completes and is no OOM kill.
    update(&mut api, &id, limits(0, 0.0, 0, 0)).await.unwrap();
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let w = wait(&mut api, &id).await;
    assert_eq!((w.exit_code, w.oom_killed), (0, false));
    assert!(!status(&mut api, &id).await.oom_killed);
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_kill_of_a_child_is_reported_while_pid1_lives() {
    let d = Daemon::start("oomchild").await;
    let mut api = d.api().await;
    let mut events = d.events(&[]).await;
    let script = "dd if=/dev/zero of=/dev/null bs=200M count=1; echo survived; sleep 1000";
    let r = pb::Resources {
        memory_limit_bytes: Some(32 * MIB),
        ..Default::default()
    };
    let id = started(
        &mut api,
        with_limits(spec("parent", &["sh", "-c", script]), r),
    )
    .await;
    // The event comes while the container still runs.
    let seen = events.until(Action::Oom).await;
    assert_eq!(brief(&seen), created_started_oom());
    assert_eq!(
        status(&mut api, &id).await.status,
        pb::Status::Running as i32
    );
    api.stop(pb::StopRequest {
        id: id.clone(),
        timeout_seconds: Some(0),
        signal: None,
    })
    .await
    .unwrap();
    let seen = events.until(Action::Stop).await;
    // No second OOM event: each kill is reported once.
    assert_eq!(brief(&seen), escalated());
    assert!(seen[2].oom_killed);
    assert!(status(&mut api, &id).await.oom_killed);
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_bomb_is_held_by_the_pids_limit() {
    let d = Daemon::start("forkbomb").await;
    let mut api = d.api().await;
    let share = d.share("s");
    // An inner shell forks for ever; only the pids limit stops it (the
    // shell gives up at the first fork refused). Then PID 1 becomes a
    // sleep, without forking.
    let script = "sh -c 'while :; do sleep 1000 & done'; echo stopped > /s/done; exec sleep 1000";
    let r = pb::Resources {
        pids_limit: Some(20),
        ..Default::default()
    };
    let id = started(
        &mut api,
        with_limits(shared(&d, "bomb", &["sh", "-c", script]), r),
    )
    .await;
    read_when_ready(&share.join("done")).await;
    assert_eq!(cgroup_file(&id, "pids.max").unwrap(), "20");
    // 20 at most: the outer and inner shells and 18 sleeps; the inner
    // shell has gone since.
    assert_eq!(cgroup_pids(&id).len(), 19);
    let s = stats_once(&mut api, &[&id]).await;
    assert_eq!((s[0].pids_current, s[0].pids_limit), (19, 20));
    let forks_refused: u64 = cgroup_file(&id, "pids.events")
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(forks_refused > 0);
    // The container lives on, and a kill ends all of it.
    assert_eq!(
        status(&mut api, &id).await.status,
        pb::Status::Running as i32
    );
    let pids = cgroup_pids(&id);
    assert_eq!(kill_and_wait(&mut api, &id).await.exit_code, 137);
    assert!(pids.iter().all(|p| !alive(*p)));
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_use_stays_within_the_cpu_limit_and_stats_move() {
    let d = Daemon::start("cpulimit").await;
    let mut api = d.api().await;
    let busy = &["sh", "-c", "while :; do :; done"];
    let r = pb::Resources {
        cpus: Some(0.5),
        ..Default::default()
    };
    let limited = started(&mut api, with_limits(spec("half", busy), r)).await;
    let idle = started(&mut api, spec("idle", &["sleep", "1000"])).await;
    let mut stream = api
        .stats(pb::StatsRequest {
            ids: vec![],
            stream: true,
            interval_milliseconds: 500,
        })
        .await
        .unwrap()
        .into_inner();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 {
        let s = stream.message().await.unwrap().expect("a sample");
        samples.push(s);
    }
    let elapsed = start.elapsed();
    drop(stream);
    for s in &samples {
        // Every running container, oldest first.
        let names: Vec<&str> = s.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["half", "idle"]);
    }
    let half = |i: usize| samples[i].containers[0].clone();
    let used = half(4).cpu_usage_nanos - half(0).cpu_usage_nanos;
    let span = samples[4].time.unwrap();
    let first = samples[0].time.unwrap();
    let span_nanos =
        (span.seconds - first.seconds) as f64 * 1e9 + (span.nanos - first.nanos) as f64;
    let share = used as f64 / span_nanos;
    // 0.5 CPU: the CFS quota holds it to half of a CPU per 100 ms period.
    assert!(share < 0.6, "used {share:.2} CPUs over {span_nanos} ns");
    assert!(
        share > 0.3,
        "used only {share:.2} CPUs over {span_nanos} ns"
    );
    for (s, before) in samples[1..].iter().zip(&samples) {
        let (now, then) = (&s.containers[0], &before.containers[0]);
        let p = now.cpu_percent;
        assert!((25.0..65.0).contains(&p), "cpu_percent {p}");
        assert!(now.cpu_usage_nanos > then.cpu_usage_nanos);
        let quiet = &s.containers[1];
        assert!(quiet.cpu_percent < 5.0, "idle used {}%", quiet.cpu_percent);
    }
    let h = half(4);
    assert!(h.memory_usage_bytes > 0);
    assert!(h.memory_limit_bytes > 0, "the host's memory when unlimited");
    assert_eq!((h.pids_current, h.pids_limit), (1, 0));
    assert!(elapsed >= Duration::from_millis(2000));

    // Named containers, also one that is not running; unknown names fail.
    kill_and_wait(&mut api, &idle).await;
    let s = stats_once(&mut api, &["idle", &limited[..12]]).await;
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].status, pb::Status::Exited as i32);
    assert_eq!((s[0].cpu_usage_nanos, s[0].memory_usage_bytes), (0, 0));
    assert!(s[1].cpu_percent > 25.0);
    let err = api
        .stats(pb::StatsRequest {
            ids: vec!["nope".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = api
        .stats(pb::StatsRequest {
            interval_milliseconds: 10,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
