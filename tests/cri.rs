//! berthd's CRI socket (runtime.v1) through Kubernetes' own types (the
//! k8s-cri crate): the runtime's identity, conditions and cgroup driver;
//! images with the CRI's semantics, against a registry the test starts;
//! and the calls not served yet answering UNIMPLEMENTED.

mod common;

use berth::pb;
use common::*;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use tonic::transport::Channel;

async fn cri_channel(d: &Daemon) -> Channel {
    berth::connect(&format!("unix://{}", d.cri_path().display()))
        .await
        .unwrap()
}

/// Every image the CRI lists.
async fn all_images(images: &mut ImageServiceClient<Channel>) -> Vec<cri::Image> {
    images
        .list_images(cri::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images
}

fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_says_who_it_is_and_what_it_can_do() {
    let d = Daemon::start("cri-runtime").await;
    let meta = std::fs::metadata(d.cri_path()).unwrap();
    assert_eq!((meta.permissions().mode() & 0o777, meta.uid()), (0o660, 0));
    let mut rt = RuntimeServiceClient::new(cri_channel(&d).await);
    let v = rt
        .version(cri::VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            v.version.as_str(),
            v.runtime_name.as_str(),
            v.runtime_api_version.as_str()
        ),
        ("0.1.0", "berth", "v1")
    );
    assert_eq!(v.runtime_version, env!("CARGO_PKG_VERSION"));
    let status = rt
        .status(cri::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    // Pods have berth's own network until a CNI configuration says
    // otherwise; both features critest asks about are there.
    let features = status.runtime_handlers[0].features.unwrap();
    assert!(features.recursive_read_only_mounts && !features.user_namespaces);
    assert!(status.features.unwrap().supplemental_groups_policy);
    let conditions: Vec<(String, bool, bool)> = status
        .status
        .unwrap()
        .conditions
        .into_iter()
        .map(|c| (c.r#type, c.status, c.reason.is_empty()))
        .collect();
    assert_eq!(
        conditions,
        [
            ("RuntimeReady".to_string(), true, true),
            ("NetworkReady".to_string(), true, true)
        ]
    );
    let config = rt
        .runtime_config(cri::RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        config.linux.unwrap().cgroup_driver,
        cri::CgroupDriver::Cgroupfs as i32
    );
    let err = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    // berth's own API is on its own socket, as before.
    let mut api = d.api().await;
    assert!(listed(&mut api).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn images_follow_the_cris_rules() {
    if !registry_tools() {
        return;
    }
    let dir = test_dir("cri-images");
    let reg = Registry::start(&dir.join("registry"), Auth::None);
    let (ids, name) = publish(&reg, &dir, "test/app:v1", &[base_image()], None);
    let file = registries_file(&dir, &format!("[\"{}\"]\ninsecure = true\n", reg.addr));
    let d = Daemon::start_with_args("cri-images", &["--registries", file.to_str().unwrap()]).await;
    let mut images = ImageServiceClient::new(cri_channel(&d).await);

    // A missing image's status is empty, not an error.
    let st = images
        .image_status(cri::ImageStatusRequest {
            image: spec(&name),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.image, None);
    let err = images
        .pull_image(cri::PullImageRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = images
        .pull_image(cri::PullImageRequest {
            image: spec(&format!("{}/test/app:missing", reg.addr)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

    let pulled = images
        .pull_image(cri::PullImageRequest {
            image: spec(&name),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pulled.image_ref, ids[0]);
    // A second tag through berth's own API.
    let mut own = d.images().await;
    let other = format!("{}/test/other:v2", reg.addr);
    own.tag(pb::TagRequest {
        source: name.clone(),
        target: other.clone(),
    })
    .await
    .unwrap();
    let list = all_images(&mut images).await;
    assert_eq!(list.len(), 1);
    let image = &list[0];
    assert_eq!(image.id, ids[0]);
    let mut tags = image.repo_tags.clone();
    tags.sort();
    assert_eq!(tags, [name.clone(), other.clone()]);
    assert_eq!(image.repo_digests.len(), 1);
    assert!(image.repo_digests[0].starts_with(&format!("{}/test/app@sha256:", reg.addr)));
    assert!(image.size > 0);
    // No user in the image: root.
    assert_eq!(
        (image.uid, image.username.as_str()),
        (Some(cri::Int64Value { value: 0 }), "")
    );
    let by_id = images
        .image_status(cri::ImageStatusRequest {
            image: spec(&ids[0]),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id.image.as_ref(), Some(image));
    let fs = images
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let usage = &fs.image_filesystems[0];
    assert_eq!(
        usage.fs_id.as_ref().unwrap().mountpoint,
        d.root.join("images").display().to_string()
    );
    assert!(usage.used_bytes.as_ref().unwrap().value >= image.size);

    // Removing it by one name removes every tag; two removes at once both
    // succeed; a missing one is no error.
    let (mut first, mut second) = (images.clone(), images.clone());
    let (a, b) = tokio::join!(
        first.remove_image(cri::RemoveImageRequest { image: spec(&name) }),
        second.remove_image(cri::RemoveImageRequest {
            image: spec(&other)
        }),
    );
    a.unwrap();
    b.unwrap();
    let left = all_images(&mut images).await;
    assert_eq!(left, Vec::new());
    let own_list = own
        .list(pb::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(own_list, Vec::new());
    images
        .remove_image(cri::RemoveImageRequest { image: spec(&name) })
        .await
        .unwrap();
}

/// The test image of one layer, with the base files.
fn base_image() -> TestImage {
    TestImage::new(
        vec![base_layer(Packing::Gzip)],
        serde_json::json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]}),
    )
}

/// A pull ends at the call's deadline: against a registry that accepts
/// and never answers, PullImage with a 5 s deadline (time enough for the
/// pull to connect, in an emulated VM too) fails soon after, the
/// pull is stopped (the registry sees its connections closed), and nothing
/// is stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_ends_at_the_calls_deadline() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (accepted, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a, c) = (accepted.clone(), closed.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            a.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            // Reads what comes, answers nothing, notes the close.
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while std::io::Read::read(&mut conn, &mut buf).is_ok_and(|n| n > 0) {}
                c.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    let dir = test_dir("cri-deadline");
    let file = registries_file(&dir, &format!("[\"{addr}\"]\ninsecure = true\n"));
    let d =
        Daemon::start_with_args("cri-deadline", &["--registries", file.to_str().unwrap()]).await;
    let mut images = ImageServiceClient::new(cri_channel(&d).await);
    let mut req = tonic::Request::new(cri::PullImageRequest {
        image: spec(&format!("{addr}/stalled/app:v1")),
        ..Default::default()
    });
    req.set_timeout(std::time::Duration::from_secs(5));
    let t = std::time::Instant::now();
    let err = images.pull_image(req).await.unwrap_err();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(30),
        "the deadline was not honoured: {:?} ({err:?})",
        t.elapsed()
    );
    assert!(
        accepted.load(Ordering::SeqCst) > 0,
        "the pull never reached the registry"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while closed.load(Ordering::SeqCst) < accepted.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the pull went on after its deadline"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let left = all_images(&mut images).await;
    assert_eq!(left, Vec::new());
}

/// `--cri-socket ""` serves no CRI; berth's own API is there as ever.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_cri_socket_serves_none() {
    let d = Daemon::start_with_args("cri-none", &["--cri-socket", ""]).await;
    assert!(!d.cri_path().exists());
    let mut api = d.api().await;
    assert!(listed(&mut api).await.is_empty());
}
