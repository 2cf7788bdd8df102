//! Host devices a container gets (Docker's --device) and the device cgroup
//! rules it adds (--device-cgroup-rule): checked here, the devices found
//! on the host at create (runtime/create.rs), allowed by the container's
//! cgroup and bind-mounted into its /dev by its first process.

use super::{normalize, Error};
use serde::{Deserialize, Serialize};

/// A host device node, and where the container sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub host_path: String,
    pub container_path: String,
    /// Of "rwm": what the cgroup allows.
    pub permissions: String,
    /// 'c' or 'b', and its numbers: what the host's node was at create.
    #[serde(default)]
    pub kind: char,
    #[serde(default)]
    pub major: u32,
    #[serde(default)]
    pub minor: u32,
}

/// A rule as the cgroup takes it: ('c', 'b' or 'a', major, minor, access),
/// None for any number.
pub type CgroupRule = (char, Option<u32>, Option<u32>, String);

impl Device {
    /// Checks the paths and permissions; the container path defaults to
    /// the host path, the permissions to "rwm".
    pub fn validate(mut self) -> Result<Device, Error> {
        let bad = |why| Error::Device(self.host_path.as_str().into(), why);
        if !self.host_path.starts_with('/') || self.host_path.contains('\0') {
            return Err(bad("the host path must be absolute"));
        }
        if self.container_path.is_empty() {
            self.container_path = self.host_path.clone();
        }
        self.container_path = normalize(&self.container_path)
            .filter(|p| p != "/" && p != "/dev")
            .ok_or_else(|| bad("the container path must be absolute, not / or /dev"))?;
        if self.permissions.is_empty() {
            self.permissions = "rwm".into();
        }
        if !access_ok(&self.permissions) {
            return Err(bad("permissions are some of r, w and m"));
        }
        Ok(self)
    }

    /// The cgroup rule that lets the container use it.
    pub fn rule(&self) -> CgroupRule {
        (
            self.kind,
            Some(self.major),
            Some(self.minor),
            self.permissions.clone(),
        )
    }
}

fn access_ok(a: &str) -> bool {
    !a.is_empty() && a.len() <= 3 && a.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// Docker's --device-cgroup-rule: "TYPE MAJOR:MINOR ACCESS", TYPE one of
/// a, b, c, a number `*` for any, ACCESS some of rwm.
pub fn parse_rule(rule: &str) -> Result<CgroupRule, Error> {
    let bad = || Error::DeviceRule(rule.into());
    let fields: Vec<&str> = rule.split_whitespace().collect();
    let [kind, numbers, access] = fields[..] else {
        return Err(bad());
    };
    let kind = match kind {
        "a" | "b" | "c" => kind.chars().next().unwrap_or('a'),
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| match n {
        "*" => Ok(None),
        n => n.parse::<u32>().map(Some).map_err(|_| bad()),
    };
    if !access_ok(access) {
        return Err(bad());
    }
    Ok((kind, number(major)?, number(minor)?, access.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_as_docker_writes_them() {
        assert_eq!(
            parse_rule("c 10:237 rw").unwrap(),
            ('c', Some(10), Some(237), "rw".to_string())
        );
        assert_eq!(
            parse_rule("a *:* rwm").unwrap(),
            ('a', None, None, "rwm".to_string())
        );
        for bad in [
            "c 10:237", "x 1:1 r", "c 1 r", "c a:1 r", "c 1:1 rx", "c 1:1 ",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn devices_default_their_path_and_permissions() {
        let d = |host: &str, at: &str, perms: &str| Device {
            host_path: host.into(),
            container_path: at.into(),
            permissions: perms.into(),
            kind: 'c',
            major: 0,
            minor: 0,
        };
        let ok = d("/dev/fuse", "", "").validate().unwrap();
        assert_eq!(
            (ok.container_path.as_str(), ok.permissions.as_str()),
            ("/dev/fuse", "rwm")
        );
        assert!(d("dev/fuse", "", "").validate().is_err());
        assert!(d("/dev/fuse", "/dev", "").validate().is_err());
        assert!(d("/dev/fuse", "", "rx").validate().is_err());
    }
}
