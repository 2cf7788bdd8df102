//! The resolver of user networks: containers find their peers by name,
//! alias, short id and NAME.NETWORK through DNS (busybox nslookup, which
//! reads no /etc/hosts), at once after a rename, connect or disconnect;
//! other names go to the container's --dns server (here one the test
//! runs on the host's loopback, which a resolver inside the container
//! could not reach); an internal network's containers get no answers
//! from outside; anyone but a container is refused; a daemon started
//! again serves the containers that kept running.

mod common;

use berth::pb;
use common::*;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the test's upstream server answers for names under `.test`.
const OUTSIDE: &str = "203.0.113.7";

/// A DNS server on a loopback address of its own, port 53: A records
/// for names under .test, NXDOMAIN for the rest. Its address, and the
/// names it was asked.
fn upstream() -> (Ipv4Addr, Arc<Mutex<Vec<String>>>) {
    let pid = std::process::id();
    let (sock, ip) = (0..200u32)
        .find_map(|i| {
            let n = pid.wrapping_add(i);
            let ip = Ipv4Addr::new(127, 53, (n >> 8) as u8, (n as u8).max(1));
            UdpSocket::bind((ip, 53)).ok().map(|s| (s, ip))
        })
        .expect("a loopback address for the upstream server");
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(query) = q.queries().first().cloned() else {
                continue;
            };
            let name = query.name().to_ascii();
            log.lock().unwrap().push(name.clone());
            let mut m = Message::new();
            m.set_id(q.id())
                .set_message_type(MessageType::Response)
                .set_recursion_available(true)
                .add_query(query.clone());
            if name.ends_with(".test.") && query.query_type() == RecordType::A {
                let a = RData::A(A(OUTSIDE.parse().unwrap()));
                m.add_answer(Record::from_rdata(query.name().clone(), 60, a));
            } else if !name.ends_with(".test.") {
                m.set_response_code(ResponseCode::NXDomain);
            }
            let _ = sock.send_to(&m.to_vec().unwrap(), from);
        }
    });
    (ip, asked)
}

/// The IPv4 addresses `nslookup -type=a NAME` in `container` gets (none
/// when the name is not found), and its whole output.
fn lookup(d: &Daemon, container: &str, name: &str) -> (Vec<String>, String) {
    let out = berth(
        d,
        &["exec", container, "busybox", "nslookup", "-type=a", name],
    );
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    let found = text
        .lines()
        .filter_map(|l| l.strip_prefix("Address: "))
        .map(|a| a.trim().to_string())
        .filter(|a| a.parse::<Ipv4Addr>().is_ok())
        .collect();
    (found, text)
}

fn addresses(d: &Daemon, container: &str, name: &str) -> Vec<String> {
    lookup(d, container, name).0
}

fn on(mut req: pb::CreateRequest, network: &str, aliases: &[&str]) -> pb::CreateRequest {
    req.network = network.into();
    req.network_aliases = aliases.iter().map(|a| a.to_string()).collect();
    req
}

fn sleeper(name: &str) -> pb::CreateRequest {
    spec(name, &["sleep", "1000"])
}

/// A query for `name` sent to `server` from the host, over UDP or TCP:
/// the response code.
fn ask_from_host(server: SocketAddr, name: &str, tcp: bool) -> ResponseCode {
    let mut q = Message::new();
    q.set_id(4242).set_recursion_desired(true);
    q.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    let packet = q.to_vec().unwrap();
    let reply = match tcp {
        false => {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.send_to(&packet, server).unwrap();
            let mut buf = [0u8; 1500];
            let n = s.recv(&mut buf).expect("an answer over UDP");
            buf[..n].to_vec()
        }
        true => {
            let mut s = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(5))
                .expect("connect over TCP");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
            framed.extend(&packet);
            s.write_all(&framed).unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf).unwrap();
            buf
        }
    };
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.id(), 4242);
    m.response_code()
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_on_a_user_network_find_each_other_through_dns() {
    let d = Daemon::start("dns").await;
    let mut api = d.api().await;
    let mut nets = networks(&d).await;
    for name in ["back", "front"] {
        let req = pb::CreateNetworkRequest {
            name: name.into(),
            ..Default::default()
        };
        nets.create(req).await.unwrap();
    }
    let (server, asked) = upstream();
    let db = started(&mut api, on(sleeper("db"), "back", &["postgres"])).await;
    let mut app = on(sleeper("app"), "back", &[]);
    app.dns = vec![server.to_string()];
    started(&mut api, app).await;
    let other = started(&mut api, on(sleeper("other"), "front", &[])).await;

    let back = bridge_of(&d, "back").await;
    let resolv = ok(berth(&d, &["exec", "app", "cat", "/etc/resolv.conf"]));
    assert!(
        resolv.starts_with(&format!("nameserver {}\n", back.gateway))
            && resolv
                .lines()
                .filter(|l| l.starts_with("nameserver"))
                .count()
                == 1
            && resolv.contains("ndots:0"),
        "{resolv}"
    );
    let c = inspect(&mut api, &db).await;
    let db_ip = c.state.unwrap().networks[0].ip_address.clone();
    for name in ["db", "postgres", &db[..12], "db.back", "DB.Back."] {
        assert_eq!(addresses(&d, "app", name), [db_ip.as_str()], "{name}");
    }
    // The container itself, by its name.
    assert_eq!(addresses(&d, "db", "postgres"), [db_ip.as_str()]);
    // Not on a shared network: not a peer; the upstream says NXDOMAIN.
    let (found, text) = lookup(&d, "app", "other");
    assert!(found.is_empty() && text.contains("NXDOMAIN"), "{text}");
    assert_eq!(addresses(&d, "app", "db.front"), Vec::<String>::new());
    // Everything else goes to the container's --dns server, on the
    // host's loopback.
    assert_eq!(addresses(&d, "app", "www.example.test"), [OUTSIDE]);
    let (_, text) = lookup(&d, "app", "nowhere.invalid");
    assert!(text.contains("NXDOMAIN"), "{text}");
    {
        let asked = asked.lock().unwrap();
        assert!(
            asked.contains(&"www.example.test.".to_string()),
            "{asked:?}"
        );
        assert!(
            !asked
                .iter()
                .any(|n| ["db.", "db.back.", "postgres."].contains(&n.as_str())),
            "peers' names went upstream: {asked:?}"
        );
    }

    // A rename, a connect and a disconnect count at once.
    ok(berth(&d, &["rename", "db", "store"]));
    assert_eq!(addresses(&d, "app", "store"), [db_ip.as_str()]);
    assert_eq!(addresses(&d, "app", "db"), Vec::<String>::new());
    // The gateway keeps its MAC address as containers join (peers'
    // ARP caches stay right).
    let mac = |b: &str| std::fs::read_to_string(format!("/sys/class/net/{b}/address")).unwrap();
    let before = mac(&back.bridge);
    ok(berth(
        &d,
        &["network", "connect", "--alias", "cache", "back", "other"],
    ));
    assert_eq!(mac(&back.bridge), before);
    let c = inspect(&mut api, &other).await;
    let other_back = c.state.unwrap().networks[1].ip_address.clone();
    let (found, text) = lookup(&d, "app", "cache");
    assert_eq!(found, [other_back.as_str()], "{text}");
    assert_eq!(addresses(&d, "app", "other"), [other_back]);
    // Its own resolv.conf now names the resolver of its first network.
    let front = bridge_of(&d, "front").await;
    let resolv = ok(berth(&d, &["exec", "other", "cat", "/etc/resolv.conf"]));
    assert!(
        resolv.starts_with(&format!("nameserver {}\n", front.gateway)),
        "{resolv}"
    );
    assert_eq!(addresses(&d, "other", "store"), [db_ip.as_str()]);
    ok(berth(&d, &["network", "disconnect", "back", "other"]));
    assert_eq!(addresses(&d, "app", "cache"), Vec::<String>::new());
    assert_eq!(addresses(&d, "other", "store"), Vec::<String>::new());
    // A stopped peer has no address.
    ok(berth(&d, &["stop", "-t", "0", "store"]));
    assert_eq!(addresses(&d, "app", "postgres"), Vec::<String>::new());

    // Not a container: refused, over UDP and TCP.
    let at = SocketAddr::from((back.gateway.parse::<Ipv4Addr>().unwrap(), 53));
    assert_eq!(ask_from_host(at, "app", false), ResponseCode::Refused);
    assert_eq!(
        ask_from_host(at, "www.example.test", true),
        ResponseCode::Refused
    );

    // The default bridge has none: the host's servers, as in Docker.
    let mut plain = sleeper("plain");
    plain.network = String::new();
    started(&mut api, plain).await;
    let resolv = ok(berth(&d, &["exec", "plain", "cat", "/etc/resolv.conf"]));
    let default = bridge_of(&d, "bridge").await;
    assert!(!resolv.contains(&default.gateway), "{resolv}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_internal_network_resolves_its_peers_and_nothing_outside() {
    let mut d = Daemon::start("dns-internal").await;
    let mut api = d.api().await;
    let mut nets = networks(&d).await;
    let req = pb::CreateNetworkRequest {
        name: "inner".into(),
        internal: true,
        ..Default::default()
    };
    nets.create(req).await.unwrap();
    let (server, asked) = upstream();
    let one = started(&mut api, on(sleeper("one"), "inner", &[])).await;
    let mut two = on(sleeper("two"), "inner", &[]);
    two.dns = vec![server.to_string()];
    started(&mut api, two).await;
    let c = inspect(&mut api, &one).await;
    let ip = c.state.unwrap().networks[0].ip_address.clone();
    assert_eq!(addresses(&d, "two", "one"), [ip.as_str()]);
    let (found, text) = lookup(&d, "two", "www.example.test");
    assert!(found.is_empty() && text.contains("REFUSED"), "{text}");
    assert!(asked.lock().unwrap().is_empty());
    // The daemon killed and started again serves the running containers
    // again.
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    assert_eq!(addresses(&d, "two", "one"), [ip]);
}
