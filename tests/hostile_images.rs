//! Archives and images made to exhaust the daemon: a load reads no
//! document past the size a pull accepts and stores no file larger than a
//! layer may be, and a refused load leaves nothing behind; an image's
//! config cannot make containers the API cannot list or the kernel cannot
//! run.

mod common;
use berth::pb;
use common::*;
use sha2::Digest as _;
use std::io::Read;
use tonic::Code;

/// The digest of `size` zero bytes.
fn zeros_digest(size: u64) -> String {
    let mut h = sha2::Sha256::new();
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Everything under the image store's blobs, layers and ingest.
fn stored(d: &Daemon) -> Vec<String> {
    let images = d.root.join("images");
    let mut out = Vec::new();
    for dir in ["blobs/sha256", "layers", "ingest"] {
        if let Ok(rd) = std::fs::read_dir(images.join(dir)) {
            out.extend(
                rd.flatten()
                    .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy())),
            );
        }
    }
    out.sort();
    out
}

/// A refused load: INVALID_ARGUMENT saying `says`, the daemon's peak
/// memory grown by less than 64 MiB, and nothing left in the store.
async fn refused(d: &Daemon, archive: Vec<u8>, says: &str) {
    let before = stored(d);
    let peak = proc_status(d.pid(), "VmHWM");
    let e = load(d, archive).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains(says), "{e:?}");
    let grown = proc_status(d.pid(), "VmHWM").saturating_sub(peak);
    assert!(
        grown < 64 << 10,
        "the daemon's peak memory grew by {grown} kB"
    );
    assert_eq!(stored(d), before, "a refused load left content behind");
}

const BIG: u64 = 256 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_naming_a_huge_manifest_or_config_is_refused_unread() {
    let d = Daemon::start("huge-documents").await;
    // An OCI layout whose index names a 256 MiB manifest.
    let digest = zeros_digest(BIG);
    let mut a = Archive::new();
    a.json(
        "oci-layout",
        serde_json::json!({"imageLayoutVersion": "1.0.0"}),
    )
    .json(
        "index.json",
        serde_json::json!({"schemaVersion": 2, "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest, "size": BIG}]}),
    )
    .zeros(&format!("blobs/sha256/{}", &digest[7..]), BIG);
    refused(&d, a.done(), "4194304").await;
    // A docker-archive whose config is 256 MiB.
    let mut a = Archive::new();
    a.json(
        "manifest.json",
        serde_json::json!([{"Config": "big.json", "RepoTags": ["huge/config:1"], "Layers": []}]),
    )
    .zeros("big.json", BIG);
    refused(&d, a.done(), "4194304").await;
    assert!(d
        .images()
        .await
        .list(pb::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_bomb_in_an_archive_is_refused_before_it_is_stored() {
    let d = Daemon::start_with_args("archive-bomb", &["--max-layer-size", "16m"]).await;
    let mut a = Archive::new();
    a.json(
        "manifest.json",
        serde_json::json!([{"Config": "config.json", "RepoTags": ["bomb:1"], "Layers": ["layer.tar"]}]),
    )
    .zeros("layer.tar", 2 << 30);
    let archive = a.done();
    assert!(
        archive.len() < 1 << 20,
        "the bomb is small: {}",
        archive.len()
    );
    refused(&d, archive, "--max-layer-size").await;
    // A file the load stores before it fails goes again: an archive whose
    // layer is stored, then whose config is missing.
    let mut a = Archive::new();
    a.json(
        "manifest.json",
        serde_json::json!([{"Config": "config.json", "RepoTags": ["half:1"], "Layers": ["layer.tar"]}]),
    )
    .zeros("layer.tar", 2 << 20);
    refused(&d, a.done(), "config.json").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_config_cannot_make_a_container_too_big_to_list_or_run() {
    let d = Daemon::start("bulky-config").await;
    let mut api = d.api().await;
    // 3.2 MB of Env, under the 4 MiB a config may have.
    let env: Vec<String> = (0..40)
        .map(|i| format!("E{i}={}", "x".repeat(80_000)))
        .collect();
    let loaded = load(
        &d,
        docker_archive(
            "bulky/env:1",
            serde_json::json!({"Env": env, "Cmd": ["true"]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(loaded, ["bulky/env:1"]);
    let req = pb::CreateRequest {
        name: "bulky".into(),
        image: "bulky/env:1".into(),
        ..Default::default()
    };
    let e = api.create(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("Env"), "{e:?}");
    assert!(e.message().len() < 1000, "{e:?}");
    assert!(listed(&mut api).await.is_empty());
    // One entry longer than the kernel runs is refused too.
    let long = format!("L={}", "y".repeat(200_000));
    load(
        &d,
        docker_archive(
            "bulky/long:1",
            serde_json::json!({"Env": [long], "Cmd": ["true"]}),
        ),
    )
    .await
    .unwrap();
    let req = pb::CreateRequest {
        name: "long".into(),
        image: "bulky/long:1".into(),
        ..Default::default()
    };
    let e = api.create(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("131072"), "{e:?}");
}

/// Containers whose records add up to far more than a client receives in
/// one message are listed in pages, by the API and `berth ps`.
#[tokio::test(flavor = "multi_thread")]
async fn list_pages_what_no_client_could_receive_at_once() {
    let d = Daemon::start("list-pages").await;
    let mut api = d.api().await;
    let env: Vec<String> = (0..9)
        .map(|i| format!("E{i}={}", "z".repeat(100_000)))
        .collect();
    let mut ids = Vec::new();
    for i in 0..12 {
        let mut req = spec(&format!("big{i}"), &["true"]);
        req.env = env.clone();
        ids.push(created(&mut api, req).await);
    }
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let page = api
            .list(pb::ListRequest {
                all: true,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        for c in &page.containers {
            assert!(!c.trimmed);
            assert_eq!(c.config.as_ref().unwrap().env.len(), 9, "{}", c.name);
        }
        seen.extend(page.containers.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(pages >= 4, "{pages} pages");
    // Newest first, each once.
    ids.reverse();
    assert_eq!(seen, ids);
    // page_size bounds a page too, and a bad token is refused.
    let first = api
        .list(pb::ListRequest {
            all: true,
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.containers.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let e = api
        .list(pb::ListRequest {
            all: true,
            page_token: "x".repeat(70_000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // The CLI follows the pages.
    let out = ok(berth(&d, &["ps", "-a", "-q"]));
    assert_eq!(out.lines().count(), 12, "{out}");
}

/// An image made by `docker import` of a debootstrap tree carries device
/// nodes: it loads and runs, the nodes give the container nothing (its
/// /dev is berth's, the rest left out), and save gives the layer back
/// whole, nodes included.
#[tokio::test(flavor = "multi_thread")]
async fn an_image_with_device_nodes_runs_without_them_and_saves_whole() {
    let d = Daemon::start("device-nodes").await;
    let mut api = d.api().await;
    let layer = TarBuilder::new()
        .tree(rootfs())
        .device("dev/null")
        .device("dev/mem")
        .dir("lib")
        .device("lib/node")
        .layer(Packing::Plain)
        .tar;
    let archive = docker_archive_of(
        "debootstrap/like:1",
        serde_json::json!({"Cmd": ["sh"]}),
        layer.clone(),
    );
    assert_eq!(load(&d, archive).await.unwrap(), ["debootstrap/like:1"]);
    let req = pb::CreateRequest {
        name: "devs".into(),
        image: "debootstrap/like:1".into(),
        args: vec![
            "sh".into(),
            "-c".into(),
            "ls /dev/mem; ls /lib/node; echo x > /dev/null && echo null-works".into(),
        ],
        ..Default::default()
    };
    let id = started(&mut api, req).await;
    let (code, out) = finished(&mut api, &id).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("/dev/mem': No such file"), "{out}");
    assert!(out.contains("/lib/node': No such file"), "{out}");
    assert!(out.contains("null-works"), "{out}");
    // Saved, the layer is the one loaded, byte for byte.
    let mut saved = Vec::new();
    let mut s = d
        .images()
        .await
        .save(pb::SaveRequest {
            images: vec!["debootstrap/like:1".into()],
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(c) = s.message().await.unwrap() {
        saved.extend(c.data);
    }
    let mut found = false;
    for e in tar::Archive::new(&saved[..]).entries().unwrap() {
        let mut e = e.unwrap();
        if e.size() == layer.len() as u64 {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            found |= data == layer;
        }
    }
    assert!(found, "the saved archive lacks the layer as loaded");
}

async fn import(
    d: &Daemon,
    tar: Vec<u8>,
    cmd: &[&str],
    env: &[&str],
) -> Result<String, tonic::Status> {
    let first = pb::ImportRequest {
        reference: "imported:1".into(),
        data: tar,
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|s| s.to_string()).collect(),
    };
    d.images()
        .await
        .import(tokio_stream::iter(vec![first]))
        .await
        .map(|r| r.into_inner().id)
}

/// Whiteouts of "." and "..", and CMD or ENV with NUL, are refused before
/// anything is removed or stored.
#[tokio::test(flavor = "multi_thread")]
async fn imports_with_dot_whiteouts_or_nul_are_refused_and_leave_nothing() {
    let d = Daemon::start("import-refusals").await;
    let tar = |entries: &[&str]| {
        let mut b = TarBuilder::new();
        b.dir("d").file("d/kept", b"k");
        for e in entries {
            b.file(e, b"");
        }
        b.layer(Packing::Plain).tar
    };
    let before = stored(&d);
    for (entries, says) in [
        (&["d/.wh.."][..], "its directory itself"),
        (&[".wh..."][..], "its directory's parent"),
    ] {
        let e = import(&d, tar(entries), &[], &[]).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{entries:?}: {e:?}");
        assert!(e.message().contains(says), "{e:?}");
        assert_eq!(stored(&d), before, "{entries:?}");
    }
    for (cmd, env) in [
        (&["sh\0x"][..], &[][..]),
        (&["sh"][..], &["A=\0"][..]),
        (&["sh"][..], &["=1"][..]),
    ] {
        let e = import(&d, tar(&[]), cmd, env).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{cmd:?} {env:?}: {e:?}");
        assert_eq!(stored(&d), before);
    }
    // The layers directory of the store is still there, and a good import
    // works.
    assert!(d.root.join("images/layers").is_dir());
    import(&d, tar(&[]), &["sh"], &["A=1"]).await.unwrap();
}

/// Whatever is stored, List answers: records made before create bounded
/// them (here written into the copies `--rebuild` reads) are listed
/// trimmed, and Inspect still has them whole.
#[tokio::test(flavor = "multi_thread")]
async fn list_answers_whatever_is_stored() {
    let mut d = Daemon::start("list-stored").await;
    let mut api = d.api().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(created(&mut api, spec(&format!("old{i}"), &["true"])).await);
    }
    let small = created(&mut api, spec("small", &["true"])).await;
    drop(api);
    d.stop_daemon(libc::SIGTERM);
    // 1.2 MB each, over the 1 MiB a container may take in a listing.
    let env: Vec<String> = (0..12)
        .map(|i| format!("E{i}={}", "q".repeat(100_000)))
        .collect();
    for id in &ids {
        let copy = d.container_dir(id).join("container.json");
        let mut record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&copy).unwrap()).unwrap();
        record["spec"]["env"] = serde_json::json!(env);
        std::fs::write(&copy, serde_json::to_vec(&record).unwrap()).unwrap();
    }
    std::fs::remove_file(d.root.join("berth.redb")).unwrap();
    d.args = vec!["--rebuild".into()];
    d.spawn().await;
    let mut api = d.api().await;
    let page = api
        .list(pb::ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.next_page_token.is_empty());
    assert_eq!(page.containers.len(), 5);
    for c in &page.containers {
        let config = c.config.as_ref().unwrap();
        match c.id == small {
            true => assert!(!c.trimmed && config.args == ["true"], "{c:?}"),
            false => assert!(c.trimmed && config.env.is_empty() && config.args.is_empty()),
        }
    }
    let whole = inspect(&mut api, &ids[0]).await;
    assert_eq!(whole.config.unwrap().env, env);
    let out = ok(berth(&d, &["ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(out.lines().count(), 5, "{out}");
}
