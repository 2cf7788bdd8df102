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

/// A tar, zstd-compressed as it is written: files of zeros take no room.
struct Archive(tar::Builder<zstd::Encoder<'static, Vec<u8>>>);

impl Archive {
    fn new() -> Archive {
        Archive(tar::Builder::new(
            zstd::Encoder::new(Vec::new(), 1).unwrap(),
        ))
    }

    fn file(&mut self, name: &str, size: u64, data: impl Read) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        self.0.append_data(&mut h, name, data).unwrap();
        self
    }

    fn json(&mut self, name: &str, v: serde_json::Value) -> &mut Self {
        let data = serde_json::to_vec(&v).unwrap();
        self.file(name, data.len() as u64, &data[..])
    }

    fn zeros(&mut self, name: &str, size: u64) -> &mut Self {
        self.file(name, size, std::io::repeat(0).take(size))
    }

    fn done(self) -> Vec<u8> {
        self.0.into_inner().unwrap().finish().unwrap()
    }
}

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

async fn load(d: &Daemon, archive: Vec<u8>) -> Result<Vec<String>, tonic::Status> {
    let chunks: Vec<pb::LoadRequest> = archive
        .chunks(1 << 20)
        .map(|c| pb::LoadRequest { data: c.to_vec() })
        .collect();
    d.images()
        .await
        .load(tokio_stream::iter(chunks))
        .await
        .map(|r| r.into_inner().loaded)
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
