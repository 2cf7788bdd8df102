//! Docker's run flags that tune the container, parsed into the create
//! request's fields: --ulimit, --shm-size, --sysctl, --tmpfs, --mount,
//! --label-file.

use crate::Failure;
use berth::pb;
use std::collections::HashMap;
use std::path::PathBuf;

fn invalid(what: &str, given: &str, how: &str) -> Failure {
    Failure(format!("invalid {what} {given:?}: {how}"), 125)
}

/// `NAME=SOFT[:HARD]`; one value sets both.
pub fn ulimit(s: &str) -> Result<pb::Ulimit, Failure> {
    let bad = || invalid("ulimit", s, "use NAME=SOFT[:HARD], e.g. nofile=1024:2048");
    let (name, limits) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let number = |v: &str| v.parse::<i64>().map_err(|_| bad());
    Ok(pb::Ulimit {
        name: name.to_string(),
        soft: number(soft)?,
        hard: number(hard)?,
    })
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`, as Docker splits it: a
/// second part of r, w and m alone is the permissions.
pub fn device(s: &str) -> Result<pb::DeviceMapping, Failure> {
    let perms = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let parts: Vec<&str> = s.split(':').collect();
    let (host, container, permissions) = match parts[..] {
        [h] => (h, "", ""),
        [h, p] if perms(p) => (h, "", p),
        [h, c] => (h, c, ""),
        [h, c, p] => (h, c, p),
        _ => return Err(invalid("device", s, "use HOST[:CONTAINER][:rwm]")),
    };
    Ok(pb::DeviceMapping {
        host_path: host.to_string(),
        container_path: container.to_string(),
        permissions: permissions.to_string(),
    })
}

/// `KEY=VALUE` pairs.
pub fn sysctls(given: &[String]) -> Result<HashMap<String, String>, Failure> {
    given
        .iter()
        .map(|s| super::key_value(s, "sysctl"))
        .collect()
}

/// `--tmpfs /path[:OPTIONS]`.
pub fn tmpfs(s: &str) -> pb::TmpfsMount {
    let (destination, options) = s.split_once(':').unwrap_or((s, ""));
    pb::TmpfsMount {
        destination: destination.to_string(),
        options: options.to_string(),
    }
}

/// What `--mount` adds: a bind mount or a tmpfs.
pub enum Mount {
    Bind(pb::Mount),
    Tmpfs(pb::TmpfsMount),
}

/// `--mount type=bind,source=…,target=…[,readonly][,bind-propagation=…]` or
/// `type=tmpfs,target=…[,tmpfs-size=…][,tmpfs-mode=…]`, Docker's keys.
pub fn mount(s: &str) -> Result<Mount, Failure> {
    let bad = |how: &str| invalid("--mount", s, how);
    let (mut kind, mut source, mut target, mut read_only) = ("volume", None, None, false);
    let mut propagation = String::new();
    let mut tmpfs = Vec::new();
    for field in s.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (field, None),
        };
        match (key, value) {
            ("type", Some(v)) => kind = v,
            ("source" | "src", Some(v)) => source = Some(v),
            ("target" | "destination" | "dst", Some(v)) => target = Some(v),
            ("readonly" | "ro", None | Some("true" | "1")) => read_only = true,
            ("readonly" | "ro", Some("false" | "0")) => read_only = false,
            ("consistency", Some(_)) => {} // macOS only, as Docker ignores it
            ("tmpfs-size", Some(v)) => {
                let size = berth::parse_size(v).map_err(|e| bad(&e))?;
                tmpfs.push(format!("size={size}"));
            }
            ("tmpfs-mode", Some(v)) => tmpfs.push(format!("mode={v}")),
            ("bind-propagation", Some(v)) => propagation = v.to_string(),
            _ => return Err(bad(&format!("unknown or malformed field {field:?}"))),
        }
    }
    let target = target.ok_or_else(|| bad("target is required"))?;
    match kind {
        "bind" => Ok(Mount::Bind(pb::Mount {
            source: source.ok_or_else(|| bad("source is required"))?.to_string(),
            destination: target.to_string(),
            read_only,
            propagation,
            ..Default::default()
        })),
        "tmpfs" if source.is_some() => Err(bad("a tmpfs has no source")),
        "tmpfs" => {
            if read_only {
                tmpfs.push("ro".into());
            }
            Ok(Mount::Tmpfs(pb::TmpfsMount {
                destination: target.to_string(),
                options: tmpfs.join(","),
            }))
        }
        other => Err(bad(&format!(
            "type {other:?} is not supported: use bind or tmpfs"
        ))),
    }
}

/// Labels from --label-file files (KEY=VALUE or KEY per line, "#"
/// comments and blank lines skipped), under -l's.
pub fn label_files(files: &[PathBuf], labels: &mut HashMap<String, String>) -> Result<(), Failure> {
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Failure(
                format!("cannot read label file {}: {e}", file.display()),
                125,
            )
        })?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            labels.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    Ok(())
}

/// `--restart`: no, always, unless-stopped, on-failure[:MAX-RETRIES]. The
/// daemon checks the name.
pub fn restart_policy(s: &str) -> Result<pb::RestartPolicy, Failure> {
    let (name, max) = match s.split_once(':') {
        None => (s, 0),
        Some((name, max)) => match max.parse() {
            Ok(n) => (name, n),
            Err(_) => {
                return Err(Failure(
                    format!(
                        "invalid restart policy {s:?}: the maximum retry count must be a number"
                    ),
                    125,
                ))
            }
        },
    };
    Ok(pb::RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_as_docker_writes_them() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = ulimit("memlock=-1").unwrap();
        assert_eq!((u.soft, u.hard), (-1, -1));
        assert!(ulimit("nofile").is_err() && ulimit("nofile=a:1").is_err());
    }

    #[test]
    fn mounts_bind_and_tmpfs() {
        let Mount::Bind(b) = mount("type=bind,src=/a,dst=/b,readonly").unwrap() else {
            panic!()
        };
        assert_eq!(
            (b.source.as_str(), b.destination.as_str(), b.read_only),
            ("/a", "/b", true)
        );
        let Mount::Tmpfs(t) = mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (t.destination.as_str(), t.options.as_str()),
            ("/t", "size=1048576,mode=1770")
        );
        for bad in [
            "type=bind,target=/b",
            "type=volume,src=v,dst=/v",
            "type=tmpfs,src=/a,dst=/t",
            "type=bind,src=/a",
            "type=bind,src=/a,dst=/b,bogus",
        ] {
            assert!(mount(bad).is_err(), "{bad}");
        }
        let d = device("/dev/fuse:rw").unwrap();
        assert_eq!(
            (
                d.host_path.as_str(),
                d.container_path.as_str(),
                d.permissions.as_str()
            ),
            ("/dev/fuse", "", "rw")
        );
        let d = device("/dev/sdc:/dev/xvdc").unwrap();
        assert_eq!(
            (d.container_path.as_str(), d.permissions.as_str()),
            ("/dev/xvdc", "")
        );
        assert!(device("/a:/b:r:x").is_err());
        let t = tmpfs("/run:size=1m,exec");
        assert_eq!(
            (t.destination.as_str(), t.options.as_str()),
            ("/run", "size=1m,exec")
        );
    }
}
