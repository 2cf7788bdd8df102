//! Bind mounts a container gets: as a request gives them, checked, and
//! as the spec keeps them, with their propagation.

use super::paths::{normalize, within};
use super::Error;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A bind mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// Docker's bind-propagation.
    #[serde(default, skip_serializing_if = "Propagation::is_default")]
    pub propagation: Propagation,
    /// The name of the volume it is (an image's VOLUME: an anonymous one,
    /// in the container's directory); None: a host path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// Read-only with every mount below it too (Docker's
    /// bind-recursive=readonly; the CRI's recursive_read_only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive_read_only: bool,
}

/// A bind mount's propagation, as mount(8) names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Private,
    #[default]
    Rprivate,
    Slave,
    Rslave,
    Shared,
    Rshared,
}

impl Propagation {
    /// "" is Docker's default, rprivate.
    pub fn parse(s: &str) -> Option<Propagation> {
        Some(match s {
            "" | "rprivate" => Propagation::Rprivate,
            "private" => Propagation::Private,
            "slave" => Propagation::Slave,
            "rslave" => Propagation::Rslave,
            "shared" => Propagation::Shared,
            "rshared" => Propagation::Rshared,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
        }
    }

    fn is_default(&self) -> bool {
        *self == Propagation::Rprivate
    }

    /// Whether host mounts reach the container through it.
    pub fn receives(self) -> bool {
        !matches!(self, Propagation::Private | Propagation::Rprivate)
    }

    /// Whether the container's mounts reach the host through it.
    pub fn sends(self) -> bool {
        matches!(self, Propagation::Shared | Propagation::Rshared)
    }
}

/// A bind mount as a request gives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountRequest {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// "" for the default.
    pub propagation: String,
    /// A volume's name: refused until named volumes exist.
    pub volume: String,
    /// Needs read_only, and a propagation that receives nothing.
    pub recursive_read_only: bool,
}

impl MountRequest {
    /// Checks source, destination and propagation; the destination comes
    /// back normalised. As runc, nothing may be mounted on the root,
    /// /proc, /sys or /dev, nor anywhere below /proc and /sys.
    pub(super) fn validate(self) -> Result<MountSpec, Error> {
        let Some(propagation) = Propagation::parse(&self.propagation) else {
            return Err(Error::MountPropagation(self.propagation.as_str().into()));
        };
        if !self.volume.is_empty() {
            return Err(Error::MountVolume(self.volume.as_str().into()));
        }
        let source = |why| Err(Error::MountSource(self.source.as_str().into(), why));
        if !Path::new(&self.source).is_absolute() || self.source.contains('\0') {
            return source("it must be an absolute path");
        }
        if std::fs::symlink_metadata(&self.source).is_err() {
            return source("no such file or directory");
        }
        let dest = |why| {
            Err(Error::MountDestination(
                self.destination.as_str().into(),
                why,
            ))
        };
        let Some(clean) = normalize(&self.destination) else {
            return dest("it must be an absolute path without \"..\" or NUL");
        };
        if clean == "/" || clean == "/dev" {
            return dest("it would hide the container's own root or /dev");
        }
        if within(&clean, "/proc") || within(&clean, "/sys") {
            return dest("nothing may be mounted on or under /proc and /sys");
        }
        if self.recursive_read_only && (!self.read_only || propagation.receives()) {
            return Err(Error::MountRecursiveReadOnly(clean));
        }
        Ok(MountSpec {
            source: self.source,
            destination: clean,
            read_only: self.read_only,
            propagation,
            volume: None,
            recursive_read_only: self.recursive_read_only,
        })
    }
}

/// Where an image's volume may go: normalised, and none of the places a
/// bind mount may not go either (None).
pub fn volume_destination(dest: &str) -> Option<String> {
    let clean = normalize(dest)?;
    let forbidden =
        clean == "/" || clean == "/dev" || within(&clean, "/proc") || within(&clean, "/sys");
    (!forbidden).then_some(clean)
}
