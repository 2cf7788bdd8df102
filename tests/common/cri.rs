//! Pods and containers through berthd's CRI socket (k8s-cri's types):
//! a client, a pod's config, and the calls tests make on them.

use super::*;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;

pub type Rt = RuntimeServiceClient<Channel>;

/// A daemon (with `args`) that has the image `app:1` (the test rootfs,
/// Cmd sh), and a CRI client of it.
pub async fn cri_daemon(test: &str, args: &[&str]) -> (Daemon, Rt) {
    let d = Daemon::start_with_args(test, args).await;
    load(
        &d,
        docker_archive("app:1", serde_json::json!({"Cmd": ["sh"]})),
    )
    .await
    .unwrap();
    let rt = runtime(&d).await;
    (d, rt)
}

pub async fn runtime(d: &Daemon) -> Rt {
    let ch = berth::connect(&format!("unix://{}", d.cri_path().display()))
        .await
        .unwrap();
    RuntimeServiceClient::new(ch)
}

pub fn pod_config(name: &str, log_dir: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.display().to_string(),
        dns_config: Some(cri::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        labels: [("app".to_string(), name.to_string())].into(),
        annotations: [("note".to_string(), "kept as given".to_string())].into(),
        ..Default::default()
    }
}

pub async fn run_pod(rt: &mut Rt, config: &cri::PodSandboxConfig) -> String {
    rt.run_pod_sandbox(cri::RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .pod_sandbox_id
}

/// The config of container `name` of the test image, running `script`,
/// logging to NAME.log.
pub fn container_config(name: &str, script: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: "app:1".into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        labels: [("container".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

/// Creates and starts a container of the pod; its id.
pub async fn start_with(
    rt: &mut Rt,
    pod: &str,
    config: &cri::PodSandboxConfig,
    container: cri::ContainerConfig,
) -> String {
    let id = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(container),
            sandbox_config: Some(config.clone()),
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
    id
}

/// Creates and starts container `name` of the pod, running `script`.
pub async fn run_container(
    rt: &mut Rt,
    pod: &str,
    config: &cri::PodSandboxConfig,
    name: &str,
    script: &str,
) -> String {
    start_with(rt, pod, config, container_config(name, script)).await
}

pub async fn container_status(rt: &mut Rt, id: &str) -> cri::ContainerStatus {
    rt.container_status(cri::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .unwrap()
    .into_inner()
    .status
    .unwrap()
}

pub async fn pod_status(rt: &mut Rt, id: &str) -> cri::PodSandboxStatus {
    rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
        pod_sandbox_id: id.into(),
        verbose: false,
    })
    .await
    .unwrap()
    .into_inner()
    .status
    .unwrap()
}

pub async fn exec(rt: &mut Rt, id: &str, cmd: &[&str]) -> (i32, String) {
    let r = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    (r.exit_code, String::from_utf8_lossy(&r.stdout).into_owned())
}

/// The host pid of a container's PID 1, from berth's own API.
pub async fn pid_of(d: &Daemon, id: &str) -> u32 {
    super::status(&mut d.api().await, id).await.pid as u32
}

pub async fn until_exited(rt: &mut Rt, id: &str, within: Duration) -> cri::ContainerStatus {
    let deadline = Instant::now() + within;
    loop {
        let s = container_status(rt, id).await;
        if s.state == cri::ContainerState::ContainerExited as i32 {
            return s;
        }
        assert!(Instant::now() < deadline, "{id} did not exit: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// crictl from the CRI test kit (`BERTH_CRI_KIT`, else ../shared/cri),
/// installed once into target/cri-tools; None (the check skipped) if there
/// is no kit.
pub fn crictl() -> Option<PathBuf> {
    static INSTALLED: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let kit = std::env::var_os("BERTH_CRI_KIT")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest.join("../shared/cri"));
        let tools = manifest.join("target/cri-tools");
        let crictl = tools.join("crictl");
        if !crictl.exists() {
            let ok = std::process::Command::new(kit.join("install"))
                .arg(&tools)
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
        }
        Some(crictl)
    });
    if installed.is_none() {
        skip(
            Need::Tools,
            "no CRI test kit: set BERTH_CRI_KIT to its directory (../shared/cri)",
        );
    }
    installed.clone()
}

/// crictl against the daemon's CRI socket, `args` after its own.
pub fn crictl_cmd(crictl: &Path, d: &Daemon, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(crictl);
    cmd.arg("-r")
        .arg(format!("unix://{}", d.cri_path().display()))
        .arg("--timeout=20s")
        .args(args)
        .env("HOME", d.share("home"))
        .stdin(std::process::Stdio::null());
    cmd
}
