//! Archives: Save writes what Docker 25 writes, a tar that is both a
//! docker-archive (manifest.json) and an OCI image layout (oci-layout,
//! index.json, blobs/sha256/); Load reads either (an OCI layout first, if
//! it has one); Import makes a one-layer image of a root filesystem tar.
//! All three run blocking, on a thread of their own.

use super::content::{sha256, Content};
use super::oci::{self, Descriptor, Platform};
use super::reference::{Digest, Reference};
use super::store::{ImageRecord, LayerRecord};
use super::unpack::{self, Compression};
use super::{pull, Error, Images, Result};
use berth::pb::Action;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::sync::Arc;

/// Files of a loaded archive kept in memory (the rest go to the content
/// store as they stream), in all.
const IN_MEMORY: usize = 64 << 20;
const SMALL: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn tar_error(e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EPIPE) => Error::Unavailable("the client went away".into()),
        _ => Error::Invalid(format!("archive: {e}")),
    }
}

impl Images {
    /// Writes `names` (references or ids) as one archive.
    pub fn save(&self, names: &[String], out: impl Write) -> Result<()> {
        let mut images: Vec<(ImageRecord, Vec<String>)> = Vec::new();
        for n in names {
            let image = self.find(n)?;
            let refs = match Reference::parse(n) {
                Ok(r)
                    if self.state().references.get(&r.to_string()) == Some(&image.id)
                        && r.tag.is_some() =>
                {
                    vec![r.to_string()]
                }
                _ => Vec::new(),
            };
            match images.iter_mut().find(|(i, _)| i.id == image.id) {
                Some((_, r)) => r.extend(refs),
                None => images.push((image, refs)),
            }
        }
        // Every blob is opened first: a removal meanwhile cannot take one.
        let mut files = Vec::new();
        let mut seen = HashSet::new();
        let mut index = Vec::new();
        let mut docker = Vec::new();
        for (image, refs) in &images {
            let mut blobs = vec![image.id.clone(), image.manifest.clone()];
            blobs.extend(image.layers.iter().map(|l| l.blob.clone()));
            for b in blobs {
                if seen.insert(b.clone()) {
                    let d = Digest::parse(&b)?;
                    files.push((d.clone(), self.content.open_blob(&d)?));
                }
            }
            let manifest = Digest::parse(&image.manifest)?;
            let size = self.content.size(&manifest).unwrap_or(0);
            let entry = |annotations| Descriptor {
                media_type: image.manifest_media_type.clone(),
                digest: image.manifest.clone(),
                size,
                platform: None,
                annotations,
            };
            if refs.is_empty() {
                index.push(entry(None));
            }
            for r in refs {
                let tag = Reference::parse(r)?.tag.unwrap_or_default();
                index.push(entry(Some(BTreeMap::from([
                    ("io.containerd.image.name".to_string(), r.clone()),
                    ("org.opencontainers.image.ref.name".to_string(), tag),
                ]))));
            }
            docker.push(DockerManifest {
                config: blob_path(&image.id),
                repo_tags: Some(refs.iter().map(|r| Reference::familiar(r)).collect()),
                layers: image.layers.iter().map(|l| blob_path(&l.blob)).collect(),
            });
        }
        let mut tar = tar::Builder::new(out);
        let json = |v: &dyn erased::Json| v.bytes();
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(tar::EntryType::Directory, 0, 0o755);
            tar.append_data(&mut h, dir, io::empty())
                .map_err(tar_error)?;
        }
        for (d, file) in files {
            let len = file
                .metadata()
                .map_err(|e| Error::io("stat blob", e))?
                .len();
            let mut h = header(tar::EntryType::Regular, len, 0o644);
            tar.append_data(&mut h, blob_path(d.as_str()), file)
                .map_err(tar_error)?;
        }
        let layout = serde_json::json!({"imageLayoutVersion": "1.0.0"});
        let idx = oci::Index {
            schema_version: 2,
            media_type: Some(oci::OCI_INDEX.into()),
            manifests: index,
        };
        for (name, data) in [
            ("oci-layout", json(&layout)),
            ("index.json", json(&idx)),
            ("manifest.json", json(&docker)),
        ] {
            let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
            tar.append_data(&mut h, name, data.as_slice())
                .map_err(tar_error)?;
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(tar_error)?;
        let _ = self.change(|_, _, events| {
            for (image, refs) in &images {
                events.push(super::store::image_event(
                    Action::Save,
                    &image.id,
                    refs.first().map_or("", String::as_str),
                ));
            }
            Ok(())
        });
        Ok(())
    }

    /// Reads an archive; returns what it loaded: references, or ids of
    /// images without one.
    pub fn load(self: &Arc<Self>, r: impl Read) -> Result<Vec<String>> {
        let stream = unpack::decompressed(r, u64::MAX)
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

    /// An image record for a config and its layer blobs (held), each
    /// layer unpacked unless it is already.
    fn record(
        &self,
        config_raw: &[u8],
        manifest: &Digest,
        media_type: &str,
        layers: Vec<(Digest, u64, String)>,
    ) -> Result<ImageRecord> {
        let config: oci::Config = oci::parse("image config", config_raw)?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(Error::Invalid(format!(
                "image config lists {} layers, its manifest {}",
                config.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let mut records = Vec::new();
        let mut size = 0;
        for ((blob, blob_size, media_type), diff) in layers.into_iter().zip(&config.rootfs.diff_ids)
        {
            let diff = Digest::parse(diff)?;
            if !self.layers.has(&diff) {
                let file = self.content.open_blob(&blob)?;
                let (staging, bytes) = pull::unpack_stream(file, &self.layers, &diff, self.limits)?;
                self.layers.commit(staging, &diff, bytes)?;
            }
            size += self.layers.size(&diff);
            records.push(LayerRecord {
                blob: blob.to_string(),
                media_type,
                size: blob_size,
                diff_id: diff.to_string(),
            });
        }
        let manifest = (manifest.to_string(), media_type.to_string());
        Ok(ImageRecord::new(
            config_raw, &config, manifest, records, size,
        ))
    }

    /// Makes a one-layer image of a root filesystem tar.
    pub fn import(
        &self,
        r: impl Read,
        reference: Option<Reference>,
        cmd: Vec<String>,
        env: Vec<String>,
    ) -> Result<String> {
        let mut writer = self.content.writer(None)?;
        let mut tee = pull::Tee::new(r, &mut writer);
        let (staging, bytes, diff) = pull::unpack_new(&mut tee, &self.layers, self.limits)?;
        io::copy(&mut tee, &mut io::sink()).map_err(|e| Error::Invalid(format!("import: {e}")))?;
        let head = std::mem::take(&mut tee.head);
        drop(tee);
        let (blob, blob_size) = writer.commit(&self.content)?;
        self.layers.commit(staging, &diff, bytes)?;
        let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let platform = Platform::host();
        let mut run = serde_json::Map::new();
        if !cmd.is_empty() {
            run.insert("Cmd".into(), serde_json::json!(cmd));
        }
        if !env.is_empty() {
            run.insert("Env".into(), serde_json::json!(env));
        }
        let config = serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "created": now,
            "config": run,
            "rootfs": {"type": "layers", "diff_ids": [diff.to_string()]},
            "history": [{"created": now, "created_by": "berth import"}],
        });
        let config_raw = serde_json::to_vec(&config).map_err(|e| Error::Internal(e.to_string()))?;
        let config_digest = self.content.put(&config_raw)?;
        let media_type = Compression::detect(&head).layer_media_type();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": oci::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_raw.len()},
            "layers": [{"mediaType": media_type, "digest": blob.to_string(), "size": blob_size}],
        });
        let raw = serde_json::to_vec(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        let manifest_digest = self.content.put(&raw)?;
        let image = self.record(
            &config_raw,
            &manifest_digest,
            oci::OCI_MANIFEST,
            vec![(blob, blob_size, media_type.into())],
        )?;
        let id = image.id.clone();
        self.change(|st, batch, events| {
            st.put_image(batch, &image)?;
            match &reference {
                Some(r) => {
                    st.set_reference(batch, events, &r.to_string(), &id, Some(Action::Import))
                }
                None => {
                    events.push(super::store::image_event(Action::Import, &id, ""));
                    Ok(())
                }
            }
        })?;
        Ok(id)
    }
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
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
    /// The bytes of a file by its name in the archive.
    fn named(&self, content: &Content, name: &str) -> Result<Vec<u8>> {
        let name = clean_name(name.as_bytes());
        if let Some(data) = self.small.get(&name) {
            return Ok(data.clone());
        }
        match self.blobs.get(&name) {
            Some(d) => content.read(d),
            None => Err(Error::Invalid(format!("the archive has no file {name:?}"))),
        }
    }

    /// A file by name, stored as a blob; its digest.
    fn named_blob(&mut self, content: &Content, name: &str) -> Result<Digest> {
        let name = clean_name(name.as_bytes());
        if let Some(d) = self.blobs.get(&name) {
            return Ok(d.clone());
        }
        let data = self.named(content, &name)?;
        let d = content.put(&data)?;
        self.blobs.insert(name, d.clone());
        Ok(d)
    }

    /// A blob of the layout by digest, verified, as bytes.
    fn blob(&mut self, content: &Content, d: &Digest) -> Result<Vec<u8>> {
        self.blob_file(content, d)?;
        content.read(d)
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

/// JSON of any serializable value, for the few documents Save writes.
mod erased {
    pub trait Json {
        fn bytes(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Json for T {
        fn bytes(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}
