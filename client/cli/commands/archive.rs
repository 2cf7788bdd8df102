//! Archives through the CLI: save and export to a file or stdout, load
//! and import from a file or stdin, in chunks.

use crate::output::outln;
use crate::Failure;
use berth::pb::{self, images_client::ImagesClient};
use std::io::{IsTerminal, Read, Write};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const CHUNK: usize = 256 << 10;

/// Writes a stream of chunks to a file, or to stdout (refused on a terminal).
async fn write_chunks(
    mut stream: tonic::Streaming<pb::Chunk>,
    output: Option<std::path::PathBuf>,
) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure(format!("write: {e}"), 1);
    let mut out: Box<dyn Write> = match &output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(io)?),
        None if std::io::stdout().is_terminal() => {
            return Err(Failure(
                "refusing to write an archive to a terminal: use -o or redirect".into(),
                1,
            ))
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let written = async {
        while let Some(c) = stream.next().await {
            out.write_all(&c?.data).map_err(io)?;
        }
        out.flush().map_err(io)
    }
    .await;
    if written.is_err() {
        if let Some(p) = &output {
            let _ = std::fs::remove_file(p);
        }
    }
    written
}

pub async fn save(
    channel: Channel,
    output: Option<std::path::PathBuf>,
    names: Vec<String>,
) -> Result<u8, Failure> {
    let stream = ImagesClient::new(channel)
        .save(pb::SaveRequest { images: names })
        .await?
        .into_inner();
    write_chunks(stream, output).await?;
    Ok(0)
}

/// Reads a file (or stdin) in chunks made into messages by `make`.
fn chunks<T: Send + 'static>(
    input: Option<std::path::PathBuf>,
    make: impl Fn(Vec<u8>, bool) -> T + Send + 'static,
) -> Result<impl tokio_stream::Stream<Item = T>, Failure> {
    let mut r: Box<dyn Read + Send> = match &input {
        Some(p) => Box::new(
            std::fs::File::open(p).map_err(|e| Failure(format!("open {}: {e}", p.display()), 1))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        let mut first = true;
        loop {
            let mut buf = vec![0u8; CHUNK];
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(make(buf, first)).is_err() {
                        break;
                    }
                    first = false;
                }
            }
        }
        if first {
            let _ = tx.blocking_send(make(Vec::new(), true));
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

pub async fn load(
    channel: Channel,
    input: Option<std::path::PathBuf>,
    quiet: bool,
) -> Result<u8, Failure> {
    let stream = chunks(input, |data, _| pb::LoadRequest { data })?;
    let loaded = ImagesClient::new(channel)
        .load(stream)
        .await?
        .into_inner()
        .loaded;
    if !quiet {
        for l in loaded {
            match l.starts_with("sha256:") {
                true => outln!("Loaded image ID: {l}"),
                false => outln!("Loaded image: {l}"),
            }
        }
    }
    Ok(0)
}

pub async fn import(
    channel: Channel,
    file: String,
    reference: Option<String>,
    change: Vec<String>,
) -> Result<u8, Failure> {
    let (mut cmd, mut env) = (Vec::new(), Vec::new());
    for c in change {
        match c.split_once(' ') {
            Some(("CMD", v)) => {
                cmd = serde_json::from_str(v.trim())
                    .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), v.trim().into()])
            }
            Some(("ENV", v)) => env.push(v.trim().replacen(' ', "=", 1)),
            _ => {
                return Err(Failure(
                    format!("invalid change {c:?}: berth knows CMD and ENV"),
                    125,
                ))
            }
        }
    }
    let input = (file != "-").then(|| std::path::PathBuf::from(&file));
    let reference = reference.unwrap_or_default();
    let stream = chunks(input, move |data, first| pb::ImportRequest {
        reference: if first {
            reference.clone()
        } else {
            String::new()
        },
        data,
        cmd: if first { cmd.clone() } else { Vec::new() },
        env: if first { env.clone() } else { Vec::new() },
    })?;
    let id = ImagesClient::new(channel)
        .import(stream)
        .await?
        .into_inner()
        .id;
    outln!("{id}");
    Ok(0)
}

pub async fn export(
    channel: Channel,
    output: Option<std::path::PathBuf>,
    container: String,
) -> Result<u8, Failure> {
    let stream = ImagesClient::new(channel)
        .export(pb::ExportRequest { container })
        .await?
        .into_inner();
    write_chunks(stream, output).await?;
    Ok(0)
}
