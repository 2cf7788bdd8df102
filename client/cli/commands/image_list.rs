//! `berth images`: a row per reference (one `<none>` row for an image
//! without one), with `docker images`' filters (dangling, reference as a
//! glob, before, since, label) and `--format` (table, json, a Go
//! template over ID, Repository, Tag, Digest, CreatedSince, CreatedAt,
//! Size, Containers).

use super::images::{short, table};
use crate::template::Format;
use crate::{output, Failure};
use berth::pb::{self, images_client::ImagesClient};
use serde_json::{json, Value};
use tonic::transport::Channel;

enum Filter {
    Dangling(bool),
    /// A glob over "repository:tag", or over the repository alone.
    Reference(String),
    Before(String),
    Since(String),
    Label(String, Option<String>),
}

impl Filter {
    fn parse(f: &str) -> Result<Filter, Failure> {
        let bad = |why: &str| Failure(format!("invalid filter {f:?}: {why}"), 125);
        let (key, value) = f.split_once('=').ok_or_else(|| bad("use KEY=VALUE"))?;
        Ok(match key {
            "dangling" => match value {
                "true" | "1" => Filter::Dangling(true),
                "false" | "0" => Filter::Dangling(false),
                _ => return Err(bad("dangling is true or false")),
            },
            "reference" => Filter::Reference(value.into()),
            "before" => Filter::Before(value.into()),
            "since" => Filter::Since(value.into()),
            "label" => match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.into(), Some(v.into())),
                None => Filter::Label(value.into(), None),
            },
            _ => return Err(bad("use dangling=, reference=, before=, since= or label=")),
        })
    }
}

/// One row: an image under one of its references.
struct Row<'a> {
    image: &'a pb::Image,
    repository: String,
    tag: String,
}

pub async fn list(channel: Channel, a: crate::args::ImagesArgs) -> Result<u8, Failure> {
    let format = Format::parse(a.format.as_deref().unwrap_or(""))?;
    let filters = a
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let images = ImagesClient::new(channel)
        .list(pb::ListImagesRequest {
            dangling: None,
            reference: a.reference.unwrap_or_default(),
        })
        .await?
        .into_inner()
        .images;
    // before= and since= name an image: its creation time.
    let created_of = |name: &str| -> Result<(i64, i32), Failure> {
        images
            .iter()
            .find(|i| {
                i.tags
                    .iter()
                    .any(|t| t == name || t == &format!("{name}:latest"))
                    || i.id == name
                    || (name.len() >= 4 && short(&i.id).starts_with(name))
            })
            .map(|i| i.created.map_or((0, 0), |t| (t.seconds, t.nanos)))
            .ok_or_else(|| {
                Failure(
                    format!("Error response from daemon: No such image: {name}"),
                    1,
                )
            })
    };
    let mut bounds = Vec::new();
    for f in &filters {
        match f {
            Filter::Before(n) => bounds.push((true, created_of(n)?)),
            Filter::Since(n) => bounds.push((false, created_of(n)?)),
            _ => {}
        }
    }
    let mut rows = Vec::new();
    for i in &images {
        let created = i.created.map_or((0, 0), |t| (t.seconds, t.nanos));
        let in_time = bounds.iter().all(|(before, at)| match before {
            true => created < *at,
            false => created > *at,
        });
        let labelled = filters.iter().all(|f| match f {
            Filter::Label(k, v) => i
                .labels
                .get(k)
                .is_some_and(|have| v.as_ref().is_none_or(|v| v == have)),
            Filter::Dangling(d) => i.tags.is_empty() == *d,
            _ => true,
        });
        if !in_time || !labelled {
            continue;
        }
        for (repository, tag) in names(i) {
            let references: Vec<&String> = filters
                .iter()
                .filter_map(|f| match f {
                    Filter::Reference(p) => Some(p),
                    _ => None,
                })
                .collect();
            let named = format!("{repository}:{tag}");
            let matches = references.is_empty()
                || (repository != "<none>"
                    && references
                        .iter()
                        .any(|p| glob(p, &named) || glob(p, &repository)));
            if matches {
                rows.push(Row {
                    image: i,
                    repository,
                    tag,
                });
            }
        }
    }
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(r.image.id.clone()) {
                output::outln!("{}", id(&r.image.id, a.no_trunc));
            }
        }
        return Ok(0);
    }
    let values: Vec<Value> = rows.iter().map(|r| value(r, a.no_trunc)).collect();
    match format {
        Format::Table => output::out!("{}", plain_table(&values, a.digests)),
        Format::Json => {
            for v in &values {
                output::outln!("{v}");
            }
        }
        Format::Template(t) => {
            let header = json!({
                "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                "Containers": "CONTAINERS",
            });
            output::out!("{}", t.lines(&values, &header)?)
        }
    }
    Ok(0)
}

fn id(id: &str, no_trunc: bool) -> String {
    match no_trunc {
        true => id.to_string(),
        false => short(id),
    }
}

/// Each reference as (repository, tag); `<none>` for an image without.
fn names(i: &pb::Image) -> Vec<(String, String)> {
    match i.tags.is_empty() {
        true => vec![("<none>".into(), "<none>".into())],
        false => i
            .tags
            .iter()
            .map(|t| match t.rsplit_once(':') {
                Some((r, tag)) if !tag.contains('/') => (r.to_string(), tag.to_string()),
                _ => (t.clone(), "<none>".into()),
            })
            .collect(),
    }
}

fn value(r: &Row, no_trunc: bool) -> Value {
    let i = r.image;
    let digest = i
        .digests
        .iter()
        .find(|d| d.split('@').next() == Some(r.repository.as_str()))
        .and_then(|d| d.split('@').nth(1))
        .unwrap_or("<none>");
    let since = match &i.created {
        Some(_) => format!("{} ago", output::human(output::secs_since(&i.created))),
        None => "N/A".into(),
    };
    json!({
        "ID": id(&i.id, no_trunc),
        "Repository": r.repository,
        "Tag": r.tag,
        "Digest": digest,
        "CreatedSince": since,
        "CreatedAt": i.created.as_ref().map(crate::views::go_time),
        "Size": output::si(i.size),
        "Containers": i.containers.to_string(),
        "LabelMap": i.labels,
    })
}

fn plain_table(values: &[Value], digests: bool) -> String {
    let mut columns = vec![("REPOSITORY", "Repository"), ("TAG", "Tag")];
    if digests {
        columns.push(("DIGEST", "Digest"));
    }
    columns.extend([
        ("IMAGE ID", "ID"),
        ("CREATED", "CreatedSince"),
        ("SIZE", "Size"),
    ]);
    let mut rows = vec![columns
        .iter()
        .map(|(h, _)| h.to_string())
        .collect::<Vec<_>>()];
    for v in values {
        rows.push(
            columns
                .iter()
                .map(|(_, k)| v[k].as_str().unwrap_or_default().to_string())
                .collect(),
        );
    }
    table(&rows)
}

/// Go's path.Match for `*` (any run of characters but '/') and `?` (one
/// such character); other characters match themselves.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    fn at(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|&k| k == 0 || n[k - 1] != '/')
                .any(|k| at(&p[1..], &n[k..])),
            Some('?') => n.first().is_some_and(|c| *c != '/') && at(&p[1..], &n[1..]),
            Some(c) => n.first() == Some(c) && at(&p[1..], &n[1..]),
        }
    }
    at(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_as_go_path_match() {
        assert!(glob("app*", "app:1") && glob("app:*", "app:1") && glob("*", "busybox"));
        assert!(!glob("*", "team/app") && glob("team/*", "team/app") && glob("a?p", "app"));
        assert!(!glob("app", "app:1") && !glob("b*", "app"));
    }
}
