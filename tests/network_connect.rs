//! `network connect` and `disconnect`: a running container joins a second
//! network at once (eth1, reaching a server there by name, its peers
//! naming it) and leaves it at once; a stopped one joins from its next
//! start; the networks a container joins survive a kill -9 of the daemon;
//! the refusals change nothing; nothing is left after.

mod common;

use berth::pb::{self, Action, EventType};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

fn on(mut req: pb::CreateRequest, network: &str) -> pb::CreateRequest {
    req.network = network.into();
    req
}

fn connect(network: &str, container: &str) -> pb::ConnectContainerRequest {
    pb::ConnectContainerRequest {
        network: network.into(),
        container: container.into(),
        aliases: Vec::new(),
    }
}

fn disconnect(network: &str, container: &str) -> pb::DisconnectContainerRequest {
    pb::DisconnectContainerRequest {
        network: network.into(),
        container: container.into(),
    }
}

/// The interfaces in container `name` other than loopback, and the one
/// its default route goes through.
fn interfaces(d: &Daemon, name: &str) -> (Vec<String>, String) {
    let devs = ok(berth(d, &["exec", name, "cat", "/proc/net/dev"]));
    let mut ifs: Vec<String> = devs
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|i| i.trim().to_string())
        .filter(|i| i != "lo")
        .collect();
    ifs.sort();
    let routes = ok(berth(d, &["exec", name, "cat", "/proc/net/route"]));
    let default = routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"00000000"))
        .map(|f| f[0].to_string())
        .unwrap_or_default();
    (ifs, default)
}

/// What `wget http://db/` in container `name` gets, or "unreachable".
fn fetch_db(d: &Daemon, name: &str) -> String {
    // (busybox 1.35's wget -T crashes.)
    let script =
        "busybox timeout 3 busybox wget -q -O - http://db/ 2>/dev/null || echo unreachable";
    ok(berth(d, &["exec", name, "sh", "-c", script]))
}

fn hosts(d: &Daemon, name: &str) -> String {
    ok(berth(d, &["exec", name, "cat", "/etc/hosts"]))
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_join_and_leave_networks_while_running_or_not() {
    let mut d = Daemon::start("net-connect").await;
    let mut api = d.api().await;
    let mut nets = networks(&d).await;
    for (name, mtu) in [("front", 9000), ("back", 0)] {
        let req = pb::CreateNetworkRequest {
            name: name.into(),
            mtu,
            ..Default::default()
        };
        nets.create(req).await.unwrap();
    }
    let db = started(&mut api, on(web("db"), "back")).await;
    let app = started(&mut api, on(spec("app", &["sleep", "1000"]), "front")).await;
    assert_eq!(fetch_db(&d, "app"), "unreachable\n");
    assert_eq!(interfaces(&d, "app"), (vec!["eth0".into()], "eth0".into()));

    // Running: it joins back at once, as eth1 with no default route.
    ok(berth(
        &d,
        &["network", "connect", "--alias", "api", "back", "app"],
    ));
    assert_eq!(fetch_db(&d, "app"), "hello from db\n");
    assert_eq!(
        interfaces(&d, "app"),
        (vec!["eth0".into(), "eth1".into()], "eth0".into())
    );
    // Each interface with its network's MTU.
    let mtus = "cat /sys/class/net/eth0/mtu /sys/class/net/eth1/mtu";
    assert_eq!(
        ok(berth(&d, &["exec", "app", "sh", "-c", mtus])),
        "9000\n1500\n"
    );
    let c = inspect(&mut api, &app).await;
    let st = c.state.clone().unwrap();
    let joined: Vec<(&str, &str)> = st
        .networks
        .iter()
        .map(|n| (n.network.as_str(), n.interface.as_str()))
        .collect();
    assert_eq!(joined, [("front", "eth0"), ("back", "eth1")]);
    let back_ip = st.networks[1].ip_address.clone();
    let cfg = c.config.unwrap();
    let names: Vec<(&str, Vec<String>)> = cfg
        .networks
        .iter()
        .map(|e| (e.network.as_str(), e.aliases.clone()))
        .collect();
    assert_eq!(
        names,
        [("front", vec![]), ("back", vec!["api".to_string()])]
    );
    assert!(
        hosts(&d, "db").contains(&format!("{back_ip}\tapp api\n")),
        "{}",
        hosts(&d, "db")
    );
    let shown = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.back.IPAddress}}",
            "app",
        ],
    ));
    assert_eq!(shown.trim(), back_ip);
    let back = bridge_of(&d, "back").await;
    assert_veths(&back.bridge, 2);

    // What cannot be done is refused and changes nothing.
    let mut none = spec("loner", &["sleep", "1000"]);
    none.network = "none".into();
    started(&mut api, none).await;
    let mut bad_alias = connect("front", "db");
    bad_alias.aliases = vec!["a b".into()];
    for (req, want) in [
        (connect("back", "app"), Code::AlreadyExists),
        (connect("back", "loner"), Code::FailedPrecondition),
        (connect("host", "app"), Code::FailedPrecondition),
        (connect("nope", "app"), Code::NotFound),
        (connect("back", "nope"), Code::NotFound),
        (bad_alias, Code::InvalidArgument),
    ] {
        let what = format!("{} {}", req.network, req.container);
        let err = nets.connect_container(req).await.unwrap_err();
        assert_eq!(err.code(), want, "connect {what}: {err:?}");
    }
    for (req, want) in [
        (disconnect("front", "db"), Code::FailedPrecondition),
        (disconnect("none", "loner"), Code::FailedPrecondition),
        (disconnect("back", "nope"), Code::NotFound),
    ] {
        let what = format!("{} {}", req.network, req.container);
        let err = nets.disconnect_container(req).await.unwrap_err();
        assert_eq!(err.code(), want, "disconnect {what}: {err:?}");
    }
    // A start that fails while its networks are wired leaves nothing.
    let broken = created(&mut api, on(spec("broken", &["/no/such/program"]), "back")).await;
    let err = api
        .start(pb::StartRequest { id: broken.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(traces(&d.root, &broken), Vec::<String>::new());
    api.remove(pb::RemoveRequest {
        id: broken,
        force: true,
    })
    .await
    .unwrap();
    let rm = pb::RemoveNetworkRequest {
        network: "back".into(),
    };
    assert_eq!(
        nets.remove(rm).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        inspect(&mut api, &app).await.state.unwrap().networks.len(),
        2
    );

    // And leaves it at once: db and its name are gone from app, app from
    // db's /etc/hosts, and its veth from the bridge.
    ok(berth(&d, &["network", "disconnect", "back", "app"]));
    assert_eq!(fetch_db(&d, "app"), "unreachable\n");
    assert_eq!(interfaces(&d, "app"), (vec!["eth0".into()], "eth0".into()));
    assert!(!hosts(&d, "db").contains("app"), "{}", hosts(&d, "db"));
    assert_veths(&back.bridge, 1);

    // Not running: it joins from its next start, and keeps it through a
    // kill -9 of the daemon.
    let later = created(&mut api, on(spec("later", &["sleep", "1000"]), "front")).await;
    nets.connect_container(connect("back", "later"))
        .await
        .unwrap();
    api.start(pb::StartRequest { id: later.clone() })
        .await
        .unwrap();
    assert_eq!(fetch_db(&d, "later"), "hello from db\n");
    let before = inspect(&mut api, &later).await.state.unwrap().networks;
    assert_eq!(before.len(), 2);
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    let mut api = d.api().await;
    let mut nets = networks(&d).await;
    assert_eq!(
        inspect(&mut api, &later).await.state.unwrap().networks,
        before
    );
    // Off both while stopped, so it starts on none of them: loopback only.
    api.stop(pb::StopRequest {
        id: later.clone(),
        timeout_seconds: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(traces(&d.root, &later), Vec::<String>::new());
    for net in ["front", "back"] {
        nets.disconnect_container(disconnect(net, "later"))
            .await
            .unwrap();
    }
    api.start(pb::StartRequest { id: later.clone() })
        .await
        .unwrap();
    assert_eq!(interfaces(&d, "later"), (vec![], String::new()));
    // Still on a namespace of its own, it can join one again.
    nets.connect_container(connect("back", "later"))
        .await
        .unwrap();
    assert_eq!(fetch_db(&d, "later"), "hello from db\n");
    assert_eq!(
        interfaces(&d, "later"),
        (vec!["eth0".into()], "eth0".into())
    );

    // Events: a connect and a disconnect each time, on the network.
    for id in [&app, &later, &db] {
        api.remove(pb::RemoveRequest {
            id: id.to_string(),
            force: true,
        })
        .await
        .unwrap();
    }
    let journal = d.journal().await;
    let of = |id: &str| -> Vec<(Action, String)> {
        journal
            .iter()
            .filter(|e| e.r#type() == EventType::Network && e.container_id == id)
            .map(|e| (e.action(), e.name.clone()))
            .collect()
    };
    let (connect, disconnect) = (Action::Connect, Action::Disconnect);
    let named = |events: &[(Action, &str)]| -> Vec<(Action, String)> {
        events.iter().map(|(a, n)| (*a, n.to_string())).collect()
    };
    assert_eq!(
        of(&app),
        named(&[
            (connect, "front"),
            (connect, "back"),
            (disconnect, "back"),
            (disconnect, "front"),
        ])
    );
    assert_eq!(
        of(&later),
        named(&[
            (connect, "front"),
            (connect, "back"),
            (disconnect, "back"),
            (disconnect, "front"),
            (connect, "back"),
            (disconnect, "back"),
        ])
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in [&app, &later, &db] {
        while !traces(&d.root, id).is_empty() {
            assert!(Instant::now() < deadline, "{:?}", traces(&d.root, id));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let front = bridge_of(&d, "front").await;
    assert_veths(&front.bridge, 0);
    assert_veths(&back.bridge, 0);
}

/// A stop of a container on two networks journals, as Docker reports
/// it: kill, die, a disconnect per network (the last joined first), stop;
/// the unwiring that follows adds nothing, and neither does a kill -9 of
/// the daemon before it.
#[tokio::test(flavor = "multi_thread")]
async fn the_disconnects_come_between_die_and_stop() {
    let mut d = Daemon::start("net-exit-order").await;
    let mut api = d.api().await;
    let mut nets = networks(&d).await;
    let req = pb::CreateNetworkRequest {
        name: "extra".into(),
        ..Default::default()
    };
    nets.create(req).await.unwrap();
    let web = started(&mut api, web("web")).await;
    ok(berth(&d, &["network", "connect", "extra", "web"]));
    let ended = |journal: &[pb::Event], id: &str| -> Vec<(Action, String)> {
        let mine: Vec<&pb::Event> = journal
            .iter()
            .filter(|e| e.id == id || e.container_id == id)
            .collect();
        let from = mine
            .iter()
            .rposition(|e| e.action() == Action::Kill)
            .unwrap_or_default();
        mine[from..]
            .iter()
            .map(|e| {
                let what = match e.r#type() {
                    EventType::Network => e.name.clone(),
                    _ => String::new(),
                };
                (e.action(), what)
            })
            .collect()
    };
    ok(berth(&d, &["stop", "-t", "1", "web"]));
    let want = vec![
        (Action::Kill, String::new()),
        (Action::Die, String::new()),
        (Action::Disconnect, "extra".to_string()),
        (Action::Disconnect, "bridge".to_string()),
        (Action::Stop, String::new()),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !traces(&d.root, &web).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", traces(&d.root, &web));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ended(&d.journal().await, &web), want);
    // Started again and its exit recorded by a daemon killed before it
    // could unwire: the same, once.
    ok(berth(&d, &["start", "web"]));
    d.stop_daemon(libc::SIGKILL);
    let pids = cgroup_pids(&web);
    kill(pids[0] as i32, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cgroup_pids(&web).is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.spawn().await;
    let journal = d.journal().await;
    let mine: Vec<(Action, String)> = journal
        .iter()
        .filter(|e| e.container_id == web && e.r#type() == EventType::Network)
        .map(|e| (e.action(), e.name.clone()))
        .collect();
    let (connect, disconnect) = (Action::Connect, Action::Disconnect);
    let net = |a, n: &str| (a, n.to_string());
    assert_eq!(
        mine,
        [
            net(connect, "bridge"),
            net(connect, "extra"),
            net(disconnect, "extra"),
            net(disconnect, "bridge"),
            net(connect, "bridge"),
            net(connect, "extra"),
            net(disconnect, "extra"),
            net(disconnect, "bridge"),
        ]
    );
}
