//! Restart policies across a daemon restart (containers keep running; an
//! exit while it was down is restarted when it is back) and a host boot
//! (simulated: the daemon, the monitors and PID 1s killed, the boot id
//! changed), where berthd starts what Docker's rule says.

mod common;

use berth::pb::{self, Action};
use common::*;
use std::time::{Duration, Instant};

fn with_policy(mut req: pb::CreateRequest, name: &str, max: u32) -> pb::CreateRequest {
    req.restart_policy = Some(pb::RestartPolicy {
        name: name.into(),
        maximum_retry_count: max,
    });
    req
}

async fn until(
    api: &mut Api,
    id: &str,
    ok: impl Fn(&pb::ContainerState) -> bool,
) -> pb::ContainerState {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = status(api, id).await;
        if ok(&st) {
            return st;
        }
        assert!(Instant::now() < deadline, "{id}: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is(s: pb::Status) -> impl Fn(&pb::ContainerState) -> bool {
    move |st| st.status == s as i32
}

async fn last_seq(d: &Daemon) -> u64 {
    d.journal().await.last().map_or(0, |e| e.seq)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exit_while_the_daemon_is_down_is_restarted_when_it_is_back() {
    let mut d = Daemon::start("rpb-down").await;
    let mut api = d.api().await;
    let svc = with_policy(spec("svc", &["sleep", "1000"]), "always", 0);
    let svc = started(&mut api, svc).await;
    let pid = status(&mut api, &svc).await.pid;
    let looping = with_policy(spec("loop", &["sh", "-c", "exit 4"]), "always", 0);
    let looping = started(&mut api, looping).await;
    until(&mut api, &looping, |st| st.restart_count >= 3).await;
    let quiet = with_policy(spec("quiet", &["sleep", "1000"]), "unless-stopped", 0);
    let quiet = started(&mut api, quiet).await;
    api.stop(pb::StopRequest {
        id: quiet.clone(),
        timeout_seconds: Some(0),
        ..Default::default()
    })
    .await
    .unwrap();
    let before = last_seq(&d).await;
    let count = status(&mut api, &looping).await.restart_count;

    d.stop_daemon(libc::SIGKILL);
    kill(pid as i32, libc::SIGKILL);
    while alive(pid) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.spawn().await;
    let mut api = d.api().await;

    // svc: its exit is recorded with its code, then the policy starts it.
    let st = until(&mut api, &svc, |st| st.restart_count == 1).await;
    assert_eq!(st.exit_count, 1);
    until(&mut api, &svc, is(pb::Status::Running)).await;
    let events: Vec<pb::Event> = d
        .journal()
        .await
        .into_iter()
        .filter(|e| e.seq > before && (e.id == svc || e.id.is_empty()))
        .collect();
    assert_eq!(
        brief(&events)[..3],
        [
            (Action::DaemonStart, 0, None),
            (Action::Die, 9, Some(137)),
            (Action::Start, 0, None)
        ]
    );
    // The loop goes on where it was: its count is not reset.
    until(&mut api, &looping, |st| st.restart_count > count).await;
    // What the user stopped stays stopped.
    let st = status(&mut api, &quiet).await;
    assert_eq!(st.status, pb::Status::Exited as i32);
    assert!(st.stopped_by_user);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_boot_starts_containers_by_their_policies() {
    let mut d = Daemon::start("rpb-boot").await;
    let mut api = d.api().await;
    let sleeper = |name: &str, policy: &str| with_policy(spec(name, &["sleep", "1000"]), policy, 0);
    let mut ids = std::collections::BTreeMap::new();
    for (name, policy) in [
        ("always-stopped", "always"),
        ("unless-stopped-stopped", "unless-stopped"),
        ("unless-stopped-running", "unless-stopped"),
        ("on-failure-stopped", "on-failure"),
        ("none-running", "no"),
    ] {
        ids.insert(name, started(&mut api, sleeper(name, policy)).await);
    }
    let ok = with_policy(spec("on-failure-ok", &["true"]), "on-failure", 0);
    ids.insert("on-failure-ok", started(&mut api, ok).await);
    let never = with_policy(spec("always-created", &["true"]), "always", 0);
    ids.insert("always-created", created(&mut api, never).await);
    let mut web = with_policy(web("web"), "always", 0);
    web.ports = vec![pb::PortBinding {
        container_port: 80,
        ..Default::default()
    }];
    ids.insert("web", started(&mut api, web).await);
    for name in [
        "always-stopped",
        "unless-stopped-stopped",
        "on-failure-stopped",
    ] {
        api.stop(pb::StopRequest {
            id: ids[name].clone(),
            timeout_seconds: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    until(&mut api, &ids["on-failure-ok"], is(pb::Status::Exited)).await;
    let port = host_port(&inspect(&mut api, &ids["web"]).await, 80, "tcp");
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");

    // The host goes down: nothing of the containers' processes is left,
    // and the kernel's boot id is not the one berthd recorded.
    d.stop_daemon(libc::SIGKILL);
    kill_monitors(&d.root);
    for id in ids.values() {
        kill_cgroup(id);
    }
    std::fs::write(d.root.join("boot_id"), "an earlier boot\n").unwrap();
    d.spawn().await;
    let mut api = d.api().await;

    for name in [
        "always-stopped",
        "unless-stopped-running",
        "on-failure-stopped",
        "web",
    ] {
        let st = until(&mut api, &ids[name], is(pb::Status::Running)).await;
        assert_eq!(st.restart_count, 0, "{name}: a start at boot starts over");
        assert!(!st.stopped_by_user, "{name}");
    }
    for name in ["unless-stopped-stopped", "on-failure-ok", "none-running"] {
        let st = status(&mut api, &ids[name]).await;
        assert_eq!(st.status, pb::Status::Exited as i32, "{name}");
    }
    let st = status(&mut api, &ids["always-created"]).await;
    assert_eq!(st.status, pb::Status::Created as i32);
    // Its network and published port are wired again.
    let port = host_port(&inspect(&mut api, &ids["web"]).await, 80, "tcp");
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");

    // A later daemon restart is no boot: `always` stopped by the user
    // stays stopped (Docker would start it with its daemon).
    api.stop(pb::StopRequest {
        id: ids["always-stopped"].clone(),
        timeout_seconds: Some(0),
        ..Default::default()
    })
    .await
    .unwrap();
    d.stop_daemon(libc::SIGTERM);
    d.spawn().await;
    let mut api = d.api().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = status(&mut api, &ids["always-stopped"]).await;
    assert_eq!(st.status, pb::Status::Exited as i32);
}
