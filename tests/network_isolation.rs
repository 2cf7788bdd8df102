//! The host's services on 127.0.0.1 stay out of reach of a bridged
//! container, even one that crafts its own packets (CAP_NET_RAW is a
//! default capability) while the portmap plugin has route_localnet on for
//! the bridge; what is published on 127.0.0.1 still answers the host.

mod common;

use berth::pb;
use common::*;
use std::net::UdpSocket;
use std::time::Duration;

/// Sends a UDP datagram "hello" from SRC to DST:PORT out of the interface
/// IFINDEX to the MAC given, built by hand (IPv4 header and all) on an
/// AF_PACKET socket: no route in the container decides where it goes.
/// perl builtins only.
const CRAFT: &str = r#"
my ($ifindex, $mac, $src, $dst, $port) = @ARGV;
sub sum { my $s = 0; $s += $_ for unpack("n*", $_[0]); $s = ($s >> 16) + ($s & 0xffff); $s += $s >> 16; ~$s & 0xffff }
sub ip4 { pack("C4", split /\./, $_[0]) }
my $udp = pack("nnnn", 40000, $port, 13, 0) . "hello";
my $ip = pack("CCnnnCCn", 0x45, 0, 20 + length($udp), 0, 0x4000, 64, 17, 0) . ip4($src) . ip4($dst);
substr($ip, 10, 2) = pack("n", sum($ip));
socket(S, 17, 2, 0) or die "socket: $!";
my $to = pack("SnlSCCa8", 17, 0x0800, $ifindex, 0, 0, 6, pack("H12", $mac));
for (1 .. 3) { send(S, $ip . $udp, 0, $to) or die "send: $!" }
"#;

/// Whether `sock` gets "hello" within a second.
fn hears_hello(sock: &UdpSocket) -> bool {
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 64];
    matches!(sock.recv_from(&mut buf), Ok((5, _)) if &buf[..5] == b"hello")
}

#[tokio::test(flavor = "multi_thread")]
async fn host_loopback_services_stay_out_of_reach_of_bridged_containers() {
    let d = Daemon::start("net-localnet").await;
    let mut api = d.api().await;
    // Published on 127.0.0.1: the plugin turns route_localnet on.
    let mut req = web("web");
    req.ports = vec![pb::PortBinding {
        host_ip: "127.0.0.1".into(),
        container_port: 80,
        ..Default::default()
    }];
    let id = started(&mut api, req).await;
    let c = inspect(&mut api, &id).await;
    let on = settings(&c);
    let bridge = bridge_of(&d, "bridge").await;
    let localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", bridge.bridge);
    assert_eq!(std::fs::read_to_string(localnet).unwrap().trim(), "1");
    let mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", bridge.bridge))
        .unwrap()
        .trim()
        .replace(':', "");
    let ifindex = ok(berth(
        &d,
        &["exec", "web", "cat", "/sys/class/net/eth0/ifindex"],
    ));
    let send = |dst: &str, port: u16| {
        let port = port.to_string();
        let args = [
            "exec",
            "web",
            "perl",
            "-e",
            CRAFT,
            ifindex.trim(),
            &mac,
            &on.ip_address,
            dst,
            &port,
        ];
        ok(berth(&d, &args));
    };

    // The crafting works: to the gateway's address it arrives.
    let any = UdpSocket::bind("0.0.0.0:0").unwrap();
    send(&on.gateway, any.local_addr().unwrap().port());
    assert!(hears_hello(&any), "a crafted datagram to the gateway");
    // To 127.0.0.1 it does not.
    let lo = UdpSocket::bind("127.0.0.1:0").unwrap();
    send("127.0.0.1", lo.local_addr().unwrap().port());
    assert!(
        !hears_hello(&lo),
        "a container reached the host's 127.0.0.1"
    );
    // Nor through the gateway's address the usual way.
    let probe = format!(
        "busybox nc -u -w 1 {} {} </dev/null; echo done",
        on.gateway,
        lo.local_addr().unwrap().port()
    );
    ok(berth(&d, &["exec", "web", "sh", "-c", &probe]));
    assert!(!hears_hello(&lo));
    // The published port still answers on 127.0.0.1.
    let port = host_port(&c, 80, "tcp");
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");
}

fn forward_rules() -> String {
    let out = std::process::Command::new("iptables")
        .args(["-w", "5", "-S", "BERTH-FORWARD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_internal_network_keeps_its_containers_to_themselves() {
    let d = Daemon::start("net-internal").await;
    let mut api = d.api().await;
    ok(berth(&d, &["network", "create", "--internal", "inner"]));
    let inner = bridge_of(&d, "inner").await;
    assert!(inner.internal);
    assert_eq!(
        ok(berth(
            &d,
            &["network", "inspect", "-f", "{{.Internal}}", "inner"]
        ))
        .trim(),
        "true"
    );
    let drops = format!("-A BERTH-FORWARD -i {0} ! -o {0} -j DROP", inner.bridge);
    let mut web = web("web");
    web.network = "inner".into();
    let id = started(&mut api, web).await;
    let ip = settings(&inspect(&mut api, &id).await).ip_address;
    assert!(forward_rules().contains(&drops), "{}", forward_rules());
    // A peer answers; nothing beyond the network is routed.
    let bridge = bridge_of(&d, "bridge").await;
    let script = format!(
        "busybox ip route; busybox wget -q -O- http://{ip}/; busybox wget -q -O- http://{}:9/ 2>&1; true",
        bridge.gateway
    );
    let req = pb::CreateRequest {
        network: "inner".into(),
        ..spec("client", &[])
    };
    let (code, out) = run_script(&mut api, req, &script).await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("default"), "{out}");
    assert!(out.contains("hello from web"), "{out}");
    assert!(out.contains("unreachable"), "{out}");
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
    ok(berth(&d, &["rm", "-f", "client"]));
    ok(berth(&d, &["network", "rm", "inner"]));
    assert!(!forward_rules().contains(&drops));
}
