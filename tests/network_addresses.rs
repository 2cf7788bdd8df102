//! --ip, --ip6 and --mac-address: a container's own addresses on the
//! network it is created on, seen inside, shown by inspect, and refused
//! where Docker refuses them.

mod common;

use berth::pb;
use common::*;

/// The address `n` places into the subnet of `net` ("172.18.0.0/16").
fn nth(net: &pb::Network, n: u8) -> String {
    let (base, _) = net.subnet.split_once('/').unwrap();
    let mut octets: Vec<u8> = base.split('.').map(|o| o.parse().unwrap()).collect();
    octets[3] = n;
    octets
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_has_the_addresses_it_asks_for() {
    let d = Daemon::start("net-addresses").await;
    let mut nets = networks(&d).await;
    let app = new_network(
        &mut nets,
        pb::CreateNetworkRequest {
            name: "app".into(),
            ipv6: true,
            ..Default::default()
        },
    )
    .await;
    let ip = nth(&app, 77);
    let ip6 = app.ipv6_subnet.replace("::/64", "::77");
    let mac = "02:42:ac:1e:00:4d";
    let rootfs = rootfs().display().to_string();
    let id = ok(berth(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "fixed",
            "--network",
            "app",
            "--ip",
            &ip,
            "--ip6",
            &ip6,
            "--mac-address",
            mac,
            &rootfs,
            "sleep",
            "1000",
        ],
    ));
    let inside = ok(berth(
        &d,
        &[
            "exec",
            "fixed",
            "sh",
            "-c",
            "busybox ip addr show eth0; cat /sys/class/net/eth0/address",
        ],
    ));
    assert!(inside.contains(&format!("inet {ip}/")), "{inside}");
    assert!(inside.contains(&format!("inet6 {ip6}/")), "{inside}");
    assert!(inside.ends_with(&format!("{mac}\n")), "{inside}");
    let shown = ok(berth(
        &d,
        &[
            "inspect",
            "-f",
            "{{.Config.MacAddress}} {{json .NetworkSettings.Networks}}",
            id.trim(),
        ],
    ));
    let (shown_mac, networks) = shown.trim().split_once(' ').unwrap();
    assert_eq!(shown_mac, mac);
    let networks: serde_json::Value = serde_json::from_str(networks).unwrap();
    assert_eq!(networks["app"]["IPAddress"], ip.as_str());
    assert_eq!(networks["app"]["IPAMConfig"]["IPv4Address"], ip.as_str());
    assert_eq!(networks["app"]["MacAddress"], mac);

    // The address is its own: another container asking for it cannot
    // start while it runs.
    let out = berth(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "app",
            "--ip",
            &ip,
            &rootfs,
            "true",
        ],
    );
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    ok(berth(&d, &["rm", "-f", "fixed"]));
    // Once it is gone, the address is free again.
    let again = ok(berth(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "app",
            "--ip",
            &ip,
            &rootfs,
            "sh",
            "-c",
            "busybox ip -4 addr show eth0",
        ],
    ));
    assert!(again.contains(&format!("inet {ip}/")), "{again}");

    // Refused as Docker refuses them.
    for (flags, why) in [
        (vec!["--ip", "172.17.0.77"], "default bridge"),
        (vec!["--network", "app", "--ip", "10.99.0.1"], "subnet"),
        (vec!["--network", "app", "--ip", &app.gateway], "subnet"),
        (
            vec!["--network", "none", "--mac-address", mac],
            "bridge network",
        ),
        (
            vec!["--network", "app", "--mac-address", "01:00:5e:00:00:01"],
            "unicast",
        ),
        (vec!["--network", "app", "--ip", "x"], "IPv4"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter().copied());
        args.extend([rootfs.as_str(), "true"]);
        let out = berth(&d, &args);
        assert_eq!(out.status.code(), Some(125), "{flags:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{flags:?}: {err}");
    }
    assert_eq!(ok(berth(&d, &["ps", "-aq"])), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_networks_ip_range_and_auxiliary_addresses_bound_what_containers_get() {
    let d = Daemon::start("net-ip-range").await;
    let rootfs = rootfs().display().to_string();
    ok(berth(
        &d,
        &[
            "network",
            "create",
            "--subnet",
            "10.213.7.0/24",
            "--ip-range",
            "10.213.7.128/30",
            "--aux-address",
            "router=10.213.7.129",
            "ranged",
        ],
    ));
    let ipam = ok(berth(
        &d,
        &[
            "network",
            "inspect",
            "-f",
            "{{json .IPAM.Config}}",
            "ranged",
        ],
    ));
    let ipam: serde_json::Value = serde_json::from_str(&ipam).unwrap();
    assert_eq!(ipam[0]["IPRange"], "10.213.7.128/30");
    assert_eq!(ipam[0]["AuxiliaryAddresses"]["router"], "10.213.7.129");
    // Three places: .128, .130 and .131; .129 is the router's.
    let mut ips = Vec::new();
    for name in ["a", "b", "c"] {
        ok(berth(
            &d,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "ranged",
                &rootfs,
                "sleep",
                "1000",
            ],
        ));
        let ip = ok(berth(
            &d,
            &[
                "inspect",
                "-f",
                "{{.NetworkSettings.Networks.ranged.IPAddress}}",
                name,
            ],
        ));
        ips.push(ip.trim().to_string());
    }
    ips.sort();
    assert_eq!(ips, ["10.213.7.128", "10.213.7.130", "10.213.7.131"]);
    let full = berth(&d, &["run", "--rm", "--network", "ranged", &rootfs, "true"]);
    assert_ne!(full.status.code(), Some(0), "{full:?}");
    ok(berth(&d, &["rm", "-f", "a", "b", "c"]));
    ok(berth(&d, &["network", "rm", "ranged"]));
    // Both need a subnet, and must fit it.
    for args in [
        &["network", "create", "--ip-range", "10.213.7.128/30", "x"][..],
        &[
            "network",
            "create",
            "--subnet",
            "10.213.9.0/24",
            "--ip-range",
            "10.213.8.0/30",
            "x",
        ],
        &[
            "network",
            "create",
            "--subnet",
            "10.213.9.0/24",
            "--aux-address",
            "r=10.213.8.1",
            "x",
        ],
    ] {
        let out = berth(&d, args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
    }
}
