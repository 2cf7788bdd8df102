//! Image records and references as the database keeps them, and the
//! rules of finding, tagging and removing (Docker's rmi).

use super::reference::{is_hex64, Reference};
use super::{Error, Result};
use crate::store::{Batch, Store, Table};
use berth::pb::{self, Action, EventType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The blob's digest, media type and size.
    pub blob: String,
    pub media_type: String,
    pub size: u64,
    /// The digest of its uncompressed tar.
    pub diff_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config's digest.
    pub id: String,
    /// The manifest's digest and media type.
    pub manifest: String,
    pub manifest_media_type: String,
    pub layers: Vec<LayerRecord>,
    /// From the config; unix nanos.
    pub created: i64,
    /// Bytes of its unpacked layers.
    pub size: u64,
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl ImageRecord {
    /// The record of an image with this config (its bytes' digest is the
    /// id), manifest and layers; `size` is what its layers unpack to.
    pub fn new(
        config_raw: &[u8],
        config: &super::oci::Config,
        manifest: (String, String),
        layers: Vec<LayerRecord>,
        size: u64,
    ) -> ImageRecord {
        ImageRecord {
            id: super::content::sha256(config_raw).to_string(),
            manifest: manifest.0,
            manifest_media_type: manifest.1,
            layers,
            created: config.created_nanos(),
            size,
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone().unwrap_or_default(),
            labels: config
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default(),
        }
    }
}

/// One step of a removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

#[derive(Debug, Clone, Default)]
pub struct State {
    pub images: BTreeMap<String, ImageRecord>,
    /// Full reference -> image id.
    pub references: BTreeMap<String, String>,
}

/// Whether the name a request gave is the reference `full`.
pub fn names_reference(name: &str, full: &str) -> bool {
    Reference::parse(name).is_ok_and(|r| r.to_string() == full)
}

pub(super) fn image_event(action: Action, id: &str, reference: &str) -> pb::Event {
    pb::Event {
        r#type: EventType::Image as i32,
        action: action as i32,
        id: id.to_string(),
        name: Reference::familiar(reference),
        ..Default::default()
    }
}

impl State {
    pub fn load(store: &Store) -> Result<State> {
        let db = |e: crate::store::Error| Error::Internal(format!("load images: {e}"));
        Ok(State {
            images: store
                .load_table(Table::Images)
                .map_err(db)?
                .into_iter()
                .collect(),
            references: store
                .load_table(Table::References)
                .map_err(db)?
                .into_iter()
                .collect(),
        })
    }

    pub fn find(&self, name: &str) -> Result<&ImageRecord> {
        let not_found =
            || Error::NotFound(format!("no such image: {}", crate::spec::Input::from(name)));
        if name.is_empty() {
            return Err(Error::Invalid(
                "image name is empty: give a reference or an id".into(),
            ));
        }
        if let Some(hex) = name
            .strip_prefix("sha256:")
            .or(is_hex64(name).then_some(name))
        {
            return self
                .images
                .get(&format!("sha256:{hex}"))
                .ok_or_else(not_found);
        }
        if let Ok(r) = Reference::parse(name) {
            if let Some(image) = self
                .references
                .get(&r.to_string())
                .and_then(|id| self.images.get(id))
            {
                return Ok(image);
            }
        }
        if name.len() >= 4 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let prefix = format!("sha256:{name}");
            let mut found = self
                .images
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix));
            return match (found.next(), found.next()) {
                (Some((_, i)), None) => Ok(i),
                (Some(_), Some(_)) => Err(Error::Invalid(format!(
                    "image id prefix {name:?} is ambiguous: give more characters"
                ))),
                _ => Err(not_found()),
            };
        }
        Err(not_found())
    }

    /// The image's references, tags before digests, sorted.
    pub fn references_of(&self, id: &str) -> Vec<String> {
        let mut refs: Vec<String> = self
            .references
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect();
        refs.sort_by_key(|r| (r.contains('@'), r.clone()));
        refs
    }

    pub fn put_image(&mut self, batch: &mut Batch, image: &ImageRecord) -> Result<()> {
        batch
            .put_in(Table::Images, &image.id, image)
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.images.insert(image.id.clone(), image.clone());
        Ok(())
    }

    /// Points `reference` at `id` and records `action` for it.
    pub fn set_reference(
        &mut self,
        batch: &mut Batch,
        events: &mut Vec<pb::Event>,
        reference: &str,
        id: &str,
        action: Option<Action>,
    ) -> Result<()> {
        batch
            .put_in(Table::References, reference, &id)
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.references
            .insert(reference.to_string(), id.to_string());
        if let Some(a) = action {
            events.push(image_event(a, id, reference));
        }
        Ok(())
    }

    fn untag(&mut self, batch: &mut Batch, events: &mut Vec<pb::Event>, reference: &str, id: &str) {
        batch.delete_in(Table::References, reference);
        self.references.remove(reference);
        events.push(image_event(Action::Untag, id, reference));
    }

    /// Docker's rmi of `name` (which names `image`).
    #[allow(clippy::too_many_arguments)]
    pub fn remove(
        &mut self,
        batch: &mut Batch,
        events: &mut Vec<pb::Event>,
        name: &str,
        image: &ImageRecord,
        by_id: bool,
        force: bool,
        users: &[String],
    ) -> Result<Vec<Removed>> {
        let refs = self.references_of(&image.id);
        let tags: Vec<&String> = refs.iter().filter(|r| !r.contains('@')).collect();
        let mut out = Vec::new();
        if !by_id {
            let full = Reference::parse(name)?.to_string();
            let tags_left = tags.iter().filter(|t| ***t != full).count();
            if tags_left == 0 && !users.is_empty() && !force {
                return Err(Error::InUse(format!(
                    "unable to remove reference {name:?} (force to untag): container {} uses its image {}",
                    users[0],
                    short(&image.id)
                )));
            }
            self.untag(batch, events, &full, &image.id);
            out.push(Removed::Untagged(Reference::familiar(&full)));
            if tags_left > 0 {
                return Ok(out);
            }
        } else {
            if !users.is_empty() && !force {
                return Err(Error::InUse(format!(
                    "unable to delete {} (force to untag it): container {} uses it",
                    short(&image.id),
                    users[0]
                )));
            }
            if tags.len() > 1 && !force {
                return Err(Error::InUse(format!(
                    "unable to delete {} (force to delete it): it is referenced in several repositories",
                    short(&image.id)
                )));
            }
        }
        // The image goes with its last name, unless a container uses it:
        // then it stays, dangling, for the container's layers.
        for r in self.references_of(&image.id) {
            self.untag(batch, events, &r, &image.id);
            out.push(Removed::Untagged(Reference::familiar(&r)));
        }
        if users.is_empty() {
            batch.delete_in(Table::Images, &image.id);
            self.images.remove(&image.id);
            events.push(image_event(Action::Delete, &image.id, ""));
            out.push(Removed::Deleted(image.id.clone()));
        }
        Ok(out)
    }

    /// Blobs and layers (diff ids) some image refers to.
    pub fn referenced(&self) -> (HashSet<String>, HashSet<String>) {
        let mut blobs = HashSet::new();
        let mut diffs = HashSet::new();
        for i in self.images.values() {
            blobs.insert(i.id.clone());
            blobs.insert(i.manifest.clone());
            for l in &i.layers {
                blobs.insert(l.blob.clone());
                diffs.insert(l.diff_id.clone());
            }
        }
        (blobs, diffs)
    }
}

/// The first 12 hex digits of an id.
pub fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}
