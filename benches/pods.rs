//! `cargo bench --bench pods`: a pod's life through the CRI, as the
//! kubelet drives it: RunPodSandbox, CreateContainer and StartContainer
//! (the start), then StopContainer, RemoveContainer, StopPodSandbox and
//! RemovePodSandbox (the teardown), N times, against berthd's CRI socket
//! and, in turn in the same run, a private Debian containerd run as a CRI
//! runtime (CNI bridge plugin; the test rootfs as its images) where it is
//! installed. Both pods on a bridge with an address of their own. Prints
//! median, p99 and minimum of each part. BERTH_BENCH_N sets N (default
//! 100).

#[path = "../tests/common/mod.rs"]
mod common;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

type Rt = RuntimeServiceClient<Channel>;

async fn client(socket: &std::path::Path) -> Rt {
    let ch = berth::connect(&format!("unix://{}", socket.display()))
        .await
        .unwrap();
    RuntimeServiceClient::new(ch)
}

/// One pod's start and teardown.
async fn lifecycle(rt: &mut Rt, image: &str, i: usize) -> (Duration, Duration) {
    let config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: format!("bench-{i}"),
            uid: format!("uid-{i}"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: format!("bench-{i}"),
        ..Default::default()
    };
    let t = Instant::now();
    let pod = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let id = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "c".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                command: vec!["sleep".into(), "1000".into()],
                ..Default::default()
            }),
            sandbox_config: Some(config),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    let started = t.elapsed();
    let t = Instant::now();
    rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 0,
    })
    .await
    .unwrap();
    rt.remove_container(cri::RemoveContainerRequest { container_id: id })
        .await
        .unwrap();
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    (started, t.elapsed())
}

#[tokio::main]
async fn main() {
    let n = std::env::var("BERTH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let d = common::Daemon::start_with_log("bench-pods", "warn").await;
    common::load(
        &d,
        common::docker_archive("app:1", serde_json::json!({"Cmd": ["sh"]})),
    )
    .await
    .unwrap();
    let mut berth = client(&d.cri_path()).await;
    let containerd = common::containerd::Containerd::start(&d.dir, "10.231.0.0/16");
    let mut reference = match &containerd {
        Some(c) => Some(client(&c.socket).await),
        None => None,
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let warmup = 5;
    for i in 0..n + warmup {
        let b = lifecycle(&mut berth, "app:1", i).await;
        let c = match &mut reference {
            Some(rt) => Some(lifecycle(rt, common::containerd::IMAGE, i).await),
            None => None,
        };
        if i >= warmup {
            ours.push(b);
            theirs.extend(c);
        }
    }
    println!(
        "pod start: RunPodSandbox + CreateContainer + StartContainer ({n} pods, one at a time)"
    );
    common::bench::report("berth", ours.iter().map(|t| t.0).collect());
    if !theirs.is_empty() {
        common::bench::report("containerd", theirs.iter().map(|t| t.0).collect());
    }
    println!("pod teardown: StopContainer (timeout 0) + RemoveContainer + StopPodSandbox + RemovePodSandbox");
    common::bench::report("berth", ours.iter().map(|t| t.1).collect());
    if !theirs.is_empty() {
        common::bench::report("containerd", theirs.iter().map(|t| t.1).collect());
    }
    drop(containerd);
}
