//! Images: the content store (content.rs), unpacked layers (layers.rs),
//! registries (registry.rs, pull.rs), archives (archive.rs) and the image
//! records, kept in the daemon's database beside the containers with
//! their events in the same transaction.
//!
//! Everything under `<root>/images`:
//!
//!   blobs/sha256/<hex>   manifests, configs and layer blobs, verified
//!   ingest/              blobs being written
//!   layers/              unpacked layers (layers.rs)
//!   auth.json            credentials kept by Login (mode 0600)
//!
//! Content is added under the shared side of `gc` and collected under
//! its exclusive side, so a collection never takes what a pull or a
//! create is about to refer to. Collection runs with rmi and prune: what a
//! pull cut short had verified stays until then, for the next pull.

mod archive;
mod compress;
mod content;
mod layers;
mod load;
mod oci;
mod pull;
pub mod reference;
mod registry;
pub mod run;
mod store;
mod unpack;

pub use oci::{Config, RunConfig};
pub use reference::{Digest, Reference};
pub use registry::Credentials;
pub use store::{ImageRecord, Removed};
pub use unpack::Limits;

use crate::events::{self, Bus};
use crate::runtime::Runtime;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Mismatch(String),
    /// The image held is for another platform than the one asked.
    #[error("{0}")]
    WrongPlatform(String),
    #[error("registry: {0}")]
    Registry(String),
    #[error("{0}")]
    Io(String),
    /// The filesystem of the daemon's root is full.
    #[error("{0}")]
    Full(String),
    #[error(transparent)]
    Events(#[from] events::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Error {
        match crate::store::is_full(&e) {
            true => Error::Full(format!(
                "{what}: the filesystem of the daemon's root is full: {e}"
            )),
            false => Error::Io(format!("{what}: {e}")),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the daemon handles images.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The registries file (registry.rs).
    pub registries: Option<PathBuf>,
    pub limits: Limits,
}

pub struct Images {
    /// ROOT/images.
    dir: PathBuf,
    content: content::Content,
    layers: layers::Layers,
    registries: registry::Registries,
    limits: Limits,
    bus: Arc<Bus>,
    rt: Arc<Runtime>,
    /// Image records and references; changed only under `write`, after
    /// the database.
    state: RwLock<store::State>,
    /// Serialises changes to records (with their events).
    write: Mutex<()>,
    gc: Arc<tokio::sync::RwLock<()>>,
    /// One fetch at a time per blob: a second pull waits, then finds it.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Refuses what cannot name a registry.
fn registry_host(host: &str) -> Result<()> {
    match reference::is_registry(host) {
        true => Ok(()),
        false => Err(Error::Invalid(format!(
            "invalid registry {:?}: give host[:port]",
            crate::spec::Input::from(host)
        ))),
    }
}

/// What images take on disk (Images::disk_usage).
pub struct DiskUsage {
    pub blobs: u64,
    /// Each image's layers, by diff id.
    pub images: BTreeMap<String, Vec<String>>,
    /// Each layer's unpacked size.
    pub layers: HashMap<String, u64>,
}

/// The blobs and layers the store held at some moment.
#[derive(Default, PartialEq, Eq)]
pub struct Held {
    blobs: std::collections::HashSet<Digest>,
    layers: std::collections::HashSet<Digest>,
}

/// What a container takes from an image.
#[derive(Debug, Clone)]
pub struct ForContainer {
    pub id: String,
    /// The reference as the request named it (or the id).
    pub reference: String,
    pub config: RunConfig,
    /// The layers directory and the lower layers' short names, top first.
    pub layers_dir: String,
    pub lower: Vec<String>,
    /// What the image is for.
    pub platform: oci::Platform,
}

impl ForContainer {
    /// Refuses an image that is not for `wanted` ("os/arch[/variant]";
    /// empty: any).
    pub fn check_platform(&self, wanted: &str) -> Result<()> {
        if wanted.is_empty() {
            return Ok(());
        }
        let wanted = oci::Platform::parse(wanted)?;
        match wanted.matches(&self.platform) {
            true => Ok(()),
            false => Err(Error::WrongPlatform(format!(
                "image {} is for {}, not {wanted}: pull it for {wanted} first",
                self.reference, self.platform
            ))),
        }
    }
}

impl Images {
    pub fn open(root: &Path, rt: Arc<Runtime>, options: Options) -> Result<Arc<Images>> {
        let dir = root.join("images");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let bus = rt.bus();
        let state = store::State::load(bus.store())?;
        let images = Images {
            dir: dir.clone(),
            content: content::Content::open(&dir)?,
            layers: layers::Layers::open(&dir.join("layers"))?,
            registries: registry::Registries::open(
                options.registries.as_deref(),
                dir.join("auth.json"),
            )?,
            limits: options.limits,
            bus,
            rt,
            state: RwLock::new(state),
            write: Mutex::new(()),
            gc: Arc::new(tokio::sync::RwLock::new(())),
            fetching: Mutex::new(HashMap::new()),
        };
        tracing::info!(images = images.state().images.len(), "images loaded");
        Ok(Arc::new(images))
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, store::State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the images are (blobs, layers).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image a request names: a reference, an id or an id prefix.
    pub fn find(&self, name: &str) -> Result<ImageRecord> {
        self.state().find(name).cloned()
    }

    /// Images with their references and how many containers use each.
    pub fn list(&self) -> Vec<(ImageRecord, Vec<String>, u32)> {
        let users = self.rt.image_users();
        let st = self.state();
        let mut out: Vec<_> = st
            .images
            .values()
            .map(|i| {
                let n = users.get(&i.id).map_or(0, |u| u.len() as u32);
                (i.clone(), st.references_of(&i.id), n)
            })
            .collect();
        out.sort_by(|a, b| b.0.created.cmp(&a.0.created).then(a.0.id.cmp(&b.0.id)));
        out
    }

    pub fn references_of(&self, id: &str) -> Vec<String> {
        self.state().references_of(id)
    }

    pub fn users_of(&self, id: &str) -> usize {
        self.rt.image_users().get(id).map_or(0, Vec::len)
    }

    /// The image's config and manifest as stored.
    pub fn documents(&self, image: &ImageRecord) -> Result<(Vec<u8>, Vec<u8>)> {
        let config = self.content.read(&Digest::parse(&image.id)?)?;
        let manifest = self.content.read(&Digest::parse(&image.manifest)?)?;
        Ok((config, manifest))
    }

    pub fn config(&self, image: &ImageRecord) -> Result<Config> {
        oci::parse(
            "image config",
            &self.content.read(&Digest::parse(&image.id)?)?,
        )
    }

    /// What a create needs of the image `name`, with the shared side of
    /// the collection lock: hold it until the container is recorded.
    pub async fn for_container(
        &self,
        name: &str,
    ) -> Result<(ForContainer, tokio::sync::OwnedRwLockReadGuard<()>)> {
        let guard = self.adding().await;
        let image = self.find(name)?;
        let config = self.config(&image)?;
        if image.layers.is_empty() {
            return Err(Error::Invalid(format!(
                "image {:?} has no layers",
                crate::spec::Input::from(name)
            )));
        }
        let lower = image
            .layers
            .iter()
            .rev()
            .map(|l| Ok(format!("l/{}", layers::short(&Digest::parse(&l.diff_id)?))))
            .collect::<Result<Vec<_>>>()?;
        let reference = match Reference::parse(name) {
            Ok(r)
                if !name.starts_with("sha256:")
                    && self.state().references.contains_key(&r.to_string()) =>
            {
                Reference::familiar(&r.to_string())
            }
            _ => image.id.clone(),
        };
        Ok((
            ForContainer {
                id: image.id,
                reference,
                config: config.config.unwrap_or_default(),
                layers_dir: self.layers.dir().display().to_string(),
                lower,
                platform: oci::Platform {
                    os: image.os.clone(),
                    architecture: image.architecture.clone(),
                    variant: Some(image.variant.clone()).filter(|v| !v.is_empty()),
                },
            },
            guard,
        ))
    }

    /// The shared side of the collection lock, for adding content.
    pub async fn adding(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.gc.clone().read_owned().await
    }

    /// Gives `source` the reference `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let image = self.find(source)?;
        let target = Reference::parse(target)?;
        if target.digest.is_some() {
            return Err(Error::Invalid(format!(
                "cannot tag with a digest reference {target}: give name:tag"
            )));
        }
        self.change(|st, batch, events| {
            // Found before the change began: an rmi may have deleted it since.
            if !st.images.contains_key(&image.id) {
                return Err(Error::NotFound(format!(
                    "no such image: {}",
                    crate::spec::Input::from(source)
                )));
            }
            st.set_reference(
                batch,
                events,
                &target.to_string(),
                &image.id,
                Some(berth::pb::Action::Tag),
            )
        })
    }

    /// Untags or deletes as Docker's rmi does.
    pub async fn remove(&self, name: &str, force: bool) -> Result<(Vec<Removed>, u64)> {
        let _gc = self.gc.write().await;
        let image = self.find(name)?;
        let users = self.rt.image_users().remove(&image.id).unwrap_or_default();
        let refs = self.references_of(&image.id);
        let by_id = !refs.iter().any(|r| store::names_reference(name, r));
        let mut removed = Vec::new();
        self.change(|st, batch, events| {
            removed = st.remove(batch, events, name, &image, by_id, force, &users)?;
            Ok(())
        })?;
        let freed = self.collect();
        Ok((removed, freed))
    }

    /// Removes dangling images (or with `all`, unused ones) and the content
    /// they leave.
    pub async fn prune(&self, all: bool) -> Result<(Vec<Removed>, u64)> {
        let _gc = self.gc.write().await;
        let users = self.rt.image_users();
        let mut removed = Vec::new();
        self.change(|st, batch, events| {
            let victims: Vec<ImageRecord> = st
                .images
                .values()
                .filter(|i| !users.contains_key(&i.id))
                .filter(|i| all || st.references_of(&i.id).is_empty())
                .cloned()
                .collect();
            for image in victims {
                removed.extend(st.remove(batch, events, &image.id, &image, true, true, &[])?);
            }
            Ok(())
        })?;
        let freed = self.collect();
        Ok((removed, freed))
    }

    /// Applies a change to the records: the database and its events
    /// first, then memory.
    fn change(
        &self,
        f: impl FnOnce(
            &mut store::State,
            &mut crate::store::Batch,
            &mut Vec<berth::pb::Event>,
        ) -> Result<()>,
    ) -> Result<()> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.state().clone();
        let mut batch = crate::store::Batch::default();
        let mut events = Vec::new();
        f(&mut next, &mut batch, &mut events)?;
        self.bus.commit(batch, events)?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// Garbage collection, under the exclusive side of `gc`: every blob and
    /// layer no image refers to goes. Returns the bytes freed.
    fn collect(&self) -> u64 {
        self.collect_but(&Held::default())
    }

    /// Collection of what no image refers to, but for what `kept` held.
    fn collect_but(&self, kept: &Held) -> u64 {
        let (blobs, diffs) = self.state().referenced();
        let mut freed = 0;
        for d in self.content.list() {
            if !blobs.contains(d.as_str()) && !kept.blobs.contains(&d) {
                freed += self.content.remove(&d);
            }
        }
        for d in self.layers.list() {
            if !diffs.contains(d.as_str()) && !kept.layers.contains(&d) {
                freed += self.layers.remove(&d);
            }
        }
        tracing::info!(freed, "image content collected");
        freed
    }

    /// The blobs and layers held now.
    pub fn held(&self) -> Held {
        Held {
            blobs: self.content.list().into_iter().collect(),
            layers: self.layers.list().into_iter().collect(),
        }
    }

    /// Takes away what a failed request added since `before` and no image
    /// refers to, once every request adding content has finished: a
    /// refused load leaves nothing behind. What was there before stays
    /// (a pull cut short keeps its verified blobs for the next one).
    pub async fn undo_since(&self, before: Held) -> u64 {
        // Nothing was added: nothing to wait for.
        if self.held() == before {
            return 0;
        }
        let _gc = self.gc.write().await;
        self.collect_but(&before)
    }

    /// Keeps credentials for a registry after checking them.
    pub async fn login(&self, registry: &str, creds: Credentials) -> Result<()> {
        let host = match registry {
            "" | "index.docker.io" | "registry-1.docker.io" => reference::DOCKER_HUB,
            r => r
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/'),
        };
        registry_host(host)?;
        let endpoint = self
            .registries
            .endpoints(host)
            .pop()
            .ok_or_else(|| Error::Internal("no endpoint".into()))?;
        let mut session = self
            .registries
            .session(&endpoint, "", Some(creds.clone()))?;
        session.ping().await?;
        self.registries.set_credentials(host, Some(creds))?;
        tracing::info!(registry = host, "login");
        Ok(())
    }

    pub fn logout(&self, registry: &str) -> Result<bool> {
        let host = match registry {
            "" | "index.docker.io" => reference::DOCKER_HUB,
            r => r,
        };
        registry_host(host)?;
        self.registries.set_credentials(host, None)
    }

    /// What images take on disk: the blobs' bytes, each image's layers
    /// (diff ids), and each layer's unpacked size (once, however many
    /// images share it).
    pub fn disk_usage(&self) -> DiskUsage {
        let blobs = self
            .content
            .list()
            .iter()
            .map(|d| self.content.size(d).unwrap_or(0))
            .sum();
        let st = self.state();
        let images: BTreeMap<String, Vec<String>> = st
            .images
            .values()
            .map(|i| {
                let diffs = i.layers.iter().map(|l| l.diff_id.clone()).collect();
                (i.id.clone(), diffs)
            })
            .collect();
        let layers = images
            .values()
            .flatten()
            .filter_map(|d| {
                let size = self.layers.size(&Digest::parse(d).ok()?);
                Some((d.clone(), size))
            })
            .collect();
        DiskUsage {
            blobs,
            images,
            layers,
        }
    }
}
