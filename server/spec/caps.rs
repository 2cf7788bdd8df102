//! Capabilities by name, and the set a container gets.

use super::{Error, Spec};

/// Capability names by number, as Linux numbers them.
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's default capabilities.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// "net_admin", "CAP_NET_ADMIN" -> "NET_ADMIN"; "all" -> "ALL".
pub(super) fn capability_name(s: &str) -> Result<String, Error> {
    let upper = s.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if name == "ALL" || CAPABILITIES.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(Error::Capability(s.into()))
    }
}

fn bit(name: &str) -> u64 {
    CAPABILITIES
        .iter()
        .position(|c| *c == name)
        .map_or(0, |n| 1 << n)
}

impl Spec {
    /// The container's capabilities as a bit set, as Docker computes them:
    /// every one when privileged or when "ALL" is added (less those
    /// dropped); otherwise the default set less those dropped ("ALL":
    /// every one) plus those added.
    pub fn capabilities(&self) -> u64 {
        let all = (1u64 << CAPABILITIES.len()) - 1;
        let set = |names: &[String]| names.iter().fold(0, |acc, n| acc | bit(n));
        let (add, drop) = (set(&self.cap_add), set(&self.cap_drop));
        if self.privileged {
            return all;
        }
        if self.cap_add.iter().any(|c| c == "ALL") {
            return all & !drop;
        }
        let mut caps = DEFAULT_CAPABILITIES.iter().fold(0, |acc, n| acc | bit(n));
        if self.cap_drop.iter().any(|c| c == "ALL") {
            caps = 0;
        }
        (caps & !drop) | add
    }
}
