//! A port published on every address answers on the host's IPv6
//! addresses too, [::1] included, for TCP and UDP, as Docker's proxy
//! makes it; `port`, `ps` and inspect show the `:::` side beside 0.0.0.0;
//! it is gone with the container's run and back after a kill -9 of the
//! daemon; a port held on IPv6 alone is refused at start.

mod common;

use berth::pb;
use common::*;
use std::net::{Ipv6Addr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The host's global IPv6 addresses (none on a host with loopback only).
fn host_ipv6() -> Vec<Ipv6Addr> {
    let text = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Scope 00: global; berth's own bridges left out.
            let dev = f.get(5)?;
            if f.get(3) != Some(&"00") || dev.starts_with("berth") || dev.starts_with("veth") {
                return None;
            }
            let hex = u128::from_str_radix(f[0], 16).ok()?;
            Some(Ipv6Addr::from(hex))
        })
        .collect()
}

/// A listener on [::] (IPv6 only) and its port.
fn listen_ipv6_only() -> (std::os::fd::OwnedFd, u16) {
    use nix::sys::socket::*;
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::Ipv6V6Only, &true).unwrap();
    let any = SockaddrIn6::from(std::net::SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &any).unwrap();
    listen(&fd, Backlog::new(8).unwrap()).unwrap();
    let at: SockaddrIn6 = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
    (fd, at.port())
}

/// What an echo of "ping" over UDP to [::1]:`port` brings back.
fn udp_echo(port: u16) -> String {
    let sock = UdpSocket::bind("[::1]:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        sock.send_to(b"ping", ("::1", port)).unwrap();
        let mut buf = [0u8; 64];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(Instant::now() < deadline, "no UDP echo over IPv6");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn published_ports_answer_on_ipv6_too() {
    let mut d = Daemon::start("net-ports6").await;
    let mut api = d.api().await;
    let mut req = web("web");
    req.ports = vec![pb::PortBinding {
        container_port: 80,
        ..Default::default()
    }];
    let id = started(&mut api, req).await;
    let c = inspect(&mut api, &id).await;
    let port = host_port(&c, 80, "tcp");
    assert_eq!(get(&format!("[::1]:{port}")), "hello from web\n");
    for ip in host_ipv6() {
        assert_eq!(get(&format!("[{ip}]:{port}")), "hello from web\n", "{ip}");
    }
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");
    let shown = ok(berth(&d, &["port", "web"]));
    assert_eq!(
        shown,
        format!("80/tcp -> 0.0.0.0:{port}\n80/tcp -> :::{port}\n")
    );
    let ps = ok(berth(&d, &["ps", "--format", "{{.Ports}}"]));
    assert_eq!(
        ps.trim(),
        format!("0.0.0.0:{port}->80/tcp, :::{port}->80/tcp")
    );
    let ports = ok(berth(
        &d,
        &["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"],
    ));
    assert_eq!(
        ports.trim(),
        format!(
            r#"{{"80/tcp":[{{"HostIp":"0.0.0.0","HostPort":"{port}"}},{{"HostIp":"::","HostPort":"{port}"}}]}}"#
        )
    );

    // A dual-stack network's container too (there the plugin's NAT takes
    // what comes from outside to its IPv6 address).
    let mut nets = networks(&d).await;
    let six = pb::CreateNetworkRequest {
        name: "six".into(),
        ipv6: true,
        ..Default::default()
    };
    nets.create(six).await.unwrap();
    let mut req = web("dual");
    req.network = "six".into();
    req.ports = vec![pb::PortBinding {
        container_port: 80,
        ..Default::default()
    }];
    let dual = started(&mut api, req).await;
    let dual_port = host_port(&inspect(&mut api, &dual).await, 80, "tcp");
    assert_eq!(get(&format!("[::1]:{dual_port}")), "hello from dual\n");
    for ip in host_ipv6() {
        assert_eq!(
            get(&format!("[{ip}]:{dual_port}")),
            "hello from dual\n",
            "{ip}"
        );
    }

    // UDP, relayed per peer.
    let echo = r#"socket(S,2,2,17) or die; bind(S, pack("SnC4x8",2,53,0,0,0,0)) or die; while (1) { my $a = recv(S, my $b, 100, 0); send(S, "echo:$b", 0, $a) }"#;
    let mut req = spec("udp", &["perl", "-e", echo]);
    req.network = String::new();
    req.ports = vec![pb::PortBinding {
        container_port: 53,
        protocol: "udp".into(),
        ..Default::default()
    }];
    let udp = started(&mut api, req).await;
    let udp_port = host_port(&inspect(&mut api, &udp).await, 53, "udp");
    assert_eq!(udp_echo(udp_port), "echo:ping");

    // Back after the daemon is killed and started again.
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    assert_eq!(get(&format!("[::1]:{port}")), "hello from web\n");
    // Gone with the run.
    ok(berth(&d, &["stop", "-t", "1", "web"]));
    assert!(TcpStream::connect(format!("[::1]:{port}")).is_err());

    // A port a host program holds on IPv6 alone is taken.
    let (_held, busy) = listen_ipv6_only();
    let rootfs = rootfs().display().to_string();
    let out = berth(
        &d,
        &["run", "-d", "-p", &format!("{busy}:80"), &rootfs, "true"],
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("port is already allocated"), "{err}");
}
