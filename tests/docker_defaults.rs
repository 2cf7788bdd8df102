//! What a Docker user gets without asking: the default bridge for a
//! container that names no network, TERM=xterm with a terminal, plain
//! HTTP to a registry on loopback, --platform held to the image, and an
//! image's volume starting with the image's content.

mod common;

use berth::pb;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use tonic::Code;

/// A TCP server on all of the host's addresses that answers every
/// connection with `hello`, in a thread; its port.
fn host_server() -> u16 {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello\n");
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_names_no_network_is_on_the_default_bridge() {
    let d = Daemon::start("defaults-bridge").await;
    let mut api = d.api().await;
    let port = host_server();
    let bridge = bridge_of(&d, "bridge").await;

    // Through the API: no network named is the default bridge, eth0 up
    // with a default route through its gateway, the host reachable.
    let script = format!(
        "ip=$(busybox ip -4 route show default); echo \"$ip\"; busybox wget -q -O- http://{}:{port}/",
        bridge.gateway
    );
    let req = pb::CreateRequest {
        network: String::new(),
        ..spec("api", &[])
    };
    let (code, out) = run_script(&mut api, req, &script).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("default via {}", bridge.gateway)) && out.ends_with("hello\n"),
        "{out}"
    );
    let c = inspect(&mut api, "api").await;
    assert_eq!(c.config.unwrap().network, "bridge");
    // Docker's name for it, "default", is the same.
    let req = pb::CreateRequest {
        network: "default".into(),
        ..spec("named-default", &["true"])
    };
    let id = created(&mut api, req).await;
    assert_eq!(
        inspect(&mut api, &id).await.config.unwrap().network,
        "bridge"
    );

    // Through the CLI: a plain run reaches the host; --network none is
    // the way out, with only loopback.
    let rootfs = rootfs().display().to_string();
    let url = format!("http://{}:{port}/", bridge.gateway);
    let out = berth(
        &d,
        &["run", "--rm", &rootfs, "busybox", "wget", "-q", "-O-", &url],
    );
    assert_eq!(stdout(&out), "hello\n", "{out:?}");
    let (code, _, err) = run_rm(&d, &[], &format!("busybox wget -q -O- {url}"));
    assert_ne!(code, Some(0));
    assert!(err.contains("unreachable"), "{err}");
    let (_, out, _) = run_rm(&d, &[], "ls /sys/class/net");
    assert_eq!(out, "lo\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_sets_term_to_xterm_unless_the_request_does() {
    let d = Daemon::start("defaults-term").await;
    let mut api = d.api().await;
    let with_tty = |name: &str, env: &[&str]| pb::CreateRequest {
        tty: true,
        env: env.iter().map(|e| e.to_string()).collect(),
        ..spec(name, &[])
    };
    let (_, out) = run_script(&mut api, with_tty("tty", &[]), "echo \"[$TERM]\"").await;
    assert_eq!(out.trim_end(), "[xterm]");
    let (_, out) = run_script(
        &mut api,
        with_tty("own", &["TERM=vt100"]),
        "echo \"[$TERM]\"",
    )
    .await;
    assert_eq!(out.trim_end(), "[vt100]");
    let (_, out) = run_script(&mut api, spec("plain", &[]), "echo \"[$TERM]\"").await;
    assert_eq!(out.trim_end(), "[]");

    // exec: TERM follows the exec's terminal, not the container's.
    run_sleeping(&d, "box");
    let term = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        all.extend(["box", "sh", "-c", "echo \"[$TERM]\""]);
        ok(berth(&d, &all)).trim_end().to_string()
    };
    assert_eq!(term(&["-t"]), "[xterm]");
    assert_eq!(term(&["-t", "-e", "TERM=dumb"]), "[dumb]");
    assert_eq!(term(&[]), "[]");
    ok(berth(&d, &["rm", "-f", "box"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_on_loopback_is_plain_http_without_configuration() {
    if !registry_tools() {
        return;
    }
    // No registries file: 127.0.0.1 and localhost are plain HTTP.
    let d = Daemon::start("defaults-loopback").await;
    let dir = d.share("images");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let (ids, name) = publish(
        &reg,
        &dir,
        "team/app:v1",
        &[TestImage::new(
            vec![base_layer(Packing::Gzip)],
            serde_json::json!({"Cmd": ["true"]}),
        )],
        None,
    );
    let out = berth(&d, &["pull", "-q", &name]);
    assert_eq!(stdout(&out).trim(), name, "{out:?}");
    // A pull of what is here already says so, as Docker's.
    let again = berth(&d, &["pull", &name]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains(&format!("Status: Image is up to date for {name}")),
        "{said}"
    );
    let port = reg.addr.rsplit_once(':').unwrap().1;
    let local = format!("localhost:{port}/team/app:v1");
    let first = berth(&d, &["pull", &local]);
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains(&format!("Status: Downloaded newer image for {local}")),
        "{said}"
    );
    let listed = ok(berth(&d, &["images", "-q", "--no-trunc"]));
    assert_eq!(listed.lines().collect::<Vec<_>>(), [ids[0].as_str()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_is_held_to_the_local_image_or_pulls_the_right_one() {
    if !registry_tools() {
        return;
    }
    let other = match host_arch() {
        "amd64" => "arm64",
        _ => "amd64",
    };
    let d = Daemon::start("defaults-platform").await;
    let dir = d.share("images");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let mut foreign = TestImage::new(
        vec![full_layer(Packing::Gzip)],
        serde_json::json!({"Cmd": ["true"]}),
    );
    foreign.architecture = other;
    let native = TestImage::new(
        vec![base_layer(Packing::Gzip)],
        serde_json::json!({"Cmd": ["true"]}),
    );
    let (ids, name) = publish(&reg, &dir, "multi:v1", &[native, foreign], None);
    ok(berth(&d, &["pull", "-q", &name]));
    let wanted = format!("linux/{other}");

    // The API refuses an image held for another platform, and makes
    // nothing.
    let mut api = d.api().await;
    let err = api
        .create(pb::CreateRequest {
            image: name.clone(),
            platform: wanted.clone(),
            network: "none".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains(&format!("not {wanted}")), "{err:?}");
    assert!(listed(&mut api).await.is_empty());
    let err = api
        .create(pb::CreateRequest {
            platform: "linux".into(),
            ..spec("bad", &["true"])
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    // The CLI with --pull never says so (run's 125); by default it pulls the
    // platform's image, which the container then uses.
    let out = berth(
        &d,
        &["run", "--pull", "never", "--platform", &wanted, &name],
    );
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("not {wanted}")));
    let id = ok(berth(
        &d,
        &["create", "--network", "none", "--platform", &wanted, &name],
    ));
    let c = inspect(&mut api, id.trim()).await;
    assert_eq!(c.config.unwrap().image_id, ids[1]);
    let native = format!("linux/{}", host_arch());
    let out = berth(
        &d,
        &["run", "--pull", "never", "--platform", &native, &name],
    );
    assert_eq!(out.status.code(), Some(125), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_volume_starts_with_the_images_content_and_owner() {
    let d = Daemon::start("defaults-volume").await;
    // As a postgres image has its data directory: 0700, owned by the
    // database's user, with files in it.
    let layer = TarBuilder::new()
        .tree(rootfs())
        .owned("data", 0o700, 999, None)
        .owned("data/PG_VERSION", 0o600, 999, Some(b"15\n"))
        .owned("data/base", 0o750, 999, None)
        .symlink("data/link", "/etc/passwd")
        .layer(Packing::Plain)
        .tar;
    let config = serde_json::json!({"Volumes": {"/data": {}}, "Cmd": ["true"]});
    load(&d, docker_archive_of("pg:15", config, layer))
        .await
        .unwrap();
    let mut api = d.api().await;
    let script = "busybox stat -c '%n %u:%g %a' /data /data/PG_VERSION /data/base; \
                  cat /data/PG_VERSION; busybox readlink /data/link; \
                  while read src at rest; do [ \"$at\" = /data ] && echo mounted; done < /proc/mounts; \
                  busybox rm /data/PG_VERSION";
    let req = pb::CreateRequest {
        image: "pg:15".into(),
        name: "pg".into(),
        network: "none".into(),
        args: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    };
    // A copy cut short by a start killed half-way (content, no marker) is
    // made again.
    let id = created(&mut api, req).await;
    let volume = d.container_dir(&id).join("volumes/0");
    std::fs::write(volume.join("PG_VERSION"), "half").unwrap();
    std::fs::write(volume.join("stray"), "").unwrap();
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let (code, out) = finished(&mut api, &id).await;
    assert!(!volume.join("stray").exists());
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "/data 999:999 700\n/data/PG_VERSION 999:999 600\n/data/base 999:999 750\n15\n/etc/passwd\nmounted\n"
        )
    );
    // Copied once: what the container deleted stays deleted.
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let (code, out) = finished(&mut api, &id).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("PG_VERSION: No such file"), "{out}");
    // inspect shows it as Docker shows an anonymous volume.
    let mounts = ok(berth(&d, &["inspect", "-f", "{{json .Mounts}}", "pg"]));
    let mounts: serde_json::Value = serde_json::from_str(&mounts).unwrap();
    let m = &mounts[0];
    assert_eq!(
        (
            m["Type"].as_str(),
            m["Destination"].as_str(),
            m["Driver"].as_str()
        ),
        (Some("volume"), Some("/data"), Some("local")),
        "{mounts}"
    );
    let name = m["Name"].as_str().unwrap();
    assert!(
        name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    let binds = ok(berth(
        &d,
        &["inspect", "-f", "{{json .HostConfig.Binds}}", "pg"],
    ));
    assert_eq!(binds.trim(), "[]");
}
