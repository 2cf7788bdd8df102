//! Names inside a container: the /etc/hostname, /etc/hosts and
//! /etc/resolv.conf the daemon writes for each run, as Docker writes them,
//! with `--dns`, `--dns-search`, `--dns-option` and `--add-host`.

use super::{Error, Input, Network};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// What a create request says about names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolve {
    /// Nameservers replacing the host's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// Search domains replacing the host's ("." alone: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    /// resolv.conf options replacing the host's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// (name, address) lines added to /etc/hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<(String, String)>,
}

/// Docker's /etc/hosts before anything of the container's.
const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// Nameservers when the host has none a container can reach (Docker's).
const FALLBACK_DNS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

impl Resolve {
    /// Checks each entry: addresses that parse, names of letters, digits,
    /// '-', '.', '_', options without blanks; `extra_hosts` as Docker's
    /// "name:address" (or "name=address").
    pub fn validate(
        dns: Vec<String>,
        dns_search: Vec<String>,
        dns_options: Vec<String>,
        extra_hosts: Vec<String>,
    ) -> Result<Resolve, Error> {
        if let Some(bad) = dns.iter().find(|d| d.parse::<IpAddr>().is_err()) {
            return Err(Error::Dns(bad.as_str().into()));
        }
        if let Some(bad) = dns_search.iter().find(|d| *d != "." && !is_name(d)) {
            return Err(Error::DnsSearch(bad.as_str().into()));
        }
        let blank = |o: &String| o.is_empty() || o.chars().any(|c| c.is_whitespace() || c == '\0');
        if let Some(bad) = dns_options.iter().find(|o| blank(o)) {
            return Err(Error::DnsOption(bad.as_str().into()));
        }
        let extra_hosts = extra_hosts
            .iter()
            .map(|h| {
                let split = h.split_once('=').or_else(|| h.split_once(':'));
                match split {
                    Some((name, ip)) if is_name(name) && ip.parse::<IpAddr>().is_ok() => {
                        Ok((name.to_string(), ip.to_string()))
                    }
                    _ => Err(Error::ExtraHost(Input::from(h.as_str()))),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Resolve {
            dns,
            dns_search,
            dns_options,
            extra_hosts,
        })
    }

    /// /etc/hosts: the host's with the host's network, else Docker's
    /// defaults; then the extra hosts, then `own` (on a bridge network:
    /// the container's address and names, then its peers').
    pub fn hosts(&self, network: Network, host_hosts: &str, own: &[String]) -> String {
        let mut out = match network {
            Network::Host => host_hosts.to_string(),
            Network::None | Network::Bridge | Network::Container | Network::Cni => {
                DEFAULT_HOSTS.to_string()
            }
        };
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        for (name, ip) in &self.extra_hosts {
            out.push_str(&format!("{ip}\t{name}\n"));
        }
        for line in own {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// /etc/resolv.conf: the host's, as it is with the host's network;
    /// otherwise without loopback nameservers, which the container's own
    /// loopback would not answer (Google's if none is left), as Docker
    /// does. `dns`, `dns_search` and `dns_options` replace what they name.
    ///
    /// With `resolver` (the address of the resolver of a user network the
    /// container is on), that is the only nameserver (it asks `dns` or
    /// the host's servers for the names it does not know), and the
    /// options get Docker's `ndots:0` unless they set ndots.
    pub fn resolv_conf(&self, network: Network, host: &str, resolver: Option<Ipv4Addr>) -> String {
        let own = resolver.is_some()
            || !self.dns.is_empty()
            || !self.dns_search.is_empty()
            || !self.dns_options.is_empty();
        let reachable = |ip: &str| network == Network::Host || !is_loopback(ip);
        if !own {
            let mut out = String::new();
            let mut servers = 0;
            for line in host.lines() {
                match nameserver(line) {
                    Some(ip) if !reachable(ip) => continue,
                    Some(_) => servers += 1,
                    None => {}
                }
                out.push_str(line);
                out.push('\n');
            }
            if servers == 0 && network != Network::Host {
                for ip in FALLBACK_DNS {
                    out.push_str(&format!("nameserver {ip}\n"));
                }
            }
            return out;
        }
        let field = |key: &str| -> Vec<String> {
            host.lines()
                .filter_map(|l| l.trim().strip_prefix(key))
                .filter(|rest| rest.starts_with([' ', '\t']))
                .flat_map(|rest| rest.split_whitespace().map(String::from))
                .collect()
        };
        let servers = match self.dns.is_empty() {
            _ if resolver.is_some() => resolver.iter().map(|ip| ip.to_string()).collect(),
            false => self.dns.clone(),
            true => {
                let kept: Vec<String> = field("nameserver")
                    .into_iter()
                    .filter(|ip| reachable(ip))
                    .collect();
                match kept.is_empty() && network != Network::Host {
                    true => FALLBACK_DNS.iter().map(|s| s.to_string()).collect(),
                    false => kept,
                }
            }
        };
        let search = match self.dns_search.as_slice() {
            [] => field("search"),
            [dot] if dot == "." => Vec::new(),
            given => given.to_vec(),
        };
        let mut options = match self.dns_options.is_empty() {
            true => field("options"),
            false => self.dns_options.clone(),
        };
        if resolver.is_some() && !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
        let mut out = String::new();
        for ip in servers {
            out.push_str(&format!("nameserver {ip}\n"));
        }
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !options.is_empty() {
            out.push_str(&format!("options {}\n", options.join(" ")));
        }
        out
    }
}

/// The address of a "nameserver" line.
fn nameserver(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("nameserver") => words.next(),
        _ => None,
    }
}

fn is_loopback(ip: &str) -> bool {
    ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(extra: &[&str]) -> Result<Resolve, Error> {
        let extra = extra.iter().map(|s| s.to_string()).collect();
        Resolve::validate(vec![], vec![], vec![], extra)
    }

    #[test]
    fn extra_hosts_take_dockers_forms() {
        let r = valid(&["db:10.0.0.5", "v6:fd00::1", "eq=192.168.1.1"]).unwrap();
        assert_eq!(
            r.extra_hosts,
            [
                ("db".to_string(), "10.0.0.5".to_string()),
                ("v6".into(), "fd00::1".into()),
                ("eq".into(), "192.168.1.1".into())
            ]
        );
        for bad in [
            "db",
            "db:",
            ":1.2.3.4",
            "db:host-gateway",
            "a b:1.2.3.4",
            "db:1.2.3",
        ] {
            assert!(matches!(valid(&[bad]), Err(Error::ExtraHost(_))), "{bad}");
        }
        let dns = |d: &str| Resolve::validate(vec![d.into()], vec![], vec![], vec![]);
        assert!(dns("1.1.1.1").is_ok() && dns("2606:4700::1111").is_ok());
        assert!(matches!(dns("one.one"), Err(Error::Dns(_))));
        let opt = |o: &str| Resolve::validate(vec![], vec![], vec![o.into()], vec![]);
        assert!(opt("ndots:2").is_ok());
        assert!(matches!(opt("a b"), Err(Error::DnsOption(_))));
    }

    #[test]
    fn hosts_as_docker_writes_them() {
        let r = valid(&["db:10.0.0.5"]).unwrap();
        assert_eq!(
            r.hosts(Network::None, "ignored", &[]),
            format!("{DEFAULT_HOSTS}10.0.0.5\tdb\n")
        );
        assert_eq!(
            r.hosts(Network::Host, "127.0.0.1 localhost\n1.2.3.4 hostbox", &[]),
            "127.0.0.1 localhost\n1.2.3.4 hostbox\n10.0.0.5\tdb\n"
        );
    }

    #[test]
    fn resolv_conf_drops_loopback_servers_off_the_host_network() {
        let host = "# from the host\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp\noptions edns0\n";
        let r = Resolve::default();
        assert_eq!(
            r.resolv_conf(Network::None, host, None),
            "# from the host\nnameserver 10.1.1.1\nsearch corp\noptions edns0\n"
        );
        assert_eq!(r.resolv_conf(Network::Host, host, None), host);
        assert_eq!(
            r.resolv_conf(Network::None, "nameserver ::1\n", None),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let own = Resolve {
            dns: vec!["9.9.9.9".into()],
            dns_search: vec![".".into()],
            dns_options: vec!["ndots:1".into()],
            ..Default::default()
        };
        assert_eq!(
            own.resolv_conf(Network::None, host, None),
            "nameserver 9.9.9.9\noptions ndots:1\n"
        );
        let search_only = Resolve {
            dns_search: vec!["example.com".into()],
            ..Default::default()
        };
        assert_eq!(
            search_only.resolv_conf(Network::None, host, None),
            "nameserver 10.1.1.1\nsearch example.com\noptions edns0\n"
        );
    }

    #[test]
    fn resolv_conf_on_a_user_network_names_its_resolver_only() {
        let host = "nameserver 10.1.1.1\nsearch corp\noptions edns0\n";
        let at = Some(Ipv4Addr::new(172, 20, 0, 1));
        let r = Resolve::default();
        assert_eq!(
            r.resolv_conf(Network::Bridge, host, at),
            "nameserver 172.20.0.1\nsearch corp\noptions edns0 ndots:0\n"
        );
        let own = Resolve {
            dns: vec!["9.9.9.9".into()],
            dns_options: vec!["ndots:2".into()],
            ..Default::default()
        };
        assert_eq!(
            own.resolv_conf(Network::Bridge, host, at),
            "nameserver 172.20.0.1\nsearch corp\noptions ndots:2\n"
        );
    }
}
