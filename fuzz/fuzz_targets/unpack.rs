//! The layer unpacker (server/image/unpack.rs) on hostile tars, run as
//! root. The input is read as a list of entries built from pieces that
//! matter (".", "..", "/", whiteouts, symlinks to "/" and "../..", hard
//! links, devices) or, when it starts with 0xff, as raw bytes (through the decompressor). Nothing may
//! panic, and whatever the tar says, nothing outside the layer directory
//! changes: a sentinel file beside it keeps its content, and the jail
//! around it holds only the layer and the sentinel.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};

mod sys {
    pub mod linux {
        use std::os::fd::{AsRawFd, BorrowedFd};
        pub fn set_xattr(fd: BorrowedFd, name: &str, value: &[u8]) -> std::io::Result<()> {
            let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
            // SAFETY: a NUL-terminated name and a live buffer of its length.
            let r = unsafe {
                libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        }
    }
}

/// The error the unpacker's module expects of its parent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

#[path = "../../server/image/unpack.rs"]
mod unpack;

#[allow(dead_code)] // the media types are the daemon's
#[path = "../../server/image/compress.rs"]
mod compress;

const NAMES: &[&str] = &[
    "a", "b", "..", ".", "/", "etc", "passwd", ".wh.a", ".wh..wh..opq", ".wh.", "dir", "x/", "../x",
    "/etc/passwd", "lnk", "a/b/c",
];
const TARGETS: &[&str] = &["/", "..", "../..", "../../..", "/etc", "a", "lnk", "dir/../..", "/proc/self/root"];

fn piece<'a>(b: u8, from: &[&'a str]) -> &'a str {
    from[b as usize % from.len()]
}

/// A tar from the fuzzer's bytes: entry type, path of 1-3 pieces, link
/// target, a little content.
fn tar_of(data: &[u8]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for c in data.chunks(6) {
        let [kind, a, b, n, link, size] = match c {
            [k, a, b, n, l, s] => [*k, *a, *b, *n, *l, *s],
            _ => break,
        };
        let mut name = piece(a, NAMES).to_string();
        for extra in [b, n].iter().take((n % 3) as usize) {
            name = format!("{name}/{}", piece(*extra, NAMES));
        }
        let kind = match kind % 7 {
            0 => tar::EntryType::Regular,
            1 => tar::EntryType::Directory,
            2 => tar::EntryType::Symlink,
            3 => tar::EntryType::Link,
            4 => tar::EntryType::Fifo,
            5 => tar::EntryType::Char,
            _ => tar::EntryType::Regular,
        };
        let target = match kind {
            tar::EntryType::Link => piece(link, NAMES),
            _ => piece(link, TARGETS),
        };
        let content = vec![b'z'; (size % 64) as usize];
        let mut h = tar::Header::new_gnu();
        if name.len() > 99 || target.len() > 99 {
            continue;
        }
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_entry_type(kind);
        h.set_size(if kind == tar::EntryType::Regular { content.len() as u64 } else { 0 });
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        let body: &[u8] = if kind == tar::EntryType::Regular { &content } else { &[] };
        let _ = out.append(&h, body);
    }
    out.into_inner().unwrap_or_default()
}

/// A fresh directory with an empty layer and a sentinel beside it.
fn jail() -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-fuzz-unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("layer")).unwrap();
    std::fs::write(d.join("sentinel"), b"untouched").unwrap();
    d
}

fn check(jail: &Path) {
    assert_eq!(std::fs::read(jail.join("sentinel")).unwrap(), b"untouched");
    let mut names: Vec<_> = std::fs::read_dir(jail)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["layer", "sentinel"]);
    assert!(!Path::new("/x").exists() && !Path::new("/a").exists() && !Path::new("/lnk").exists());
}

fuzz_target!(|data: &[u8]| {
    let tar = match data.first() {
        Some(0xff) => data[1..].to_vec(),
        _ => tar_of(data),
    };
    let jail = jail();
    let limits = unpack::Limits {
        max_bytes: 1 << 20,
        max_entries: 1000,
    };
    // Raw input goes through the decompressor too (gzip, zstd or plain,
    // bounded).
    let _ = match data.first() {
        Some(0xff) => compress::decompressed(tar.as_slice(), 4 << 20)
            .map_err(|e| Error::Io(e.to_string()))
            .and_then(|r| unpack::unpack(r, &jail.join("layer"), limits)),
        _ => unpack::unpack(tar.as_slice(), &jail.join("layer"), limits),
    };
    check(&jail);
    let _ = std::fs::remove_dir_all(&jail);
});
