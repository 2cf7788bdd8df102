//! A layer tar unpacked into a directory that overlay stacks as a lower
//! layer. The tar is not trusted:
//!
//! - every parent directory is opened with openat2(RESOLVE_IN_ROOT), so a
//!   symlink laid down earlier (even "/etc" or "../../..") resolves inside
//!   the layer, as it would inside the container, and never reaches the
//!   host; each entry is then made with the *at calls in that directory;
//! - a path with a ".." component is refused, a leading "/" is dropped;
//! - a hard link's target is found the same way, inside the layer, and a
//!   link to something missing or to a directory is refused;
//! - device nodes are left out (a container gets its /dev from berth, and
//!   its root is nodev); FIFOs are made;
//! - a whiteout of "." or ".." is refused;
//! - "trusted.*" extended attributes are never taken from the tar (they
//!   would steer overlay); others ("security.capability", "user.*") are;
//! - the bytes written and the entries are counted against limits, and the
//!   caller bounds the decompressed stream itself (a decompression bomb
//!   stops there).
//!
//! OCI whiteouts become overlay's: ".wh.NAME" a 0/0 character device NAME,
//! ".wh..wh..opq" the opaque attribute on its directory.

use super::Error;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of file content a layer may hold (also bounds the
    /// decompressed stream).
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Limits {
    /// The most bytes a layer's tar stream may hold: its files' content
    /// plus room for the tar's headers and padding.
    pub fn stream_bound(&self) -> u64 {
        self.max_bytes
            .saturating_add(self.max_bytes / 4)
            .saturating_add(16 << 20)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 30,
            max_entries: 4 << 20,
        }
    }
}

/// What a layer came to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unpacked {
    pub bytes: u64,
    pub entries: u64,
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("layer: {what}"))
}

fn sys(what: &str, path: &[OsString], e: Errno) -> Error {
    let p = shown(path);
    match e {
        Errno::ENOSPC | Errno::EDQUOT => Error::Io(format!("{what} {p}: {e}")),
        _ => bad(format!("{what} {p:?}: {}", e.desc())),
    }
}

fn shown(path: &[OsString]) -> String {
    let parts: Vec<_> = path.iter().map(|p| p.to_string_lossy()).collect();
    format!("/{}", parts.join("/"))
}

/// A tar path as components inside the layer: "/" and "." dropped, ".."
/// refused.
fn clean(raw: &[u8]) -> Result<Vec<OsString>, Error> {
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(bad(format!(
                    "entry {:?} has a \"..\" component",
                    String::from_utf8_lossy(raw)
                )))
            }
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

fn join(path: &[OsString]) -> PathBuf {
    path.iter().collect()
}

struct Unpacker {
    root: OwnedFd,
    /// The last parent opened, for the run of entries in one directory.
    cached: Option<(Vec<OsString>, OwnedFd)>,
    /// Directories to give their mtime at the end.
    dirs: Vec<(Vec<OsString>, i64)>,
    limits: Limits,
    done: Unpacked,
}

/// Unpacks the tar `r` into the empty directory `root`.
pub fn unpack(r: impl Read, root: &Path, limits: Limits) -> Result<Unpacked, Error> {
    let fd = nix::fcntl::open(
        root,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io(format!("open {}: {e}", root.display())))?;
    let mut u = Unpacker {
        root: fd,
        cached: None,
        dirs: Vec::new(),
        limits,
        done: Unpacked::default(),
    };
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        u.entry(entry)?;
    }
    for (path, mtime) in std::mem::take(&mut u.dirs).into_iter().rev() {
        if let Ok(fd) = u.resolve(&path, OFlag::O_DIRECTORY | OFlag::O_RDONLY) {
            let t = TimeSpec::new(mtime, 0);
            let _ = futimens(&fd, &t, &t);
        }
    }
    Ok(u.done)
}

/// A read error: the stream's own (too large, bad compression) or a bad tar.
fn read_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::FileTooLarge => bad(e),
        _ => bad(format!("cannot read the tar: {e}")),
    }
}

impl Unpacker {
    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<(), Error> {
        self.done.entries += 1;
        if self.done.entries > self.limits.max_entries {
            return Err(bad(format!(
                "more than {} entries",
                self.limits.max_entries
            )));
        }
        let kind = e.header().entry_type();
        use tar::EntryType as T;
        if matches!(
            kind,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            return Ok(());
        }
        let path = clean(&e.path_bytes())?;
        let Some((name, parent)) = path.split_last() else {
            return Ok(()); // the layer's root itself
        };
        let name = name.clone();
        let parent = parent.to_vec();
        let dir = self.parent(&parent)?;
        let n = name.as_bytes();
        if n == OPAQUE.as_bytes() {
            crate::sys::linux::set_xattr(dir.as_fd(), "trusted.overlay.opaque", b"y")
                .map_err(|e| Error::Io(format!("mark {} opaque: {e}", shown(&parent))))?;
            return Ok(());
        }
        if let Some(hidden) = n.strip_prefix(WHITEOUT.as_bytes()) {
            if hidden.starts_with(WHITEOUT.as_bytes()) || hidden.is_empty() {
                return Ok(()); // aufs' own files (.wh..wh.plnk and such)
            }
            if hidden == b"." || hidden == b".." {
                return Err(bad(format!(
                    "the whiteout {} would hide {} itself",
                    shown(&path),
                    match hidden {
                        b"." => "its directory",
                        _ => "its directory's parent",
                    }
                )));
            }
            let hidden = OsStr::from_bytes(hidden);
            replace(&dir, hidden, false, &path)?;
            return mknodat(&dir, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|err| sys("make whiteout", &path, err));
        }
        let h = e.header();
        let mode = h.mode().map_err(read_error)? & 0o7777;
        let (uid, gid) = (
            h.uid().map_err(read_error)? as u32,
            h.gid().map_err(read_error)? as u32,
        );
        let mtime = h.mtime().map_err(read_error)?.min(i64::MAX as u64) as i64;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                let size = e.size();
                let total = self.done.bytes.saturating_add(size);
                if total > self.limits.max_bytes {
                    return Err(bad(format!(
                        "its files hold more than the daemon's --max-layer-size ({} bytes)",
                        self.limits.max_bytes
                    )));
                }
                replace(&dir, &name, false, &path)?;
                let flags = OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                let fd = openat(
                    &dir,
                    name.as_os_str(),
                    flags,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|err| sys("create", &path, err))?;
                let mut file = File::from(fd);
                let copied =
                    io::copy(&mut (&mut e).take(size), &mut file).map_err(|err| {
                        match err.raw_os_error() {
                            Some(libc::ENOSPC) | Some(libc::EDQUOT) => {
                                Error::Io(format!("write {}: {err}", shown(&path)))
                            }
                            _ => read_error(err),
                        }
                    })?;
                self.done.bytes += copied;
                self.xattrs(&mut e, file.as_fd(), &path)?;
            }
            T::Directory => {
                if !replace(&dir, &name, true, &path)? {
                    mkdirat(&dir, name.as_os_str(), Mode::from_bits_truncate(0o700))
                        .map_err(|err| sys("make directory", &path, err))?;
                }
                let fd = openat(
                    &dir,
                    name.as_os_str(),
                    OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|err| sys("open directory", &path, err))?;
                self.xattrs(&mut e, fd.as_fd(), &path)?;
                self.dirs.push((path.clone(), mtime));
                // The cached parent may be this directory's old self.
                self.cached = None;
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| bad(format!("symlink {} has no target", shown(&path))))?
                    .into_owned();
                replace(&dir, &name, false, &path)?;
                symlinkat(OsStr::from_bytes(&target), &dir, name.as_os_str())
                    .map_err(|err| sys("make symlink", &path, err))?;
            }
            T::Link => {
                let raw = e
                    .link_name_bytes()
                    .ok_or_else(|| bad(format!("hard link {} has no target", shown(&path))))?
                    .into_owned();
                let target = clean(&raw)?;
                let fd = self.resolve(&target, OFlag::O_PATH | OFlag::O_NOFOLLOW).map_err(|err| {
                    bad(format!(
                        "hard link {} to {}: {} (a link must name a file laid down earlier in its layer)",
                        shown(&path),
                        shown(&target),
                        err.desc()
                    ))
                })?;
                replace(&dir, &name, false, &path)?;
                linkat(&fd, "", &dir, name.as_os_str(), AtFlags::AT_EMPTY_PATH)
                    .map_err(|err| sys("make hard link", &path, err))?;
                return Ok(()); // the inode keeps its target's owner and mode
            }
            T::Fifo => {
                replace(&dir, &name, false, &path)?;
                mknodat(
                    &dir,
                    name.as_os_str(),
                    SFlag::S_IFIFO,
                    Mode::from_bits_truncate(0o600),
                    0,
                )
                .map_err(|err| sys("make fifo", &path, err))?;
            }
            T::Char | T::Block => {
                // Left out: a container gets its /dev from berth and its
                // root is mounted nodev, so a node would only be a dead
                // entry here, and one berth never makes. The layer's blob
                // keeps it: save gives the image back as it came.
                replace(&dir, &name, false, &path)?;
                return Ok(());
            }
            other => {
                return Err(bad(format!(
                    "{} has an entry type berth does not know ({other:?})",
                    shown(&path)
                )))
            }
        }
        let nofollow = AtFlags::AT_SYMLINK_NOFOLLOW;
        fchownat(
            &dir,
            name.as_os_str(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nofollow,
        )
        .map_err(|err| sys("chown", &path, err))?;
        if kind != T::Symlink {
            // After chown, which clears set-id bits.
            fchmodat(
                &dir,
                name.as_os_str(),
                Mode::from_bits_truncate(mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|err| sys("chmod", &path, err))?;
        }
        if kind != T::Directory {
            let t = TimeSpec::new(mtime, 0);
            utimensat(
                &dir,
                name.as_os_str(),
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|err| sys("set times of", &path, err))?;
        }
        Ok(())
    }

    /// Extended attributes from PAX records, but none of "trusted.*".
    fn xattrs<R: Read>(
        &self,
        e: &mut tar::Entry<'_, R>,
        fd: std::os::fd::BorrowedFd,
        path: &[OsString],
    ) -> Result<(), Error> {
        let Ok(Some(pax)) = e.pax_extensions() else {
            return Ok(());
        };
        for ext in pax.flatten() {
            let Ok(key) = ext.key() else { continue };
            let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                continue;
            };
            if name.starts_with("trusted.") {
                tracing::warn!(path = %shown(path), xattr = name, "layer: trusted.* attribute ignored");
                continue;
            }
            crate::sys::linux::set_xattr(fd, name, ext.value_bytes())
                .map_err(|err| Error::Io(format!("set {name} on {}: {err}", shown(path))))?;
        }
        Ok(())
    }

    /// The directory `parent` (inside the layer), made if missing.
    fn parent(&mut self, parent: &[OsString]) -> Result<OwnedFd, Error> {
        if let Some((p, fd)) = &self.cached {
            if p == parent {
                return fd.try_clone().map_err(|e| Error::Io(format!("dup: {e}")));
            }
        }
        let fd = self.make_dirs(parent, 0)?;
        self.cached = Some((
            parent.to_vec(),
            fd.try_clone().map_err(|e| Error::Io(format!("dup: {e}")))?,
        ));
        Ok(fd)
    }

    /// Opens the directory `path`, making what is missing on the way. A
    /// dangling symlink on the way is followed as the kernel would inside
    /// the layer: its target is made.
    fn make_dirs(&self, path: &[OsString], depth: u32) -> Result<OwnedFd, Error> {
        let dir_flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY;
        match self.resolve(path, dir_flags) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(err) => return Err(sys("open directory", path, err)),
        }
        if depth > 40 {
            return Err(bad(format!("{}: too many levels of symlinks", shown(path))));
        }
        let mut fd = self
            .root
            .try_clone()
            .map_err(|e| Error::Io(format!("dup: {e}")))?;
        for i in 0..path.len() {
            let here = &path[..=i];
            fd = match self.resolve(here, dir_flags) {
                Ok(next) => next,
                Err(Errno::ENOENT) => {
                    match mkdirat(&fd, path[i].as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) => self
                            .resolve(here, dir_flags)
                            .map_err(|err| sys("open directory", here, err))?,
                        Err(Errno::EEXIST) => {
                            // A symlink to something missing: make its target.
                            let target = readlinkat(&fd, path[i].as_os_str())
                                .map_err(|err| sys("follow", here, err))?;
                            let mut next: Vec<OsString> = match target.as_bytes().first() {
                                Some(b'/') => Vec::new(),
                                _ => path[..i].to_vec(),
                            };
                            for c in target.as_bytes().split(|b| *b == b'/') {
                                match c {
                                    b"" | b"." => {}
                                    b".." => {
                                        next.pop();
                                    }
                                    c => next.push(OsStr::from_bytes(c).to_os_string()),
                                }
                            }
                            next.extend_from_slice(&path[i + 1..]);
                            return self.make_dirs(&next, depth + 1);
                        }
                        Err(err) => return Err(sys("make directory", here, err)),
                    }
                }
                Err(err) => return Err(sys("open directory", here, err)),
            };
        }
        Ok(fd)
    }

    /// Opens `path` as the container would see it: symlinks resolve with
    /// the layer as "/".
    fn resolve(&self, path: &[OsString], flags: OFlag) -> Result<OwnedFd, Errno> {
        let rel = match path.is_empty() {
            true => PathBuf::from("."),
            false => join(path),
        };
        let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
        openat2(&self.root, &rel, how)
    }
}

/// Clears the way for a new entry `name` in `dir`: an existing directory is
/// kept when `keep_dir` (returns true), anything else is removed.
fn replace(dir: &OwnedFd, name: &OsStr, keep_dir: bool, path: &[OsString]) -> Result<bool, Error> {
    let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(false),
        Err(err) => return Err(sys("stat", path, err)),
    };
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir && keep_dir {
        return Ok(true);
    }
    if is_dir {
        // std's remove_dir_all never follows a symlink out of the tree.
        let at = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        let real = std::fs::read_link(&at)
            .map_err(|e| Error::Io(format!("locate {}: {e}", shown(path))))?;
        std::fs::remove_dir_all(real.join(name))
            .map_err(|e| Error::Io(format!("replace {}: {e}", shown(path))))?;
    } else {
        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(|err| sys("replace", path, err))?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests;
