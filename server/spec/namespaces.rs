//! Whose PID, IPC and UTS namespaces a container has, as Docker's --pid,
//! --ipc and --uts give them: its own (the default), the host's, or
//! another container's (PID and IPC; the IPC namespace of a container
//! started `shareable` only, as Docker); and the network namespace of
//! another container (--network container:NAME).

use super::Error;
use serde::{Deserialize, Serialize};

/// One namespace's mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Its own.
    #[default]
    Private,
    /// Its own, and other containers may join it (IPC only).
    Shareable,
    /// The host's.
    Host,
    /// Another container's: its id once the create has found it (its name
    /// until then).
    Container(String),
}

impl Mode {
    /// Docker's spelling: "", "private", "shareable", "host",
    /// "container:NAME".
    fn parse(
        given: &str,
        kind: &'static str,
        shareable: bool,
        joinable: bool,
    ) -> Result<Mode, Error> {
        let bad = || Error::Namespace(kind, given.into());
        Ok(match given {
            "" | "private" => Mode::Private,
            "shareable" if shareable => Mode::Shareable,
            "host" => Mode::Host,
            other => match other.strip_prefix("container:") {
                Some(name) if joinable && !name.is_empty() => Mode::Container(name.to_string()),
                _ => return Err(bad()),
            },
        })
    }

    /// As Docker shows it in HostConfig (PidMode, IpcMode, UTSMode).
    pub fn shown(&self, private: &str) -> String {
        match self {
            Mode::Private => private.to_string(),
            Mode::Shareable => "shareable".into(),
            Mode::Host => "host".into(),
            Mode::Container(id) => format!("container:{id}"),
        }
    }

    /// Whether the container has this namespace of its own.
    pub fn is_own(&self) -> bool {
        matches!(self, Mode::Private | Mode::Shareable)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces {
    #[serde(default, skip_serializing_if = "Mode::is_private")]
    pub pid: Mode,
    #[serde(default, skip_serializing_if = "Mode::is_private")]
    pub ipc: Mode,
    #[serde(default, skip_serializing_if = "Mode::is_private")]
    pub uts: Mode,
    /// Another container's, with `Network::Container`; else as the
    /// network says.
    #[serde(default, skip_serializing_if = "Mode::is_private")]
    pub net: Mode,
}

impl Mode {
    fn is_private(&self) -> bool {
        *self == Mode::Private
    }
}

impl Namespaces {
    /// It joins another container's namespaces (which must run first).
    pub fn joins_another(&self) -> bool {
        [&self.pid, &self.ipc, &self.uts, &self.net]
            .iter()
            .any(|m| matches!(m, Mode::Container(_)))
    }

    /// The modes a request gives.
    pub fn parse(pid: &str, ipc: &str, uts: &str) -> Result<Namespaces, Error> {
        Ok(Namespaces {
            pid: Mode::parse(pid, "pid", false, true)?,
            ipc: Mode::parse(ipc, "ipc", true, true)?,
            uts: Mode::parse(uts, "uts", false, false)?,
            net: Mode::Private,
        })
    }

    /// Each container joined, by the name or id given: (namespace, name).
    pub fn joined_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut String)> {
        [
            ("pid", &mut self.pid),
            ("ipc", &mut self.ipc),
            ("net", &mut self.net),
        ]
        .into_iter()
        .filter_map(|(kind, m)| match m {
            Mode::Container(name) => Some((kind, name)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_docker_spells_them() {
        let ns = Namespaces::parse("host", "container:db", "").unwrap();
        assert_eq!(ns.pid, Mode::Host);
        assert_eq!(ns.ipc, Mode::Container("db".into()));
        assert_eq!(ns.uts, Mode::Private);
        assert_eq!(
            Namespaces::parse("", "shareable", "host").unwrap().ipc,
            Mode::Shareable
        );
        for (pid, ipc, uts) in [
            ("shareable", "", ""),
            ("", "", "container:db"),
            ("container:", "", ""),
            ("bogus", "", ""),
            ("", "none", ""),
        ] {
            assert!(
                Namespaces::parse(pid, ipc, uts).is_err(),
                "{pid} {ipc} {uts}"
            );
        }
        assert_eq!(Mode::Container("abc".into()).shown(""), "container:abc");
        assert_eq!(Mode::Private.shown("private"), "private");
    }
}
