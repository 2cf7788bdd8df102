//! Pods' networks through the CRI: the CNI configuration in the conf dir
//! (Debian's bridge, host-local and portmap plugins, run by berthd for
//! each pod), berth's own pod network when the conf dir has none, and
//! NetworkReady false while its first file cannot be used.

mod common;

use common::cri::*;
use common::*;
use k8s_cri::v1 as cri;
use std::net::Ipv4Addr;
use std::time::Duration;

/// A bridge the CNI bridge plugin makes, deleted when the test ends.
struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// An HTTP GET of `url` answered within a few seconds: its body.
fn fetch(url: &str) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "3", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A pod serving "hello" over HTTP on port 80, published on `host_port`.
async fn serving_pod(rt: &mut Rt, d: &Daemon, name: &str, host_port: u16) -> (String, Ipv4Addr) {
    let mut config = pod_config(name, &d.root.join("pod-logs"));
    config.port_mappings = vec![cri::PortMapping {
        protocol: cri::Protocol::Tcp as i32,
        container_port: 80,
        host_port: host_port.into(),
        host_ip: "127.0.0.1".into(),
    }];
    let pod = run_pod(rt, &config).await;
    let script =
        "mkdir -p /www && echo hello > /www/index.html && exec busybox httpd -f -p 80 -h /www";
    run_container(rt, &pod, &config, "web", script).await;
    let ip: Ipv4Addr = pod_status(rt, &pod)
        .await
        .network
        .unwrap()
        .ip
        .parse()
        .unwrap();
    (pod, ip)
}

/// The pod answers on its address and on the host port.
async fn answers(ip: Ipv4Addr, host_port: u16) {
    let mut tries = 0;
    while fetch(&format!("http://{ip}/")).as_deref() != Some("hello\n") {
        tries += 1;
        assert!(tries < 50, "the pod does not answer at {ip}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        fetch(&format!("http://127.0.0.1:{host_port}/")).as_deref(),
        Some("hello\n"),
        "the host port does not answer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_goes_on_the_conf_dirs_cni_network() {
    if !std::path::Path::new("/usr/lib/cni/bridge").exists() {
        return skip(Need::Tools, "containernetworking-plugins is not installed");
    }
    let dir = test_dir("cri-cni");
    let net_d = dir.join("net.d");
    std::fs::create_dir_all(&net_d).unwrap();
    let mut raw = [0u8; 2];
    getrandom(&mut raw);
    let bridge = Bridge(format!("berthcni{:02x}{:02x}", raw[0], raw[1]));
    let subnet = format!("10.{}.{}.0/24", 200 + raw[0] % 50, raw[1]);
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0", "name": "kube",
        "plugins": [
            {"type": "bridge", "bridge": bridge.0, "isGateway": true, "ipMasq": false, "hairpinMode": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": dir.join("ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    // A file that sorts later, and one that is no configuration, change
    // nothing: the first by name counts.
    std::fs::write(net_d.join("10-kube.conflist"), conflist.to_string()).unwrap();
    std::fs::write(net_d.join("99-other.conflist"), "not json").unwrap();
    std::fs::write(net_d.join("README"), "not a configuration").unwrap();
    let net_d_arg = net_d.display().to_string();
    let (d, mut rt) = cri_daemon("cri-cni", &["--cni-conf-dir", &net_d_arg]).await;
    let host_port = free_port();
    let (pod, ip) = serving_pod(&mut rt, &d, "cni", host_port).await;
    let net: Vec<&str> = subnet.split('/').collect();
    let base: Ipv4Addr = net[0].parse().unwrap();
    assert_eq!(
        ip.octets()[..3],
        base.octets()[..3],
        "{ip} is not in {subnet}"
    );
    answers(ip, host_port).await;
    // The plugins' own devices: the pod's veth is on their bridge.
    let links = std::process::Command::new("ip")
        .args(["-br", "link", "show", "master", &bridge.0])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&links.stdout).lines().count(), 1);

    // Stopped, the plugins take it off: no veth, no address held, no
    // port published.
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let links = std::process::Command::new("ip")
        .args(["-br", "link", "show", "master", &bridge.0])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&links.stdout).trim(), "");
    let leases = std::fs::read_dir(dir.join("ipam/kube")).unwrap();
    let held: Vec<String> = leases
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.parse::<Ipv4Addr>().is_ok())
        .collect();
    assert!(held.is_empty(), "addresses still held: {held:?}");
    assert_eq!(fetch(&format!("http://127.0.0.1:{host_port}/")), None);
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();

    // A first file that cannot be used: the network is not ready, and a
    // pod is refused with the reason.
    std::fs::write(net_d.join("00-broken.conf"), "{").unwrap();
    let status = rt
        .status(cri::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let network = &status.status.unwrap().conditions[1];
    assert_eq!(
        (
            network.r#type.as_str(),
            network.status,
            network.reason.as_str()
        ),
        ("NetworkReady", false, "NetworkPluginNotReady")
    );
    assert!(
        network.message.contains("00-broken.conf"),
        "{}",
        network.message
    );
    let err = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod_config("refused", &d.root)),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(listed(&mut d.api().await).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cni_configuration_pods_go_on_berths_network() {
    let (d, mut rt) = cri_daemon("cri-own-net", &[]).await;
    let host_port = free_port();
    let (pod, ip) = serving_pod(&mut rt, &d, "own", host_port).await;
    answers(ip, host_port).await;
    // berth's network, with the pod on it.
    let out = std::process::Command::new(berth_cli())
        .args(["--host", &d.host(), "network", "inspect", "cri-pods"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&ip.to_string()),
        "{out:?}"
    );
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    assert_eq!(fetch(&format!("http://127.0.0.1:{host_port}/")), None);
}
