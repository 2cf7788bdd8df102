//! What is there: ps, inspect, stats and top.

use crate::args::PsArgs;
use crate::template::Format;
use crate::{output, views, Api, Failure};
use berth::pb::{self, Status};

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
    let all = a.all || last.is_some() || filters.iter().any(PsFilter::needs_all);
    let mut list = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = api
            .list(pb::ListRequest {
                all,
                page_token,
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
        Format::Table => output::out!("{}", output::ps_table(&list, a.no_trunc)),
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
                _ => return Err(bad("status is created, running, paused or exited".into())),
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
            _ => return Err(bad("use status=, name=, label=, id= or exited=".into())),
        })
    }

    fn needs_all(&self) -> bool {
        matches!(self, PsFilter::Status(_) | PsFilter::Exited(_))
    }

    /// Filters of the same kind are alternatives.
    fn kind(&self) -> u8 {
        match self {
            PsFilter::Status(_) => 0,
            PsFilter::Name(_) => 1,
            PsFilter::Label(..) => 2,
            PsFilter::Id(_) => 3,
            PsFilter::Exited(_) => 4,
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
        }
    }
}

/// Labels must all match; the other kinds, any one of their values.
fn matches(filters: &[PsFilter], c: &pb::Container) -> bool {
    (0..5).all(|kind| {
        let of_kind: Vec<&PsFilter> = filters.iter().filter(|f| f.kind() == kind).collect();
        match kind {
            2 => of_kind.iter().all(|f| f.matches(c)),
            _ => of_kind.is_empty() || of_kind.iter().any(|f| f.matches(c)),
        }
    })
}

pub async fn inspect(
    api: &mut Api,
    format: String,
    containers: Vec<String>,
) -> Result<u8, Failure> {
    let format = Format::parse(&format)?;
    let mut found = Vec::new();
    let mut failed = false;
    for id in containers {
        match api.inspect(pb::InspectRequest { id }).await {
            Ok(r) => found.extend(r.into_inner().container),
            Err(s) => {
                eprintln!("Error response from daemon: {}", s.message());
                failed = true;
            }
        }
    }
    let values: Vec<_> = found.iter().map(views::inspect).collect();
    match format {
        Format::Json => output::outln!(
            "{}",
            serde_json::to_string_pretty(&values).unwrap_or_default()
        ),
        Format::Table => output::out!("{}", output::ps_table(&found, false)),
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
    let req = pb::StatsRequest {
        ids: containers,
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
                let rows: Vec<_> = sample.containers.iter().map(views::stats_row).collect();
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
