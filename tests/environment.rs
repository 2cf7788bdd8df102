//! The environment a container's process starts with, as Docker makes
//! it: PATH, HOSTNAME and HOME defaulted (HOME from the user's passwd
//! entry), and on the host's network the host's hostname.

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
