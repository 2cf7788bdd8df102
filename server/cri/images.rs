//! The CRI's ImageService over berth's image store, with the CRI's
//! semantics where they differ from Docker's: the status of a missing
//! image is empty, not an error; removing an image removes every tag it
//! has (and removing a missing one succeeds); an image's user is given as
//! a uid when numeric, else as a name.

use crate::image::{Credentials, Error, ImageRecord, Images};
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::ImageService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct CriImages {
    pub images: Arc<Images>,
    pub ops: tokio::runtime::Handle,
}

impl CriImages {
    /// The image as the CRI shows it: the id with its algorithm, tags and
    /// digests by full name.
    fn image(&self, i: &ImageRecord) -> cri::Image {
        let refs = self.images.references_of(&i.id);
        let (repo_digests, repo_tags): (Vec<String>, Vec<String>) =
            refs.into_iter().partition(|r| r.contains('@'));
        let (config, manifest) = self.images.documents(i).unwrap_or_default();
        let user = serde_json::from_slice::<crate::image::Config>(&config)
            .ok()
            .and_then(|c| c.config)
            .map(|c| c.user)
            .unwrap_or_default();
        // The image's content, as containerd counts it for the kubelet's
        // image GC: manifest, config and compressed layers (what berth's
        // own API shows is the unpacked size, which an image of empty
        // layers has none of).
        let size =
            (manifest.len() + config.len()) as u64 + i.layers.iter().map(|l| l.size).sum::<u64>();
        // "uid", "uid:gid", "name", "name:group": the user part decides.
        let name = user.split(':').next().unwrap_or_default();
        let (uid, username) = match name.parse::<i64>() {
            Ok(uid) => (Some(cri::Int64Value { value: uid }), String::new()),
            Err(_) if name.is_empty() => (Some(cri::Int64Value { value: 0 }), String::new()),
            Err(_) => (None, name.to_string()),
        };
        cri::Image {
            id: i.id.clone(),
            spec: Some(cri::ImageSpec {
                image: i.id.clone(),
                ..Default::default()
            }),
            repo_tags,
            repo_digests,
            size,
            uid,
            username,
            pinned: false,
        }
    }

    /// The image `spec` names, None if there is none.
    fn find(&self, spec: Option<cri::ImageSpec>) -> Result<Option<ImageRecord>, Status> {
        let name = spec.map(|s| s.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("no image named"));
        }
        match self.images.find(&name) {
            Ok(i) => Ok(Some(i)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(Status::from(e)),
        }
    }
}

#[tonic::async_trait]
impl ImageService for CriImages {
    async fn list_images(
        &self,
        req: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        let wanted = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let images = match wanted {
            Some(name) => self
                .find(Some(cri::ImageSpec {
                    image: name,
                    ..Default::default()
                }))?
                .into_iter()
                .collect(),
            None => self
                .images
                .list()
                .into_iter()
                .map(|(i, _, _)| i)
                .collect::<Vec<_>>(),
        };
        Ok(Response::new(cri::ListImagesResponse {
            images: images.iter().map(|i| self.image(i)).collect(),
        }))
    }

    async fn image_status(
        &self,
        req: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let image = self.find(req.into_inner().image)?;
        Ok(Response::new(cri::ImageStatusResponse {
            image: image.map(|i| self.image(&i)),
            info: Default::default(),
        }))
    }

    async fn pull_image(
        &self,
        req: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let r = req.into_inner();
        let name = r.image.map(|s| s.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("no image named"));
        }
        let creds = r.auth.and_then(|a| credentials(&a));
        let images = self.images.clone();
        // Progress is for berth's own API; nobody reads it here.
        let (progress, mut updates) = tokio::sync::mpsc::channel(64);
        // The pull ends with the call: at its deadline (tonic drops this
        // future then) or when the client goes, the pull is aborted. What
        // it had verified stays for the next pull; nothing half-written
        // does (the content store's writers and a layer's staging remove
        // themselves when dropped).
        let mut pulling = AbortOnDrop(self.ops.spawn(async move {
            let drain = tokio::spawn(async move { while updates.recv().await.is_some() {} });
            let pulled = images.pull(&name, "", creds, progress).await;
            let _ = drain.await;
            pulled
        }));
        let pulled = (&mut pulling.0)
            .await
            .map_err(|e| Status::internal(format!("pull: {e}")))?
            .map_err(Status::from)?;
        Ok(Response::new(cri::PullImageResponse {
            image_ref: pulled.id,
        }))
    }

    async fn remove_image(
        &self,
        req: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let Some(image) = self.find(req.into_inner().image)? else {
            return Ok(Response::new(cri::RemoveImageResponse {}));
        };
        // By id, with every tag: the CRI's remove.
        let images = self.images.clone();
        let removed = self
            .ops
            .spawn(async move { images.remove(&image.id, true).await })
            .await
            .map_err(|e| Status::internal(format!("remove image: {e}")))?;
        match removed {
            // Another RemoveImage got there first: gone is what was asked.
            Ok(_) | Err(Error::NotFound(_)) => Ok(Response::new(cri::RemoveImageResponse {})),
            Err(e) => Err(Status::from(e)),
        }
    }

    async fn image_fs_info(
        &self,
        _: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        let usage = self.images.disk_usage();
        let used = usage.blobs + usage.layers.values().sum::<u64>();
        let timestamp = crate::sys::time::now_nanos();
        let fs = cri::FilesystemUsage {
            timestamp,
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: self.images.dir().display().to_string(),
            }),
            used_bytes: Some(cri::UInt64Value { value: used }),
            inodes_used: None,
        };
        Ok(Response::new(cri::ImageFsInfoResponse {
            image_filesystems: vec![fs],
            container_filesystems: Vec::new(),
        }))
    }
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A request's credentials: a user and password, or `auth` (base64 of
/// "user:password"); tokens are not supported by berth's registry client.
fn credentials(a: &cri::AuthConfig) -> Option<Credentials> {
    if !a.username.is_empty() {
        return Some(Credentials {
            username: a.username.clone(),
            password: a.password.clone(),
        });
    }
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(a.auth.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credentials {
        username: username.into(),
        password: password.into(),
    })
}
