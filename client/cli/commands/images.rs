//! Images: images, rmi, tag, image inspect and prune, login and logout,
//! system df (pull.rs pulls; archive.rs saves, loads, imports and exports).

use crate::args::ImageCommand;
use crate::output::{self, outln};
use crate::Failure;
use berth::pb::{self, images_client::ImagesClient};
use std::io::Read;
use tonic::transport::Channel;

pub(super) fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
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
        } => super::pull::pull(channel, reference, platform.unwrap_or_default(), quiet).await,
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
