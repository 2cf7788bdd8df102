//! A network's bridge device and the host's forwarding rules for berth's
//! bridges. The bridge is made with its gateway address before the first
//! container joins (so its route marks the subnet taken on the host) and
//! is kept, as Docker keeps its bridges, until the network is removed.
//!
//! nat POSTROUTING masquerades what leaves the network for elsewhere
//! (Docker's rule, one per network). filter FORWARD jumps to BERTH-FORWARD for traffic from or to a berth
//! bridge (all named berth…): from one berth bridge to another it goes
//! through BERTH-ISOLATION, which returns only for a bridge to itself and
//! drops the rest, so networks cannot reach each other; replies and
//! published ports (DNAT) are let in, containers let out, whatever the
//! FORWARD policy. A network with IPv6 has the same rules in ip6tables.
//!
//! INPUT drops what comes from a berth bridge for 127.0.0.0/8 unless it
//! belongs to a connection the host made (a reply) or was DNAT'd: the
//! portmap plugin turns on route_localnet on the bridge (for ports
//! published on 127.0.0.1), which would otherwise let a container (with
//! CAP_NET_RAW, a default) reach the host's services bound to 127.0.0.1.
//! IPv6 never routes ::1 from another interface.

use super::{Error, NetworkRecord};

/// Every berth bridge's name starts so; iptables matches them as "berth+".
pub const PREFIX: &str = "berth";
const FORWARD: &str = "BERTH-FORWARD";
const ISOLATION: &str = "BERTH-ISOLATION";
const PORTMAP_CHAINS: [&str; 3] = [
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
    "CNI-HOSTPORT-DNAT",
];

async fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{program}: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// iptables, or ip6tables for IPv6.
#[derive(Clone, Copy)]
struct Tables(&'static str);

const V4: Tables = Tables("iptables");
const V6: Tables = Tables("ip6tables");

impl Tables {
    async fn run(self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["-w", "5"];
        all.extend_from_slice(args);
        run(self.0, &all).await
    }
}

/// Adds `rule` to `chain` (of table `table`) unless it is there: at the
/// top if `first`.
async fn ensure_in(
    t: Tables,
    table: &str,
    chain: &str,
    rule: &[&str],
    first: bool,
) -> Result<(), Error> {
    let with = |op: &'static str| -> Vec<&str> {
        let mut v = vec!["-t", table, op, chain];
        if op == "-I" {
            v.push("1");
        }
        v.extend_from_slice(rule);
        v
    };
    if t.run(&with("-C")).await.is_ok() {
        return Ok(());
    }
    t.run(&with(if first { "-I" } else { "-A" }))
        .await
        .map_err(|e| Error::Plugin(format!("{}: add to {chain}: {e}", t.0)))
}

/// Docker's masquerading of a network's outgoing traffic.
fn masquerade<'a>(subnet: &'a str, bridge: &'a str) -> [&'a str; 7] {
    ["-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"]
}

/// What keeps an internal network's traffic on its bridge: forwarding
/// into or out of it from anywhere else dropped.
fn internal_rules(bridge: &str) -> [[&str; 6]; 2] {
    [
        ["-i", bridge, "!", "-o", bridge, "-j"],
        ["!", "-i", bridge, "-o", bridge, "-j"],
    ]
}

/// The shared chains, and this bridge's own return and masquerade rules
/// (for an internal one, its drop rules instead of masquerading).
async fn ensure_rules(t: Tables, bridge: &str, subnet: &str, internal: bool) -> Result<(), Error> {
    for chain in [FORWARD, ISOLATION] {
        // Exists already, or made now; a real failure shows at the rules.
        let _ = t.run(&["-N", chain]).await;
    }
    let any = "berth+";
    ensure_in(t, "filter", ISOLATION, &["-j", "DROP"], false).await?;
    ensure_in(
        t,
        "filter",
        ISOLATION,
        &["-i", bridge, "-o", bridge, "-j", "RETURN"],
        true,
    )
    .await?;
    ensure_in(
        t,
        "filter",
        FORWARD,
        &["-i", any, "-o", any, "-j", ISOLATION],
        true,
    )
    .await?;
    let back = [
        "-o",
        any,
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED,DNAT",
        "-j",
        "ACCEPT",
    ];
    ensure_in(t, "filter", FORWARD, &back, false).await?;
    ensure_in(t, "filter", FORWARD, &["-i", any, "-j", "ACCEPT"], false).await?;
    ensure_in(t, "filter", "FORWARD", &["-j", FORWARD], true).await?;
    // The portmap plugin's shared chains, made before any plugin runs:
    // two plugins making one at once (two daemons' starts) fail on
    // iptables-nft, whose "exists" they do not recognise.
    for chain in PORTMAP_CHAINS {
        let _ = t.run(&["-t", "nat", "-N", chain]).await;
    }
    if t.0 == V4.0 {
        let localnet = [
            "-i",
            any,
            "-d",
            "127.0.0.0/8",
            "-m",
            "conntrack",
            "!",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
            "-j",
            "DROP",
        ];
        ensure_in(t, "filter", "INPUT", &localnet, true).await?;
    }
    if internal {
        for rule in internal_rules(bridge) {
            let mut rule = rule.to_vec();
            rule.push("DROP");
            ensure_in(t, "filter", FORWARD, &rule, true).await?;
        }
        return Ok(());
    }
    ensure_in(t, "nat", "POSTROUTING", &masquerade(subnet, bridge), false).await
}

/// A locally administered unicast MAC address for network `id`'s bridge,
/// from the id's first five bytes.
fn bridge_mac(id: &str) -> String {
    let bytes = (0..5).map(|i| id.get(2 * i..2 * i + 2).unwrap_or("00"));
    std::iter::once("02")
        .chain(bytes)
        .collect::<Vec<_>>()
        .join(":")
}

/// The bridge up with its gateway address, and its rules.
pub async fn ensure(net: &NetworkRecord) -> Result<(), Error> {
    let br = net.bridge.as_str();
    let fail = |what: &str, e: String| Error::Plugin(format!("bridge {br}: {what}: {e}"));
    // A MAC address of its own: a bridge without one takes the lowest of
    // its ports', so each container joining could change the gateway's
    // and leave its peers sending to the old one until ARP notices.
    let mac = bridge_mac(&net.id);
    let add = ["link", "add", "name", br, "address", &mac, "type", "bridge"];
    if let Err(e) = run("ip", &add).await {
        if !e.contains("File exists") {
            return Err(fail("create", e));
        }
        run("ip", &["link", "set", br, "address", &mac])
            .await
            .map_err(|e| fail("set its address", e))?;
    }
    let gateway = format!("{}/{}", net.gateway, net.subnet.prefix());
    if let Err(e) = run("ip", &["addr", "add", &gateway, "dev", br]).await {
        if !e.contains("File exists") && !e.contains("already assigned") {
            return Err(fail("add its address", e));
        }
    }
    if let Some(v6) = &net.ipv6 {
        // No duplicate address detection: the gateway is usable at once.
        let gateway = format!("{}/{}", v6.gateway, v6.subnet.prefix());
        if let Err(e) = run("ip", &["-6", "addr", "add", &gateway, "dev", br, "nodad"]).await {
            if !e.contains("File exists") && !e.contains("already assigned") {
                return Err(fail("add its IPv6 address", e));
            }
        }
    }
    let mtu = net.mtu.to_string();
    run("ip", &["link", "set", br, "mtu", &mtu, "up"])
        .await
        .map_err(|e| fail("set it up", e))?;
    // The host routes for its containers (the bridge plugin's isGateway
    // did this on each ADD).
    let forwarding = std::iter::once("/proc/sys/net/ipv4/ip_forward")
        .chain(net.ipv6.map(|_| "/proc/sys/net/ipv6/conf/all/forwarding"));
    for knob in forwarding {
        std::fs::write(knob, "1").map_err(|e| fail("turn forwarding on", e.to_string()))?;
    }
    ensure_rules(V4, br, &net.subnet.to_string(), net.internal).await?;
    match &net.ipv6 {
        Some(v6) => ensure_rules(V6, br, &v6.subnet.to_string(), net.internal).await,
        None => Ok(()),
    }
}

/// The bridge and its return rule gone.
pub async fn remove(net: &NetworkRecord) {
    let br = net.bridge.as_str();
    let v6 = net.ipv6.map(|v6| (V6, v6.subnet.to_string()));
    for (t, subnet) in std::iter::once((V4, net.subnet.to_string())).chain(v6) {
        let _ = t
            .run(&["-D", ISOLATION, "-i", br, "-o", br, "-j", "RETURN"])
            .await;
        let mut masq = vec!["-t", "nat", "-D", "POSTROUTING"];
        masq.extend(masquerade(&subnet, br));
        let _ = t.run(&masq).await;
        for rule in internal_rules(br) {
            let mut drop = vec!["-D", FORWARD];
            drop.extend(rule);
            drop.push("DROP");
            let _ = t.run(&drop).await;
        }
    }
    if let Err(e) = run("ip", &["link", "del", br]).await {
        if !e.contains("Cannot find device") {
            tracing::warn!(bridge = br, error = %e, "cannot remove a network's bridge");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bridge_mac_is_local_unicast_and_the_networks_own() {
        let id = "a1b2c3d4e5f60718";
        assert_eq!(super::bridge_mac(id), "02:a1:b2:c3:d4:e5");
    }
}
