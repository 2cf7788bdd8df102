//! Image references as Docker reads them: "redis" is
//! "docker.io/library/redis:latest"; a first component with a '.' or ':'
//! (or "localhost") is a registry; a tag follows the last ':' after the
//! last '/', a digest follows '@'.

use super::Error;
use crate::spec::Input;
use std::fmt;

pub const DOCKER_HUB: &str = "docker.io";

/// A digest "sha256:" and 64 lower-case hex digits, the only algorithm
/// berth stores by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, Error> {
        match s.strip_prefix("sha256:") {
            Some(hex) if is_hex64(hex) => Ok(Digest(s.to_string())),
            _ => Err(Error::Invalid(format!(
                "invalid digest {:?}: berth knows sha256:<64 hex digits>",
                Input::from(s)
            ))),
        }
    }

    pub fn of_hex(hex: &str) -> Digest {
        Digest(format!("sha256:{hex}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The digests named by the entries of `dir` (64 hex digits each; others
/// are left out).
pub fn digests_in(dir: &std::path::Path) -> Vec<Digest> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| is_hex64(n))
        .map(|n| Digest::of_hex(&n))
        .collect()
}

pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// "docker.io", "localhost:5000", "registry.k8s.io".
    pub registry: String,
    /// "library/redis".
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference; without tag or digest the tag is "latest".
    pub fn parse(s: &str) -> Result<Reference, Error> {
        let mut r = Reference::parse_name(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".into());
        }
        Ok(r)
    }

    /// Parses a reference as given: a repository alone stays without tag.
    pub fn parse_name(s: &str) -> Result<Reference, Error> {
        let bad =
            |why: &str| Error::Invalid(format!("invalid reference {:?}: {why}", Input::from(s)));
        if s.is_empty() || s.len() > 4096 {
            return Err(bad("it is empty or too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| bad(&e.to_string()))?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            let mut chars = t.chars();
            let first = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !first
                || t.len() > 128
                || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                return Err(bad(
                    "a tag is up to 128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        if !is_registry(&registry) {
            return Err(bad(
                "the registry is not a host[:port] (a DNS name or an IP address, a port from 1 to 65535)",
            ));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if !repository.split('/').all(valid_component) {
            return Err(bad(
                "a repository is lower-case letters and digits, separated by '/', '.', '_', '__' or '-'",
            ));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// "registry/repository".
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name with this tag only (no digest).
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// The name with a digest.
    pub fn with_digest(&self, d: &Digest) -> String {
        format!("{}@{d}", self.name())
    }

    /// Docker's short form: "redis:latest", "me/app:1", "host:5000/a:b".
    pub fn familiar(full: &str) -> String {
        let short = full.strip_prefix("docker.io/").unwrap_or(full);
        short.strip_prefix("library/").unwrap_or(short).to_string()
    }
}

/// Whether `s` can name a registry: host[:port], the host a DNS name
/// (labels of letters, digits and '-', not starting or ending with '-'),
/// an IPv4 address or a bracketed IPv6 one, the port 1 to 65535.
pub fn is_registry(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && (!h.starts_with('[') || h.ends_with(']')) => (h, Some(p)),
        _ => (s, None),
    };
    if let Some(p) = port {
        if !p.bytes().all(|b| b.is_ascii_digit()) || !matches!(p.parse::<u16>(), Ok(1..)) {
            return false;
        }
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    host.len() <= 253 && host.split('.').all(label)
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// [a-z0-9]+ separated by '.', '_', '__' or runs of '-'.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok || start == i {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_names() {
        assert_eq!(full("redis"), "docker.io/library/redis:latest");
        assert_eq!(full("redis:7"), "docker.io/library/redis:7");
        assert_eq!(full("me/app"), "docker.io/me/app:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("127.0.0.1:5000/a/b:v1.2"), "127.0.0.1:5000/a/b:v1.2");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            full(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            full(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
        assert_eq!(Reference::familiar("docker.io/library/redis:7"), "redis:7");
        assert_eq!(Reference::familiar("docker.io/me/app:1"), "me/app:1");
        assert_eq!(Reference::familiar("h:5000/a:1"), "h:5000/a:1");
        assert_eq!(Reference::parse_name("redis").unwrap().tag, None);
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "Redis",
            "a//b",
            "a/",
            "-a",
            "a:",
            "a:-x",
            "a@sha256:12",
            "a@md5:00",
            "debian:bookworm:x",
            "a b",
            "a/../b",
            "h:5000/a/B",
            "a__-b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Reference::parse("a__b").is_ok());
        assert!(Reference::parse("a---b.c_d").is_ok());
    }
}
