//! Kubernetes' Container Runtime Interface (`runtime.v1`): the
//! RuntimeService and ImageService the kubelet drives, served on a unix
//! socket of their own (`--cri-socket`, default /run/berth/cri.sock). A
//! facade: each call converts and runs the operations the berth API runs
//! (images.rs over berth's image store; runtime.rs).
//!
//! What is served so far: Version, Status, RuntimeConfig and the whole
//! ImageService; the pod and container calls answer UNIMPLEMENTED.

mod images;
mod runtime;

use k8s_cri::v1::{
    image_service_server::ImageServiceServer, runtime_service_server::RuntimeServiceServer,
};
use std::sync::Arc;

pub use images::CriImages;
pub use runtime::CriRuntime;

/// The CRI's name for berth and the API version it speaks.
pub const RUNTIME_NAME: &str = "berth";
pub const RUNTIME_API_VERSION: &str = "v1";

/// The largest CRI request accepted (the kubelet's own limit is 16 MiB).
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Both services, as routes for a server.
pub fn routes(
    rt: Arc<crate::runtime::Runtime>,
    images: Arc<crate::image::Images>,
    ops: tokio::runtime::Handle,
) -> tonic::service::Routes {
    let runtime = CriRuntime { rt };
    let images = CriImages { images, ops };
    tonic::service::Routes::new(
        RuntimeServiceServer::new(runtime).max_decoding_message_size(MAX_REQUEST_BYTES),
    )
    .add_service(ImageServiceServer::new(images).max_decoding_message_size(MAX_REQUEST_BYTES))
}
