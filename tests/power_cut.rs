//! The power-cut test, run by `.ci/power-cut` in the cgroup v2 VM: the
//! whole machine stops at a random point, and nothing berthd acknowledged
//! is lost or duplicated.
//!
//! `drive` (first boot) runs berthd with its root on a real disk (ext4 on
//! a virtio disk, $BERTH_POWER_CUT_DISK) and a stream of lifecycles on it:
//! workers create, start, kill, wait for and remove containers, some on
//! the bridge network, one crash-loops under `always`, and a subscriber
//! follows the events. Each acknowledgement is appended, as soon as it
//! arrives, to a log outside the VM ($BERTH_POWER_CUT_ACKS, on a 9p share
//! that writes through to the host). It runs until qemu is killed.
//!
//! `check` (next boot, same disk) starts berthd again and checks what the
//! crash test checks after a kill -9 (common/survival.rs) against that
//! log: every acknowledged create there and remove gone, every received
//! event in the journal with its seq and content, no seq twice or missing,
//! no container created twice, a die with the code of every acknowledged
//! exit, states that match the processes, starts and dies alternating.
//! Then a new container runs on the bridge, as it would after any reboot.
//!
//! Both are ignored by a plain `cargo test`: only the VM can cut power.

mod common;

use berth::pb::{self, Action};
use common::*;
use prost::Message;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: u64 = 3;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: .ci/power-cut runs this"))
}

/// Mounts the disk (waiting for its device) and gives the daemon's
/// directory on it.
fn mount_disk() -> PathBuf {
    let disk = env("BERTH_POWER_CUT_DISK");
    let t = Instant::now();
    while !std::path::Path::new(&disk).exists() {
        assert!(t.elapsed() < Duration::from_secs(60), "no {disk}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mnt = PathBuf::from("/run/berth-power-cut");
    std::fs::create_dir_all(&mnt).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "ext4", &disk])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mount {disk}");
    mnt.join("berth")
}

/// The acknowledgement log: one line per acknowledgement, each written
/// with a single write as soon as the answer arrives.
struct Acks(Mutex<std::fs::File>);

impl Acks {
    fn ack(&self, line: String) {
        self.0
            .lock()
            .unwrap()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One client: lifecycles until the power goes.
async fn worker(host: String, acks: Arc<Acks>, w: u64, mut rng: Rng) {
    let mut api =
        pb::containers_client::ContainersClient::new(berth::connect(&host).await.unwrap());
    for i in 0.. {
        let code = rng.below(4) as i32;
        let script = format!("exit {code}");
        let killed = rng.below(3) == 0;
        let args: Vec<&str> = match killed {
            true => vec!["sleep", "1000"],
            false => vec!["sh", "-c", &script],
        };
        let req = pb::CreateRequest {
            network: if rng.below(3) == 0 { "bridge" } else { "none" }.into(),
            ..spec(&format!("w{w}-{i}"), &args)
        };
        let id = api.create(req).await.unwrap().into_inner().id;
        acks.ack(format!("created {id}"));
        api.start(pb::StartRequest { id: id.clone() })
            .await
            .unwrap();
        if killed {
            api.kill(pb::KillRequest {
                id: id.clone(),
                signal: "KILL".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let exit = wait(&mut api, &id).await.exit_code;
        assert_eq!(exit, if killed { 137 } else { code });
        acks.ack(format!("exit {id} {exit}"));
        if rng.below(4) != 0 {
            acks.ack(format!("remove-tried {id}"));
            api.remove(pb::RemoveRequest {
                id: id.clone(),
                force: false,
            })
            .await
            .unwrap();
            acks.ack(format!("removed {id}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "the power-cut VM runs it (.ci/power-cut)"]
async fn drive() {
    let dir = mount_disk();
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env("BERTH_POWER_CUT_ACKS"))
        .unwrap();
    let acks = Arc::new(Acks(Mutex::new(file)));
    let d = Daemon::start_in(dir, "info").await;
    let mut sub = d
        .subscribe(pb::SubscribeRequest {
            since_seq: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    let log = acks.clone();
    let subscriber = tokio::spawn(async move {
        while let Some(e) = sub.message().await.unwrap() {
            log.ack(format!("event {}", hex(&e.encode_to_vec())));
        }
    });
    let mut api = d.api().await;
    let looping = api
        .create(pb::CreateRequest {
            restart_policy: Some(pb::RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 0,
            }),
            ..spec("looping", &["sh", "-c", "sleep 0.2; exit 3"])
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    acks.ack(format!("created {looping}"));
    api.start(pb::StartRequest { id: looping }).await.unwrap();
    let mut seed = [0u8; 8];
    getrandom(&mut seed);
    let mut rng = Rng(u64::from_le_bytes(seed) | 1);
    eprintln!("power-cut test seed {}", rng.0);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(d.host(), acks.clone(), w, Rng(rng.next() | 1))))
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    subscriber.await.unwrap();
    unreachable!("the workers run until the power is cut");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "the power-cut VM runs it after `drive` (.ci/power-cut)"]
async fn check() {
    let dir = mount_disk();
    let log = std::fs::read_to_string(env("BERTH_POWER_CUT_ACKS")).unwrap();
    // The last line may have been cut with the power.
    let lines: Vec<&str> = log
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    let mut acked = Acked::default();
    let mut received = Vec::new();
    for line in lines {
        let (what, rest) = line.trim_end().split_once(' ').unwrap();
        match what {
            "created" => drop(acked.created.insert(rest.into())),
            "remove-tried" => drop(acked.remove_tried.insert(rest.into())),
            "removed" => drop(acked.removed.insert(rest.into())),
            "exit" => {
                let (id, code) = rest.split_once(' ').unwrap();
                acked.exits.push((id.into(), code.parse().unwrap()));
            }
            "event" => received.push(pb::Event::decode(unhex(rest).as_slice()).unwrap()),
            _ => panic!("unknown acknowledgement {line:?}"),
        }
    }
    for (i, e) in received.iter().enumerate() {
        assert_eq!(
            e.seq,
            i as u64 + 1,
            "the subscriber skipped or repeated a seq"
        );
    }
    assert!(
        acked.removed.len() >= 10,
        "the power went before the stream got going ({} removes)",
        acked.removed.len()
    );
    // The rootfs the containers were made from is rebuilt (it lived in RAM).
    rootfs();
    let d = Daemon::start_in(dir, "berthd=debug,info").await;
    check_survivors("after the power cut", &d, &acked, &received).await;
    // The machine works as after any boot: a container on the bridge.
    let mut api = d.api().await;
    let id = started(
        &mut api,
        pb::CreateRequest {
            network: "bridge".into(),
            ..spec("after", &["sh", "-c", "exit 5"])
        },
    )
    .await;
    assert_eq!(wait(&mut api, &id).await.exit_code, 5);
    let journal = d.journal().await;
    let dies = journal
        .iter()
        .filter(|e| e.action == Action::Die as i32)
        .count();
    eprintln!(
        "power-cut test: {} containers created and {} removed as acknowledged, {} acknowledged exits and {} received events found in a journal of {} ({dies} dies)",
        acked.created.len(),
        acked.removed.len(),
        acked.exits.len(),
        received.len(),
        journal.len()
    );
}
