//! The daemon itself: version, info, container prune and system prune.

use crate::args::ContainerCommand;
use crate::template::Format;
use crate::{output, Api, Failure};
use berth::pb::{self, system_client::SystemClient};
use serde_json::json;
use tonic::transport::Channel;

const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The client's half of `berth version`, printed before the daemon is
/// asked, so it shows even when the daemon cannot be reached.
pub fn client_version() {
    output::out!(
        "Client:\n Version:    {CLIENT_VERSION}\n API:        berth.v1\n OS/Arch:    {}/{}\n",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
}

pub async fn version(channel: Channel, format: &str) -> Result<u8, Failure> {
    let v = SystemClient::new(channel)
        .version(pb::VersionRequest {})
        .await?
        .into_inner();
    let value = json!({
        "Client": {
            "Version": CLIENT_VERSION,
            "ApiVersion": "berth.v1",
            "Os": std::env::consts::OS,
            "Arch": std::env::consts::ARCH,
        },
        "Server": {
            "Version": v.version,
            "ApiVersion": v.api_version,
            "Os": v.os,
            "Arch": v.arch,
            "KernelVersion": v.kernel_version,
        },
    });
    if print_formatted(format, &value)? {
        return Ok(0);
    }
    output::out!(
        "\nServer:\n Version:    {}\n API:        {}\n OS/Arch:    {}/{}\n Kernel:     {}\n",
        v.version,
        v.api_version,
        v.os,
        v.arch,
        v.kernel_version
    );
    Ok(0)
}

pub async fn info(channel: Channel, format: &str) -> Result<u8, Failure> {
    let i = SystemClient::new(channel)
        .info(pb::InfoRequest {})
        .await?
        .into_inner();
    let value = json!({
        "ServerVersion": i.version,
        "Containers": i.containers,
        "ContainersRunning": i.containers_running,
        "ContainersPaused": i.containers_paused,
        "ContainersStopped": i.containers_stopped,
        "CgroupVersion": i.cgroup_version.to_string(),
        "CgroupDriver": i.cgroup_driver,
        "CgroupParent": i.cgroup_parent,
        "RootDir": i.root,
        "KernelVersion": i.kernel_version,
        "OperatingSystem": i.operating_system,
        "Architecture": i.arch,
        "NCPU": i.cpus,
        "MemTotal": i.memory_bytes,
        "Name": i.name,
        "EventsSeq": i.events_seq,
    });
    if print_formatted(format, &value)? {
        return Ok(0);
    }
    output::out!(
        "Server Version: {}\nContainers: {}\n Running: {}\n Paused: {}\n Stopped: {}\nCgroup Driver: {}\nCgroup Version: {}\nCgroup Parent: {}\nKernel Version: {}\nOperating System: {}\nArchitecture: {}\nCPUs: {}\nTotal Memory: {}\nName: {}\nBerth Root Dir: {}\nEvents: {} (last seq)\n",
        i.version,
        i.containers,
        i.containers_running,
        i.containers_paused,
        i.containers_stopped,
        i.cgroup_driver,
        i.cgroup_version,
        i.cgroup_parent,
        i.kernel_version,
        i.operating_system,
        i.arch,
        i.cpus,
        output::bytes(i.memory_bytes),
        i.name,
        i.root,
        i.events_seq
    );
    Ok(0)
}

/// Prints `value` for `--format json` or a template; false for the
/// default text.
fn print_formatted(format: &str, value: &serde_json::Value) -> Result<bool, Failure> {
    match Format::parse(format)? {
        Format::Table => Ok(false),
        Format::Json => {
            output::outln!("{value}");
            Ok(true)
        }
        Format::Template(t) => {
            output::outln!("{}", t.render(value)?);
            Ok(true)
        }
    }
}

pub async fn container(api: &mut Api, command: ContainerCommand) -> Result<u8, Failure> {
    let ContainerCommand::Prune { force, filter } = command;
    let mut req = pb::PruneRequest::default();
    for f in &filter {
        let (k, v) = super::key_value(f, "filter")?;
        match k.as_str() {
            "label" => {
                let (lk, lv) = v.split_once('=').unwrap_or((&v, ""));
                req.labels.insert(lk.into(), lv.into());
            }
            "until" => req.until = Some(super::parse_time(&v)?),
            _ => {
                return Err(Failure(
                    format!("invalid filter {k:?}: use label= or until="),
                    125,
                ))
            }
        }
    }
    if !force && !confirmed("WARNING! This will remove all stopped containers.")? {
        return Ok(0);
    }
    let r = api.prune(req).await?.into_inner();
    print_containers(&r.removed);
    output::outln!("Total reclaimed space: {}", output::si(r.reclaimed_bytes));
    Ok(0)
}

fn print_containers(removed: &[String]) {
    if !removed.is_empty() {
        output::outln!("Deleted Containers:");
        for id in removed {
            output::outln!("{id}");
        }
        output::outln!("");
    }
}

/// `system prune`: stopped containers, unused networks, then dangling
/// images (every unused one with `all`), as Docker's.
pub async fn prune(channel: Channel, all: bool, force: bool) -> Result<u8, Failure> {
    let images = match all {
        true => "all images without at least one container associated to them",
        false => "all dangling images",
    };
    let warning = format!(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - {images}\n"
    );
    if !force && !confirmed(&warning)? {
        return Ok(0);
    }
    let containers = Api::new(channel.clone())
        .prune(pb::PruneRequest::default())
        .await?
        .into_inner();
    print_containers(&containers.removed);
    let networks = super::network::prune(&mut pb::networks_client::NetworksClient::new(
        channel.clone(),
    ))
    .await?;
    if !networks.is_empty() {
        output::outln!("Deleted Networks:");
        for name in &networks {
            output::outln!("{name}");
        }
        output::outln!("");
    }
    let images = pb::images_client::ImagesClient::new(channel)
        .prune(pb::PruneImagesRequest { all })
        .await?
        .into_inner();
    super::images::print_pruned(&images.removed);
    let total = containers.reclaimed_bytes + images.space_reclaimed;
    output::outln!("Total reclaimed space: {}", output::si(total));
    Ok(0)
}

/// Docker's question before a prune, after `warning`; anything but y or
/// yes is no.
pub fn confirmed(warning: &str) -> Result<bool, Failure> {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure(format!("cannot read the answer: {e}"), 1))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
