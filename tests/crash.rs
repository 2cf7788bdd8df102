//! The crash test: clients create, start, stop, pause, unpause, kill and
//! remove containers while berthd is killed with SIGKILL at random points
//! and restarted. After each restart: every container the API acknowledged
//! is there (and every acknowledged remove is gone), every event a
//! subscriber received is in the journal with the same seq, no seq is used
//! twice or skipped, and the state the API reports matches the processes
//! that really run, and a container on the bridge network is wired
//! exactly while it runs. Two containers crash-loop under the `always`
//! restart policy meanwhile: each container's journal alternates start and
//! die, and holds one die per exit its state counts (no exit lost or
//! counted twice). At the end, with everything removed, nothing of any
//! container is left on the host's networks. BERTH_CRASH_ROUNDS sets the
//! number of rounds.

mod common;

use berth::pb::{self, Action};
use common::*;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Code;

const NAMES: [&str; 8] = ["c0", "c1", "c2", "c3", "c4", "c5", "r0", "r1"];
const WORKERS: usize = 3;

/// What the API acknowledged.
#[derive(Default)]
struct Acked {
    created: HashSet<String>,
    remove_tried: HashSet<String>,
    removed: HashSet<String>,
    ops: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Containers with these names are on the default bridge network.
const BRIDGED: [&str; 3] = ["c4", "c5", "r1"];

/// Containers with these names crash-loop under `always`.
const LOOPING: [&str; 2] = ["r0", "r1"];

fn request(name: &str) -> pb::CreateRequest {
    let (args, restart_policy) = match LOOPING.contains(&name) {
        true => (
            &["sh", "-c", "sleep 0.05; exit 3"][..],
            Some(pb::RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            }),
        ),
        false => (&["sleep", "1000"][..], None),
    };
    pb::CreateRequest {
        init: true,
        stop_timeout_seconds: Some(1),
        network: match BRIDGED.contains(&name) {
            true => "bridge".into(),
            false => "none".into(),
        },
        restart_policy,
        ..spec(name, args)
    }
}

/// Each container's runs in the journal: start and die alternate, and
/// there is a die for each exit its state counts: the state before the
/// journal was read counts no more, the state after no fewer.
fn check_runs(
    round: usize,
    journal: &[pb::Event],
    before: &pb::Container,
    after: &[pb::Container],
) {
    let c = before;
    let mut dies = 0;
    let mut running = false;
    for e in journal.iter().filter(|e| e.id == c.id) {
        match Action::try_from(e.action).unwrap() {
            Action::Start => {
                assert!(
                    !running,
                    "round {round}: {} started twice (seq {})",
                    c.name, e.seq
                );
                running = true;
            }
            Action::Die => {
                assert!(
                    running,
                    "round {round}: {} died twice (seq {})",
                    c.name, e.seq
                );
                running = false;
                dies += 1;
            }
            _ => {}
        }
    }
    let st = c.state.as_ref().unwrap();
    let later = after
        .iter()
        .find(|a| a.id == c.id)
        .map_or(u64::MAX, |a| a.state.as_ref().unwrap().exit_count);
    assert!(
        st.exit_count <= dies && dies <= later,
        "round {round}: {} counts {} then {later} exits, the journal {dies} dies",
        c.name,
        st.exit_count
    );
    assert!(st.restart_count <= st.exit_count);
}

/// One client: random operations on random names until aborted.
async fn worker(host: String, acked: Arc<Mutex<Acked>>, seed: u64) {
    let Ok(channel) = berth::connect(&host).await else {
        return;
    };
    let mut api = pb::containers_client::ContainersClient::new(channel);
    let mut rng = Rng(seed | 1);
    loop {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize].to_string();
        let id = name.clone();
        let ok = match rng.below(8) {
            0 | 1 => match api.create(request(&name)).await {
                Ok(r) => {
                    acked.lock().unwrap().created.insert(r.into_inner().id);
                    true
                }
                Err(_) => false,
            },
            2 | 3 => api.start(pb::StartRequest { id }).await.is_ok(),
            4 => api
                .stop(pb::StopRequest {
                    id,
                    timeout_seconds: Some(rng.below(2) as i32),
                    signal: None,
                })
                .await
                .is_ok(),
            5 => {
                if rng.below(2) == 0 {
                    api.pause(pb::PauseRequest { id }).await.is_ok()
                } else {
                    api.unpause(pb::UnpauseRequest { id }).await.is_ok()
                }
            }
            6 => api
                .kill(pb::KillRequest {
                    id,
                    signal: if rng.below(2) == 0 { "KILL" } else { "TERM" }.into(),
                    ..Default::default()
                })
                .await
                .is_ok(),
            _ => {
                // By full id, so an acknowledged remove names one container.
                let Ok(c) = api.inspect(pb::InspectRequest { id }).await else {
                    continue;
                };
                let id = c.into_inner().container.unwrap().id;
                acked.lock().unwrap().remove_tried.insert(id.clone());
                let force = rng.below(2) == 0;
                match api
                    .remove(pb::RemoveRequest {
                        id: id.clone(),
                        force,
                    })
                    .await
                {
                    Ok(_) => {
                        acked.lock().unwrap().removed.insert(id);
                        true
                    }
                    Err(_) => false,
                }
            }
        };
        if ok {
            acked.lock().unwrap().ops += 1;
        }
    }
}

/// What the host says about a container: (PID 1 alive, frozen, number of
/// its monitors, processes in its cgroups, traces on networks).
fn observe(root: &Path, id: &str, pid: u32) -> (bool, bool, usize, usize, usize) {
    let frozen = frozen(id);
    let dir = root.join("containers").join(id);
    let monitors = monitor_pids(root)
        .into_iter()
        .filter(|m| {
            std::fs::read(format!("/proc/{m}/cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0)
                    .any(|a| a == dir.as_os_str().as_encoded_bytes())
            })
        })
        .count();
    let procs = cgroup_dirs(id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .map(|s| s.lines().count())
        .sum();
    let wired = traces(root, id).len();
    (pid > 0 && alive(pid), frozen, monitors, procs, wired)
}

/// RUNNING exactly when PID 1 is alive, PAUSED exactly when frozen,
/// neither means no process, no monitor and nothing on a network. Checked between two identical
/// inspects, retried for a moment while an exit is still being recorded.
async fn check_state(api: &mut Api, root: &Path, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let a = status(api, id).await;
        let seen = observe(root, id, a.pid);
        let b = status(api, id).await;
        if a == b {
            let (alive, frozen, monitors, procs, wired) = seen;
            let want = match pb::Status::try_from(a.status).unwrap() {
                pb::Status::Running => alive && !frozen && monitors == 1,
                pb::Status::Paused => alive && frozen && monitors == 1,
                _ => !alive && monitors == 0 && procs == 0 && wired == 0,
            };
            if want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {id}: API says {:?} (pid {}), host says alive={alive} frozen={frozen} monitors={monitors} procs={procs} network traces={wired} {:?}",
                pb::Status::try_from(a.status).unwrap(),
                a.pid,
                traces(root, id)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_points_loses_nothing() {
    let rounds: usize = std::env::var("BERTH_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut raw = [0u8; 8];
    getrandom(&mut raw);
    let seed = u64::from_le_bytes(raw) | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut d = Daemon::start_with_log("crash", "info").await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut received: Vec<pb::Event> = Vec::new();
    let mut cursor = 0u64;
    for round in 0..rounds {
        // A subscriber resuming from the last event it received.
        let mut sub = d
            .subscribe(pb::SubscribeRequest {
                since_seq: Some(cursor),
                ..Default::default()
            })
            .await
            .unwrap();
        let subscriber = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(Some(e)) = sub.message().await {
                got.push(e);
            }
            got
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(d.host(), acked.clone(), rng.next())))
            .collect();
        tokio::time::sleep(Duration::from_millis(20 + rng.below(400))).await;
        d.stop_daemon(libc::SIGKILL);
        for w in workers {
            w.abort();
            let _ = w.await;
        }
        let got = subscriber.await.unwrap();
        for (i, e) in got.iter().enumerate() {
            assert_eq!(
                e.seq,
                cursor + 1 + i as u64,
                "round {round}: the subscriber skipped or repeated a seq"
            );
        }
        cursor += got.len() as u64;
        received.extend(got);

        d.spawn().await;
        let mut api = d.api().await;
        // Every acknowledged create is there; every acknowledged remove is gone.
        let (must_exist, must_be_gone) = {
            let a = acked.lock().unwrap();
            let exist: Vec<String> = a.created.difference(&a.remove_tried).cloned().collect();
            (exist, a.removed.iter().cloned().collect::<Vec<_>>())
        };
        for id in &must_exist {
            api.inspect(pb::InspectRequest { id: id.clone() })
                .await
                .unwrap_or_else(|e| {
                    panic!("round {round}: acknowledged container {id} is gone: {e}")
                });
        }
        for id in &must_be_gone {
            let err = api
                .inspect(pb::InspectRequest { id: id.clone() })
                .await
                .err()
                .unwrap_or_else(|| panic!("round {round}: removed container {id} is back"));
            assert_eq!(err.code(), Code::NotFound);
        }
        // The journal holds every received event, with the same seq, and
        // no seq twice or missing.
        let journal = d.journal().await;
        assert_eq!(journal.first().map(|e| e.seq), Some(1));
        for (i, e) in journal.iter().enumerate() {
            assert_eq!(
                e.seq,
                i as u64 + 1,
                "round {round}: journal seq gap or repeat"
            );
        }
        for e in &received {
            assert_eq!(
                &journal[e.seq as usize - 1],
                e,
                "round {round}: event {} changed",
                e.seq
            );
        }
        let start = journal
            .iter()
            .rev()
            .find(|e| e.action == Action::DaemonStart as i32)
            .unwrap();
        assert_eq!(start.resumed_from_seq, start.seq - 1);
        // What the API says runs, runs.
        let list = api
            .list(pb::ListRequest {
                all: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for c in &list.containers {
            check_state(&mut api, &d.root, &c.id).await;
        }
        // Exits and events agree, restarts included (the loops go on
        // meanwhile).
        let before = listed(&mut api).await;
        let journal = d.journal().await;
        let after = listed(&mut api).await;
        for c in &before {
            check_runs(round, &journal, c, &after);
        }
    }
    // Everything removed: nothing of any container is left on a network.
    let mut api = d.api().await;
    for c in listed(&mut api).await {
        api.remove(pb::RemoveRequest {
            id: c.id,
            force: true,
        })
        .await
        .unwrap();
    }
    let created = acked.lock().unwrap().created.clone();
    for id in &created {
        assert_eq!(traces(&d.root, id), Vec::<String>::new(), "container {id}");
    }
    for bridge in bridges(&d.root) {
        assert_veths(&bridge, 0);
    }
    let a = acked.lock().unwrap();
    let restarts = received
        .iter()
        .filter(|e| e.action == Action::Start as i32 && LOOPING.contains(&e.name.as_str()))
        .count();
    eprintln!(
        "crash test: {rounds} rounds of kill -9, {} operations acknowledged, {} events received and found in the journal, {} containers created, {restarts} starts of crash-looping ones",
        a.ops,
        received.len(),
        a.created.len()
    );
}
