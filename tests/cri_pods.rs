//! Pods and their containers through berthd's CRI socket, for what
//! critest does not check: a pod and its containers through a kill -9 of
//! berthd (still running, exits that happened meanwhile recorded), the
//! CRI log format with a line over 16 KiB and a reopen that loses no
//! line, and pods in berth's own API.

mod common;

use common::cri::*;
use common::*;
use k8s_cri::v1 as cri;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_lives_through_a_kill_of_berthd() {
    let (mut d, mut rt) = cri_daemon("cri-pod-kill", &[]).await;
    let logs = d.root.join("pod-logs");
    let config = pod_config("web", &logs);
    let pod = run_pod(&mut rt, &config).await;
    let st = pod_status(&mut rt, &pod).await;
    assert_eq!(st.state, cri::PodSandboxState::SandboxReady as i32);
    assert_eq!(st.metadata, config.metadata);
    assert_eq!(
        (st.labels.clone(), st.annotations.clone()),
        (config.labels.clone(), config.annotations.clone())
    );
    let ip = st.network.unwrap().ip;
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "pod ip {ip:?}");

    let server = run_container(
        &mut rt,
        &pod,
        &config,
        "server",
        "trap 'exit 3' TERM; while true; do sleep 0.1; done",
    )
    .await;
    let brief = run_container(&mut rt, &pod, &config, "brief", "sleep 3; exit 7").await;
    // The pod's names and namespaces: its hostname and DNS, one network
    // namespace (the pod's address), one PID namespace.
    assert_eq!(
        exec(&mut rt, &server, &["hostname"]).await,
        (0, "web\n".into())
    );
    let (_, resolv) = exec(&mut rt, &server, &["cat", "/etc/resolv.conf"]).await;
    for line in [
        "nameserver 10.96.0.10",
        "search default.svc.cluster.local",
        "options ndots:5",
    ] {
        assert!(
            resolv.lines().any(|l| l == line),
            "{line:?} not in {resolv:?}"
        );
    }
    let (_, addrs) = exec(
        &mut rt,
        &server,
        &["busybox", "ip", "-4", "-o", "addr", "show", "eth0"],
    )
    .await;
    assert!(addrs.contains(&format!("inet {ip}/")), "{addrs}");
    let (_, ps) = exec(&mut rt, &brief, &["busybox", "ps", "-o", "args"]).await;
    assert!(ps.contains("pause") && ps.contains("while true"), "{ps}");
    let server_pid = pid_of(&d, &server).await;

    // berthd is killed; meanwhile "brief" exits 7.
    d.stop_daemon(libc::SIGKILL);
    tokio::time::sleep(Duration::from_secs(4)).await;
    d.spawn().await;
    let mut rt = runtime(&d).await;
    let pods = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(pods.len(), 1);
    assert_eq!(
        (pods[0].id.as_str(), pods[0].state),
        (pod.as_str(), cri::PodSandboxState::SandboxReady as i32)
    );
    let s = container_status(&mut rt, &server).await;
    assert_eq!(s.state, cri::ContainerState::ContainerRunning as i32);
    assert_eq!(
        pid_of(&d, &server).await,
        server_pid,
        "the server was started again"
    );
    let s = until_exited(&mut rt, &brief, Duration::from_secs(10)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (7, "Error"));
    assert_eq!(
        exec(&mut rt, &server, &["hostname"]).await,
        (0, "web\n".into())
    );

    // Stopping the pod stops its containers; removing it removes them.
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let s = until_exited(&mut rt, &server, Duration::from_secs(10)).await;
    assert_eq!(
        s.exit_code, 137,
        "stopped with SIGKILL after the kubelet's own stop"
    );
    assert_eq!(
        pod_status(&mut rt, &pod).await.state,
        cri::PodSandboxState::SandboxNotready as i32
    );
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let left = rt
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(left.is_empty(), "{left:?}");
    assert!(listed(&mut d.api().await).await.is_empty());
    // Gone is gone: stop and remove again succeed, status is NOT_FOUND.
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_container(cri::RemoveContainerRequest {
        container_id: server.clone(),
    })
    .await
    .unwrap();
    let err = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: server,
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn cri_logs_cut_long_lines_and_reopen_without_losing_one() {
    let (d, mut rt) = cri_daemon("cri-logs", &[]).await;
    let logs = d.root.join("pod-logs");
    let config = pod_config("chatty", &logs);
    let pod = run_pod(&mut rt, &config).await;
    // A line of 40000 characters, one on stderr, then a counter.
    let script = "busybox head -c 40000 /dev/zero | busybox tr '\\0' x; echo; echo oops >&2; \
                  i=0; while true; do echo line $i; i=$((i+1)); sleep 0.01; done";
    let id = run_container(&mut rt, &pod, &config, "chatty", script).await;
    let path = logs.join("chatty.log");
    // There as soon as the start returns (critest reads it at once).
    assert!(path.exists(), "no CRI log once started");
    assert_eq!(
        container_status(&mut rt, &id).await.log_path,
        path.display().to_string()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&path)
        .unwrap_or_default()
        .contains(" F line 20\n")
    {
        assert!(Instant::now() < deadline, "no counter in the log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The kubelet's rotation: rename, then reopen.
    let rotated = logs.join("chatty.log.20261206-000000");
    std::fs::rename(&path, &rotated).unwrap();
    rt.reopen_container_log(cri::ReopenContainerLogRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    let old_after_reopen = std::fs::read_to_string(&rotated).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(
        old, old_after_reopen,
        "written to the rotated file after the reopen"
    );
    let new = std::fs::read_to_string(&path).unwrap();

    let parse = |line: &str| -> (String, String, String) {
        let mut parts = line.splitn(4, ' ');
        let time = parts.next().unwrap();
        assert!(time.ends_with('Z') && time.len() == 30, "time {time:?}");
        let (stream, tag) = (parts.next().unwrap(), parts.next().unwrap());
        (stream.into(), tag.into(), parts.next().unwrap_or("").into())
    };
    let lines: Vec<_> = old.lines().map(parse).collect();
    let x = |n: usize| "x".repeat(n);
    assert_eq!(lines[0], ("stdout".into(), "P".into(), x(16384)));
    assert_eq!(lines[1], ("stdout".into(), "P".into(), x(16384)));
    assert_eq!(
        lines[2],
        ("stdout".into(), "F".into(), x(40000 - 2 * 16384))
    );
    // stderr is a pipe of its own: its line comes in whatever order.
    let errors: Vec<_> = lines.iter().filter(|l| l.0 == "stderr").collect();
    assert_eq!(errors, [&("stderr".into(), "F".into(), "oops".into())]);
    // Every counter line once, in order, across both files.
    let counted: Vec<u32> = old
        .lines()
        .chain(new.lines())
        .map(parse)
        .filter_map(|(_, _, text)| text.strip_prefix("line ").map(|n| n.parse().unwrap()))
        .collect();
    assert!(new.lines().count() > 5, "nothing in the new file: {new:?}");
    let expected: Vec<u32> = (0..counted.len() as u32).collect();
    assert_eq!(counted, expected);
    // berth's own log has it all too.
    let own = berth_logs(&d, &id);
    assert!(own.contains("line 0\n") && own.contains(&x(40000)));
}

/// `berth logs ID`: stdout and stderr together.
fn berth_logs(d: &Daemon, id: &str) -> String {
    let out = std::process::Command::new(berth_cli())
        .args(["--host", &d.host(), "logs", id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test(flavor = "multi_thread")]
async fn container_events_come_from_the_journal() {
    let (d, mut rt) = cri_daemon("cri-events", &[]).await;
    let config = pod_config("evented", &d.root.join("pod-logs"));
    let mut events = rt
        .get_container_events(cri::GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let pod = run_pod(&mut rt, &config).await;
    let c = run_container(&mut rt, &pod, &config, "once", "exit 4").await;
    until_exited(&mut rt, &c, Duration::from_secs(10)).await;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    use cri::ContainerEventType::*;
    let want = [
        (pod.clone(), ContainerCreatedEvent),
        (pod.clone(), ContainerStartedEvent),
        (c.clone(), ContainerCreatedEvent),
        (c.clone(), ContainerStartedEvent),
        (c.clone(), ContainerStoppedEvent),
        // Removing the pod: its container goes first.
        (c.clone(), ContainerDeletedEvent),
        (pod.clone(), ContainerStoppedEvent),
        (pod.clone(), ContainerDeletedEvent),
    ];
    let mut seen = Vec::new();
    while seen.len() < want.len() {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("events stopped")
            .unwrap()
            .unwrap();
        assert!(ev.created_at > 0);
        if ev.container_id == c && ev.container_event_type == ContainerStoppedEvent as i32 {
            // The pod and its containers as they stood then.
            let status = ev.pod_sandbox_status.as_ref().unwrap();
            assert_eq!(status.id, pod);
            assert_eq!(status.metadata, config.metadata);
            let exited: Vec<_> = ev
                .containers_statuses
                .iter()
                .map(|s| (s.id.clone(), s.exit_code))
                .collect();
            assert_eq!(exited, [(c.clone(), 4)]);
        }
        let kind = cri::ContainerEventType::try_from(ev.container_event_type).unwrap();
        seen.push((ev.container_id, kind));
    }
    assert_eq!(seen, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_event_stream_begins_with_what_happened_while_berthd_was_down() {
    let (mut d, mut rt) = cri_daemon("cri-events-down", &[]).await;
    let config = pod_config("downtime", &d.root.join("pod-logs"));
    let pod = run_pod(&mut rt, &config).await;
    let c = run_container(&mut rt, &pod, &config, "late", "sleep 2; exit 5").await;
    d.stop_daemon(libc::SIGKILL);
    // It exits while no daemon runs; its monitor keeps the code.
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.spawn().await;
    let mut rt = runtime(&d).await;
    let mut events = rt
        .get_container_events(cri::GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("the exit was not replayed")
            .unwrap()
            .unwrap();
        if ev.container_id == c
            && ev.container_event_type == cri::ContainerEventType::ContainerStoppedEvent as i32
        {
            let exit: Vec<_> = ev
                .containers_statuses
                .iter()
                .map(|s| (s.id.clone(), s.exit_code))
                .collect();
            assert_eq!(exit, [(c.clone(), 5)]);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pods_cgroups_are_in_its_cgroup_parent() {
    let (d, mut rt) = cri_daemon("cri-cgroups", &[]).await;
    let mut raw = [0u8; 4];
    getrandom(&mut raw);
    let tree = CgroupTree(format!(
        "berth-test-kubepods-{:08x}",
        u32::from_le_bytes(raw)
    ));
    let parent = format!("/{}/burstable/pod-uid-1", tree.0);
    let mut config = pod_config("grouped", &d.root.join("pod-logs"));
    config.linux = Some(cri::LinuxPodSandboxConfig {
        cgroup_parent: parent.clone(),
        ..Default::default()
    });
    let pod = run_pod(&mut rt, &config).await;
    let c = run_container(&mut rt, &pod, &config, "busy", "sleep 1000").await;
    // Each one's cgroup is the parent and its CRI id (the kubelet's stats
    // find containers by it).
    for id in [&pod, &c] {
        let pid = pid_of(&d, id).await;
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let want = format!("{parent}/{id}");
        assert!(
            cgroups.lines().any(|l| l.ends_with(&format!(":{want}"))),
            "{want} not in {cgroups}"
        );
    }
    // Limits, stats and a kill of berthd go by that cgroup too.
    let stats = rt
        .container_stats(cri::ContainerStatsRequest {
            container_id: c.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert!(stats.memory.unwrap().working_set_bytes.unwrap().value > 0);
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    assert!(listed(&mut d.api().await).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pod_cidr_and_a_containers_resources_can_change() {
    let (d, mut rt) = cri_daemon("cri-updates", &[]).await;
    let mut raw = [0u8; 2];
    getrandom(&mut raw);
    let cidr = format!("10.{}.{}.0/24", 150 + raw[0] % 50, raw[1]);
    let update = |cidr: &str| cri::UpdateRuntimeConfigRequest {
        runtime_config: Some(cri::RuntimeConfig {
            network_config: Some(cri::NetworkConfig {
                pod_cidr: cidr.into(),
            }),
        }),
    };
    let err = rt
        .update_runtime_config(update("10.1.2.3/99"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    rt.update_runtime_config(update(&cidr)).await.unwrap();
    let config = pod_config("cidr", &d.root.join("pod-logs"));
    let pod = run_pod(&mut rt, &config).await;
    let ip = pod_status(&mut rt, &pod).await.network.unwrap().ip;
    let prefix = cidr.rsplit_once('.').unwrap().0;
    assert!(
        ip.starts_with(&format!("{prefix}.")),
        "{ip} is not in {cidr}"
    );

    let c = run_container(&mut rt, &pod, &config, "limited", "sleep 1000").await;
    let limits = cri::LinuxContainerResources {
        memory_limit_in_bytes: 64 << 20,
        cpu_shares: 512,
        // What the kubelet always sends, hugetlb controller or not.
        hugepage_limits: vec![cri::HugepageLimit {
            page_size: "2MB".into(),
            limit: 0,
        }],
        ..Default::default()
    };
    rt.update_container_resources(cri::UpdateContainerResourcesRequest {
        container_id: c.clone(),
        linux: Some(limits),
        ..Default::default()
    })
    .await
    .unwrap();
    let shown = container_status(&mut rt, &c)
        .await
        .resources
        .unwrap()
        .linux
        .unwrap();
    assert_eq!(
        (shown.memory_limit_in_bytes, shown.cpu_shares),
        (64 << 20, 512)
    );
    let inspected = inspect(&mut d.api().await, &c).await;
    assert_eq!(
        inspected
            .config
            .unwrap()
            .resources
            .unwrap()
            .memory_limit_bytes,
        Some(64 << 20)
    );

    // A hostPath that is not there yet is made, as a directory.
    let host = d.dir.join("volumes/made-by-create");
    let mut made = container_config("writer", "echo kept > /data/f");
    made.mounts = vec![cri::Mount {
        host_path: host.display().to_string(),
        container_path: "/data".into(),
        ..Default::default()
    }];
    let writer = start_with(&mut rt, &pod, &config, made).await;
    let s = until_exited(&mut rt, &writer, Duration::from_secs(10)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "kept\n");
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
}
