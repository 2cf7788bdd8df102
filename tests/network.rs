//! Bridge networks through the CNI plugins: a server in a container
//! reached through a published port (TCP and UDP, on 127.0.0.1, the
//! bridge's address and the container's), containers on a user network
//! reaching each other by name and alias but not across networks, the
//! Networks API's errors and events, a port in use refused at start, and
//! nothing left (veth, address lease, NAT rule, namespace) after a remove,
//! a failed start, or a kill -9 of the daemon, with addresses and ports
//! kept across its restart. Traffic stays on this machine.

mod common;

use berth::pb::{self, Action, EventType};
use common::*;
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};
use tonic::Code;

#[tokio::test(flavor = "multi_thread")]
async fn a_published_port_reaches_the_server_and_a_port_in_use_is_refused() {
    let d = Daemon::start("net-publish").await;
    let mut api = d.api().await;
    let mut events = d.events(&[]).await;
    // -p 80 (a free host port) and 127.0.0.1::53/udp, without --network:
    // the default bridge.
    let mut req = web("web");
    req.ports = vec![pb::PortBinding {
        container_port: 80,
        ..Default::default()
    }];
    let id = started(&mut api, req).await;
    let c = inspect(&mut api, &id).await;
    assert_eq!(c.config.as_ref().unwrap().network, "bridge");
    let net = settings(&c);
    let bridge = bridge_of(&d, "bridge").await;
    assert_eq!(net.network_id, bridge.id);
    assert_eq!(net.gateway, bridge.gateway);
    assert_eq!(net.prefix_length, 16);
    let port = host_port(&c, 80, "tcp");
    assert_ne!(port, 0);
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");
    assert_eq!(
        get(&format!("{}:{port}", bridge.gateway)),
        "hello from web\n"
    );
    assert_eq!(get(&format!("{}:80", net.ip_address)), "hello from web\n");
    assert_veths(&bridge.bridge, 1);
    // The CLI shows it as Docker does.
    let shown = ok(berth(&d, &["port", "web"]));
    assert_eq!(
        shown,
        format!("80/tcp -> 0.0.0.0:{port}\n80/tcp -> :::{port}\n")
    );
    let ps = ok(berth(&d, &["ps"]));
    assert!(
        ps.contains(&format!("0.0.0.0:{port}->80/tcp, :::{port}->80/tcp")),
        "{ps}"
    );
    let ip = ok(berth(
        &d,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"],
    ));
    assert_eq!(ip.trim(), net.ip_address);
    // inspect agrees with port: published on every address; the bindings
    // as asked (any host port).
    let ports = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Ports}} {{json .HostConfig.PortBindings}}",
            "web",
        ],
    ));
    assert_eq!(
        ports.trim(),
        format!(
            r#"{{"80/tcp":[{{"HostIp":"0.0.0.0","HostPort":"{port}"}},{{"HostIp":"::","HostPort":"{port}"}}]}} {{"80/tcp":[{{"HostIp":"","HostPort":""}}]}}"#
        )
    );

    // UDP on 127.0.0.1 only, from a perl echo server (builtins only).
    let echo = r#"socket(S,2,2,17) or die; bind(S, pack("SnC4x8",2,53,0,0,0,0)) or die; while (1) { my $a = recv(S, my $b, 100, 0); send(S, "echo:$b", 0, $a) }"#;
    let mut req = spec("udp", &["perl", "-e", echo]);
    req.network = String::new();
    req.ports = vec![pb::PortBinding {
        host_ip: "127.0.0.1".into(),
        container_port: 53,
        protocol: "udp".into(),
        ..Default::default()
    }];
    let udp_id = started(&mut api, req).await;
    let c = inspect(&mut api, &udp_id).await;
    let udp_port = host_port(&c, 53, "udp");
    assert_eq!(settings(&c).ports[0].host_ip, "127.0.0.1");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        sock.send_to(b"ping", ("127.0.0.1", udp_port)).unwrap();
        let mut buf = [0u8; 64];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            break String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(Instant::now() < deadline, "no UDP echo");
    };
    assert_eq!(reply, "echo:ping");

    // A host port a host program listens on: FAILED_PRECONDITION at the
    // start, and the container is left as created, unwired.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    let mut req = web("busy");
    req.ports = vec![pb::PortBinding {
        host_ip: "127.0.0.1".into(),
        host_port: busy as u32,
        container_port: 80,
        ..Default::default()
    }];
    let busy_id = created(&mut api, req).await;
    let err = api
        .start(pb::StartRequest {
            id: busy_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("port is already allocated"),
        "{err:?}"
    );
    assert_eq!(
        status(&mut api, &busy_id).await.status,
        pb::Status::Created as i32
    );
    assert_eq!(traces(&d.root, &busy_id), Vec::<String>::new());
    // The port web has: refused too, through the CLI with Docker's code.
    let o = berth(
        &d,
        &[
            "run",
            "-d",
            "-p",
            &format!("{port}:80"),
            &rootfs().display().to_string(),
            "true",
        ],
    );
    assert_eq!(o.status.code(), Some(125), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("port is already allocated"),
        "{o:?}"
    );
    drop(held);

    // Events: connect before start; after the remove, disconnect between
    // die and destroy.
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: true,
    })
    .await
    .unwrap();
    let seen = events.until(Action::Destroy).await;
    let mine: Vec<(Action, EventType)> = seen
        .iter()
        .filter(|e| e.id == id || e.container_id == id)
        .map(|e| (e.action(), e.r#type()))
        .collect();
    use Action::*;
    let (c, n) = (EventType::Container, EventType::Network);
    assert_eq!(
        mine,
        [
            (Create, c),
            (Connect, n),
            (Start, c),
            (Kill, c),
            (Die, c),
            (Disconnect, n),
            (Destroy, c)
        ]
    );
    let connect = seen
        .iter()
        .find(|e| e.action() == Connect && e.container_id == id)
        .unwrap();
    assert_eq!(
        (connect.id.as_str(), connect.name.as_str()),
        (bridge.id.as_str(), "bridge")
    );
    // Nothing of it is left; its port is free again.
    assert_eq!(traces(&d.root, &id), Vec::<String>::new());
    assert_veths(&bridge.bridge, 1);
    TcpListener::bind(("0.0.0.0", port)).unwrap();
    api.remove(pb::RemoveRequest {
        id: udp_id.clone(),
        force: true,
    })
    .await
    .unwrap();
    assert_eq!(traces(&d.root, &udp_id), Vec::<String>::new());
    assert_veths(&bridge.bridge, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_on_a_network_reach_each_other_by_name_and_not_across_networks() {
    let d = Daemon::start("net-names").await;
    let mut api = d.api().await;
    let mut nets = networks(&d).await;
    for name in ["app", "other"] {
        let req = pb::CreateNetworkRequest {
            name: name.into(),
            ..Default::default()
        };
        nets.create(req).await.unwrap();
    }
    let on = |mut req: pb::CreateRequest, network: &str| {
        req.network = network.into();
        req
    };
    // The client starts first: the server's name reaches its /etc/hosts
    // when the server starts.
    let client = started(&mut api, on(spec("client", &["sleep", "1000"]), "app")).await;
    let mut db = on(web("db"), "app");
    db.network_aliases = vec!["database".into()];
    let db = started(&mut api, db).await;
    let db_ip = settings(&inspect(&mut api, &db).await).ip_address;
    let app = bridge_of(&d, "app").await;
    assert!(app
        .containers
        .iter()
        .any(|e| e.name == "db" && e.ip_address.starts_with(&db_ip)));
    let fetch = |host: &str| format!("busybox wget -q -O - http://{host}/");
    for host in ["db", "database"] {
        let o = berth(&d, &["exec", "client", "sh", "-c", &fetch(host)]);
        assert_eq!(ok(o), "hello from db\n", "{host}");
    }
    let hosts = ok(berth(&d, &["exec", "client", "cat", "/etc/hosts"]));
    assert!(
        hosts.contains(&format!("{db_ip}\tdb database\n")),
        "{hosts}"
    );

    // From another network the server cannot be reached, nor from none.
    let probe = format!(
        "busybox nc -w 2 {db_ip} 80 </dev/null 2>/dev/null && echo reached || echo refused"
    );
    let (code, out) = run_script(&mut api, on(spec("", &[]), "other"), &probe).await;
    assert_eq!((code, out.trim_end()), (0, "refused"), "{out}");
    let (code, out) = run_script(&mut api, spec("", &[]), &probe).await;
    assert_eq!((code, out.trim_end()), (0, "refused"), "{out}");
    let (_, devs) = run_script(&mut api, spec("", &[]), "cat /proc/net/dev").await;
    assert_eq!(
        devs.lines().skip(2).count(),
        1,
        "none has only loopback: {devs}"
    );
    // On the same network by address too.
    let (code, out) = run_script(&mut api, on(spec("", &[]), "app"), &probe).await;
    assert_eq!((code, out.trim_end()), (0, "reached"), "{out}");

    // Once the server stops, its peers forget it.
    api.stop(pb::StopRequest {
        id: db.clone(),
        timeout_seconds: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let hosts = ok(berth(&d, &["exec", "client", "cat", "/etc/hosts"]));
    assert!(!hosts.contains("\tdb"), "{hosts}");

    // The Networks API's refusals change nothing.
    let create = |name: &str, subnet: &str| pb::CreateNetworkRequest {
        name: name.into(),
        subnet: subnet.into(),
        ..Default::default()
    };
    for (name, subnet, want) in [
        ("app", "", Code::AlreadyExists),
        ("x y", "", Code::InvalidArgument),
        ("host", "", Code::InvalidArgument),
        ("x", "10.1.2.3/16", Code::InvalidArgument),
        ("x", app.subnet.as_str(), Code::FailedPrecondition),
    ] {
        let err = nets.create(create(name, subnet)).await.unwrap_err();
        assert_eq!(err.code(), want, "{name} {subnet}");
    }
    for mtu in [67, 65536] {
        let req = pb::CreateNetworkRequest {
            mtu,
            ..create("x", "")
        };
        let err = nets.create(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "mtu {mtu}");
    }
    let rm = |n: &str| pb::RemoveNetworkRequest { network: n.into() };
    for (n, want) in [
        ("app", Code::FailedPrecondition),
        ("bridge", Code::FailedPrecondition),
        ("none", Code::FailedPrecondition),
        ("nope", Code::NotFound),
    ] {
        assert_eq!(nets.remove(rm(n)).await.unwrap_err().code(), want, "{n}");
    }
    let list = nets
        .list(pb::ListNetworksRequest {})
        .await
        .unwrap()
        .into_inner()
        .networks;
    let names: Vec<&str> = list.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["app", "bridge", "host", "none", "other"]);
    let mut create_req = spec("late", &["true"]);
    create_req.network = "nope".into();
    assert_eq!(
        api.create(create_req).await.unwrap_err().code(),
        Code::NotFound
    );

    // Removed with its containers gone: its bridge goes, events say so.
    api.remove(pb::RemoveRequest {
        id: client.clone(),
        force: true,
    })
    .await
    .unwrap();
    api.remove(pb::RemoveRequest {
        id: db.clone(),
        force: true,
    })
    .await
    .unwrap();
    for c in listed(&mut api).await {
        api.remove(pb::RemoveRequest {
            id: c.id,
            force: true,
        })
        .await
        .unwrap();
    }
    nets.remove(rm("app")).await.unwrap();
    let journal = d.journal().await;
    let app_events: Vec<Action> = journal
        .iter()
        .filter(|e| {
            e.r#type() == EventType::Network && e.name == "app" && e.container_id.is_empty()
        })
        .map(|e| e.action())
        .collect();
    assert_eq!(app_events, [Action::Create, Action::Destroy]);
    let link = std::process::Command::new("ip")
        .args(["link", "show", &app.bridge])
        .output()
        .unwrap();
    assert!(
        !link.status.success(),
        "bridge {} is still there",
        app.bridge
    );
    for id in [&client, &db] {
        assert_eq!(traces(&d.root, id), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_survive_a_daemon_kill_and_nothing_is_left_after() {
    let mut d = Daemon::start("net-crash").await;
    let mut api = d.api().await;
    let mut req = web("web");
    req.ports = vec![pb::PortBinding {
        container_port: 80,
        ..Default::default()
    }];
    let id = started(&mut api, req).await;
    let gone = started(&mut api, {
        let mut r = spec("gone", &["sleep", "1000"]);
        r.network = "bridge".into();
        r
    })
    .await;
    let before = inspect(&mut api, &id).await;
    let port = host_port(&before, 80, "tcp");
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");

    // Killed: the containers run on, reachable, and keep their places.
    let pid = status(&mut api, &gone).await.pid;
    d.stop_daemon(libc::SIGKILL);
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");
    // One exits while the daemon is down: it is unwired when it comes back.
    kill(pid as i32, libc::SIGKILL);
    d.spawn().await;
    let mut api = d.api().await;
    let after = inspect(&mut api, &id).await;
    assert_eq!(settings(&after), settings(&before));
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !traces(&d.root, &gone).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", traces(&d.root, &gone));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status(&mut api, &gone).await.status,
        pb::Status::Exited as i32
    );

    // A stopped container is unwired; started again it is wired anew.
    api.stop(pb::StopRequest {
        id: id.clone(),
        timeout_seconds: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(traces(&d.root, &id), Vec::<String>::new());
    assert!(inspect(&mut api, &id)
        .await
        .state
        .unwrap()
        .network
        .is_none());
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let port = host_port(&inspect(&mut api, &id).await, 80, "tcp");
    assert_eq!(get(&format!("127.0.0.1:{port}")), "hello from web\n");
    api.remove(pb::RemoveRequest {
        id: id.clone(),
        force: true,
    })
    .await
    .unwrap();
    assert_eq!(traces(&d.root, &id), Vec::<String>::new());
    let bridge = bridge_of(&d, "bridge").await;
    assert_veths(&bridge.bridge, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_never_share_a_subnet_or_a_published_port() {
    let (a, b) = (
        Daemon::start("net-two-a").await,
        Daemon::start("net-two-b").await,
    );
    let (mut na, mut nb) = (networks(&a).await, networks(&b).await);
    let create = |subnet: &str| pb::CreateNetworkRequest {
        name: "shared-name".into(),
        subnet: subnet.into(),
        ..Default::default()
    };
    let first = new_network(&mut na, create("")).await;
    let second = new_network(&mut nb, create("")).await;
    assert_ne!(first.subnet, second.subnet);
    assert_ne!(first.bridge, second.bridge);
    assert_ne!(
        bridge_of(&a, "bridge").await.subnet,
        bridge_of(&b, "bridge").await.subnet
    );
    // The other daemon's subnet is taken, until that network goes.
    let err = nb
        .create(pb::CreateNetworkRequest {
            name: "again".into(),
            ..create(&first.subnet)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains(&first.subnet), "{err:?}");
    na.remove(pb::RemoveNetworkRequest {
        network: "shared-name".into(),
    })
    .await
    .unwrap();
    let again = nb
        .create(pb::CreateNetworkRequest {
            name: "again".into(),
            ..create(&first.subnet)
        })
        .await
        .unwrap();
    assert_eq!(again.into_inner().network.unwrap().subnet, first.subnet);

    // A host port one daemon's container publishes is taken for the
    // other's, until that container stops.
    let (mut api_a, mut api_b) = (a.api().await, b.api().await);
    let publish = |host_port: u32| {
        let mut req = spec("", &["sleep", "1000"]);
        req.network = String::new();
        req.ports = vec![pb::PortBinding {
            host_port,
            container_port: 80,
            ..Default::default()
        }];
        req
    };
    let holder = started(&mut api_a, publish(0)).await;
    let port = host_port(&inspect(&mut api_a, &holder).await, 80, "tcp");
    let id = created(&mut api_b, publish(port as u32)).await;
    let err = api_b
        .start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("already allocated"), "{err:?}");
    assert_eq!(traces(&b.root, &id), Vec::<String>::new());
    api_a
        .stop(pb::StopRequest {
            id: holder,
            timeout_seconds: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    api_b.start(pb::StartRequest { id }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_starts_at_once_cannot_publish_one_port() {
    let d = Daemon::start("net-port-race").await;
    let mut api = d.api().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let mut req = web(name);
        req.ports = vec![pb::PortBinding {
            host_port: port as u32,
            container_port: 80,
            ..Default::default()
        }];
        ids.push(created(&mut api, req).await);
    }
    let (mut a, mut b) = (api.clone(), api.clone());
    let (ra, rb) = tokio::join!(
        a.start(pb::StartRequest { id: ids[0].clone() }),
        b.start(pb::StartRequest { id: ids[1].clone() })
    );
    let refused: Vec<Code> = [ra, rb]
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.code()))
        .collect();
    assert_eq!(refused, [Code::FailedPrecondition]);
    assert!(get(&format!("127.0.0.1:{port}")).starts_with("hello from "));
}
