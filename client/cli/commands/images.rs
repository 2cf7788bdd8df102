//! Images: pull, images, rmi, tag, save, load, import, export, image
//! inspect and prune, login and logout, system df.

use crate::args::ImageCommand;
use crate::output::{self, outln};
use crate::Failure;
use berth::pb::{self, images_client::ImagesClient};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

type Client = ImagesClient<Channel>;

const CHUNK: usize = 256 << 10;

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Pulls `reference`, showing progress on stderr (bars on a terminal,
/// a line per step otherwise); returns the image id.
pub async fn pull_image(
    images: &mut Client,
    reference: &str,
    platform: &str,
    quiet: bool,
) -> Result<String, Failure> {
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
                eprintln!("Status: Downloaded image for {reference}");
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

pub async fn list(channel: Channel, a: crate::args::ImagesArgs) -> Result<u8, Failure> {
    let mut dangling = None;
    for f in &a.filter {
        match f.split_once('=') {
            Some(("dangling", v)) => dangling = Some(v == "true"),
            _ => {
                return Err(Failure(
                    format!("invalid filter {f:?}: berth knows dangling=true|false"),
                    125,
                ))
            }
        }
    }
    let images = ImagesClient::new(channel)
        .list(pb::ListImagesRequest {
            dangling,
            reference: a.reference.unwrap_or_default(),
        })
        .await?
        .into_inner()
        .images;
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for i in &images {
            if seen.insert(i.id.clone()) {
                outln!(
                    "{}",
                    if a.no_trunc {
                        i.id.clone()
                    } else {
                        short(&i.id)
                    }
                );
            }
        }
        return Ok(0);
    }
    let mut rows = vec![match a.digests {
        true => vec!["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
        false => vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
            .into_iter()
            .map(String::from)
            .collect(),
    }];
    for i in &images {
        let id = if a.no_trunc {
            i.id.clone()
        } else {
            short(&i.id)
        };
        let created = match &i.created {
            Some(_) => format!("{} ago", output::human(output::secs_since(&i.created))),
            None => "N/A".into(),
        };
        let digest = |repo: &str| {
            i.digests
                .iter()
                .find(|d| d.split('@').next() == Some(repo))
                .and_then(|d| d.split('@').nth(1))
                .unwrap_or("<none>")
                .to_string()
        };
        let names: Vec<(String, String)> = match i.tags.is_empty() {
            true => vec![("<none>".into(), "<none>".into())],
            false => i
                .tags
                .iter()
                .map(|t| match t.rsplit_once(':') {
                    Some((r, tag)) if !tag.contains('/') => (r.to_string(), tag.to_string()),
                    _ => (t.clone(), "<none>".into()),
                })
                .collect(),
        };
        for (repo, tag) in names {
            let mut row = vec![repo.clone(), tag];
            if a.digests {
                row.push(digest(&repo));
            }
            row.extend([id.clone(), created.clone(), output::si(i.size)]);
            rows.push(row);
        }
    }
    output::out!("{}", table(&rows));
    Ok(0)
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| match c + 1 == cols {
                true => v.clone(),
                false => format!("{v:<w$}", w = widths[c]),
            })
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

pub async fn rmi(channel: Channel, force: bool, names: Vec<String>) -> Result<u8, Failure> {
    let mut images = ImagesClient::new(channel);
    let mut failed = false;
    for n in names {
        match images
            .remove(pb::RemoveImageRequest { image: n, force })
            .await
        {
            Ok(r) => {
                for step in r.into_inner().removed {
                    match step.untagged.is_empty() {
                        false => outln!("Untagged: {}", step.untagged),
                        true => outln!("Deleted: {}", step.deleted),
                    }
                }
            }
            Err(s) => {
                eprintln!("Error response from daemon: {}", s.message());
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

pub async fn tag(channel: Channel, source: String, target: String) -> Result<u8, Failure> {
    ImagesClient::new(channel)
        .tag(pb::TagRequest { source, target })
        .await?;
    Ok(0)
}

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

pub async fn inspect(channel: Channel, format: String, names: Vec<String>) -> Result<u8, Failure> {
    let mut images = ImagesClient::new(channel);
    let mut values = Vec::new();
    let mut failed = false;
    for n in names {
        match images
            .inspect(pb::InspectImageRequest { image: n.clone() })
            .await
        {
            Ok(r) => values.push(crate::views::image_inspect(&r.into_inner())),
            Err(s) => {
                eprintln!("Error response from daemon: {}", s.message());
                failed = true;
            }
        }
    }
    crate::views::print_values(&format, &values)?;
    Ok(u8::from(failed))
}

pub async fn image(channel: Channel, command: ImageCommand) -> Result<u8, Failure> {
    match command {
        ImageCommand::Inspect { format, images } => inspect(channel, format, images).await,
        ImageCommand::Prune { all, force: _ } => {
            let r = ImagesClient::new(channel)
                .prune(pb::PruneImagesRequest { all })
                .await?
                .into_inner();
            if !r.removed.is_empty() {
                outln!("Deleted Images:");
            }
            for step in r.removed {
                match step.untagged.is_empty() {
                    false => outln!("untagged: {}", step.untagged),
                    true => outln!("deleted: {}", step.deleted),
                }
            }
            outln!("\nTotal reclaimed space: {}", output::si(r.space_reclaimed));
            Ok(0)
        }
        ImageCommand::Ls(a) => list(channel, a).await,
        ImageCommand::Rm { force, images } => rmi(channel, force, images).await,
        ImageCommand::Pull {
            platform,
            quiet,
            reference,
        } => pull(channel, reference, platform.unwrap_or_default(), quiet).await,
    }
}

pub async fn login(
    channel: Channel,
    registry: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<u8, Failure> {
    let username = username.ok_or_else(|| Failure("login needs --username".into(), 125))?;
    let password = match (password, password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::stdin()
                .read_to_string(&mut p)
                .map_err(|e| Failure(format!("read the password: {e}"), 1))?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        _ => {
            return Err(Failure(
                "give one of --password and --password-stdin".into(),
                125,
            ))
        }
    };
    ImagesClient::new(channel)
        .login(pb::LoginRequest {
            registry: registry.unwrap_or_default(),
            auth: Some(pb::RegistryAuth { username, password }),
        })
        .await?;
    outln!("Login Succeeded");
    Ok(0)
}

pub async fn logout(channel: Channel, registry: Option<String>) -> Result<u8, Failure> {
    let registry = registry.unwrap_or_default();
    ImagesClient::new(channel)
        .logout(pb::LogoutRequest {
            registry: registry.clone(),
        })
        .await?;
    outln!(
        "Removing login credentials for {}",
        if registry.is_empty() {
            "docker.io"
        } else {
            &registry
        }
    );
    Ok(0)
}

pub async fn df(channel: Channel) -> Result<u8, Failure> {
    let u = ImagesClient::new(channel)
        .disk_usage(pb::DiskUsageRequest {})
        .await?
        .into_inner();
    // TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE (with its share of SIZE).
    let row = |kind: &str, total: u64, active: u64, size: u64, free: u64| {
        let share = (free * 100).checked_div(size).unwrap_or(0);
        vec![
            kind.to_string(),
            total.to_string(),
            active.to_string(),
            output::si(size),
            format!("{} ({share}%)", output::si(free)),
        ]
    };
    let mut blobs = row("Blobs", 0, 0, u.blobs_size, 0);
    blobs[1].clear();
    blobs[2].clear();
    blobs[4].clear();
    let rows = vec![
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
            .map(String::from)
            .to_vec(),
        row(
            "Images",
            u.images,
            u.images_active,
            u.images_size,
            u.images_reclaimable,
        ),
        row(
            "Containers",
            u.containers,
            u.containers_active,
            u.containers_size,
            u.containers_reclaimable,
        ),
        blobs,
    ];
    output::out!("{}", table(&rows));
    Ok(0)
}
