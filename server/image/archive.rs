//! Archives: Save writes what Docker 25 writes, a tar that is both a
//! docker-archive (manifest.json) and an OCI image layout (oci-layout,
//! index.json, blobs/sha256/); Import makes a one-layer image of a root
//! filesystem tar; Load (load.rs) reads either archive. All run blocking,
//! on a thread of their own.

use super::compress::Compression;
use super::oci::{self, Descriptor, Platform};
use super::reference::{Digest, Reference};
use super::store::{ImageRecord, LayerRecord};

use super::{pull, Error, Images, Result};
use crate::spec::Input;
use berth::pb::Action;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Write};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DockerManifest {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

pub(super) fn tar_error(e: io::Error) -> Error {
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

    /// An image record for a config and its layer blobs (held), each
    /// layer unpacked unless it is already.
    pub(super) fn record(
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

    /// Refuses an import's Cmd and Env that no container could run: NUL
    /// in either, an Env entry that is not KEY=VALUE.
    pub fn check_import(cmd: &[String], env: &[String]) -> Result<()> {
        if let Some(c) = cmd.iter().find(|c| c.contains('\0')) {
            return Err(Error::Invalid(format!(
                "invalid CMD argument {:?}: it must not hold NUL",
                Input::from(c.as_str())
            )));
        }
        for e in env {
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() && !e.contains('\0') => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "invalid ENV {:?}: use KEY=VALUE, without NUL",
                        Input::from(e.as_str())
                    )))
                }
            }
        }
        Ok(())
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
