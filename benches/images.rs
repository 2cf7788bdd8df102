//! `cargo bench --bench images`: a multi-layer image of about 200 MB
//! (gzip layers of the host's own libraries and programs) in a
//! docker-registry on loopback, pulled and unpacked by berth, against
//! `skopeo copy` to an OCI layout followed by `umoci unpack` of the same
//! image, in turn, in the same run; then the start of a container from
//! that image against one from a rootfs directory. Needs docker-registry,
//! skopeo and umoci (Debian's packages). BERTH_BENCH_N sets the number of
//! pulls (default 5) and starts are ten times that.

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use common::{Auth, Daemon, Layer, Packing, Registry, TarBuilder, TestImage};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Uncompressed bytes of the image, spread over this many layers.
const IMAGE_BYTES: u64 = 200 << 20;
const LAYERS: usize = 8;

/// Regular files under `dirs` (no symlinks), until `limit` bytes.
fn host_files(dirs: &[&str], limit: u64) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut total = 0;
    let mut stack: Vec<PathBuf> = dirs.iter().map(PathBuf::from).collect();
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && total < limit {
                total += m.len();
                out.push((e.path(), m.len()));
            }
        }
    }
    out
}

fn layers() -> Vec<Layer> {
    let files = host_files(&["/usr/lib", "/usr/bin", "/usr/share"], IMAGE_BYTES);
    let per = IMAGE_BYTES / LAYERS as u64;
    let mut out = vec![common::base_layer(Packing::Gzip)];
    let mut tar = TarBuilder::new();
    let mut size = 0;
    for (n, (path, len)) in files.into_iter().enumerate() {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        tar.file(&format!("payload/{n}"), &data);
        size += len;
        if size >= per {
            out.push(tar.layer(Packing::Gzip));
            tar = TarBuilder::new();
            size = 0;
        }
    }
    out.push(tar.layer(Packing::Gzip));
    out
}

fn du(p: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn pull(d: &Daemon, name: &str) {
    let mut images = d.images().await;
    let mut s = images
        .pull(pb::PullRequest {
            reference: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while s.message().await.unwrap().is_some() {}
}

async fn start(api: &mut common::Api, req: pb::CreateRequest) -> Duration {
    let id = api.create(req).await.unwrap().into_inner().id;
    let t = Instant::now();
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    let took = t.elapsed();
    common::wait(api, &id).await;
    api.remove(pb::RemoveRequest { id, force: true })
        .await
        .unwrap();
    took
}

#[tokio::main]
async fn main() {
    if !common::registry_tools() || Command::new("umoci").arg("--version").output().is_err() {
        eprintln!("images bench: needs docker-registry, skopeo and umoci");
        return;
    }
    let n = std::env::var("BERTH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = common::test_dir("bench-images");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let layers = layers();
    let compressed: usize = layers.iter().map(|l| l.blob().0.len()).sum();
    let unpacked: usize = layers.iter().map(|l| l.tar.len()).sum();
    let image = TestImage::new(layers, serde_json::json!({"Cmd": ["true"]}));
    common::layout(&dir.join("layout"), "big", &[image]);
    let name = format!("{}/bench/big:1", reg.addr);
    common::push(&dir.join("layout"), "big", &name, None);
    println!(
        "image: {LAYERS}+1 gzip layers, {:.0} MB of tar, {:.0} MB compressed",
        unpacked as f64 / 1e6,
        compressed as f64 / 1e6
    );
    let registries =
        common::registries_file(&dir, &format!("[\"{}\"]\ninsecure = true\n", reg.addr));
    let (mut berth, mut reference) = (Vec::new(), Vec::new());
    for i in 0..n {
        let mut d = Daemon::start_with_log(&format!("bench-images-{i}"), "warn").await;
        d.stop_daemon(libc::SIGTERM);
        d.args = vec!["--registries".into(), registries.display().to_string()];
        d.spawn().await;
        let t = Instant::now();
        pull(&d, &name).await;
        berth.push(t.elapsed());
        if i == 0 {
            println!(
                "berth's layers on disk: {:.0} MB",
                du(&d.root.join("images/layers")) as f64 / 1e6
            );
        }
        drop(d);
        let out = dir.join(format!("skopeo-{i}"));
        let t = Instant::now();
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{name}"))
            .arg(format!("oci:{}:big", out.display())));
        run(Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:big", out.display()))
            .arg(dir.join(format!("bundle-{i}"))));
        reference.push(t.elapsed());
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_dir_all(dir.join(format!("bundle-{i}")));
    }
    common::bench::report("pull berth", berth);
    common::bench::report("skopeo+umoci", reference);

    // Starts: the image's layers against a rootfs directory.
    let mut d = Daemon::start_with_log("bench-images-start", "warn").await;
    d.stop_daemon(libc::SIGTERM);
    d.args = vec!["--registries".into(), registries.display().to_string()];
    d.spawn().await;
    pull(&d, &name).await;
    let mut api = d.api().await;
    let (mut from_image, mut from_dir) = (Vec::new(), Vec::new());
    let rootfs = common::rootfs().display().to_string();
    for _ in 0..n * 10 {
        from_image.push(
            start(
                &mut api,
                pb::CreateRequest {
                    image: name.clone(),
                    ..Default::default()
                },
            )
            .await,
        );
        from_dir.push(
            start(
                &mut api,
                pb::CreateRequest {
                    rootfs: rootfs.clone(),
                    args: vec!["true".into()],
                    ..Default::default()
                },
            )
            .await,
        );
    }
    common::bench::report("start image", from_image);
    common::bench::report("start dir", from_dir);
    drop(d);
    drop(reg);
    let _ = std::fs::remove_dir_all(&dir);
}
