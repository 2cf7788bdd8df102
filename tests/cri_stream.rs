//! The CRI's streaming server, driven by Kubernetes' own client (crictl
//! from the CRI test kit, client-go inside): exec, attach and port-forward
//! over SPDY and over WebSocket; the exit code as the client reports it; a
//! terminal and its size; a client that vanishes mid-exec leaves no
//! process; a URL serves once.

mod common;

use common::cri::*;
use common::*;
use k8s_cri::v1 as cri;
use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TRANSPORTS: [&str; 2] = ["spdy", "websocket"];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A pod with a container sleeping, on a daemon of the test's own.
async fn pod_with_sleeper(test: &str) -> (Daemon, Rt, String, cri::PodSandboxConfig, String) {
    let (d, mut rt) = cri_daemon(test, &[]).await;
    let config = pod_config(test, &d.share("logs"));
    let pod = run_pod(&mut rt, &config).await;
    let id = run_container(&mut rt, &pod, &config, "sleeper", "exec sleep 100000").await;
    (d, rt, pod, config, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_streams_output_input_exit_codes_and_a_terminal_over_spdy_and_websocket() {
    let Some(crictl) = crictl() else { return };
    let (d, _rt, _pod, _config, id) = pod_with_sleeper("cri-stream-exec").await;
    for t in TRANSPORTS {
        let transport = format!("--transport={t}");
        // Both outputs apart, and the exit code as client-go reports it.
        let script = "echo out; echo err >&2; exit 3";
        let out = crictl_cmd(&crictl, &d, &["exec", &transport, &id, "sh", "-c", script])
            .output()
            .unwrap();
        assert_eq!(text(&out.stdout), "out\n", "{t}");
        let err = text(&out.stderr);
        assert!(err.contains("err\n"), "{t}: {err}");
        assert!(
            err.contains("command terminated with exit code 3"),
            "{t}: {err}"
        );
        assert!(!out.status.success(), "{t}");
        // Stdin to the end, then the process sees its end.
        let mut child = crictl_cmd(
            &crictl,
            &d,
            &[
                "exec",
                "-i",
                &transport,
                &id,
                "sh",
                "-c",
                "busybox wc -c; echo done",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&vec![b'x'; 100_000]).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{t}");
        assert_eq!(
            text(&out.stdout),
            "100000\ndone\n",
            "{t}: {}",
            text(&out.stderr)
        );
        // A terminal of the client's size.
        let crictl_line = format!(
            "stty rows 33 cols 111; {} -r unix://{} exec {transport} -it {id} stty size",
            crictl.display(),
            d.cri_path().display()
        );
        let out = Command::new("script")
            .args(["-qec", &crictl_line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{t}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("33 111\r\n"),
            "{t}: {:?}",
            text(&out.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_and_port_forward_over_spdy_and_websocket() {
    let Some(crictl) = crictl() else { return };
    let (d, mut rt, pod, config, _) = pod_with_sleeper("cri-stream-attach").await;
    let mut shell = container_config("shell", "");
    shell.command = vec!["sh".into()];
    shell.stdin = true;
    let shell = start_with(&mut rt, &pod, &config, shell).await;
    let serve = "mkdir -p /tmp/www && echo hello from the pod > /tmp/www/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h /tmp/www";
    let web = run_container(&mut rt, &pod, &config, "web", serve).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while exec(
        &mut rt,
        &web,
        &["busybox", "wget", "-qO-", "http://127.0.0.1:8080/"],
    )
    .await
    .0 != 0
    {
        assert!(
            Instant::now() < deadline,
            "the pod's server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (n, t) in TRANSPORTS.iter().enumerate() {
        let transport = format!("--transport={t}");
        // What is typed reaches the shell; its output comes back.
        let mut attach = crictl_cmd(&crictl, &d, &["attach", "-i", &transport, &shell])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = attach.stdin.take().unwrap();
        writeln!(stdin, "echo attached over {t}").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(attach.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, format!("attached over {t}\n"));
        let _ = attach.kill();
        let _ = attach.wait();
        // The pod's loopback, from the host.
        let port = 18480 + n as u16 + (std::process::id() % 500) as u16 * 2;
        let mapping = format!("{port}:8080");
        let log = d.share("logs").join(format!("port-forward-{t}.log"));
        let mut forward = crictl_cmd(&crictl, &d, &["port-forward", &transport, &pod, &mapping])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log)
            .unwrap()
            .contains("Forwarding from")
        {
            assert!(
                Instant::now() < deadline,
                "{t}: crictl port-forward did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for _ in 0..2 {
            let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            tcp.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut answer = String::new();
            if let Err(e) = tcp.read_to_string(&mut answer) {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("{t}: {e}: {answer}\ncrictl: {log}");
            }
            assert!(answer.ends_with("hello from the pod\n"), "{t}: {answer}");
        }
        let _ = forward.kill();
        let _ = forward.wait();
    }
    // The shell runs on after its attachers went.
    let s = container_status(&mut rt, &shell).await;
    assert_eq!(s.state, cri::ContainerState::ContainerRunning as i32);
}

/// Processes whose command line is `marker`'s.
fn processes_running(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| text(&c).replace('\0', " ").trim() == marker)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exec_whose_client_vanishes_is_killed_with_its_helper() {
    let Some(crictl) = crictl() else { return };
    let (d, _rt, _pod, _config, id) = pod_with_sleeper("cri-stream-vanish").await;
    for t in TRANSPORTS {
        let marker = format!("sleep {}", 424242 + t.len());
        let mut client = crictl_cmd(
            &crictl,
            &d,
            &[
                "exec",
                &format!("--transport={t}"),
                &id,
                "sh",
                "-c",
                &format!("exec {marker}"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while processes_running(&marker).is_empty() {
            assert!(Instant::now() < deadline, "{t}: the exec did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Its parent is berth's exec helper.
        let pid = processes_running(&marker)[0];
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let helper: u32 = after_name.split(' ').nth(1).unwrap().parse().unwrap();
        client.kill().unwrap();
        client.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !processes_running(&marker).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{t}: the exec outlived its client"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        while alive(helper) {
            assert!(Instant::now() < deadline, "{t}: the exec's helper is left");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The status line of an upgrade request to `url` offering `protocol`.
fn upgrade(url: &str, protocol: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut tcp = std::net::TcpStream::connect(host).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         X-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(tcp).read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_serves_one_client_that_speaks_a_protocol_berth_speaks() {
    let (_d, mut rt, _pod, _config, id) = pod_with_sleeper("cri-stream-url").await;
    let exec = cri::ExecRequest {
        container_id: id.clone(),
        cmd: vec!["true".into()],
        stdout: true,
        ..Default::default()
    };
    let url = rt.exec(exec.clone()).await.unwrap().into_inner().url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(upgrade(&url, "v9.channel.k8s.io"), "HTTP/1.1 403 Forbidden");
    // Refused, the URL is spent all the same.
    assert_eq!(upgrade(&url, "v4.channel.k8s.io"), "HTTP/1.1 404 Not Found");
    let url = rt.exec(exec.clone()).await.unwrap().into_inner().url;
    assert_eq!(
        upgrade(&url, "v4.channel.k8s.io"),
        "HTTP/1.1 101 Switching Protocols"
    );
    assert_eq!(upgrade(&url, "v4.channel.k8s.io"), "HTTP/1.1 404 Not Found");
    // Bad requests change nothing and say why.
    for (bad, code) in [
        (
            cri::ExecRequest {
                stdout: false,
                ..exec.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            cri::ExecRequest {
                tty: true,
                stderr: true,
                ..exec.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            cri::ExecRequest {
                cmd: vec![],
                ..exec.clone()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            cri::ExecRequest {
                container_id: "nothing".into(),
                ..exec.clone()
            },
            tonic::Code::NotFound,
        ),
    ] {
        assert_eq!(rt.exec(bad).await.unwrap_err().code(), code);
    }
    let pf = cri::PortForwardRequest {
        pod_sandbox_id: "nothing".into(),
        port: vec![80],
    };
    assert_eq!(
        rt.port_forward(pf).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
}
