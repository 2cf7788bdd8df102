//! Kubernetes' Container Runtime Interface (`runtime.v1`): the
//! RuntimeService and ImageService the kubelet drives, served on a unix
//! socket of their own (`--cri-socket`, default /run/berth/cri.sock). A
//! facade: each call converts and runs the operations the berth API runs
//! (images.rs over berth's image store; pods.rs and containers.rs over
//! berth's containers, network.rs over its networks).
//!
//! A pod sandbox and a CRI container are berth containers, with the CRI's
//! config kept verbatim in their extension: so `berth ps`, `logs` and
//! `events` show them, and they live through restarts of the daemon as
//! any container does.

mod containers;
mod events;
mod images;
mod network;
mod pods;
mod resources;
mod runtime;
mod security;
mod stats;
mod stream;
mod streaming;

use crate::runtime::Record;
use k8s_cri::v1::{
    image_service_server::ImageServiceServer, runtime_service_server::RuntimeServiceServer,
};
use std::collections::HashMap;
use std::sync::Arc;

pub use images::CriImages;
pub use stream::Streams;

/// The CRI's name for berth and the API version it speaks.
pub const RUNTIME_NAME: &str = "berth";
pub const RUNTIME_API_VERSION: &str = "v1";

/// The largest CRI request accepted (the kubelet's own limit is 16 MiB).
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// The kinds of extension the CRI keeps with its containers.
const SANDBOX: &str = "cri.sandbox";
const CONTAINER: &str = "cri.container";

/// A sandbox's OOM score: the kubelet's (and containerd's) for pause
/// processes, clamped to berthd's own.
const SANDBOX_OOM_SCORE_ADJ: i32 = -998;

/// berth's labels on CRI containers (not among the CRI's labels, which
/// are the config's): "sandbox" or "container", and a container's pod
/// (the sandbox's id).
const CRI_LABEL: &str = "io.berth.cri";
const POD_LABEL: &str = "io.berth.cri.pod";

#[derive(Clone)]
pub struct CriRuntime {
    rt: Arc<crate::runtime::Runtime>,
    images: Arc<crate::image::Images>,
    ops: tokio::runtime::Handle,
    network: Arc<network::PodNetwork>,
    streams: Arc<Streams>,
}

/// Both services, as routes for a server.
pub fn routes(
    rt: Arc<crate::runtime::Runtime>,
    images: Arc<crate::image::Images>,
    ops: tokio::runtime::Handle,
    cni_conf_dir: std::path::PathBuf,
    streams: Arc<Streams>,
) -> tonic::service::Routes {
    let runtime = CriRuntime {
        rt,
        images: images.clone(),
        ops: ops.clone(),
        network: Arc::new(network::PodNetwork::new(cni_conf_dir)),
        streams,
    };
    let images = CriImages { images, ops };
    tonic::service::Routes::new(
        RuntimeServiceServer::new(runtime).max_decoding_message_size(MAX_REQUEST_BYTES),
    )
    .add_service(ImageServiceServer::new(images).max_decoding_message_size(MAX_REQUEST_BYTES))
}

/// What a berth container is to the CRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Sandbox,
    Container,
}

fn kept(r: &Record) -> Option<Kept> {
    match r.spec.extension.as_ref()?.kind.as_str() {
        SANDBOX => Some(Kept::Sandbox),
        CONTAINER => Some(Kept::Container),
        _ => None,
    }
}

/// Every label of `selector` is in `labels` with its value.
fn matches_labels(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The berth name of a pod or container: "k8s_" and `parts` and the
/// attempt joined by "_", as dockershim named them; characters berth's
/// names cannot have become '-', and a name too long is cut and ends
/// with a hash of the whole, so that it stays unique.
fn berth_name(parts: &[&str], attempt: u32) -> String {
    use sha2::Digest;
    let clean = |s: &str| -> String {
        s.chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    true => c,
                    false => '-',
                },
            )
            .collect()
    };
    let mut name = format!(
        "k8s_{}_{attempt}",
        parts.iter().map(|p| clean(p)).collect::<Vec<_>>().join("_")
    );
    const MAX: usize = 128;
    if name.len() > MAX {
        let hash = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..8]);
        name.truncate(MAX - hash.len() - 1);
        name = format!("{name}_{hash}");
    }
    name
}

/// `wanted`, or berthd's own OOM score if that is higher: lowering a
/// score below one's own needs CAP_SYS_RESOURCE, which berthd may lack.
fn oom_score_adj(wanted: i32) -> i32 {
    let own = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1000);
    wanted.max(own)
}

/// A stop or remove of what is already gone succeeds.
fn ignore_gone(r: crate::runtime::Result<()>) -> Result<(), tonic::Status> {
    match r {
        Ok(()) | Err(crate::runtime::Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_berth_names_and_unique_when_cut() {
        let n = berth_name(&["POD", "web", "default", "1a2b"], 0);
        assert_eq!(n, "k8s_POD_web_default_1a2b_0");
        assert_eq!(berth_name(&["a:b", "c/d"], 2), "k8s_a-b_c-d_2");
        let long = "x".repeat(200);
        let (a, b) = (berth_name(&[&long, "1"], 0), berth_name(&[&long, "2"], 0));
        assert!(a.len() <= 128 && b.len() <= 128);
        assert_ne!(a, b);
        for n in [a, b] {
            crate::spec::validate_name(&n).unwrap();
        }
    }
}
