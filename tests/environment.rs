//! The environment a container's process starts with, as Docker makes
//! it: PATH, HOSTNAME and HOME defaulted (HOME from the user's passwd
//! entry), on the host's network the host's hostname, and /etc/hostname,
//! /etc/hosts and /etc/resolv.conf as Docker writes them.

mod common;

use berth::pb;
use common::*;

/// The environment of a container made by `req`, as its PID 1 has it.
async fn env_of(api: &mut Api, mut req: pb::CreateRequest) -> Vec<String> {
    req.args = vec!["cat".into(), "/proc/self/environ".into()];
    let id = started(api, req).await;
    let (code, out) = finished(api, &id).await;
    assert_eq!(code, 0, "{out}");
    out.split('\0')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn home(env: &[String]) -> Option<&str> {
    env.iter().rev().find_map(|e| e.strip_prefix("HOME="))
}

#[tokio::test(flavor = "multi_thread")]
async fn home_comes_from_the_users_passwd_entry() {
    let d = Daemon::start("env-home").await;
    let mut api = d.api().await;
    // The test rootfs has no /etc/passwd: root's HOME is /root, anyone
    // else's /.
    let env = env_of(&mut api, spec("", &[])).await;
    assert_eq!(home(&env), Some("/root"), "{env:?}");
    assert!(env[0].starts_with("PATH=/usr/local/sbin:"), "{env:?}");
    assert!(env[1].starts_with("HOSTNAME="), "{env:?}");
    let mut req = spec("", &[]);
    req.user = "1234".into();
    assert_eq!(home(&env_of(&mut api, req).await), Some("/"));

    // With a passwd entry, its home directory.
    let passwd = d.share("etc").join("passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/var/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n",
    )
    .unwrap();
    let with_passwd = |user: &str| {
        let mut req = spec("", &[]);
        req.user = user.into();
        req.mounts.push(pb::Mount {
            source: passwd.display().to_string(),
            destination: "/etc/passwd".into(),
            read_only: true,
            ..Default::default()
        });
        req
    };
    assert_eq!(
        home(&env_of(&mut api, with_passwd("")).await),
        Some("/var/root")
    );
    assert_eq!(
        home(&env_of(&mut api, with_passwd("u")).await),
        Some("/home/u")
    );
    assert_eq!(
        home(&env_of(&mut api, with_passwd("1000:0")).await),
        Some("/home/u")
    );
    assert_eq!(
        home(&env_of(&mut api, with_passwd("2000")).await),
        Some("/")
    );
    // A HOME given wins, and is the only one.
    let mut req = with_passwd("u");
    req.env = vec!["HOME=/data".into()];
    let env = env_of(&mut api, req).await;
    assert_eq!(env.iter().filter(|e| e.starts_with("HOME=")).count(), 1);
    assert_eq!(home(&env), Some("/data"));
}

#[tokio::test(flavor = "multi_thread")]
async fn on_the_hosts_network_the_hostname_is_the_hosts() {
    let d = Daemon::start("env-hostname").await;
    let mut api = d.api().await;
    let host = nix_hostname();
    let mut req = spec("", &["true"]);
    req.network = "host".into();
    let (code, out) = run_script(&mut api, req.clone(), "hostname; echo $HOSTNAME").await;
    assert_eq!((code, out), (0, format!("{host}\n{host}\n")));
    // Inspect shows it, as Docker's Config.Hostname does.
    let id = created(&mut api, req).await;
    assert_eq!(inspect(&mut api, &id).await.config.unwrap().hostname, host);
    // Not on the host's network: the short id; a hostname given wins.
    let id = started(&mut api, spec("", &["hostname"])).await;
    assert_eq!(finished(&mut api, &id).await.1, format!("{}\n", &id[..12]));
    let mut req = spec("", &["hostname"]);
    req.network = "host".into();
    req.hostname = "box".into();
    let id = started(&mut api, req).await;
    assert_eq!(finished(&mut api, &id).await.1, "box\n");
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// What a container made by `req` reads in its /etc/hostname, /etc/hosts
/// and /etc/resolv.conf.
async fn names_of(api: &mut Api, req: pb::CreateRequest) -> [String; 3] {
    let mut files = Vec::new();
    for f in ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"] {
        let (code, out) = run_script(api, req.clone(), &format!("cat {f}")).await;
        assert_eq!(code, 0, "{f}: {out}");
        files.push(out);
    }
    files.try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostname_hosts_and_resolv_conf_as_docker_writes_them() {
    let d = Daemon::start("env-names").await;
    let mut api = d.api().await;
    let defaults = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                    fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
                    ff02::2\tip6-allrouters\n";
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    // Its own network: Docker's hosts with the added ones, the host's
    // resolvers less loopback ones.
    let mut req = spec("", &["true"]);
    req.hostname = "box".into();
    req.extra_hosts = vec!["db:10.0.0.5".into(), "v6=fd00::1".into()];
    let [hostname, hosts, resolv] = names_of(&mut api, req.clone()).await;
    assert_eq!(hostname, "box\n");
    assert_eq!(hosts, format!("{defaults}10.0.0.5\tdb\nfd00::1\tv6\n"));
    let servers = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("nameserver "))
            .map(|s| s.trim().to_string())
            .collect()
    };
    let reachable: Vec<String> = servers(&host_resolv)
        .into_iter()
        .filter(|s| !s.starts_with("127.") && s != "::1")
        .collect();
    match reachable.is_empty() {
        true => assert_eq!(servers(&resolv), ["8.8.8.8", "8.8.4.4"]),
        false => assert_eq!(servers(&resolv), reachable),
    }
    // Its own resolvers, search and options.
    let mut own = req.clone();
    own.dns = vec!["9.9.9.9".into(), "2620:fe::fe".into()];
    own.dns_search = vec![".".into()];
    own.dns_options = vec!["ndots:1".into()];
    let [_, _, resolv] = names_of(&mut api, own).await;
    assert_eq!(
        resolv,
        "nameserver 9.9.9.9\nnameserver 2620:fe::fe\noptions ndots:1\n"
    );
    // The host's network: the host's files, with the added hosts.
    let mut host = req.clone();
    host.network = "host".into();
    host.extra_hosts = vec!["db:10.0.0.5".into()];
    let [_, hosts, resolv] = names_of(&mut api, host).await;
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    let host_hosts = match host_hosts.ends_with('\n') {
        true => host_hosts,
        false => format!("{host_hosts}\n"),
    };
    assert_eq!(hosts, format!("{host_hosts}10.0.0.5\tdb\n"));
    assert_eq!(resolv, host_resolv);
    // A read-only root filesystem gets them too; a mount at their path
    // wins; inspect shows what was asked, under Docker's names.
    let mine = d.share("mine");
    std::fs::write(mine.join("hosts"), "1.2.3.4 mine\n").unwrap();
    let mut ro = req.clone();
    ro.read_only = true;
    ro.mounts.push(pb::Mount {
        source: mine.join("hosts").display().to_string(),
        destination: "/etc/hosts".into(),
        read_only: true,
        ..Default::default()
    });
    let [hostname, hosts, _] = names_of(&mut api, ro).await;
    assert_eq!(
        (hostname.as_str(), hosts.as_str()),
        ("box\n", "1.2.3.4 mine\n")
    );
    let id = created(&mut api, req).await;
    let shown = ok(berth(
        &d,
        &["inspect", "-f", "{{json .HostConfig.ExtraHosts}}", &id],
    ));
    assert_eq!(shown.trim(), r#"["db:10.0.0.5","v6:fd00::1"]"#);
    // Bad values are refused and make nothing.
    let before = listed(&mut api).await.len();
    for (field, bad) in [
        ("dns", "one.one"),
        ("extra_hosts", "db"),
        ("dns_options", "a b"),
    ] {
        let mut req = spec("", &["true"]);
        match field {
            "dns" => req.dns = vec![bad.into()],
            "extra_hosts" => req.extra_hosts = vec![bad.into()],
            _ => req.dns_options = vec![bad.into()],
        }
        let refused = api.create(req).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{field}");
        assert!(refused.message().contains(bad), "{}", refused.message());
    }
    assert_eq!(listed(&mut api).await.len(), before);
}
