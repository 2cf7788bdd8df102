//! Pull: resolve a reference (through mirrors, then the registry) to a
//! manifest for this platform, then fetch the config and the layers, in
//! parallel. Each layer is streamed once: the bytes are hashed into the
//! content store and, in the same pass, decompressed, hashed again (the
//! diff id) and unpacked. A layer becomes visible only when both digests
//! and the size are right.

use super::content::{Content, Hashing};
use super::layers::{Layers, Staging};
use super::oci::{self, Platform};
use super::reference::{Digest, Reference};
use super::registry::{Credentials, Session};
use super::store::{ImageRecord, LayerRecord};
use super::unpack::{self, Limits};
use super::{Error, Images, Result};
use berth::pb::{Action, PullProgress};
use futures_util::StreamExt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Layers fetched at once.
const PARALLEL: usize = 4;

type Progress = mpsc::Sender<PullProgress>;

fn progress(layer: &str, status: &str, current: u64, total: u64) -> PullProgress {
    PullProgress {
        layer: layer.to_string(),
        status: status.to_string(),
        current,
        total,
        image: None,
    }
}

/// A layer's new status: always delivered (the pull waits for room).
async fn say(p: &Progress, layer: &str, status: &str, current: u64, total: u64) {
    let _ = p.send(progress(layer, status, current, total)).await;
}

impl Images {
    pub async fn pull(
        self: &Arc<Self>,
        reference: &str,
        platform: &str,
        creds: Option<Credentials>,
        progress: Progress,
    ) -> Result<ImageRecord> {
        let r = Reference::parse(reference)?;
        let platform = match platform {
            "" => Platform::host(),
            p => Platform::parse(p)?,
        };
        let _gc = self.gc.read().await;
        let tag_or_digest = match (&r.digest, &r.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        };
        let (mut session, top, raw, media_type) = self.resolve(&r, &tag_or_digest, creds).await?;
        if let Some(d) = &r.digest {
            if *d != top {
                return Err(Error::Mismatch(format!(
                    "{reference}: the registry sent a manifest with digest {top}"
                )));
            }
        }
        let (manifest_digest, raw, media_type) = if oci::is_index(&media_type, &raw) {
            let index: oci::Index = oci::parse("index", &raw)?;
            let found = index
                .manifests
                .iter()
                .find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)));
            let Some(m) = found else {
                let have: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                return Err(Error::NotFound(format!(
                    "{reference} has no image for {platform} (it has {})",
                    have.join(", ")
                )));
            };
            let d = Digest::parse(&m.digest)?;
            let (raw, mt) =
                fetch_document(&mut session, &format!("manifests/{d}"), &oci::ACCEPT, &d).await?;
            (
                d,
                raw,
                if mt.is_empty() {
                    m.media_type.clone()
                } else {
                    mt
                },
            )
        } else {
            (top.clone(), raw, media_type)
        };
        let manifest: oci::Manifest = oci::parse("manifest", &raw)?;
        if manifest.config.media_type.contains("schema1") || manifest.schema_version != 2 {
            return Err(Error::Invalid(format!(
                "{reference}: Docker schema 1 manifests are not supported"
            )));
        }
        let config_digest = Digest::parse(&manifest.config.digest)?;
        let (config_raw, _) = fetch_document(
            &mut session,
            &format!("blobs/{config_digest}"),
            &[],
            &config_digest,
        )
        .await?;
        let config: oci::Config = oci::parse("image config", &config_raw)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Invalid(format!(
                "{reference}: the config lists {} layers, the manifest {}",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        let layers = manifest
            .layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|(l, diff)| {
                Ok(LayerRecord {
                    blob: Digest::parse(&l.digest)?.to_string(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    diff_id: Digest::parse(diff)?.to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for l in &layers {
            say(&progress, &l.blob, "waiting", 0, l.size).await;
        }
        // Every layer runs to its end even when one fails: what was
        // verified is kept for the next pull, and nothing is still being
        // written when the pull returns.
        let done: Vec<Result<u64>> = futures_util::stream::iter(layers.clone())
            .map(|l| {
                let (me, session, progress) = (self.clone(), session.clone(), progress.clone());
                async move { me.layer(session, l, progress).await }
            })
            .buffered(PARALLEL)
            .collect()
            .await;
        let sizes = done.into_iter().collect::<Result<Vec<u64>>>()?;
        self.content.put(&config_raw)?;
        self.content.put(&raw)?;
        let media_type = match media_type.as_str() {
            "" => manifest
                .media_type
                .clone()
                .unwrap_or_else(|| oci::OCI_MANIFEST.into()),
            mt => mt.to_string(),
        };
        let manifest_ref = (manifest_digest.to_string(), media_type);
        let image = ImageRecord::new(
            &config_raw,
            &config,
            manifest_ref,
            layers,
            sizes.iter().sum(),
        );
        let named = r.tagged().unwrap_or_else(|| r.with_digest(&top));
        self.change(|st, batch, events| {
            st.put_image(batch, &image)?;
            if r.tag.is_some() {
                st.set_reference(batch, events, &r.with_digest(&top), &image.id, None)?;
            }
            st.set_reference(batch, events, &named, &image.id, Some(Action::Pull))
        })?;
        tracing::info!(reference = %named, image = %image.id, "pulled");
        Ok(image)
    }

    /// The first endpoint that has the manifest: its session, the
    /// manifest's digest, bytes and media type.
    async fn resolve(
        &self,
        r: &Reference,
        tag_or_digest: &str,
        creds: Option<Credentials>,
    ) -> Result<(Session, Digest, Vec<u8>, String)> {
        let mut last = None;
        for e in self.registries.endpoints(&r.registry) {
            let mut session = self.registries.session(&e, &r.repository, creds.clone())?;
            match fetch_manifest(&mut session, tag_or_digest).await {
                Ok((digest, raw, mt)) => return Ok((session, digest, raw, mt)),
                Err(err) => {
                    tracing::warn!(endpoint = %e.base, reference = %r, error = %err, "manifest not fetched");
                    last = Some(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Internal("no endpoint".into())))
    }

    /// Fetches and unpacks one layer unless it is held; returns its
    /// unpacked size.
    async fn layer(
        self: Arc<Self>,
        mut session: Session,
        l: LayerRecord,
        progress: Progress,
    ) -> Result<u64> {
        let lock = {
            let mut map = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(l.blob.clone()).or_default().clone()
        };
        let _held = lock.lock().await;
        let blob = Digest::parse(&l.blob)?;
        let diff = Digest::parse(&l.diff_id)?;
        let (has_blob, has_layer) = (self.content.has(&blob), self.layers.has(&diff));
        let limits = self.limits;
        let result = if has_blob && has_layer {
            say(&progress, &l.blob, "exists", l.size, l.size).await;
            Ok(self.layers.size(&diff))
        } else if has_blob {
            let me = self.clone();
            tokio::task::spawn_blocking(move || {
                let file = me.content.open_blob(&blob)?;
                let (staging, size) = unpack_stream(file, &me.layers, &diff, limits)?;
                me.layers.commit(staging, &diff, size)?;
                Ok(size)
            })
            .await
            .map_err(|e| Error::Internal(format!("unpack: {e}")))?
        } else {
            let resp = session.get(&format!("blobs/{blob}"), &[]).await?;
            let (tx, rx) = mpsc::channel::<bytes::Bytes>(64);
            let me = self.clone();
            let (b, d, size) = (blob.clone(), diff.clone(), l.size);
            let worker = tokio::task::spawn_blocking(move || {
                fetch(
                    Chunks::new(rx),
                    &me.content,
                    &me.layers,
                    (b, size),
                    (!has_layer).then_some(d),
                    limits,
                )
            });
            let mut stream = resp.bytes_stream();
            let (mut got, mut said) = (0u64, Instant::now());
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| Error::Unavailable(format!("download {blob}: {e}")))?;
                got += chunk.len() as u64;
                if tx.send(chunk).await.is_err() {
                    break; // the worker failed: its error says why
                }
                // Bytes so far: skipped when the reader is behind.
                if said.elapsed() > Duration::from_millis(100) {
                    let _ = progress.try_send(self::progress(&l.blob, "downloading", got, l.size));
                    said = Instant::now();
                }
            }
            drop(tx);
            say(&progress, &l.blob, "verifying", got, l.size).await;
            match worker
                .await
                .map_err(|e| Error::Internal(format!("fetch: {e}")))?
            {
                Ok(Some(size)) => Ok(size),
                Ok(None) => Ok(self.layers.size(&diff)),
                Err(e) => Err(e),
            }
        };
        if result.is_ok() {
            say(&progress, &l.blob, "done", l.size, l.size).await;
        }
        drop(_held);
        let mut map = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) <= 2 {
            map.remove(&l.blob);
        }
        result
    }
}

async fn fetch_manifest(s: &mut Session, tag_or_digest: &str) -> Result<(Digest, Vec<u8>, String)> {
    let resp = s
        .get(&format!("manifests/{tag_or_digest}"), &oci::ACCEPT)
        .await?;
    let mt = content_type(&resp);
    let raw = read_limited(resp).await?;
    Ok((super::content::sha256(&raw), raw, mt))
}

/// A small document by digest, verified.
async fn fetch_document(
    s: &mut Session,
    path: &str,
    accept: &[&str],
    d: &Digest,
) -> Result<(Vec<u8>, String)> {
    let resp = s.get(path, accept).await?;
    let mt = content_type(&resp);
    let raw = read_limited(resp).await?;
    let got = super::content::sha256(&raw);
    if got != *d {
        return Err(Error::Mismatch(format!(
            "{path}: expected digest {d}, got {got}"
        )));
    }
    Ok((raw, mt))
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

async fn read_limited(resp: reqwest::Response) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::Unavailable(format!("read: {e}")))?;
        if out.len() + chunk.len() > oci::MAX_DOCUMENT {
            return Err(Error::Invalid(format!(
                "a manifest or config over {} bytes",
                oci::MAX_DOCUMENT
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Unpacks a (compressed) layer stream into a staging directory and checks
/// its diff id; returns the staging and the bytes of its files.
pub(super) fn unpack_stream(
    r: impl Read,
    layers: &Layers,
    diff: &Digest,
    limits: Limits,
) -> Result<(Staging, u64)> {
    let (staging, bytes, got) = unpack_new(r, layers, limits)?;
    if got != *diff {
        return Err(Error::Mismatch(format!(
            "layer {diff}: its content has digest {got}"
        )));
    }
    Ok((staging, bytes))
}

/// Unpacks a (compressed) layer stream into a staging directory; returns
/// it with the bytes of its files and the layer's diff id.
pub(super) fn unpack_new(
    r: impl Read,
    layers: &Layers,
    limits: Limits,
) -> Result<(Staging, u64, Digest)> {
    let staging = layers.stage()?;
    let stream = super::compress::decompressed(r, limits.stream_bound())
        .map_err(|e| Error::Invalid(format!("layer: {e}")))?;
    let mut hashing = Hashing::new(stream);
    let done = unpack::unpack(&mut hashing, &staging.fs(), limits)?;
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| Error::Invalid(format!("layer: {e}")))?;
    Ok((staging, done.bytes, hashing.digest()))
}

/// Writes a blob as it streams in and, if `unpack_as` says a diff id,
/// unpacks it in the same pass. Returns the unpacked size if it did.
pub(super) fn fetch(
    r: impl Read,
    content: &Content,
    layers: &Layers,
    expect: (Digest, u64),
    unpack_as: Option<Digest>,
    limits: Limits,
) -> Result<Option<u64>> {
    let mut writer = content.writer(Some(expect))?;
    let mut tee = Tee::new(r, &mut writer);
    let unpacked = match &unpack_as {
        Some(diff) => Some(unpack_stream(&mut tee, layers, diff, limits)?),
        None => None,
    };
    io::copy(&mut tee, &mut io::sink()).map_err(|e| Error::Mismatch(format!("blob: {e}")))?;
    drop(tee);
    writer.commit(content)?;
    match (unpacked, unpack_as) {
        (Some((staging, size)), Some(diff)) => {
            layers.commit(staging, &diff, size)?;
            Ok(Some(size))
        }
        _ => Ok(None),
    }
}

/// Copies what is read into a writer, and keeps the first bytes.
pub(super) struct Tee<'a, R, W> {
    inner: R,
    out: &'a mut W,
    pub head: Vec<u8>,
}

impl<'a, R, W> Tee<'a, R, W> {
    pub fn new(inner: R, out: &'a mut W) -> Self {
        Tee {
            inner,
            out,
            head: Vec::new(),
        }
    }
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        if self.head.len() < 8 {
            let take = (8 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

/// A blocking reader over chunks sent by the async side.
pub(super) struct Chunks {
    rx: mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl Chunks {
    pub fn new(rx: mpsc::Receiver<bytes::Bytes>) -> Chunks {
        Chunks {
            rx,
            current: bytes::Bytes::new(),
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.current = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
