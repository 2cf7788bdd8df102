//! `cargo bench --bench events`: the event path.
//!
//! - kill -> die: a Kill request to the die event at a subscriber, and the
//!   process's exit (the monitor's reap time, the die event's `time`) to
//!   the die event at the subscriber; Docker's kill to die at an events
//!   subscriber (a private dockerd, through its API; at most 50 samples)
//!   where dockerd is installed.
//! - journal append: events/s through the API (Kill requests, one client,
//!   and eight on eight containers), and in the store alone (one event per durable
//!   transaction, and 1,000 per transaction).
//! - replay: a journal of 1,000,000 events read back, by the store and by
//!   a subscriber over gRPC.
//! - fan-out: one event to 1,000 live subscribers.
//! - operations beside subscribers: Start and Stop latency with no
//!   subscriber, then with 1,000 subscribers reading every event (read by
//!   a thread of their own, as other processes would).
//!
//! BERTH_BENCH_N sets the number of kill -> die samples (default 300).

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../server/store/mod.rs"]
mod store;

use berth::pb::{self, events_client::EventsClient, Action};
use common::bench::report;
use common::{Api, Daemon};
use prost::Message;
use std::time::{Duration, Instant, SystemTime};

const REPLAY_EVENTS: u64 = 1_000_000;
const SUBSCRIBERS: usize = 1000;

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap()
}

fn ts_duration(t: &prost_types::Timestamp) -> Duration {
    Duration::new(t.seconds as u64, t.nanos as u32)
}

async fn sleeper(api: &mut Api, name: &str) -> String {
    common::started(api, common::spec(name, &["sleep", "100000"])).await
}

async fn kill(api: &mut Api, id: &str, signal: &str) {
    api.kill(pb::KillRequest {
        id: id.into(),
        signal: signal.into(),
        ..Default::default()
    })
    .await
    .expect("kill");
}

async fn kill_to_die(d: &Daemon, n: usize) {
    let mut api = d.api().await;
    let mut dies = d
        .subscribe(pb::SubscribeRequest {
            actions: vec![Action::Die as i32],
            ..Default::default()
        })
        .await
        .unwrap();
    let (mut request, mut exit) = (Vec::new(), Vec::new());
    for i in 0..n + 10 {
        let id = sleeper(&mut api, &format!("k{i}")).await;
        let t = Instant::now();
        kill(&mut api, &id, "KILL").await;
        let die = dies.next(Duration::from_secs(10)).await.expect("die event");
        let got = t.elapsed();
        let now = since_epoch(SystemTime::now());
        assert_eq!(die.id, id);
        if i >= 10 {
            request.push(got);
            exit.push(now.saturating_sub(ts_duration(&die.time.unwrap())));
        }
        api.remove(pb::RemoveRequest { id, force: true })
            .await
            .unwrap();
    }
    println!("kill -> die at a subscriber, {n} containers");
    report("request", request);
    report("exit", exit);
    docker_kill_to_die(d, n.min(50));
}

/// Docker's kill to die at a subscriber of its events.
fn docker_kill_to_die(d: &Daemon, n: usize) {
    let Some(docker) = common::docker::Docker::start(&d.dir) else {
        return;
    };
    let mut dies = docker.die_events();
    let mut request = Vec::new();
    for i in 0..n + 3 {
        let id = docker.run(&["sleep", "100000"]);
        let t = Instant::now();
        docker.kill(&id, "KILL");
        let line = dies.next().expect("docker die event").unwrap();
        let got = t.elapsed();
        assert!(line.contains(&id), "{line}");
        if i >= 3 {
            request.push(got);
        }
        docker.remove(&id);
    }
    println!("Docker's kill -> die at a subscriber of its events, {n} containers");
    report("request", request);
}

async fn append_through_api(d: &Daemon) {
    let mut api = d.api().await;
    // One container per client: changes to one container are serialised,
    // changes to different containers share journal transactions.
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(sleeper(&mut api, &format!("appender{i}")).await);
    }
    for clients in [1usize, 8] {
        let per = 2000 / clients;
        let t = Instant::now();
        let tasks: Vec<_> = ids[..clients]
            .iter()
            .map(|id| {
                let (host, id) = (d.host(), id.clone());
                tokio::spawn(async move {
                    let mut api = pb::containers_client::ContainersClient::new(
                        berth::connect(&host).await.unwrap(),
                    );
                    for _ in 0..per {
                        kill(&mut api, &id, "CONT").await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let rate = (per * clients) as f64 / t.elapsed().as_secs_f64();
        println!("journal append through the API, {clients} client(s) on their own containers: {rate:>9.0} events/s");
    }
    for id in ids {
        api.remove(pb::RemoveRequest { id, force: true })
            .await
            .unwrap();
    }
}

fn event(seq: u64) -> pb::Event {
    pb::Event {
        seq,
        time: Some(prost_types::Timestamp::from(SystemTime::now())),
        id: format!("{seq:064x}"),
        name: "bench_container".into(),
        action: Action::Kill as i32,
        signal: 18,
        labels: [("app".to_string(), "bench".to_string())].into(),
        ..Default::default()
    }
}

/// Appends `n` events to the store, `per_tx` per transaction; events/s.
fn append_to_store(store: &store::Store, n: u64, per_tx: u64) -> f64 {
    let mut seq = store.bounds().unwrap().next;
    let t = Instant::now();
    let end = seq + n;
    while seq < end {
        let mut batch = store::Batch::default();
        for _ in 0..per_tx.min(end - seq) {
            batch.event(store::Entry {
                seq,
                recorded_at: since_epoch(SystemTime::now()).as_nanos() as i64,
                data: event(seq).encode_to_vec(),
            });
            seq += 1;
        }
        store.write_all(&[batch]).unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

async fn replay(d: &mut Daemon) {
    d.stop_daemon(libc::SIGTERM);
    let db = d.root.join("berth.redb");
    {
        let store = store::Store::open(&db).unwrap();
        let one = append_to_store(&store, 2000, 1);
        println!("journal append in the store, 1 event per transaction: {one:>9.0} events/s");
        let t = Instant::now();
        let many = append_to_store(&store, REPLAY_EVENTS, 1000);
        println!(
            "journal append in the store, 1000 per transaction: {many:>9.0} events/s ({REPLAY_EVENTS} events in {:.1} s)",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let mut after = 0;
        let mut read = 0u64;
        loop {
            let batch = store.read(after, 1024).unwrap();
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for e in &batch {
                pb::Event::decode(e.data.as_slice()).unwrap();
            }
            read += batch.len() as u64;
        }
        println!(
            "replay in the store (read + decode): {:>9.0} events/s ({read} events)",
            read as f64 / t.elapsed().as_secs_f64()
        );
    }
    d.args = vec!["--events-retention".into(), "10000000".into()];
    d.spawn().await;
    let mut client = EventsClient::new(berth::connect(&d.host()).await.unwrap());
    let t = Instant::now();
    let mut stream = client
        .subscribe(pb::SubscribeRequest {
            since_seq: Some(0),
            until: Some(prost_types::Timestamp::from(SystemTime::now())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0u64;
    while let Some(_e) = stream.message().await.unwrap() {
        n += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "replay to a subscriber over gRPC: {:>9.0} events/s ({n} events in {secs:.2} s)",
        n as f64 / secs
    );
}

async fn fan_out(d: &Daemon) {
    let mut api = d.api().await;
    let id = sleeper(&mut api, "fanout").await;
    // 100 streams per connection, within HTTP/2's usual stream limits.
    let mut streams = Vec::new();
    for _ in 0..SUBSCRIBERS / 100 {
        let channel = berth::connect(&d.host()).await.unwrap();
        for _ in 0..100 {
            let s = EventsClient::new(channel.clone())
                .subscribe(pb::SubscribeRequest {
                    containers: vec![id.clone()],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            streams.push(s);
        }
    }
    let rounds = 100;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    for mut s in streams {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while let Ok(Some(_)) = s.message().await {
                let _ = tx.send((i, Instant::now()));
                i += 1;
                if i == rounds {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut all = Vec::new();
    let mut first = Vec::new();
    let begin = Instant::now();
    for round in 0..rounds {
        let t = Instant::now();
        kill(&mut api, &id, "CONT").await;
        let mut got = 0;
        let mut earliest = None;
        while got < SUBSCRIBERS {
            let (i, at) = rx.recv().await.expect("subscriber ended");
            assert_eq!(i, round);
            earliest.get_or_insert(at);
            got += 1;
            if got == SUBSCRIBERS {
                all.push(at - t);
            }
        }
        first.push(earliest.unwrap() - t);
    }
    let secs = begin.elapsed().as_secs_f64();
    println!("fan-out of one event to {SUBSCRIBERS} subscribers, {rounds} events");
    report("first", first);
    report("all", all);
    println!(
        "fan-out deliveries: {:>9.0} events/s",
        (rounds * SUBSCRIBERS) as f64 / secs
    );
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
}

/// `SUBSCRIBERS` subscriptions to every event, 100 per connection, each
/// read to its end on a thread of their own at nice value `nice`, as other
/// processes would.
#[allow(unsafe_code)]
fn subscribers(d: &Daemon, nice: i32) -> std::thread::JoinHandle<()> {
    let host = d.host();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        // SAFETY: setpriority on this thread's own tid.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as u32, nice) };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for _ in 0..SUBSCRIBERS / 100 {
                let channel = berth::connect(&host).await.unwrap();
                for _ in 0..100 {
                    let mut s = EventsClient::new(channel.clone())
                        .subscribe(pb::SubscribeRequest::default())
                        .await
                        .unwrap()
                        .into_inner();
                    tasks.push(tokio::spawn(async move {
                        while let Ok(Some(_)) = s.message().await {}
                    }));
                }
            }
            ready_tx.send(()).unwrap();
            for t in tasks {
                let _ = t.await;
            }
        })
    });
    ready_rx.recv().unwrap();
    thread
}

/// Start and Stop latency of `n` containers.
async fn start_stop(api: &mut Api, n: usize, tag: &str) -> (Vec<Duration>, Vec<Duration>) {
    let (mut starts, mut stops) = (Vec::new(), Vec::new());
    for i in 0..n {
        let req = common::spec(&format!("{tag}{i}"), &["sleep", "100000"]);
        let id = api.create(req).await.unwrap().into_inner().id;
        let t = Instant::now();
        api.start(pb::StartRequest { id: id.clone() })
            .await
            .unwrap();
        starts.push(t.elapsed());
        let t = Instant::now();
        api.stop(pb::StopRequest {
            id: id.clone(),
            timeout_seconds: Some(0),
            signal: None,
        })
        .await
        .unwrap();
        stops.push(t.elapsed());
        api.remove(pb::RemoveRequest { id, force: true })
            .await
            .unwrap();
    }
    (starts, stops)
}

/// Start and Stop with no subscriber, then with 1,000 whose readers run at
/// normal priority (the machine's CPU is shared with them), then with
/// readers at nice 19 (what the daemon's own delivery work costs).
async fn beside_subscribers(n: usize) {
    let n = n.min(100);
    for (round, nice) in [(0, None), (1, Some(0)), (2, Some(19))] {
        let d = Daemon::start_with_log("subscribers-bench", "warn").await;
        let mut api = d.api().await;
        let readers = nice.map(|nice| subscribers(&d, nice));
        let (starts, stops) = start_stop(&mut api, n, &format!("r{round}-")).await;
        match nice {
            None => println!("with no subscriber, {n} containers"),
            Some(nice) => println!(
                "with {SUBSCRIBERS} subscribers to every event, readers at nice {nice}, {n} containers"
            ),
        }
        report("start", starts);
        report("stop", stops);
        drop(d);
        if let Some(r) = readers {
            r.join().unwrap();
        }
    }
}

#[tokio::main]
async fn main() {
    let n = common::bench::samples();
    beside_subscribers(n).await;
    let mut d = Daemon::start_with_log("events-bench", "warn").await;
    kill_to_die(&d, n).await;
    append_through_api(&d).await;
    fan_out(&d).await;
    replay(&mut d).await;
}
