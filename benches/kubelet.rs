//! `cargo bench --bench kubelet`: what a kubelet asks of a runtime all
//! the time, with 100 pods running (one container each): ListPodSandbox,
//! ListContainers, ListPodSandboxStats and ListContainerStats (it relists
//! every second); and the streams `kubectl exec`, `attach` and
//! `port-forward` go through, as crictl drives them (client-go inside):
//! `crictl exec CONTAINER true`, a line typed into `crictl attach -i` until
//! it comes back, and an HTTP GET through `crictl port-forward`, each the
//! whole round trip. Against berthd's CRI socket and, in turn in the same
//! run, a private Debian containerd run as a CRI runtime where it is
//! installed. Prints median, p99 and minimum. BERTH_BENCH_N sets the
//! number of samples (default 300 for the lists, a tenth of it for the
//! streams).

#[path = "../tests/common/mod.rs"]
mod common;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cri::Rt;

const PODS: usize = 100;

/// The pods' cgroups' parent, of this run's own.
fn cgroups() -> String {
    format!("berth-bench-kubepods-{}", std::process::id())
}

async fn client(socket: &Path) -> Rt {
    let ch = berth::connect(&format!("unix://{}", socket.display()))
        .await
        .unwrap();
    RuntimeServiceClient::new(ch)
}

/// Pod `i`, its cgroup under `parent` as the kubelet puts it under
/// /kubepods (containerd's pod stats need one).
fn pod_config(i: usize, parent: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: format!("/{parent}/pod{i}"),
            ..Default::default()
        }),
        metadata: Some(cri::PodSandboxMetadata {
            name: format!("list-{i}"),
            uid: format!("uid-{i}"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: format!("list-{i}"),
        ..Default::default()
    }
}

/// Runs pod `i` with a container of `image` running `cmd`; (pod, container).
async fn run(rt: &mut Rt, image: &str, i: usize, cmd: &[&str], stdin: bool) -> (String, String) {
    let config = pod_config(i, &cgroups());
    let pod = common::cri::run_pod(rt, &config).await;
    let container = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        stdin,
        ..Default::default()
    };
    let id = common::cri::start_with(rt, &pod, &config, container).await;
    (pod, id)
}

async fn teardown(rt: &mut Rt, pods: &[String]) {
    for pod in pods {
        let _ = rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await;
        let _ = rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await;
    }
}

/// The four lists, `n` times each.
async fn lists(rt: &mut Rt, n: usize) -> [Vec<Duration>; 4] {
    let mut out: [Vec<Duration>; 4] = Default::default();
    for _ in 0..n {
        let t = Instant::now();
        let pods = rt
            .list_pod_sandbox(cri::ListPodSandboxRequest::default())
            .await
            .unwrap()
            .into_inner()
            .items;
        out[0].push(t.elapsed());
        assert!(pods.len() >= PODS);
        let t = Instant::now();
        rt.list_containers(cri::ListContainersRequest::default())
            .await
            .unwrap();
        out[1].push(t.elapsed());
        let t = Instant::now();
        rt.list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest::default())
            .await
            .unwrap();
        out[2].push(t.elapsed());
        let t = Instant::now();
        rt.list_container_stats(cri::ListContainerStatsRequest::default())
            .await
            .unwrap();
        out[3].push(t.elapsed());
    }
    out
}

/// Round trips through crictl's streams to `socket`'s runtime: exec of
/// `true` in `sleeper`, a line through an attach to `cat`, a GET through
/// a port-forward to the pod running httpd on 8080.
fn streams(
    crictl: &Path,
    socket: &Path,
    sleeper: &str,
    cat: &str,
    web_pod: &str,
    n: usize,
) -> [Vec<Duration>; 3] {
    let endpoint = format!("unix://{}", socket.display());
    let crictl_cmd = |args: &[&str]| {
        let mut c = Command::new(crictl);
        c.args(["-r", &endpoint]).args(args).stderr(Stdio::null());
        c
    };
    let mut out: [Vec<Duration>; 3] = Default::default();
    for _ in 0..n {
        let t = Instant::now();
        let ok = crictl_cmd(&["exec", sleeper, "true"]).status().unwrap();
        assert!(ok.success());
        out[0].push(t.elapsed());
    }
    let mut attach = crictl_cmd(&["attach", "-i", cat])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut input, mut output) = (
        attach.stdin.take().unwrap(),
        std::io::BufReader::new(attach.stdout.take().unwrap()),
    );
    for i in 0..n {
        let t = Instant::now();
        writeln!(input, "ping {i}").unwrap();
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        assert_eq!(line, format!("ping {i}\n"));
        out[1].push(t.elapsed());
    }
    let _ = attach.kill();
    let _ = attach.wait();
    let port = 19000 + (std::process::id() % 1000) as u16;
    let mut forward = crictl_cmd(&["port-forward", web_pod, &format!("{port}:8080")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    let mut fwd_out = std::io::BufReader::new(forward.stdout.take().unwrap());
    fwd_out.read_line(&mut ready).unwrap();
    // Keep reading its stdout: crictl prints a line per connection.
    std::thread::spawn(move || std::io::copy(&mut fwd_out, &mut std::io::sink()));
    for _ in 0..n {
        let t = Instant::now();
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        assert!(answer.ends_with("bench\n"), "{answer}");
        out[2].push(t.elapsed());
    }
    let _ = forward.kill();
    let _ = forward.wait();
    out
}

struct Figures {
    lists: [Vec<Duration>; 4],
    streams: Option<[Vec<Duration>; 3]>,
}

async fn measure(rt: &mut Rt, socket: &Path, image: &str, crictl: Option<&Path>) -> Figures {
    let n = common::bench::samples();
    let mut pods = Vec::new();
    let (mut sleeper, mut cat, mut web) = Default::default();
    for i in 0..PODS {
        let (pod, id) = match i {
            1 => run(rt, image, i, &["cat"], true).await,
            2 => {
                let serve = "mkdir -p /tmp/www && echo bench > /tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www";
                run(rt, image, i, &["sh", "-c", serve], false).await
            }
            _ => run(rt, image, i, &["sleep", "100000"], false).await,
        };
        match i {
            0 => sleeper = id,
            1 => cat = id,
            2 => web = pod.clone(),
            _ => {}
        }
        pods.push(pod);
    }
    let lists = lists(rt, n).await;
    let streams = crictl.map(|c| streams(c, socket, &sleeper, &cat, &web, (n / 10).max(10)));
    teardown(rt, &pods).await;
    Figures { lists, streams }
}

#[tokio::main]
async fn main() {
    let _tree = common::CgroupTree(cgroups());
    let d = common::Daemon::start_with_log("bench-kubelet", "warn").await;
    common::load(
        &d,
        common::docker_archive("app:1", serde_json::json!({"Cmd": ["sh"]})),
    )
    .await
    .unwrap();
    let crictl = common::cri::crictl();
    let mut berth = client(&d.cri_path()).await;
    let ours = measure(&mut berth, &d.cri_path(), "app:1", crictl.as_deref()).await;
    let containerd = common::containerd::Containerd::start(&d.dir, "10.232.0.0/16");
    let theirs = match &containerd {
        Some(c) => {
            let mut rt = client(&c.socket).await;
            Some(
                measure(
                    &mut rt,
                    &c.socket,
                    common::containerd::IMAGE,
                    crictl.as_deref(),
                )
                .await,
            )
        }
        None => None,
    };
    let names = [
        "ListPodSandbox",
        "ListContainers",
        "ListPodSandboxStats",
        "ListContainerStats",
    ];
    for (i, name) in names.iter().enumerate() {
        println!("{name} with {PODS} pods running");
        common::bench::report("berth", ours.lists[i].clone());
        if let Some(t) = &theirs {
            common::bench::report("containerd", t.lists[i].clone());
        }
    }
    let names = [
        "crictl exec CONTAINER true (process start included)",
        "a line through crictl attach -i, there and back",
        "an HTTP GET through crictl port-forward (a new connection each)",
    ];
    for (i, name) in names.iter().enumerate() {
        let Some(s) = &ours.streams else { break };
        println!("{name}");
        common::bench::report("berth", s[i].clone());
        if let Some(t) = theirs.as_ref().and_then(|t| t.streams.as_ref()) {
            common::bench::report("containerd", t[i].clone());
        }
    }
    drop(containerd);
}
