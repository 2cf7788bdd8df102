//! IPv6 networks: a network with a unique local /64 picked for it (or one
//! given), containers on it with an IPv6 address each, reaching each
//! other over IPv6 by name and reached from the host, not from another
//! IPv6 network; the refusals; no rule or lease left after.

mod common;

use berth::pb;
use common::*;
use std::process::Command;
use tonic::Code;

fn six(name: &str, subnet: &str) -> pb::CreateNetworkRequest {
    pb::CreateNetworkRequest {
        name: name.into(),
        ipv6: true,
        ipv6_subnet: subnet.into(),
        ..Default::default()
    }
}

fn nat6() -> String {
    let out = Command::new("ip6tables-save")
        .args(["-t", "nat"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_on_an_ipv6_network_talk_over_ipv6_and_not_across() {
    let d = Daemon::start("net-ipv6").await;
    let mut api = d.api().await;
    let mut nets = networks(&d).await;
    let v6 = new_network(&mut nets, six("v6", "")).await;
    assert!(v6.ipv6, "{v6:?}");
    assert!(
        v6.ipv6_subnet.starts_with("fd") && v6.ipv6_subnet.ends_with("::/64"),
        "{v6:?}"
    );
    let prefix = v6.ipv6_subnet.trim_end_matches("/64");
    assert_eq!(v6.ipv6_gateway, format!("{prefix}1"));
    // A subnet given, once: another network cannot have it.
    let other = new_network(&mut nets, six("other6", "fd42:b3e7:5a01::/64")).await;
    for (req, want) in [
        (
            six("again", "fd42:b3e7:5a01:0:1::/80"),
            Code::FailedPrecondition,
        ),
        (six("bad", "fd42:b3e7:5a02::1/64"), Code::InvalidArgument),
        (six("small", "fd42:b3e7:5a02::/127"), Code::InvalidArgument),
        (
            pb::CreateNetworkRequest {
                ipv6_gateway: "fd42:b3e7:5a03::1".into(),
                ..six("gw", "fd42:b3e7:5a02::/64")
            },
            Code::InvalidArgument,
        ),
    ] {
        let what = req.ipv6_subnet.clone();
        let err = nets.create(req).await.unwrap_err();
        assert_eq!(err.code(), want, "{what}: {err:?}");
    }

    let mut db = web("db");
    db.network = "v6".into();
    let db = started(&mut api, db).await;
    let mut client = spec("client", &["sleep", "1000"]);
    client.network = "v6".into();
    started(&mut api, client).await;
    // The bridge, made for the first container, masquerades IPv6 too.
    assert!(nat6().contains(&format!(
        "-A POSTROUTING -s {} ! -o {}",
        v6.ipv6_subnet, v6.bridge
    )));
    let st = settings(&inspect(&mut api, &db).await);
    let db6 = st.global_ipv6_address.clone();
    assert!(db6.starts_with(prefix), "{st:?}");
    assert_eq!(st.global_ipv6_prefix_length, 64);
    assert_eq!(st.ipv6_gateway, v6.ipv6_gateway);
    // Reached from the host through the bridge, and from its peer by
    // name, whose /etc/hosts has both its addresses.
    assert_eq!(get(&format!("[{db6}]:80")), "hello from db\n");
    let hosts = ok(berth(&d, &["exec", "client", "cat", "/etc/hosts"]));
    assert!(hosts.contains(&format!("{db6}\tdb\n")), "{hosts}");
    assert!(
        hosts.contains(&format!("{}\tdb\n", st.ip_address)),
        "{hosts}"
    );
    let fetch = format!("busybox timeout 3 busybox wget -q -O - http://[{db6}]/");
    assert_eq!(
        ok(berth(&d, &["exec", "client", "sh", "-c", &fetch])),
        "hello from db\n"
    );
    // Not from another IPv6 network.
    let probe =
        format!("busybox nc -w 2 {db6} 80 </dev/null 2>/dev/null && echo reached || echo refused");
    let mut req = spec("", &[]);
    req.network = "other6".into();
    let (code, out) = run_script(&mut api, req, &probe).await;
    assert_eq!((code, out.trim_end()), (0, "refused"), "{out}");

    let ids: Vec<String> = listed(&mut api).await.into_iter().map(|c| c.id).collect();
    for id in &ids {
        api.remove(pb::RemoveRequest {
            id: id.clone(),
            force: true,
        })
        .await
        .unwrap();
        assert_eq!(traces(&d.root, id), Vec::<String>::new());
    }
    for net in [&v6, &other] {
        nets.remove(pb::RemoveNetworkRequest {
            network: net.name.clone(),
        })
        .await
        .unwrap();
        assert!(!nat6().contains(&net.bridge), "{}", nat6());
    }
}
