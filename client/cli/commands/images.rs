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

pub(super) fn table(rows: &[Vec<String>]) -> String {
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
            print_pruned(&r.removed);
            outln!("Total reclaimed space: {}", output::si(r.space_reclaimed));
            Ok(0)
        }
        ImageCommand::Ls(a) => super::image_list::list(channel, a).await,
        ImageCommand::Rm { force, images } => rmi(channel, force, images).await,
        ImageCommand::Pull {
            platform,
            quiet,
            reference,
        } => super::pull::pull(channel, reference, platform.unwrap_or_default(), quiet).await,
    }
}

/// What an image prune removed, as Docker lists it.
pub fn print_pruned(removed: &[pb::RemovedImage]) {
    if removed.is_empty() {
        return;
    }
    outln!("Deleted Images:");
    for step in removed {
        match step.untagged.is_empty() {
            false => outln!("untagged: {}", step.untagged),
            true => outln!("deleted: {}", step.deleted),
        }
    }
    outln!("");
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
