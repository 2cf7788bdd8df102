//! The Images service. Operations that write run detached on the
//! operations runtime (a client going away does not cut one short);
//! archives stream through a bounded channel to and from a blocking
//! thread.

use super::chunks::{feed, ChunkReader, ChunkWriter};
use crate::events::timestamp;
use crate::image::{self, Credentials, Error, ImageRecord, Images, Reference, Removed};
use crate::runtime::Runtime;
use berth::pb::{self, images_server::Images as ImagesApi};
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

pub struct ImagesService {
    pub images: Arc<Images>,
    pub rt: Arc<Runtime>,
    pub ops: tokio::runtime::Handle,
}

type Res<T> = Result<Response<T>, Status>;
type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let msg = super::status::bounded(e.to_string());
        match e {
            Error::Invalid(_) => Status::invalid_argument(msg),
            Error::NotFound(_) => Status::not_found(msg),
            Error::InUse(_) | Error::WrongPlatform(_) => Status::failed_precondition(msg),
            Error::Unauthenticated(_) => Status::unauthenticated(msg),
            Error::Unavailable(_) => Status::unavailable(msg),
            Error::Mismatch(_) => Status::data_loss(msg),
            Error::Full(_) => Status::resource_exhausted(msg),
            Error::Events(e) => e.into(),
            Error::Registry(_) | Error::Io(_) | Error::Internal(_) => Status::internal(msg),
        }
    }
}

pub fn image(i: &ImageRecord, refs: &[String], containers: u32) -> pb::Image {
    let (digests, tags): (Vec<&String>, Vec<&String>) = refs.iter().partition(|r| r.contains('@'));
    pb::Image {
        id: i.id.clone(),
        tags: tags.into_iter().map(|r| Reference::familiar(r)).collect(),
        digests: digests
            .into_iter()
            .map(|r| Reference::familiar(r))
            .collect(),
        created: (i.created != 0).then(|| timestamp(i.created)),
        size: i.size,
        os: i.os.clone(),
        architecture: i.architecture.clone(),
        variant: i.variant.clone(),
        labels: i.labels.clone().into_iter().collect(),
        containers,
    }
}

fn removed(r: Vec<Removed>) -> Vec<pb::RemovedImage> {
    r.into_iter()
        .map(|r| match r {
            Removed::Untagged(u) => pb::RemovedImage {
                untagged: u,
                ..Default::default()
            },
            Removed::Deleted(d) => pb::RemovedImage {
                deleted: d,
                ..Default::default()
            },
        })
        .collect()
}

fn credentials(a: Option<pb::RegistryAuth>) -> Option<Credentials> {
    a.filter(|a| !a.username.is_empty()).map(|a| Credentials {
        username: a.username,
        password: a.password,
    })
}

async fn detached<T: Send + 'static>(
    ops: &tokio::runtime::Handle,
    op: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Status> {
    ops.spawn(op)
        .await
        .map_err(|e| Status::internal(format!("operation failed: {e}")))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl ImagesApi for ImagesService {
    type PullStream = Out<pb::PullProgress>;

    async fn pull(&self, req: Request<pb::PullRequest>) -> Res<Self::PullStream> {
        let r = req.into_inner();
        Reference::parse(&r.reference)?;
        let (tx, rx) = mpsc::channel(256);
        let (progress, mut updates) = mpsc::channel(256);
        let images = self.images.clone();
        self.ops.spawn(async move {
            let pulling = images.pull(&r.reference, &r.platform, credentials(r.auth), progress);
            tokio::pin!(pulling);
            let result = loop {
                tokio::select! {
                    Some(u) = updates.recv() => { let _ = tx.send(Ok(u)).await; }
                    done = &mut pulling => break done,
                }
            };
            while let Ok(u) = updates.try_recv() {
                let _ = tx.send(Ok(u)).await;
            }
            let last = result.map(|i| {
                let refs = images.references_of(&i.id);
                pb::PullProgress {
                    image: Some(image(&i, &refs, images.users_of(&i.id) as u32)),
                    ..Default::default()
                }
            });
            let _ = tx.send(last.map_err(Status::from)).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list(&self, req: Request<pb::ListImagesRequest>) -> Res<pb::ListImagesResponse> {
        let r = req.into_inner();
        let wanted = match r.reference.as_str() {
            "" => None,
            s => Some(Reference::parse_name(s)?),
        };
        let images = self
            .images
            .list()
            .into_iter()
            .filter(|(_, refs, _)| r.dangling.is_none_or(|d| d == refs.is_empty()))
            .filter(|(_, refs, _)| {
                wanted.as_ref().is_none_or(|w| {
                    refs.iter().any(|full| match &w.tag {
                        Some(_) => *full == w.to_string(),
                        None => {
                            full.starts_with(&format!("{}:", w.name()))
                                || full.starts_with(&format!("{}@", w.name()))
                        }
                    })
                })
            })
            .map(|(i, refs, n)| image(&i, &refs, n))
            .collect();
        Ok(Response::new(pb::ListImagesResponse { images }))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectImageRequest>,
    ) -> Res<pb::InspectImageResponse> {
        let i = self.images.find(&req.into_inner().image)?;
        let (config, manifest) = self.images.documents(&i)?;
        let refs = self.images.references_of(&i.id);
        Ok(Response::new(pb::InspectImageResponse {
            image: Some(image(&i, &refs, self.images.users_of(&i.id) as u32)),
            config_json: String::from_utf8_lossy(&config).into_owned(),
            manifest_json: String::from_utf8_lossy(&manifest).into_owned(),
            diff_ids: i.layers.iter().map(|l| l.diff_id.clone()).collect(),
            manifest_digest: i.manifest.clone(),
        }))
    }

    async fn remove(&self, req: Request<pb::RemoveImageRequest>) -> Res<pb::RemoveImageResponse> {
        let (images, r) = (self.images.clone(), req.into_inner());
        let (done, freed) = detached(
            &self.ops,
            async move { images.remove(&r.image, r.force).await },
        )
        .await?;
        Ok(Response::new(pb::RemoveImageResponse {
            removed: removed(done),
            space_reclaimed: freed,
        }))
    }

    async fn tag(&self, req: Request<pb::TagRequest>) -> Res<pb::TagResponse> {
        let (images, r) = (self.images.clone(), req.into_inner());
        detached(&self.ops, async move { images.tag(&r.source, &r.target) }).await?;
        Ok(Response::new(pb::TagResponse {}))
    }

    type SaveStream = Out<pb::Chunk>;

    async fn save(&self, req: Request<pb::SaveRequest>) -> Res<Self::SaveStream> {
        let names = req.into_inner().images;
        if names.is_empty() {
            return Err(Status::invalid_argument("name at least one image to save"));
        }
        for n in &names {
            self.images.find(n)?;
        }
        let (tx, rx) = mpsc::channel(8);
        let images = self.images.clone();
        // Nothing is collected while the archive is written.
        let held = images.adding().await;
        tokio::task::spawn_blocking(move || {
            let mut w = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::new(),
            };
            if let Err(e) = images.save(&names, &mut w) {
                let _ = tx.blocking_send(Err(Status::from(e)));
            }
            drop(held);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn load(&self, req: Request<Streaming<pb::LoadRequest>>) -> Res<pb::LoadResponse> {
        let images = self.images.clone();
        let guard = images.adding().await;
        let before = images.held();
        let loaded = feed(
            req.into_inner(),
            |m: pb::LoadRequest| m.data,
            move |r| images.load(r),
        )
        .await;
        drop(guard);
        if loaded.is_err() {
            self.images.undo_since(before).await;
        }
        Ok(Response::new(pb::LoadResponse { loaded: loaded? }))
    }

    async fn import(&self, req: Request<Streaming<pb::ImportRequest>>) -> Res<pb::ImportResponse> {
        let mut stream = req.into_inner();
        let first = stream
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("an import needs its tar"))??;
        let reference = match first.reference.as_str() {
            "" => None,
            r => Some(Reference::parse(r)?),
        };
        crate::image::Images::check_import(&first.cmd, &first.env)?;
        let images = self.images.clone();
        let guard = images.adding().await;
        let (first_data, cmd, env) = (first.data, first.cmd, first.env);
        let head = tokio_stream::once(Ok(pb::ImportRequest {
            data: first_data,
            ..Default::default()
        }));
        let rest = head.chain(stream);
        let (tx, rx) = mpsc::channel(16);
        let worker = tokio::task::spawn_blocking(move || {
            let reader = ChunkReader::new(rx);
            images.import(reader, reference, cmd, env)
        });
        tokio::pin!(rest);
        let mut failed = None;
        while let Some(m) = rest.next().await {
            match m {
                Ok(m) => {
                    if tx.send(m.data).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let id = worker
            .await
            .map_err(|e| Status::internal(format!("import: {e}")))?;
        drop(guard);
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(Response::new(pb::ImportResponse { id: id? }))
    }

    type ExportStream = Out<pb::Chunk>;

    async fn export(&self, req: Request<pb::ExportRequest>) -> Res<Self::ExportStream> {
        let (lower, upper, at) = self.rt.filesystem(&req.into_inner().container)?;
        let (tx, rx) = mpsc::channel(8);
        std::thread::spawn(move || {
            let mut w = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::new(),
            };
            let r = crate::sys::mounts::export_overlay(&lower, &upper, &at, &mut w)
                .and_then(|()| w.flush());
            if let Err(e) = r {
                let _ = tx.blocking_send(Err(Status::internal(format!("export: {e}"))));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn prune(&self, req: Request<pb::PruneImagesRequest>) -> Res<pb::PruneImagesResponse> {
        let (images, all) = (self.images.clone(), req.into_inner().all);
        let (done, freed) = detached(&self.ops, async move { images.prune(all).await }).await?;
        Ok(Response::new(pb::PruneImagesResponse {
            removed: removed(done),
            space_reclaimed: freed,
        }))
    }

    async fn login(&self, req: Request<pb::LoginRequest>) -> Res<pb::LoginResponse> {
        let r = req.into_inner();
        let creds = credentials(r.auth)
            .ok_or_else(|| Status::invalid_argument("login needs a username"))?;
        let images = self.images.clone();
        detached(
            &self.ops,
            async move { images.login(&r.registry, creds).await },
        )
        .await?;
        Ok(Response::new(pb::LoginResponse {}))
    }

    async fn logout(&self, req: Request<pb::LogoutRequest>) -> Res<pb::LogoutResponse> {
        let r = req.into_inner();
        if !self.images.logout(&r.registry)? {
            return Err(Status::not_found(format!(
                "not logged in to {:?}",
                r.registry
            )));
        }
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn disk_usage(&self, _: Request<pb::DiskUsageRequest>) -> Res<pb::DiskUsageResponse> {
        let usage = self.images.disk_usage();
        let users = self.rt.image_users();
        let containers = self.rt.list(true);
        // A layer counts once however many images share it, and is
        // reclaimable only when no image a container uses has it.
        let active: std::collections::HashSet<&String> = usage
            .images
            .iter()
            .filter(|(id, _)| users.contains_key(*id))
            .flat_map(|(_, diffs)| diffs)
            .collect();
        let mut r = pb::DiskUsageResponse {
            images: usage.images.len() as u64,
            images_active: usage
                .images
                .keys()
                .filter(|id| users.contains_key(*id))
                .count() as u64,
            images_size: usage.layers.values().sum(),
            images_reclaimable: usage
                .layers
                .iter()
                .filter(|(d, _)| !active.contains(d))
                .map(|(_, s)| s)
                .sum(),
            containers: containers.len() as u64,
            blobs_size: usage.blobs,
            ..Default::default()
        };
        for c in &containers {
            let size = self.rt.writable_size(&c.id);
            r.containers_size += size;
            if c.status.is_up() {
                r.containers_active += 1;
            } else {
                r.containers_reclaimable += size;
            }
        }
        Ok(Response::new(r))
    }
}

/// Applies the image a create request names, if any.
pub async fn with_image(
    images: &Arc<Images>,
    r: pb::CreateRequest,
) -> Result<
    (
        crate::spec::Request,
        Option<tokio::sync::OwnedRwLockReadGuard<()>>,
    ),
    Status,
> {
    let (name, entrypoint) = (r.image.clone(), r.entrypoint.clone().map(|e| e.args));
    let platform = r.platform.clone();
    let mut req = crate::spec::Request::from(r);
    if name.is_empty() {
        if entrypoint.is_some() {
            return Err(Status::invalid_argument("an entrypoint needs an image"));
        }
        if !platform.is_empty() {
            return Err(Status::invalid_argument("a platform needs an image"));
        }
        return Ok((req, None));
    }
    if !req.rootfs.is_empty() {
        return Err(Status::invalid_argument(
            "give either a rootfs or an image, not both",
        ));
    }
    let (image, guard) = images.for_container(&name).await?;
    image.check_platform(&platform)?;
    image::run::apply(image, entrypoint, &mut req)?;
    Ok((req, Some(guard)))
}
