//! Images end to end, against real and independent parts: Debian's
//! docker-registry (distribution 2.8) started here on loopback (anonymous,
//! htpasswd over TLS with a CA made here, and token auth), images built
//! here as OCI layouts and pushed by skopeo, and skopeo again as the judge
//! of what berth saves and the source of what berth loads.

mod common;
use berth::pb::{self, Action, EventType};
use common::*;
use serde_json::json;
use std::path::Path;
use std::time::SystemTime;

/// A daemon that knows `registries` (TOML) and its directory.
async fn daemon(test: &str, dir: &Path, registries: &str) -> Daemon {
    let file = registries_file(dir, registries);
    Daemon::start_with_args(test, &["--registries", file.to_str().unwrap()]).await
}

fn insecure(addr: &str) -> String {
    format!("[\"{addr}\"]\ninsecure = true\n")
}

type Images = pb::images_client::ImagesClient<tonic::transport::Channel>;

/// Pulls through the API: every progress message, the last being the image.
async fn pull(
    images: &mut Images,
    reference: &str,
    auth: Option<(&str, &str)>,
) -> Result<Vec<pb::PullProgress>, tonic::Status> {
    let mut stream = images
        .pull(pb::PullRequest {
            reference: reference.into(),
            auth: auth.map(|(u, p)| pb::RegistryAuth {
                username: u.into(),
                password: p.into(),
            }),
            platform: String::new(),
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(p) = stream.message().await? {
        out.push(p);
    }
    assert!(
        out.last().is_some_and(|p| p.image.is_some()),
        "no image at the end: {out:?}"
    );
    Ok(out)
}

fn pulled(progress: &[pb::PullProgress]) -> pb::Image {
    progress.last().unwrap().image.clone().unwrap()
}

/// Statuses per layer, in order.
fn statuses(progress: &[pb::PullProgress], layer: &str) -> Vec<String> {
    progress
        .iter()
        .filter(|p| p.layer == layer && p.status != "downloading")
        .map(|p| p.status.clone())
        .collect()
}

async fn run_image(api: &mut Api, image: &str, args: &[&str]) -> (i32, String) {
    let id = started(
        api,
        pb::CreateRequest {
            image: image.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    )
    .await;
    finished(api, &id).await
}

/// The image events journaled so far, as "pull sha256:… name".
async fn image_events(d: &Daemon) -> Vec<String> {
    let events = d
        .subscribe(pb::SubscribeRequest {
            since_seq: Some(0),
            until: Some(prost_types::Timestamp::from(SystemTime::now())),
            types: vec![EventType::Image as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .read_to_end()
        .await;
    events
        .iter()
        .map(|e| {
            let action = Action::try_from(e.action)
                .unwrap()
                .as_str_name()
                .trim_start_matches("ACTION_")
                .to_lowercase();
            format!("{action} {} {}", e.id, e.name)
        })
        .collect()
}

/// The test image: the rootfs (gzip), a zstd layer with files, a symlink,
/// a hard link and a directory, and a plain layer that whites out a file
/// and makes the directory opaque.
fn app_image(greeting: &str) -> TestImage {
    app_image_packed(greeting, Packing::Zstd)
}

/// The test image with its files layer compressed as asked (Docker's
/// archives know no zstd).
fn app_image_packed(greeting: &str, files_packing: Packing) -> TestImage {
    let files = TarBuilder::new()
        .dir("data/")
        .file("data/a", b"alpha\n")
        .file("data/b", b"beta\n")
        .symlink("data/link", "a")
        .hardlink("data/hard", "data/a")
        .dir("opq/")
        .file("opq/old", b"old\n")
        .file(&format!("files-{greeting}"), b"")
        .layer(files_packing);
    let changes = TarBuilder::new()
        .file("data/.wh.b", b"")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"new\n")
        .file(&format!("greeting-{greeting}"), greeting.as_bytes())
        .layer(Packing::Plain);
    TestImage::new(
        vec![base_layer(Packing::Gzip), files, changes],
        json!({
            "Entrypoint": ["sh", "-c"],
            "Cmd": ["echo $GREETING from $(pwd); while read k v; do [ \"$k\" = Uid: ] && echo uid $v; done < /proc/self/status; ls /data; cat /data/link /data/hard; ls /opq"],
            "Env": ["PATH=/bin", "GREETING=hello"],
            "WorkingDir": "/data",
            "Labels": {"from": "image", "both": "image"},
            "StopSignal": "SIGUSR1",
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/vol": {}},
        }),
    )
}

/// The base layer alone, its command echoing `word`.
fn echo_image(packing: Packing, word: &str) -> TestImage {
    TestImage::new(vec![base_layer(packing)], json!({"Cmd": ["echo", word]}))
}

const APP_OUTPUT: &str = "hello from /data\nuid 0 0 0 0\na\nhard\nlink\nalpha\nalpha\nnew\n";

#[tokio::test(flavor = "multi_thread")]
async fn pull_run_save_load_with_skopeo_as_judge() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-main");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let d = daemon("images-main", &dir, &insecure(&reg.addr)).await;
    let (ids, name) = publish(&reg, &dir, "test/app:v1", &[app_image("one")], None);

    let mut images = d.images().await;
    let progress = pull(&mut images, &name, None).await.unwrap();
    let image = pulled(&progress);
    assert_eq!(image.id, ids[0]);
    assert_eq!(image.tags, std::slice::from_ref(&name));
    assert_eq!(image.digests.len(), 1);
    assert!(image.digests[0].starts_with(&format!("{}/test/app@sha256:", reg.addr)));
    let described = images
        .inspect(pb::InspectImageRequest {
            image: name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.diff_ids.len(), 3);
    let manifest: serde_json::Value = serde_json::from_str(&described.manifest_json).unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        let blob = l["digest"].as_str().unwrap();
        assert_eq!(
            statuses(&progress, blob),
            ["waiting", "verifying", "done"],
            "{blob}"
        );
    }
    assert_eq!(image_events(&d).await, [format!("pull {} {name}", ids[0])]);

    // The container sees the layers merged, the image's config applied,
    // and the request's on top of it.
    let mut api = d.api().await;
    assert_eq!(
        run_image(&mut api, &name, &[]).await,
        (0, APP_OUTPUT.into())
    );
    let id = created(
        &mut api,
        pb::CreateRequest {
            image: name.clone(),
            env: vec!["GREETING=hi".into()],
            labels: [("both".to_string(), "request".to_string())].into(),
            user: "1000".into(),
            ..Default::default()
        },
    )
    .await;
    let cfg = inspect(&mut api, &id).await.config.unwrap();
    assert_eq!(cfg.image, name);
    assert_eq!(cfg.image_id, ids[0]);
    assert_eq!(cfg.stop_signal, "SIGUSR1");
    assert_eq!(cfg.working_dir, "/data");
    assert_eq!(cfg.labels["from"], "image");
    assert_eq!(cfg.labels["both"], "request");
    assert_eq!(cfg.exposed_ports, ["80/tcp"]);
    assert!(
        cfg.mounts.iter().any(|m| m.destination == "/vol"),
        "{:?}",
        cfg.mounts
    );
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let (code, out) = finished(&mut api, &id).await;
    let lines: Vec<&str> = out.lines().take(2).collect();
    assert_eq!(
        (code, lines),
        (0, vec!["hi from /data", "uid 1000 1000 1000 1000"])
    );
    // A command replaces Cmd, an entrypoint override drops it.
    assert_eq!(
        run_image(&mut api, &name, &["echo $GREETING; ls /"])
            .await
            .0,
        0
    );
    let id = started(
        &mut api,
        pb::CreateRequest {
            image: name.clone(),
            entrypoint: Some(pb::Entrypoint {
                args: vec!["cat".into()],
            }),
            args: vec!["/opq/new".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(finished(&mut api, &id).await, (0, "new\n".into()));

    // A second image that shares the base layer fetches only its own.
    let (_, name2) = publish(&reg, &dir, "test/app:v2", &[app_image("two")], None);
    let progress = pull(&mut images, &name2, None).await.unwrap();
    let base = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(statuses(&progress, base), ["waiting", "exists", "done"]);
    assert_eq!(reg.blob_gets(base), 1, "the shared layer was fetched again");

    // skopeo reads what berth saves, as a docker-archive and as OCI.
    let saved = dir.join("saved.tar");
    let stream = images
        .save(pb::SaveRequest {
            images: vec![name.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    let chunks: Vec<pb::Chunk> = futures::StreamExt::collect::<Vec<_>>(stream)
        .await
        .into_iter()
        .map(|c| c.unwrap())
        .collect();
    std::fs::write(
        &saved,
        chunks
            .iter()
            .flat_map(|c| c.data.clone())
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let docker: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", saved.display()),
    ]))
    .unwrap();
    assert_eq!(docker["Layers"], json!(described.diff_ids));
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}", saved.display()),
    ]);
    assert_eq!(sha256(raw.as_bytes()), described.manifest_digest);
    let config = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        &format!("oci-archive:{}", saved.display()),
    ]);
    assert_eq!(sha256(config.as_bytes()), ids[0]);

    // berth loads and runs what skopeo writes, in both formats (Docker's
    // has no zstd: that one gets a gzip image).
    let gz = [app_image_packed("gz", Packing::Gzip)];
    let (_, name3) = publish(&reg, &dir, "test/app:gz", &gz, None);
    let src = format!("docker://{name3}");
    let archive = dir.join("skopeo-docker.tar");
    let dest = format!("docker-archive:{}:skopeo/app:docker", archive.display());
    skopeo(&["copy", "--quiet", "--src-tls-verify=false", &src, &dest]);
    let oci = dir.join("skopeo-oci.tar");
    let dest = format!("oci-archive:{}:skopeo/app:oci", oci.display());
    let src = format!("docker://{name}");
    skopeo(&["copy", "--quiet", "--src-tls-verify=false", &src, &dest]);
    let loaded = ok(berth(&d, &["load", "-i", archive.to_str().unwrap()]));
    assert_eq!(loaded, "Loaded image: skopeo/app:docker\n");
    let loaded = ok(berth(&d, &["load", "-i", oci.to_str().unwrap()]));
    assert_eq!(loaded, "Loaded image: skopeo/app:oci\n");
    for n in ["skopeo/app:docker", "skopeo/app:oci"] {
        let (code, out) = run_image(&mut api, n, &[]).await;
        assert_eq!((code, out.lines().last()), (0, Some("new")), "{n}");
    }
    let events = image_events(&d).await;
    assert!(
        events.contains(&format!("save {} {name}", ids[0])),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("load ") && e.ends_with(" skopeo/app:docker")),
        "{events:?}"
    );

    // Removal: refused while containers use the image, then untag and
    // delete; the last image gone, no blob and no layer is left.
    let refused = images
        .remove(pb::RemoveImageRequest {
            image: name2.clone(),
            force: false,
        })
        .await;
    assert!(refused.is_ok(), "v2 is used by no container: {refused:?}");
    for c in listed(&mut api).await {
        api.remove(pb::RemoveRequest {
            id: c.id,
            force: true,
        })
        .await
        .unwrap();
    }
    let mut freed = 0;
    for n in [name.as_str(), "skopeo/app:docker", "skopeo/app:oci"] {
        let r = images
            .remove(pb::RemoveImageRequest {
                image: n.into(),
                force: false,
            })
            .await
            .unwrap()
            .into_inner();
        freed += r.space_reclaimed;
    }
    assert!(images
        .list(pb::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images
        .is_empty());
    assert!(freed > 1 << 20, "freed {freed}");
    let blobs = std::fs::read_dir(d.root.join("images/blobs/sha256"))
        .unwrap()
        .count();
    let layers: Vec<_> = std::fs::read_dir(d.root.join("images/layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!((blobs, layers), (0, vec!["l".to_string()]));
    assert_eq!(
        std::fs::read_dir(d.root.join("images/layers/l"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_resolves_to_this_platform() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-index");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let d = daemon("images-index", &dir, &insecure(&reg.addr)).await;
    let mut other = TestImage::new(
        vec![TarBuilder::new()
            .file("arch", b"other\n")
            .layer(Packing::Gzip)],
        json!({}),
    );
    other.architecture = if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let here = TestImage::new(
        vec![
            base_layer(Packing::Gzip),
            TarBuilder::new()
                .file("arch", b"here\n")
                .layer(Packing::Gzip),
        ],
        json!({"Cmd": ["cat", "/arch"]}),
    );
    let (ids, name) = publish(&reg, &dir, "test/multi:1", &[other, here], None);
    let mut images = d.images().await;
    let image = pulled(&pull(&mut images, &name, None).await.unwrap());
    assert_eq!(
        (image.id.as_str(), image.architecture.as_str()),
        (ids[1].as_str(), host_arch())
    );
    let mut api = d.api().await;
    assert_eq!(run_image(&mut api, &name, &[]).await, (0, "here\n".into()));
    // The other platform when asked for, and a clear error for a missing one.
    let mut stream = images
        .pull(pb::PullRequest {
            reference: name.clone(),
            platform: format!(
                "linux/{}",
                if host_arch() == "arm64" {
                    "amd64"
                } else {
                    "arm64"
                }
            ),
            auth: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(p) = stream.message().await.unwrap() {
        last = p.image.or(last);
    }
    assert_eq!(last.unwrap().id, ids[0]);
    let missing = async {
        let req = pb::PullRequest {
            reference: name.clone(),
            platform: "linux/s390x".into(),
            auth: None,
        };
        let mut stream = images.pull(req).await?.into_inner();
        while stream.message().await?.is_some() {}
        Ok::<(), tonic::Status>(())
    };
    let err = missing.await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    assert!(err.message().contains("linux/s390x"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_over_tls_and_login() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-basic");
    let reg = Registry::start(&dir.join("registry"), Auth::Htpasswd("alice", "s3cret"));
    let ca = reg.dir.join("ca.pem");
    let d = daemon(
        "images-basic",
        &dir,
        &format!("[\"{}\"]\nca = \"{}\"\n", reg.addr, ca.display()),
    )
    .await;
    let (ids, name) = publish(
        &reg,
        &dir,
        "private/app:v1",
        &[echo_image(Packing::Gzip, "tls")],
        Some("alice:s3cret"),
    );
    let mut images = d.images().await;
    let anonymous = pull(&mut images, &name, None).await.unwrap_err();
    assert_eq!(
        anonymous.code(),
        tonic::Code::Unauthenticated,
        "{anonymous:?}"
    );
    let wrong = pull(&mut images, &name, Some(("alice", "nope")))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated, "{wrong:?}");
    // Credentials for one pull only.
    assert_eq!(
        pulled(
            &pull(&mut images, &name, Some(("alice", "s3cret")))
                .await
                .unwrap()
        )
        .id,
        ids[0]
    );
    images
        .remove(pb::RemoveImageRequest {
            image: name.clone(),
            force: false,
        })
        .await
        .unwrap();
    // Login checks them first, and keeps them where only root reads.
    let bad = berth(&d, &["login", "-u", "alice", "-p", "nope", &reg.addr]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("refused"),
        "{bad:?}"
    );
    assert_eq!(
        ok(berth(
            &d,
            &["login", "-u", "alice", "-p", "s3cret", &reg.addr]
        )),
        "Login Succeeded\n"
    );
    use std::os::unix::fs::PermissionsExt;
    let auth = std::fs::metadata(d.root.join("images/auth.json")).unwrap();
    assert_eq!(auth.permissions().mode() & 0o777, 0o600);
    let mut api = d.api().await;
    assert_eq!(
        pulled(&pull(&mut images, &name, None).await.unwrap()).id,
        ids[0]
    );
    assert_eq!(run_image(&mut api, &name, &[]).await, (0, "tls\n".into()));
    ok(berth(&d, &["logout", &reg.addr]));
    images
        .remove(pb::RemoveImageRequest {
            image: name.clone(),
            force: true,
        })
        .await
        .unwrap();
    assert_eq!(
        pull(&mut images, &name, None).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    // Without the CA, the registry's certificate is refused.
    // (On loopback: told to use TLS, as it would for any other host.)
    let tls = format!("[\"{}\"]\ninsecure = false\n", reg.addr);
    let plain = daemon("images-basic-noca", &dir.join("noca"), &tls).await;
    let err = pull(&mut plain.images().await, &name, Some(("alice", "s3cret")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(
        err.message().to_lowercase().contains("certificate"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_auth() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-token");
    let reg = Registry::start(&dir.join("registry"), Auth::Token("bob", "tok3n"));
    let d = daemon("images-token", &dir, &insecure(&reg.addr)).await;
    let (ids, name) = publish(
        &reg,
        &dir,
        "team/app:v1",
        &[echo_image(Packing::Zstd, "token")],
        Some("bob:tok3n"),
    );
    let mut images = d.images().await;
    let err = pull(&mut images, &name, None).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let mut login = cli(&d, &["login", "-u", "bob", "--password-stdin", &reg.addr]);
    let out = run_with_stdin(&mut login, b"tok3n\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        pulled(&pull(&mut images, &name, None).await.unwrap()).id,
        ids[0]
    );
    let mut api = d.api().await;
    assert_eq!(run_image(&mut api, &name, &[]).await, (0, "token\n".into()));
}

fn run_with_stdin(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_hub_names_go_to_a_mirror() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-mirror");
    let mirror = Registry::start(&dir.join("mirror"), Auth::None);
    let config = format!("[\"docker.io\"]\nmirrors = [\"http://{}\"]\n", mirror.addr);
    let d = daemon("images-mirror", &dir, &config).await;
    let layout_dir = dir.join("layout");
    let ids = layout(&layout_dir, "v1", &[echo_image(Packing::Gzip, "mirrored")]);
    push(
        &layout_dir,
        "v1",
        &format!("{}/library/berth-test:latest", mirror.addr),
        None,
    );
    // `berth run` pulls the missing image by its Docker Hub name.
    let out = berth(&d, &["run", "--rm", "berth-test"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "mirrored\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unable to find image 'berth-test' locally")
    );
    let images = ok(berth(&d, &["images", "-q", "--no-trunc"]));
    assert_eq!(images, format!("{}\n", ids[0]));
    let table = ok(berth(&d, &["images"]));
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("berth-test   latest   "),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_layers_are_refused_and_leave_nothing() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-hostile");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let d = daemon("images-hostile", &dir, &insecure(&reg.addr)).await;
    let mut images = d.images().await;
    let cases = [
        (
            "dotdot",
            TarBuilder::new()
                .file("../../escaped", b"x")
                .layer(Packing::Gzip),
            "\"..\"",
        ),
        (
            "whiteout",
            TarBuilder::new().file(".wh...", b"").layer(Packing::Plain),
            "its directory's parent",
        ),
        (
            "hardlink",
            TarBuilder::new()
                .hardlink("passwd", "/etc/shadow")
                .layer(Packing::Zstd),
            "hard link",
        ),
    ];
    for (tag, layer, why) in cases {
        let image = TestImage::new(vec![base_layer(Packing::Gzip), layer], json!({}));
        let (_, name) = publish(&reg, &dir, &format!("evil/{tag}:1"), &[image], None);
        let err = pull(&mut images, &name, None).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{tag}: {err:?}");
        assert!(err.message().contains(why), "{tag}: {err:?}");
    }
    assert!(images
        .list(pb::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images
        .is_empty());
    // What was verified stays for the next pull (the base layer); nothing
    // half-unpacked or half-written does.
    let entries = |p: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d.root.join(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        entries("images/layers").len(),
        2,
        "{:?}",
        entries("images/layers")
    );
    assert!(entries("images/layers")
        .iter()
        .all(|n| n == "l" || n.len() == 64));
    assert!(entries("images/ingest").is_empty());
    assert!(!Path::new("/escaped").exists() && !d.root.join("escaped").exists());
    assert!(image_events(&d).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pulls_fetch_each_blob_once() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-concurrent");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let d = daemon("images-concurrent", &dir, &insecure(&reg.addr)).await;
    let (ids, name) = publish(&reg, &dir, "test/app:v1", &[app_image("c")], None);
    let pulls: Vec<_> = (0..4)
        .map(|_| {
            let (host, name) = (d.host(), name.clone());
            tokio::spawn(async move {
                let mut images =
                    pb::images_client::ImagesClient::new(berth::connect(&host).await.unwrap());
                pull(&mut images, &name, None).await.map(|p| pulled(&p).id)
            })
        })
        .collect();
    for p in pulls {
        assert_eq!(p.await.unwrap().unwrap(), ids[0]);
    }
    let manifest = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        let blob = l["digest"].as_str().unwrap();
        assert_eq!(reg.blob_gets(blob), 1, "{blob} fetched more than once");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn import_export_tag_and_rmi_from_the_cli() {
    let d = Daemon::start("images-import").await;
    let tarball = d.dir.join("rootfs.tar.gz");
    let layer = full_layer(Packing::Gzip).blob().0;
    std::fs::write(&tarball, layer).unwrap();
    let id = ok(berth(
        &d,
        &[
            "import",
            "-c",
            "CMD [\"echo\", \"imported\"]",
            tarball.to_str().unwrap(),
            "local/base:1",
        ],
    ));
    let id = id.trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        ok(berth(&d, &["run", "--rm", "local/base:1"])),
        "imported\n"
    );
    ok(berth(&d, &["tag", "local/base:1", "local/other"]));
    // An image with two names: rmi by name untags; by id needs force.
    let by_id = berth(&d, &["rmi", &id[7..19]]);
    assert!(!by_id.status.success());
    assert!(
        String::from_utf8_lossy(&by_id.stderr).contains("several repositories"),
        "{by_id:?}"
    );
    assert_eq!(
        ok(berth(&d, &["rmi", "local/other"])),
        "Untagged: local/other:latest\n"
    );
    // A container's changes come out in export, its deletions do not.
    let script = "echo made > /made; perl -e 'unlink \"/bin/true\" or die'";
    let cid = ok(berth(
        &d,
        &["run", "-d", "local/base:1", "sh", "-c", script],
    ));
    let cid = cid.trim();
    assert_eq!(ok(berth(&d, &["wait", cid])), "0\n");
    let out = d.dir.join("export.tar");
    ok(berth(&d, &["export", "-o", out.to_str().unwrap(), cid]));
    let mut names = Vec::new();
    let mut made = String::new();
    for e in tar::Archive::new(std::fs::File::open(&out).unwrap())
        .entries()
        .unwrap()
    {
        let mut e = e.unwrap();
        let n = e.path().unwrap().display().to_string();
        if n.trim_start_matches("./") == "made" {
            std::io::Read::read_to_string(&mut e, &mut made).unwrap();
        }
        names.push(n.trim_start_matches("./").to_string());
    }
    assert_eq!(made, "made\n");
    assert!(names.contains(&"bin/sh".to_string()), "{names:?}");
    assert!(!names.contains(&"bin/true".to_string()), "{names:?}");
    // The image is in use: rmi refuses, -f untags and keeps it for the container.
    let used = berth(&d, &["rmi", "local/base:1"]);
    assert!(!used.status.success());
    assert!(
        String::from_utf8_lossy(&used.stderr).contains("uses its image"),
        "{used:?}"
    );
    assert_eq!(
        ok(berth(&d, &["rmi", "-f", "local/base:1"])),
        "Untagged: local/base:1\n"
    );
    assert_eq!(
        ok(berth(&d, &["images", "-q", "--filter", "dangling=true"])),
        format!("{}\n", &id[7..19])
    );
    ok(berth(&d, &["rm", cid]));
    let pruned = ok(berth(&d, &["image", "prune", "-f"]));
    assert!(pruned.contains(&format!("deleted: {id}")), "{pruned}");
    assert_eq!(ok(berth(&d, &["images", "-q"])), "");
    let events = image_events(&d).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["import", "tag", "untag", "untag", "delete"],
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn many_layers_mount_and_images_survive_a_restart() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-many");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let mut d = daemon("images-many", &dir, &insecure(&reg.addr)).await;
    // More layers than overlay's one-page options would take by full path.
    let mut layers = vec![base_layer(Packing::Gzip)];
    for n in 0..150 {
        layers.push(
            TarBuilder::new()
                .file(&format!("layers/{n:03}"), b"")
                .layer(Packing::Gzip),
        );
    }
    let (ids, name) = publish(
        &reg,
        &dir,
        "test/tall:1",
        &[TestImage::new(layers, json!({"Cmd": ["ls", "/layers"]}))],
        None,
    );
    // --pull never: refused before anything is fetched.
    let never = berth(&d, &["run", "--pull", "never", &name]);
    assert_eq!(never.status.code(), Some(125), "{never:?}");
    assert!(
        String::from_utf8_lossy(&never.stderr).contains("no such image"),
        "{never:?}"
    );
    let pulled = berth(&d, &["pull", &name]);
    assert_eq!(stdout(&pulled), format!("{name}\n"));
    let progress = String::from_utf8_lossy(&pulled.stderr);
    assert_eq!(
        progress.matches(": Pull complete").count(),
        151,
        "{progress}"
    );
    let listing = |d: &Daemon| {
        let out = berth(d, &["run", "--rm", &name]);
        assert!(out.status.success(), "{out:?}");
        stdout(&out).lines().count()
    };
    assert_eq!(listing(&d), 150);
    // Images, their references and layers are the daemon's state: a restart
    // keeps them.
    d.stop_daemon(libc::SIGTERM);
    d.spawn().await;
    assert_eq!(
        ok(berth(&d, &["images", "-q", "--no-trunc"])),
        format!("{}\n", ids[0])
    );
    assert_eq!(listing(&d), 150);
    // --pull always asks the registry again; every layer is already here.
    let again = berth(&d, &["run", "--rm", "--pull", "always", &name]);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(
        String::from_utf8_lossy(&again.stderr)
            .matches("Already exists")
            .count(),
        151
    );
    let df = ok(berth(&d, &["system", "df"]));
    let images_row = df
        .lines()
        .find(|l| l.starts_with("Images"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(&images_row[..3], ["Images", "1", "0"], "{df}");
    // The image events, from the CLI, as Docker's filter picks them.
    let events = ok(berth(
        &d,
        &[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            "type=image",
        ],
    ));
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(lines.len(), 2, "{events}");
    for l in lines {
        assert!(l.contains(&format!("image pull {} ", ids[0])), "{l}");
        assert!(l.contains(&format!("name={name}")), "{l}");
    }
    let by_name = format!("image={name}");
    let json = ok(berth(
        &d,
        &[
            "events", "--since", "0", "--until", "0s", "--filter", &by_name, "--format", "json",
        ],
    ));
    assert_eq!(json.lines().count(), 2, "{json}");
    for l in json.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["action"].as_str()),
            (Some("image"), Some("pull")),
            "{l}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_cut_by_kill_9_leaves_nothing_half_visible() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("images-kill");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let mut d = daemon("images-kill", &dir, &insecure(&reg.addr)).await;
    let mut layers = vec![base_layer(Packing::Gzip)];
    for n in 0..60 {
        let data = vec![n as u8; 256 << 10];
        layers.push(
            TarBuilder::new()
                .file(&format!("blob/{n}"), &data)
                .layer(Packing::Zstd),
        );
    }
    let (ids, name) = publish(
        &reg,
        &dir,
        "test/cut:1",
        &[TestImage::new(layers, json!({"Cmd": ["true"]}))],
        None,
    );
    // The daemon dies once some layers are done and others are not.
    let mut images = d.images().await;
    let mut stream = images
        .pull(pb::PullRequest {
            reference: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut done = 0;
    while let Ok(Some(p)) = stream.message().await {
        done += usize::from(p.status == "done");
        if done == 3 {
            break;
        }
    }
    d.stop_daemon(libc::SIGKILL);
    d.spawn().await;
    let mut images = d.images().await;
    assert!(images
        .list(pb::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images
        .is_empty());
    let leftovers: Vec<String> = std::fs::read_dir(d.root.join("images/layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        std::fs::read_dir(d.root.join("images/ingest"))
            .unwrap()
            .count(),
        0
    );
    // The next pull takes up what was verified and completes.
    let progress = pull(&mut images, &name, None).await.unwrap();
    assert_eq!(pulled(&progress).id, ids[0]);
    let kept = progress.iter().filter(|p| p.status == "exists").count();
    assert!(kept >= 3, "{kept} layers kept");
    let mut api = d.api().await;
    assert_eq!(
        run_image(
            &mut api,
            &name,
            &["sh", "-c", "ls /blob | while read f; do echo $f; done"]
        )
        .await
        .0,
        0
    );
    assert_eq!(image_events(&d).await.len(), 1);
}

/// A layer two images share is counted once by `system df`, and is
/// reclaimable only while no container uses either image.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_layer_counts_once_in_system_df() {
    let d = Daemon::start("images-df").await;
    let mut api = d.api().await;
    for (tag, cmd) in [("shared/a:1", "true"), ("shared/b:1", "false")] {
        load(&d, docker_archive(tag, json!({"Cmd": [cmd]})))
            .await
            .unwrap();
    }
    let usage = || async {
        d.images()
            .await
            .disk_usage(pb::DiskUsageRequest {})
            .await
            .unwrap()
            .into_inner()
    };
    let layer = std::fs::read_dir(d.root.join("images/layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .count();
    assert_eq!(layer, 1, "one layer on disk");
    let u = usage().await;
    assert_eq!(u.images, 2);
    assert!(u.images_size > 0);
    assert_eq!(u.images_reclaimable, u.images_size);
    let single = u.images_size;
    // In use by a container: nothing of that layer is reclaimable, though
    // the other image is unused.
    let req = pb::CreateRequest {
        name: "user".into(),
        image: "shared/a:1".into(),
        ..Default::default()
    };
    created(&mut api, req).await;
    let u = usage().await;
    assert_eq!(
        (u.images_size, u.images_reclaimable, u.images_active),
        (single, 0, 1)
    );
    let df = ok(berth(&d, &["system", "df"]));
    assert!(
        df.lines()
            .any(|l| l.starts_with("Images ") && l.contains(" 2 ")),
        "{df}"
    );
}
