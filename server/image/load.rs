//! Load: a docker-archive or an OCI image layout, as one tar stream (an
//! OCI layout first, if it has one). Every file is read once as it
//! streams: small ones into memory, the others into the content store;
//! then the archive's index or manifest says which are which images.

use super::archive::{tar_error, DockerManifest};
use super::compress::Compression;
use super::content::{sha256, Content};
use super::oci::{self, Descriptor, Platform};
use super::reference::{Digest, Reference};
use super::store::ImageRecord;
use super::{Error, Images, Result};
use crate::spec::Input;
use berth::pb::Action;
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

/// Files of a loaded archive kept in memory (the rest go to the content
/// store as they stream), in all.
const IN_MEMORY: usize = 64 << 20;
const SMALL: u64 = 1 << 20;

impl Images {
    /// Reads an archive; returns what it loaded: references, or ids of
    /// images without one.
    pub fn load(self: &Arc<Self>, r: impl Read) -> Result<Vec<String>> {
        let stream = super::compress::decompressed(r, u64::MAX)
            .map_err(|e| Error::Invalid(format!("archive: {e}")))?;
        let mut files = Files::default();
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(tar_error)? {
            let mut e = entry.map_err(tar_error)?;
            if !matches!(
                e.header().entry_type(),
                tar::EntryType::Regular | tar::EntryType::Continuous
            ) {
                continue;
            }
            let name = clean_name(&e.path_bytes());
            let size = e.size();
            // No file of an archive is larger than a layer may be: a bomb
            // is refused before a byte of it is stored.
            if size > self.limits.stream_bound() {
                return Err(Error::Invalid(format!(
                    "the archive's file {} holds {size} bytes, more than a layer may (--max-layer-size {})",
                    quote(&name),
                    self.limits.max_bytes
                )));
            }
            if size <= SMALL && files.memory + size as usize <= IN_MEMORY {
                let mut data = Vec::with_capacity(size as usize);
                e.read_to_end(&mut data).map_err(tar_error)?;
                files.memory += data.len();
                files.small.insert(name, data);
            } else {
                let expect = name
                    .strip_prefix("blobs/sha256/")
                    .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok())
                    .map(|d| (d, size));
                let mut w = self.content.writer(expect)?;
                io::copy(&mut e, &mut w).map_err(tar_error)?;
                let (d, _) = w.commit(&self.content)?;
                files.blobs.insert(name, d);
            }
        }
        let found = if files.small.contains_key("index.json") {
            self.images_of_layout(&mut files)?
        } else if files.small.contains_key("manifest.json") {
            self.images_of_docker_archive(&mut files)?
        } else {
            return Err(Error::Invalid(
                "the archive has neither index.json (OCI layout) nor manifest.json (docker-archive)".into(),
            ));
        };
        let mut loaded = Vec::new();
        self.change(|st, batch, events| {
            for (image, names) in &found {
                st.put_image(batch, image)?;
                if names.is_empty() {
                    events.push(super::store::image_event(Action::Load, &image.id, ""));
                    loaded.push(image.id.clone());
                }
                for n in names {
                    st.set_reference(batch, events, n, &image.id, Some(Action::Load))?;
                    loaded.push(Reference::familiar(n));
                }
            }
            Ok(())
        })?;
        Ok(loaded)
    }

    /// Images of an OCI image layout, named by their annotations.
    fn images_of_layout(&self, files: &mut Files) -> Result<Vec<(ImageRecord, Vec<String>)>> {
        let index: oci::Index = oci::parse("index.json", &files.small["index.json"])?;
        let mut out = Vec::new();
        for m in index.manifests {
            let mut d = Digest::parse(&m.digest)?;
            let mut raw = files.blob(&self.content, &d)?;
            let mut media_type = m.media_type.clone();
            if oci::is_index(&m.media_type, &raw) {
                let inner: oci::Index = oci::parse("index", &raw)?;
                let host = Platform::host();
                let pick = inner
                    .manifests
                    .iter()
                    .find(|x| x.platform.as_ref().is_some_and(|p| host.matches(p)))
                    .ok_or_else(|| {
                        Error::NotFound(format!("the archive's index {d} has no image for {host}"))
                    })?;
                d = Digest::parse(&pick.digest)?;
                raw = files.blob(&self.content, &d)?;
                media_type = pick.media_type.clone();
            }
            let manifest: oci::Manifest = oci::parse("manifest", &raw)?;
            let names = m
                .annotations
                .as_ref()
                .and_then(|a| {
                    a.get("io.containerd.image.name").or_else(|| {
                        a.get("org.opencontainers.image.ref.name")
                            .filter(|n| n.contains([':', '/']))
                    })
                })
                .and_then(|n| Reference::parse(n).ok())
                .filter(|r| r.tag.is_some())
                .map(|r| vec![r.to_string()])
                .unwrap_or_default();
            let config = Digest::parse(&manifest.config.digest)?;
            let config_raw = files.blob(&self.content, &config)?;
            let layers: Vec<(Digest, u64, String)> = manifest
                .layers
                .iter()
                .map(|l| {
                    let blob = Digest::parse(&l.digest)?;
                    files.blob_file(&self.content, &blob)?;
                    Ok((blob, l.size, l.media_type.clone()))
                })
                .collect::<Result<_>>()?;
            if media_type.is_empty() {
                media_type = manifest
                    .media_type
                    .clone()
                    .unwrap_or_else(|| oci::OCI_MANIFEST.into());
            }
            let image = self.record(&config_raw, &d, &media_type, layers)?;
            self.content.put(&raw)?;
            out.push((image, names));
        }
        Ok(out)
    }

    /// Images of a docker-archive: a manifest is made for each.
    fn images_of_docker_archive(
        &self,
        files: &mut Files,
    ) -> Result<Vec<(ImageRecord, Vec<String>)>> {
        let list: Vec<DockerManifest> = oci::parse("manifest.json", &files.small["manifest.json"])?;
        let mut out = Vec::new();
        for m in list {
            let config_raw = files.named(&self.content, &m.config)?;
            let config_digest = self.content.put(&config_raw)?;
            let mut layers = Vec::new();
            for path in &m.layers {
                let blob = files.named_blob(&self.content, path)?;
                let size = self.content.size(&blob).unwrap_or(0);
                let mut head = [0u8; 4];
                let n = self.content.open_blob(&blob)?.read(&mut head).unwrap_or(0);
                layers.push((
                    blob,
                    size,
                    Compression::detect(&head[..n])
                        .layer_media_type()
                        .to_string(),
                ));
            }
            let manifest = oci::Manifest {
                schema_version: 2,
                media_type: Some(oci::OCI_MANIFEST.into()),
                config: Descriptor {
                    media_type: oci::OCI_CONFIG.into(),
                    digest: config_digest.to_string(),
                    size: config_raw.len() as u64,
                    platform: None,
                    annotations: None,
                },
                layers: layers
                    .iter()
                    .map(|(d, size, mt)| Descriptor {
                        media_type: mt.clone(),
                        digest: d.to_string(),
                        size: *size,
                        platform: None,
                        annotations: None,
                    })
                    .collect(),
            };
            let raw = serde_json::to_vec(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
            let manifest_digest = self.content.put(&raw)?;
            let image = self.record(&config_raw, &manifest_digest, oci::OCI_MANIFEST, layers)?;
            let names = m
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse(t).map(|r| r.to_string()))
                .collect::<Result<Vec<_>>>()?;
            out.push((image, names));
        }
        Ok(out)
    }
}

/// An archive's path without "./" or a leading "/".
fn clean_name(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    s.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// What a loaded archive held: small files in memory, the others stored.
#[derive(Default)]
struct Files {
    small: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Digest>,
    memory: usize,
}

impl Files {
    /// The bytes of a document (a config) by its name in the archive.
    fn named(&self, content: &Content, name: &str) -> Result<Vec<u8>> {
        let name = clean_name(name.as_bytes());
        if let Some(data) = self.small.get(&name) {
            return Ok(data.clone());
        }
        match self.blobs.get(&name) {
            Some(d) => read_document(content, d),
            None => Err(Error::Invalid(format!(
                "the archive has no file {}",
                quote(&name)
            ))),
        }
    }

    /// A file by name, stored as a blob; its digest.
    fn named_blob(&mut self, content: &Content, name: &str) -> Result<Digest> {
        let name = clean_name(name.as_bytes());
        if let Some(d) = self.blobs.get(&name) {
            return Ok(d.clone());
        }
        let data = match self.small.get(&name) {
            Some(data) => data,
            None => {
                return Err(Error::Invalid(format!(
                    "the archive has no file {}",
                    quote(&name)
                )))
            }
        };
        let d = content.put(data)?;
        self.blobs.insert(name, d.clone());
        Ok(d)
    }

    /// A document (index, manifest) of the layout by digest, verified, as
    /// bytes.
    fn blob(&mut self, content: &Content, d: &Digest) -> Result<Vec<u8>> {
        self.blob_file(content, d)?;
        read_document(content, d)
    }

    /// Makes sure the layout's blob `d` is in the store, verified.
    fn blob_file(&mut self, content: &Content, d: &Digest) -> Result<()> {
        let name = format!("blobs/sha256/{}", d.hex());
        if let Some(data) = self.small.get(&name) {
            let got = sha256(data);
            if got != *d {
                return Err(Error::Mismatch(format!("{name} has digest {got}")));
            }
            content.put(data)?;
            return Ok(());
        }
        match self.blobs.get(&name) {
            Some(got) if got == d => Ok(()),
            Some(got) => Err(Error::Mismatch(format!("{name} has digest {got}"))),
            None => Err(Error::Invalid(format!("the archive has no blob {d}"))),
        }
    }
}

/// A stored document, refused past the size pull accepts: never read
/// whole into memory when it is larger.
fn read_document(content: &Content, d: &Digest) -> Result<Vec<u8>> {
    match content.size(d) {
        Some(n) if n > oci::MAX_DOCUMENT as u64 => Err(Error::Invalid(format!(
            "the archive's document {d} has {n} bytes: manifests, indexes and configs may have {}",
            oci::MAX_DOCUMENT
        ))),
        _ => content.read(d),
    }
}

/// A name from the archive for a message: at most 100 bytes of it.
fn quote(name: &str) -> String {
    format!("{:?}", Input(name.to_string()))
}
