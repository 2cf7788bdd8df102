//! What a create tunes of the kernel's view of the container, as Docker's
//! flags do: resource limits of its processes (--ulimit), /dev/shm's size,
//! namespaced sysctls, supplementary groups, the NIS domain name, the OOM
//! score adjustment, and tmpfs mounts. Checked here; applied by the
//! container's first process (monitor/child/tuning.rs).

use super::{normalize, within, Device, Error, NamespaceMode, Namespaces, Network};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// /dev/shm's size when none is given: Docker's 64 MiB.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// Docker's --ulimit names and the resources they are.
const ULIMITS: &[(&str, libc::__rlimit_resource_t)] = &[
    ("as", libc::RLIMIT_AS),
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
];

/// The IPC namespace's sysctls (each container has its own).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    /// -1: unlimited.
    pub soft: i64,
    pub hard: i64,
}

impl Ulimit {
    /// The resource and its limits as setrlimit takes them.
    pub fn rlimit(&self) -> Option<(libc::__rlimit_resource_t, u64, u64)> {
        let resource = ULIMITS.iter().find(|(n, _)| *n == self.name)?.1;
        let value = |v: i64| u64::try_from(v).unwrap_or(libc::RLIM_INFINITY);
        Some((resource, value(self.soft), value(self.hard)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmpfs {
    pub destination: String,
    /// As given.
    pub options: String,
}

/// A tmpfs's options split into mount flags and the filesystem's data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TmpfsFlags {
    pub read_only: bool,
    pub noexec: bool,
    pub nosuid: bool,
    pub nodev: bool,
    /// MS_NOATIME, MS_RELATIME, MS_STRICTATIME or none.
    pub atime: Option<&'static str>,
}

impl Tmpfs {
    /// Its flags (noexec, nosuid and nodev unless the options say
    /// otherwise; a later option wins) and its data ("size=…,mode=…").
    pub fn parse(&self) -> Result<(TmpfsFlags, String), Error> {
        let bad = |why| Error::Tmpfs(self.options.as_str().into(), why);
        let mut flags = TmpfsFlags {
            noexec: true,
            nosuid: true,
            nodev: true,
            ..TmpfsFlags::default()
        };
        let mut data: BTreeMap<&str, &str> = BTreeMap::new();
        for opt in self.options.split(',').filter(|o| !o.is_empty()) {
            match opt {
                "rw" | "ro" => flags.read_only = opt == "ro",
                "exec" | "noexec" => flags.noexec = opt == "noexec",
                "suid" | "nosuid" => flags.nosuid = opt == "nosuid",
                "dev" | "nodev" => flags.nodev = opt == "nodev",
                "atime" => flags.atime = None,
                "noatime" | "relatime" | "strictatime" => {
                    flags.atime = ATIMES.iter().find(|a| **a == opt).copied()
                }
                _ => {
                    let (key, value) = opt.split_once('=').ok_or_else(|| bad("unknown option"))?;
                    let ok = match key {
                        "size" | "nr_inodes" | "nr_blocks" => size_value(value),
                        "mode" => u32::from_str_radix(value, 8).is_ok_and(|m| m <= 0o7777),
                        "uid" | "gid" => value.parse::<u32>().is_ok(),
                        _ => return Err(bad("unknown option")),
                    };
                    if !ok {
                        return Err(bad("a value is not a number of the option's kind"));
                    }
                    data.insert(key, value);
                }
            }
        }
        let data = data
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        Ok((flags, data))
    }
}

const ATIMES: &[&str] = &["noatime", "relatime", "strictatime"];

/// "1024", "64k", "1m", "2g", "50%".
fn size_value(v: &str) -> bool {
    let digits = v.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
    !digits.is_empty() && digits.len() + 1 >= v.len() && digits.parse::<u64>().is_ok()
}

/// The settings, as asked and, once validated, as kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuning {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// Bytes; 0 in a request: the default.
    #[serde(default = "default_shm")]
    pub shm_size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Its supplementary groups are its primary group and `group_add`
    /// only: the groups the image's /etc/group puts its user in are left
    /// out (the CRI's Strict supplemental groups policy).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_groups: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    #[serde(default)]
    pub oom_score_adj: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<Tmpfs>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// As given ("c 10:237 rw").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
}

fn default_shm() -> u64 {
    DEFAULT_SHM_SIZE
}

impl Tuning {
    /// The device cgroup rules beyond the defaults: its devices', then the
    /// rules given.
    pub fn device_rules(&self) -> Vec<super::CgroupRule> {
        let given = self
            .device_cgroup_rules
            .iter()
            .filter_map(|r| super::parse_device_rule(r).ok());
        self.devices.iter().map(Device::rule).chain(given).collect()
    }

    /// Checks every setting for a container on `network` with
    /// `namespaces`.
    pub fn validate(mut self, network: Network, namespaces: &Namespaces) -> Result<Tuning, Error> {
        let mut seen = Vec::new();
        for u in &self.ulimits {
            let bad = |why| Error::Ulimit(format!("{}={}:{}", u.name, u.soft, u.hard).into(), why);
            if u.rlimit().is_none() {
                return Err(bad("unknown name"));
            }
            if seen.contains(&u.name) {
                return Err(bad("given twice"));
            }
            seen.push(u.name.clone());
            if u.soft < -1 || u.hard < -1 {
                return Err(bad("a limit is -1 (unlimited) or a count"));
            }
            let unlimited = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
            if unlimited(u.soft) > unlimited(u.hard) {
                return Err(bad("the soft limit is above the hard one"));
            }
        }
        if self.shm_size == 0 {
            self.shm_size = DEFAULT_SHM_SIZE;
        }
        for (key, value) in &self.sysctls {
            check_sysctl(key, value, network, namespaces)?;
        }
        for g in &self.group_add {
            let ok = !g.is_empty() && !g.contains([':', '\n', '\0', ',']);
            if !ok {
                return Err(Error::Group(g.as_str().into()));
            }
        }
        let domain_ok = self.domainname.len() <= 64
            && self
                .domainname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !domain_ok {
            return Err(Error::Domainname(self.domainname.as_str().into()));
        }
        self.devices = std::mem::take(&mut self.devices)
            .into_iter()
            .map(Device::validate)
            .collect::<Result<_, _>>()?;
        for r in &self.device_cgroup_rules {
            super::parse_device_rule(r)?;
        }
        if !(-1000..=1000).contains(&self.oom_score_adj) {
            return Err(Error::OomScoreAdj(self.oom_score_adj));
        }
        for t in &mut self.tmpfs {
            let dest = normalize(&t.destination)
                .filter(|d| d != "/" && d != "/dev" && !within(d, "/proc") && !within(d, "/sys"));
            t.destination = dest.ok_or_else(|| {
                Error::MountDestination(
                    t.destination.as_str().into(),
                    "a tmpfs goes on an absolute path, not /, /dev, /proc or /sys",
                )
            })?;
            t.parse()?;
        }
        Ok(self)
    }
}

/// Docker's rule: a sysctl of a namespace the container has of its own.
fn check_sysctl(
    key: &str,
    value: &str,
    network: Network,
    namespaces: &Namespaces,
) -> Result<(), Error> {
    let bad = |why| Error::Sysctl(key.into(), why);
    let name_ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !key.split('.').any(|p| p.is_empty() || p == "..");
    if !name_ok {
        return Err(bad("not a sysctl name"));
    }
    if value.contains(['\n', '\0']) {
        return Err(bad("its value holds a newline or NUL"));
    }
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        return match namespaces.ipc.is_own() {
            true => Ok(()),
            false => Err(bad("the IPC namespace is not the container's own")),
        };
    }
    if key == "kernel.domainname" {
        return match namespaces.uts == NamespaceMode::Host {
            true => Err(bad("the UTS namespace is the host's")),
            false => Ok(()),
        };
    }
    if key.starts_with("net.") {
        return match network {
            Network::Host => Err(bad("on the host's network it would change the host's")),
            Network::Container => Err(bad(
                "in another container's network namespace it would change that container's",
            )),
            _ => Ok(()),
        };
    }
    if key == "kernel.hostname" {
        return Err(bad("set the hostname instead"));
    }
    Err(bad("it is not namespaced: it would change the host"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Tuning)) -> Result<Tuning, Error> {
        let mut t = Tuning::default();
        f(&mut t);
        t.validate(Network::Bridge, &Namespaces::default())
    }

    #[test]
    fn ulimits_are_known_names_with_soft_under_hard() {
        let u = |name: &str, soft, hard| Ulimit {
            name: name.into(),
            soft,
            hard,
        };
        assert!(with(|t| t.ulimits = vec![u("nofile", 100, 200), u("core", -1, -1)]).is_ok());
        for bad in [
            vec![u("files", 1, 1)],
            vec![u("nofile", 300, 200)],
            vec![u("nofile", -1, 200)],
            vec![u("nofile", -2, 200)],
            vec![u("nofile", 1, 1), u("nofile", 2, 2)],
        ] {
            assert!(matches!(with(|t| t.ulimits = bad), Err(Error::Ulimit(..))));
        }
        assert_eq!(
            u("nofile", 10, -1).rlimit(),
            Some((libc::RLIMIT_NOFILE, 10, libc::RLIM_INFINITY))
        );
    }

    #[test]
    fn only_namespaced_sysctls_pass() {
        let sysctl = |k: &str, net| {
            let t = Tuning {
                sysctls: [(k.to_string(), "1".to_string())].into(),
                ..Tuning::default()
            };
            t.validate(net, &Namespaces::default()).is_ok()
        };
        for ok in [
            "net.ipv4.ip_forward",
            "kernel.shmmax",
            "fs.mqueue.msg_max",
            "kernel.domainname",
        ] {
            assert!(sysctl(ok, Network::None), "{ok}");
        }
        assert!(!sysctl("net.ipv4.ip_forward", Network::Host));
        for bad in [
            "kernel.hostname",
            "vm.swappiness",
            "kernel.pid_max",
            "net..x",
            "net/ipv4",
            "",
        ] {
            assert!(!sysctl(bad, Network::None), "{bad}");
        }
    }

    #[test]
    fn tmpfs_options_merge_over_the_defaults() {
        let t = |o: &str| Tmpfs {
            destination: "/run".into(),
            options: o.into(),
        };
        let (flags, data) = t("").parse().unwrap();
        assert!(flags.noexec && flags.nosuid && flags.nodev && !flags.read_only);
        assert_eq!(data, "");
        let (flags, data) = t("exec,size=64m,mode=1777,ro,uid=1000").parse().unwrap();
        assert!(!flags.noexec && flags.read_only);
        assert_eq!(data, "mode=1777,size=64m,uid=1000");
        for bad in ["size=x", "mode=9", "bogus", "uid=-1", "size=1mm"] {
            assert!(t(bad).parse().is_err(), "{bad}");
        }
        assert!(with(|x| x.tmpfs = vec![Tmpfs {
            destination: "/proc/x".into(),
            options: String::new()
        }])
        .is_err());
    }

    #[test]
    fn the_rest_is_checked() {
        assert_eq!(with(|_| {}).unwrap().shm_size, DEFAULT_SHM_SIZE);
        assert!(with(|t| t.oom_score_adj = 1001).is_err());
        assert!(with(|t| t.oom_score_adj = -1000).is_ok());
        assert!(with(|t| t.domainname = "a b".into()).is_err());
        assert!(with(|t| t.group_add = vec!["a:b".into()]).is_err());
        assert!(with(|t| t.group_add = vec!["audio".into(), "10".into()]).is_ok());
    }
}
