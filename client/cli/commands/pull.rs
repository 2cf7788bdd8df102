//! `berth pull`, and the pull `run` and `create` make: progress per layer
//! on stderr, bars redrawn in place on a terminal, a line per step
//! otherwise.

use super::images::short;
use crate::output::{self, outln};
use crate::Failure;
use berth::pb::{self, images_client::ImagesClient};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

type Client = ImagesClient<Channel>;

/// Pulls `reference`, showing progress on stderr (bars on a terminal,
/// a line per step otherwise); returns the image id.
pub async fn pull_image(
    images: &mut Client,
    reference: &str,
    platform: &str,
    quiet: bool,
) -> Result<String, Failure> {
    // What the reference names now: the pull says whether it changed.
    let before = images
        .inspect(pb::InspectImageRequest {
            image: reference.to_string(),
        })
        .await
        .ok()
        .and_then(|r| r.into_inner().image)
        .map(|i| i.id);
    let mut stream = images
        .pull(pb::PullRequest {
            reference: reference.to_string(),
            platform: platform.to_string(),
            auth: None,
        })
        .await?
        .into_inner();
    let tty = std::io::stderr().is_terminal() && !quiet;
    let mut layers: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut drawn = 0;
    while let Some(p) = stream.next().await {
        let p = p?;
        if let Some(image) = p.image {
            if !quiet {
                let digest = image
                    .digests
                    .first()
                    .and_then(|d| d.split('@').nth(1))
                    .unwrap_or("");
                eprintln!("Digest: {digest}");
                let named = tagged(reference);
                match before.as_deref() == Some(image.id.as_str()) {
                    true => eprintln!("Status: Image is up to date for {named}"),
                    false => eprintln!("Status: Downloaded newer image for {named}"),
                }
            }
            return Ok(image.id);
        }
        if quiet {
            continue;
        }
        let id = short(&p.layer);
        let line = match p.status.as_str() {
            "downloading" if tty => format!("{id}: Downloading {}", bar(p.current, p.total)),
            "downloading" => continue,
            "waiting" => format!("{id}: Waiting"),
            "verifying" => format!("{id}: Verifying Checksum"),
            "exists" => format!("{id}: Already exists"),
            "done" => format!("{id}: Pull complete"),
            s => format!("{id}: {s}"),
        };
        if !tty {
            eprintln!("{line}");
            continue;
        }
        if !layers.contains_key(&id) {
            layers.insert(id.clone(), (order.len(), String::new()));
            order.push(id.clone());
        }
        if let Some(l) = layers.get_mut(&id) {
            l.1 = line;
        }
        // Redraw every layer's line in place.
        let mut err = std::io::stderr();
        if drawn > 0 {
            let _ = write!(err, "\x1b[{drawn}A");
        }
        for id in &order {
            let _ = writeln!(err, "\x1b[2K{}", layers[id].1);
        }
        drawn = order.len();
    }
    Err(Failure("the pull ended without an image".into(), 1))
}

/// The reference with ":latest" if it names neither a tag nor a digest,
/// as Docker's pull says it.
fn tagged(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    match last.contains([':', '@']) {
        true => reference.to_string(),
        false => format!("{reference}:latest"),
    }
}

fn bar(current: u64, total: u64) -> String {
    let width = 40;
    let filled = (current.min(total) * width).checked_div(total).unwrap_or(0) as usize;
    format!(
        "[{}>{}] {}/{}",
        "=".repeat(filled),
        " ".repeat(width as usize - filled),
        output::bytes(current),
        output::bytes(total)
    )
}

pub async fn pull(
    channel: Channel,
    reference: String,
    platform: String,
    quiet: bool,
) -> Result<u8, Failure> {
    let mut images = ImagesClient::new(channel);
    if !quiet {
        let name = reference.split('@').next().unwrap_or(&reference);
        let (name, tag) = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, t),
            _ => (name, "latest"),
        };
        eprintln!("{tag}: Pulling from {name}");
    }
    pull_image(&mut images, &reference, &platform, quiet).await?;
    outln!("{reference}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reference_without_tag_is_latest() {
        assert_eq!(super::tagged("busybox"), "busybox:latest");
        assert_eq!(
            super::tagged("127.0.0.1:5000/a/b"),
            "127.0.0.1:5000/a/b:latest"
        );
        assert_eq!(super::tagged("a:1"), "a:1");
        assert_eq!(super::tagged("a@sha256:00"), "a@sha256:00");
    }
}
