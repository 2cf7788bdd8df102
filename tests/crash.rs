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
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NAMES: [&str; 8] = ["c0", "c1", "c2", "c3", "c4", "c5", "r0", "r1"];
const WORKERS: usize = 3;

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
        let now = acked.lock().unwrap().clone();
        check_survivors(&format!("round {round}"), &d, &now, &received).await;
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
