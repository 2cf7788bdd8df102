//! What is there: ps, inspect, stats and top.

use crate::args::PsArgs;
use crate::template::Format;
use crate::{output, views, Api, Failure};
use berth::pb::{self, images_client::ImagesClient, networks_client::NetworksClient, Status};
use tonic::transport::Channel;

pub async fn ps(api: &mut Api, a: PsArgs) -> Result<u8, Failure> {
    let format = Format::parse(&a.format)?;
    let filters = a
        .filter
        .iter()
        .map(|f| PsFilter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let last = if a.latest { Some(1) } else { a.last };
    // As docker ps: -n, -l and a status or exited filter look at every
    // container, not only running ones.
    // before= and since= name a container that may not run: every one is
    // listed, then only running ones kept unless -a.
    let relative = filters.iter().any(PsFilter::is_relative);
    let all = a.all || last.is_some() || relative || filters.iter().any(PsFilter::needs_all);
    let mut list = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = api
            .list(pb::ListRequest {
                all,
                page_token,
                size: a.size,
                ..Default::default()
            })
            .await?
            .into_inner();
        list.extend(page.containers);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let filters = filters
        .into_iter()
        .map(|f| f.resolve(&list))
        .collect::<Result<Vec<_>, _>>()?;
    if relative && !(a.all || last.is_some() || filters.iter().any(PsFilter::needs_all)) {
        list.retain(|c| {
            c.state.as_ref().is_some_and(|s| {
                [Status::Running, Status::Paused, Status::Restarting]
                    .iter()
                    .any(|&up| s.status == up as i32)
            })
        });
    }
    list.retain(|c| matches(&filters, c));
    if let Some(n) = last {
        list.truncate(n);
    }
    if a.quiet {
        for c in &list {
            let id = views::ps_row(c, a.no_trunc)["ID"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            output::outln!("{id}");
        }
        return Ok(0);
    }
    match format {
        Format::Table => output::out!("{}", output::ps_table(&list, a.no_trunc, a.size)),
        Format::Json => {
            for c in &list {
                output::outln!("{}", views::ps_row(c, a.no_trunc));
            }
        }
        Format::Template(t) => {
            let rows: Vec<_> = list.iter().map(|c| views::ps_row(c, a.no_trunc)).collect();
            output::out!("{}", t.lines(&rows, &views::ps_header())?);
        }
    }
    Ok(0)
}

/// One `ps --filter`; filters of one kind match if any does, and every
/// kind given must match.
enum PsFilter {
    Status(Status),
    Name(String),
    Label(String, Option<String>),
    Id(String),
    Exited(i32),
    /// Made from this image (as named, or its id).
    Ancestor(String),
    Network(String),
    /// A container port published ("80", "80/tcp").
    Publish(String),
    /// A container port exposed (published ones are exposed too).
    Expose(String),
    /// A mount's destination or source.
    Volume(String),
    /// Health: starting, healthy, unhealthy or none.
    Health(String),
    /// Created before or after the container named; resolved to its
    /// creation time (seconds, nanoseconds) once the list is there.
    Before(String, Option<(i64, i32)>),
    Since(String, Option<(i64, i32)>),
}

impl PsFilter {
    fn parse(f: &str) -> Result<PsFilter, Failure> {
        let bad = |why: String| Failure(format!("invalid filter {f:?}: {why}"), 125);
        let (k, v) = super::key_value(f, "filter")?;
        Ok(match k.as_str() {
            "status" => PsFilter::Status(match v.as_str() {
                "created" => Status::Created,
                "running" => Status::Running,
                "paused" => Status::Paused,
                "exited" => Status::Exited,
                "restarting" => Status::Restarting,
                _ => {
                    return Err(bad(
                        "status is created, running, paused, exited or restarting".into(),
                    ))
                }
            }),
            "name" => PsFilter::Name(v),
            "label" => match v.split_once('=') {
                Some((k, v)) => PsFilter::Label(k.into(), Some(v.into())),
                None => PsFilter::Label(v, None),
            },
            "id" => PsFilter::Id(v),
            "exited" => PsFilter::Exited(
                v.parse()
                    .map_err(|_| bad("exited takes an exit code".into()))?,
            ),
            "ancestor" => PsFilter::Ancestor(v),
            "network" => PsFilter::Network(v),
            "publish" => PsFilter::Publish(v),
            "expose" => PsFilter::Expose(v),
            "volume" => PsFilter::Volume(v),
            "health" => match v.as_str() {
                "starting" | "healthy" | "unhealthy" | "none" => PsFilter::Health(v),
                _ => return Err(bad("health is starting, healthy, unhealthy or none".into())),
            },
            "before" => PsFilter::Before(v, None),
            "since" => PsFilter::Since(v, None),
            _ => return Err(bad("use status=, name=, label=, id=, exited=, ancestor=, network=, publish=, expose=, volume=, health=, before= or since=".into())),
        })
    }

    fn needs_all(&self) -> bool {
        matches!(self, PsFilter::Status(_) | PsFilter::Exited(_))
    }

    fn is_relative(&self) -> bool {
        matches!(self, PsFilter::Before(..) | PsFilter::Since(..))
    }

    /// before= and since= with the creation time of the container they
    /// name, found in `list` (every container).
    fn resolve(self, list: &[pb::Container]) -> Result<PsFilter, Failure> {
        let created = |name: &str| {
            list.iter()
                .find(|c| c.name == name || c.id == name)
                .or_else(|| {
                    let mut by_prefix = list.iter().filter(|c| c.id.starts_with(name));
                    by_prefix.next().filter(|_| by_prefix.next().is_none())
                })
                .and_then(|c| c.created_at)
                .map(|t| (t.seconds, t.nanos))
                .ok_or_else(|| {
                    Failure(
                        format!("Error response from daemon: no such container {name}"),
                        1,
                    )
                })
        };
        Ok(match self {
            PsFilter::Before(n, _) => {
                let t = created(&n)?;
                PsFilter::Before(n, Some(t))
            }
            PsFilter::Since(n, _) => {
                let t = created(&n)?;
                PsFilter::Since(n, Some(t))
            }
            f => f,
        })
    }

    const LAST_KIND: u8 = 12;

    /// Filters of the same kind are alternatives.
    fn kind(&self) -> u8 {
        match self {
            PsFilter::Status(_) => 0,
            PsFilter::Name(_) => 1,
            PsFilter::Label(..) => 2,
            PsFilter::Id(_) => 3,
            PsFilter::Exited(_) => 4,
            PsFilter::Ancestor(_) => 5,
            PsFilter::Network(_) => 6,
            PsFilter::Publish(_) => 7,
            PsFilter::Expose(_) => 8,
            PsFilter::Volume(_) => 9,
            PsFilter::Before(..) => 10,
            PsFilter::Since(..) => 11,
            PsFilter::Health(_) => 12,
        }
    }

    fn matches(&self, c: &pb::Container) -> bool {
        let st = c.state.clone().unwrap_or_default();
        let cfg = c.config.as_ref();
        match self {
            PsFilter::Status(s) => st.status == *s as i32,
            PsFilter::Name(n) => c.name.contains(n.as_str()),
            PsFilter::Label(k, v) => cfg
                .and_then(|cfg| cfg.labels.get(k))
                .is_some_and(|have| v.as_ref().is_none_or(|v| v == have)),
            PsFilter::Id(p) => c.id.starts_with(p.as_str()),
            PsFilter::Exited(code) => st.status == Status::Exited as i32 && st.exit_code == *code,
            PsFilter::Ancestor(image) => cfg.is_some_and(|cfg| {
                let named = cfg.image == *image
                    || cfg.image.strip_suffix(":latest") == Some(image.as_str());
                let id = cfg
                    .image_id
                    .strip_prefix("sha256:")
                    .unwrap_or(&cfg.image_id);
                let given = image.strip_prefix("sha256:").unwrap_or(image);
                named || (!cfg.image_id.is_empty() && given.len() >= 4 && id.starts_with(given))
            }),
            PsFilter::Network(n) => cfg.is_some_and(|cfg| {
                cfg.network == *n
                    || cfg.networks.iter().any(|e| {
                        e.network == *n || (n.len() >= 4 && e.network_id.starts_with(n.as_str()))
                    })
            }),
            PsFilter::Publish(p) => cfg.is_some_and(|cfg| {
                cfg.ports
                    .iter()
                    .any(|b| port_is(p, b.container_port, &b.protocol))
            }),
            PsFilter::Expose(p) => cfg.is_some_and(|cfg| {
                cfg.ports
                    .iter()
                    .map(|b| (b.container_port, b.protocol.as_str()))
                    .chain(cfg.exposed_ports.iter().filter_map(|e| {
                        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
                        Some((port.parse().ok()?, proto))
                    }))
                    .any(|(port, proto)| port_is(p, port, proto))
            }),
            PsFilter::Volume(v) => cfg.is_some_and(|cfg| {
                cfg.mounts
                    .iter()
                    .any(|m| m.destination == *v || m.source == *v)
                    || cfg.tmpfs.iter().any(|t| t.destination == *v)
            }),
            PsFilter::Health(h) => {
                let now = st.health.as_ref().map_or(0, |h| h.status);
                crate::output::health_name(now) == h
            }
            PsFilter::Before(_, t) => created(c) < t.unwrap_or_default(),
            PsFilter::Since(_, t) => created(c) > t.unwrap_or_default(),
        }
    }
}

fn created(c: &pb::Container) -> (i64, i32) {
    c.created_at.map_or((0, 0), |t| (t.seconds, t.nanos))
}

/// Whether "PORT[/PROTOCOL]" (tcp if none) names `port`/`protocol`.
fn port_is(given: &str, port: u32, protocol: &str) -> bool {
    let (p, proto) = given.split_once('/').unwrap_or((given, "tcp"));
    p.parse() == Ok(port) && (proto == protocol || (proto == "tcp" && protocol.is_empty()))
}

/// Labels must all match; the other kinds, any one of their values.
fn matches(filters: &[PsFilter], c: &pb::Container) -> bool {
    (0..=PsFilter::LAST_KIND).all(|kind| {
        let of_kind: Vec<&PsFilter> = filters.iter().filter(|f| f.kind() == kind).collect();
        match kind {
            2 => of_kind.iter().all(|f| f.matches(c)),
            _ => of_kind.is_empty() || of_kind.iter().any(|f| f.matches(c)),
        }
    })
}

/// `inspect`: each name as a container, an image or a network (the first
/// that has it, or only `kind`), in Docker's layout.
pub async fn inspect(
    channel: Channel,
    kind: Option<String>,
    format: String,
    names: Vec<String>,
) -> Result<u8, Failure> {
    const KINDS: [&str; 3] = ["container", "image", "network"];
    let format = Format::parse(&format)?;
    let kinds: Vec<&str> = match kind.as_deref() {
        None => KINDS.to_vec(),
        Some(k) if KINDS.contains(&k) => vec![k],
        Some(k) => {
            return Err(Failure(
                format!("{k:?} is not a valid value for --type: container, image or network"),
                1,
            ))
        }
    };
    let mut api = Api::new(channel.clone());
    let mut images = ImagesClient::new(channel.clone());
    let mut networks = NetworksClient::new(channel);
    let (mut values, mut containers) = (Vec::new(), Vec::new());
    let mut failed = false;
    for name in names {
        let mut found = false;
        for k in &kinds {
            let got = match *k {
                "container" => api
                    .inspect(pb::InspectRequest { id: name.clone() })
                    .await
                    .map(|r| {
                        let r = r.into_inner();
                        r.container.map(|c| {
                            let mut v = views::inspect(&c);
                            v["LogPath"] = serde_json::json!(r.log_path);
                            (v, Some(c))
                        })
                    }),
                "image" => images
                    .inspect(pb::InspectImageRequest {
                        image: name.clone(),
                    })
                    .await
                    .map(|r| Some((views::image_inspect(&r.into_inner()), None))),
                _ => networks
                    .inspect(pb::InspectNetworkRequest {
                        network: name.clone(),
                    })
                    .await
                    .map(|r| {
                        r.into_inner()
                            .network
                            .map(|n| (super::network::view(&n), None))
                    }),
            };
            match got {
                Ok(Some((value, container))) => {
                    values.push(value);
                    containers.extend(container);
                    found = true;
                    break;
                }
                Ok(None) => {}
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(s.into()),
            }
        }
        if !found {
            let what = match kind.as_deref() {
                Some(k) => format!("No such {k}"),
                None => "No such object".into(),
            };
            eprintln!("Error: {what}: {name}");
            failed = true;
        }
    }
    match format {
        Format::Json => output::outln!(
            "{}",
            serde_json::to_string_pretty(&values).unwrap_or_default()
        ),
        Format::Table => output::out!("{}", output::ps_table(&containers, false, false)),
        Format::Template(t) => output::out!("{}", t.lines(&values, &serde_json::Value::Null)?),
    }
    Ok(u8::from(failed))
}

pub async fn stats(
    api: &mut Api,
    no_stream: bool,
    format: String,
    containers: Vec<String>,
) -> Result<u8, Failure> {
    let format = Format::parse(&format)?;
    // Each container as the command line named it, as Docker's Container.
    let named = |c: &pb::ContainerStats| -> Option<String> {
        containers
            .iter()
            .find(|t| c.name == **t || c.id.starts_with(t.as_str()))
            .cloned()
    };
    let req = pb::StatsRequest {
        ids: containers.clone(),
        stream: !no_stream,
        interval_milliseconds: 0,
    };
    let mut stream = api.stats(req).await?.into_inner();
    let mut first = true;
    while let Some(sample) = stream.message().await? {
        let text = match &format {
            Format::Json => {
                for c in &sample.containers {
                    output::outln!("{}", output::stats_json(c));
                }
                first = false;
                continue;
            }
            Format::Table => output::stats_table(&sample.containers),
            Format::Template(t) => {
                let rows: Vec<_> = sample
                    .containers
                    .iter()
                    .map(|c| views::stats_row(c, named(c)))
                    .collect();
                t.lines(&rows, &views::stats_header())?
            }
        };
        // Like `docker stats`: redraw in place on a terminal.
        if !no_stream && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            output::out!("\x1b[2J\x1b[H");
        } else if !first {
            output::out!("\n");
        }
        output::out!("{text}");
        first = false;
    }
    Ok(0)
}

/// `docker top`'s columns: UID PID PPID C STIME TTY TIME CMD.
pub async fn top(api: &mut Api, container: String) -> Result<u8, Failure> {
    let processes = api
        .top(pb::TopRequest { id: container })
        .await?
        .into_inner()
        .processes;
    output::out!("{}", output::top_table(&processes));
    Ok(0)
}
