//! The create request the CLI builds from `create` and `run`'s arguments:
//! a rootfs path or an image, the environment from --env-file and -e, and
//! -v bind mounts.

use super::flags;
use crate::args::CreateArgs;
use crate::Failure;
use berth::pb::{self, CreateRequest};

pub fn create_request(a: CreateArgs) -> Result<CreateRequest, Failure> {
    let mut resources = a.limits.resources()?;
    a.create_limits.add_to(&mut resources)?;
    // A path (absolute, or starting with ".") is a rootfs directory;
    // anything else names an image.
    let (rootfs, image) = match a.image.starts_with(['/', '.']) {
        true => {
            let dir = std::path::absolute(&a.image)
                .map_err(|e| Failure(format!("invalid rootfs {:?}: {e}", a.image), 125))?;
            (dir.to_string_lossy().into_owned(), String::new())
        }
        false => (String::new(), a.image.clone()),
    };
    let security = security_opts(&a.security_opt).map_err(|e| Failure(e, 125))?;
    if a.cpu_rt_runtime.is_some() {
        return Err(Failure(
            "--cpu-rt-runtime: berth does not give containers realtime CPU time (no cpu.rt_runtime_us is set up for them)".into(),
            125,
        ));
    }
    let mut mounts = volumes(&a.volume)?;
    let mut tmpfs: Vec<pb::TmpfsMount> = a.tmpfs.iter().map(|t| flags::tmpfs(t)).collect();
    for m in &a.mount {
        match flags::mount(m)? {
            flags::Mount::Bind(b) => mounts.push(b),
            flags::Mount::Tmpfs(t) => tmpfs.push(t),
        }
    }
    let mut labels = a
        .label
        .iter()
        .map(|l| super::key_value(l, "label"))
        .collect::<Result<_, _>>()?;
    flags::label_files(&a.label_file, &mut labels)?;
    // A rootfs directory is for this host, whatever --platform says.
    let platform = match image.is_empty() {
        true => String::new(),
        false => a.platform.unwrap_or_default(),
    };
    Ok(CreateRequest {
        platform,
        name: a.name.unwrap_or_default(),
        rootfs,
        image,
        entrypoint: a.entrypoint.map(|e| pb::Entrypoint {
            args: match e.as_str() {
                "" => Vec::new(),
                e => vec![e.to_string()],
            },
        }),
        args: a.command,
        env: environment(&a.env_file, a.env, |k| std::env::var(k).ok())?,
        working_dir: a.workdir.unwrap_or_default(),
        hostname: a.hostname.unwrap_or_default(),
        labels,
        init: a.init,
        stop_signal: a.stop_signal.unwrap_or_default(),
        stop_timeout_seconds: a.stop_timeout,
        mounts,
        network: a.network.unwrap_or_default(),
        log_max_size_bytes: size(&a.log_max_size)?,
        log_max_files: a.log_max_files.unwrap_or(0),
        resources: Some(resources),
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        privileged: a.privileged,
        read_only: a.read_only,
        no_new_privileges: security.no_new_privileges,
        seccomp_profile: security.seccomp_profile,
        auto_remove: a.auto_remove,
        restart_policy: a
            .restart
            .as_deref()
            .map(flags::restart_policy)
            .transpose()?,
        healthcheck: super::health::healthcheck(&a.health)?,
        user: a.user.unwrap_or_default(),
        dns: a.dns,
        dns_search: a.dns_search,
        dns_options: a.dns_option,
        extra_hosts: a.add_host,
        ports: a
            .publish
            .iter()
            .map(|p| publish(p))
            .collect::<Result<_, _>>()?,
        publish_all_ports: a.publish_all,
        expose: a.expose,
        network_aliases: a.network_alias,
        stdin_open: a.interactive,
        stdin_once: a.stdin_once,
        tty: a.tty,
        console_size: a.tty.then(crate::terminal::size).flatten(),
        ulimits: a
            .ulimit
            .iter()
            .map(|u| flags::ulimit(u))
            .collect::<Result<_, _>>()?,
        shm_size_bytes: size(&a.shm_size)?,
        sysctls: flags::sysctls(&a.sysctl)?,
        group_add: a.group_add,
        domainname: a.domainname.unwrap_or_default(),
        oom_score_adj: a.oom_score_adj,
        tmpfs,
        devices: a
            .device
            .iter()
            .map(|d| flags::device(d))
            .collect::<Result<_, _>>()?,
        device_cgroup_rules: a.device_cgroup_rule,
        ip_address: a.ip.unwrap_or_default(),
        ipv6_address: a.ip6.unwrap_or_default(),
        mac_address: a.mac_address.unwrap_or_default(),
        pid_mode: a.pid.unwrap_or_default(),
        ipc_mode: a.ipc.unwrap_or_default(),
        uts_mode: a.uts.unwrap_or_default(),
    })
}

/// A size flag ("64m") in bytes; 0 when not given.
fn size(flag: &Option<String>) -> Result<u64, Failure> {
    match flag.as_deref() {
        None => Ok(0),
        Some(s) => berth::parse_size(s).map_err(|e| Failure(e, 125)),
    }
}

/// Docker's -p: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL].
pub fn publish(s: &str) -> Result<pb::PortBinding, Failure> {
    let bad = |why: &str| {
        Failure(
            format!("invalid publish {s:?}: {why}: use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]"),
            125,
        )
    };
    let (ports, protocol) = s.split_once('/').unwrap_or((s, "tcp"));
    let mut parts: Vec<&str> = ports.rsplitn(3, ':').collect();
    parts.reverse();
    let (ip, host, container) = match parts[..] {
        [c] => ("", "", c),
        [h, c] => ("", h, c),
        [ip, h, c] => (ip, h, c),
        _ => return Err(bad("too many parts")),
    };
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| bad("a port is a number from 1 to 65535"))
    };
    if host.contains('-') || container.contains('-') {
        return Err(bad("port ranges are not supported"));
    }
    Ok(pb::PortBinding {
        host_ip: ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        host_port: match host {
            "" => 0,
            h => port(h)? as u32,
        },
        container_port: port(container)? as u32,
        protocol: protocol.to_string(),
    })
}

/// The container's environment from --env-file files, then -e: a KEY
/// without "=" takes `lookup(KEY)`, and is left out if that has none.
pub fn environment(
    files: &[std::path::PathBuf],
    flags: Vec<String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, Failure> {
    let mut entries = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure(format!("cannot read env file {}: {e}", file.display()), 125))?;
        entries.extend(
            text.lines()
                .map(|l| l.trim_start())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    entries.extend(flags);
    Ok(entries
        .into_iter()
        .filter_map(|e| match e.contains('=') {
            true => Some(e),
            false => lookup(&e).map(|v| format!("{e}={v}")),
        })
        .collect())
}

/// `-v /host:/container[:ro|rw]` as mounts.
fn volumes(volumes: &[String]) -> Result<Vec<pb::Mount>, Failure> {
    volumes
        .iter()
        .map(|v| {
            let bad = || {
                Failure(
                    format!("invalid volume {v:?}: use /host/path:/container/path[:OPTIONS] (ro, rw, and a propagation: rprivate, rslave, rshared…)"),
                    125,
                )
            };
            let (source, destination, options) = match v.split(':').collect::<Vec<_>>()[..] {
                [s, d] => (s, d, ""),
                [s, d, o] => (s, d, o),
                _ => return Err(bad()),
            };
            let mut mount = pb::Mount {
                source: source.into(),
                destination: destination.into(),
                ..Default::default()
            };
            for o in options.split(',').filter(|o| !o.is_empty()) {
                match o {
                    "ro" => mount.read_only = true,
                    "rw" => mount.read_only = false,
                    "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {
                        mount.propagation = o.into()
                    }
                    _ => return Err(bad()),
                }
            }
            Ok(mount)
        })
        .collect()
}

/// What `--security-opt` asks for, in Docker's spellings ("KEY=VALUE" or
/// the older "KEY:VALUE"): no-new-privileges[=true|false] (None when not
/// given), seccomp=unconfined or seccomp=PROFILE.json (the file's
/// content), and label=… or apparmor=…, which a host without SELinux or
/// AppArmor has nothing to apply (a warning says so).
struct SecurityOpts {
    no_new_privileges: Option<bool>,
    seccomp_profile: String,
}

fn security_opts(opts: &[String]) -> Result<SecurityOpts, String> {
    let mut out = SecurityOpts {
        no_new_privileges: None,
        seccomp_profile: String::new(),
    };
    for o in opts {
        let (key, value) = match o.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (o.as_str(), None),
        };
        let lsm = |name: &str, dir: &str| match std::path::Path::new(dir).exists() {
            false => {
                eprintln!(
                    "WARNING: this host has no {name}: --security-opt {o} has nothing to apply"
                );
                Ok(())
            }
            true => Err(format!(
                "invalid --security-opt {o:?}: berth applies no {name} labels or profiles"
            )),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => out.no_new_privileges = Some(true),
            ("no-new-privileges", Some("false")) => out.no_new_privileges = Some(false),
            ("no-new-privileges", Some(_)) => {
                return Err(format!(
                    "invalid --security-opt {o:?}: no-new-privileges is true or false"
                ))
            }
            ("seccomp", Some("unconfined")) => out.seccomp_profile = "unconfined".into(),
            ("seccomp", Some(path)) => {
                out.seccomp_profile = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the seccomp profile {path}: {e}"))?
            }
            ("label", Some(_)) => lsm("SELinux", "/sys/fs/selinux")?,
            ("apparmor", Some(_)) => lsm("AppArmor", "/sys/kernel/security/apparmor")?,
            _ => {
                return Err(format!(
                    "invalid --security-opt {o:?}: berth knows no-new-privileges[=true|false], seccomp=unconfined|PROFILE, label=… and apparmor=…"
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_reads_dockers_forms() {
        let p =
            |s: &str| publish(s).map(|b| (b.host_ip, b.host_port, b.container_port, b.protocol));
        let t = |ip: &str, h: u32, c: u32, proto: &str| (ip.to_string(), h, c, proto.to_string());
        assert_eq!(p("80").unwrap(), t("", 0, 80, "tcp"));
        assert_eq!(p("8080:80").unwrap(), t("", 8080, 80, "tcp"));
        assert_eq!(
            p("127.0.0.1:8080:80/udp").unwrap(),
            t("127.0.0.1", 8080, 80, "udp")
        );
        assert_eq!(p("127.0.0.1::80").unwrap(), t("127.0.0.1", 0, 80, "tcp"));
        for bad in ["", "x:80", "8080:80000", "8000-8010:80"] {
            assert!(publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_from_files_then_flags() {
        let dir = std::env::temp_dir().join(format!("berth-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("env");
        std::fs::write(&file, "# comment\n\n  A=1\nB=from file\nC\nD\n").unwrap();
        let lookup = |k: &str| (k == "C" || k == "E").then(|| format!("{k} here"));
        let env = environment(
            std::slice::from_ref(&file),
            vec!["B=flag".into(), "E".into(), "F".into()],
            lookup,
        )
        .unwrap();
        // Later entries win in the container, as with Docker.
        assert_eq!(
            env,
            ["A=1", "B=from file", "C=C here", "B=flag", "E=E here"]
        );
        let missing = environment(&[dir.join("none")], vec![], lookup).unwrap_err();
        assert_eq!(missing.1, 125);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
