//! Paths: normalised, and the rootfs and working directory checked.

use super::Error;
use std::path::{Component, Path};

/// Whether `path` is absolute and has no `..` component.
fn clean_absolute(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute() && !p.components().any(|c| c == Component::ParentDir) && !path.contains('\0')
}

/// `path` in its plain form: "/a//b/./c/" is "/a/b/c", "/." and "//" are
/// "/". None unless it is absolute, without "..", without NUL.
pub fn normalize(path: &str) -> Option<String> {
    if !clean_absolute(path) {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for c in Path::new(path).components() {
        if let Component::Normal(n) = c {
            out.push('/');
            out.push_str(n.to_str()?);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Whether `path` (normalised) is `dir` or below it.
pub(super) fn within(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The rootfs must be a directory, and not one of the kernel's
/// pseudo-filesystems (/proc/1/root is the host's root).
pub(super) fn validate_rootfs(rootfs: String) -> Result<String, Error> {
    if !Path::new(&rootfs).is_absolute() || rootfs.contains('\0') {
        return Err(Error::Rootfs(rootfs.into(), "it must be an absolute path"));
    }
    let real = match std::fs::canonicalize(&rootfs) {
        Ok(p) => p,
        Err(_) => return Err(Error::Rootfs(rootfs.into(), "no such directory")),
    };
    // As given and as it resolves: /proc/1/root resolves to a root, but
    // what it names depends on a process.
    let given = normalize(&rootfs).unwrap_or_default();
    let real = real.to_string_lossy();
    let kernel = |p: &str| within(p, "/proc") || within(p, "/sys");
    if kernel(&given) || kernel(&real) {
        return Err(Error::Rootfs(
            rootfs.into(),
            "it must not be under /proc or /sys",
        ));
    }
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => Ok(rootfs),
        _ => Err(Error::Rootfs(rootfs.into(), "it is not a directory")),
    }
}

/// The working directory, normalised ("/" if none); one the rootfs has as
/// something other than a directory is refused now rather than at start.
pub(super) fn validate_working_dir(rootfs: &str, dir: String) -> Result<String, Error> {
    if dir.is_empty() {
        return Ok("/".into());
    }
    let Some(clean) = normalize(&dir) else {
        return Err(Error::WorkingDir(
            dir.into(),
            "it must be an absolute path without \"..\" or NUL",
        ));
    };
    if rootfs.is_empty() {
        return Ok(clean); // an image's: made at start if missing
    }
    let in_rootfs = Path::new(rootfs).join(clean.trim_start_matches('/'));
    match std::fs::symlink_metadata(in_rootfs) {
        Ok(m) if !m.is_dir() && !m.file_type().is_symlink() => Err(Error::WorkingDir(
            dir.into(),
            "the rootfs has a file there, not a directory",
        )),
        _ => Ok(clean),
    }
}
