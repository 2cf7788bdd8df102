//! What is there: ps, inspect and stats.

use crate::args::Format;
use crate::{output, Api, Failure};
use berth::pb;

pub async fn ps(api: &mut Api, all: bool, quiet: bool, format: Format) -> Result<u8, Failure> {
    let list = api.list(pb::ListRequest { all }).await?.into_inner();
    if quiet {
        for c in &list.containers {
            output::outln!("{}", &c.id[..12.min(c.id.len())]);
        }
    } else if format == Format::Json {
        for c in &list.containers {
            output::outln!("{}", output::container_json(c));
        }
    } else {
        output::out!("{}", output::ps_table(&list.containers));
    }
    Ok(0)
}

pub async fn inspect(
    api: &mut Api,
    format: Format,
    containers: Vec<String>,
) -> Result<u8, Failure> {
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
    let values: Vec<_> = found.iter().map(output::container_json).collect();
    match format {
        Format::Json => output::outln!(
            "{}",
            serde_json::to_string_pretty(&values).unwrap_or_default()
        ),
        Format::Table => output::out!("{}", output::ps_table(&found)),
    }
    Ok(u8::from(failed))
}

pub async fn stats(
    api: &mut Api,
    no_stream: bool,
    format: Format,
    containers: Vec<String>,
) -> Result<u8, Failure> {
    let req = pb::StatsRequest {
        ids: containers,
        stream: !no_stream,
        interval_milliseconds: 0,
    };
    let mut stream = api.stats(req).await?.into_inner();
    let mut first = true;
    while let Some(sample) = stream.message().await? {
        match format {
            Format::Json => {
                for c in &sample.containers {
                    output::outln!("{}", output::stats_json(c));
                }
            }
            Format::Table => {
                // Like `docker stats`: redraw in place on a terminal.
                if !no_stream && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    output::out!("\x1b[2J\x1b[H");
                } else if !first {
                    output::out!("\n");
                }
                output::out!("{}", output::stats_table(&sample.containers));
            }
        }
        first = false;
    }
    Ok(0)
}
