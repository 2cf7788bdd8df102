//! Hostile and ordinary layers, unpacked as root into a temporary
//! directory (skipped when not root).

use super::*;
use crate::image::compress::{decompressed, Compression};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use tar::EntryType as T;

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Option<Dir> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let d = std::env::temp_dir().join(format!("berth-unpack-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("layer")).unwrap();
    Some(Dir(d))
}

/// A tar entry with its name and link name written raw (tar's own
/// setters refuse "..").
fn add(b: &mut tar::Builder<Vec<u8>>, kind: T, name: &str, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(if kind == T::Directory { 0o755 } else { 0o644 });
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// Entries: type, name, link name, content.
type Entries<'a> = [(T, &'a str, &'a str, &'a [u8])];

fn tar(entries: &Entries) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (kind, name, link, data) in entries {
        add(&mut b, *kind, name, link, data);
    }
    b.into_inner().unwrap()
}

fn run(d: &Dir, entries: &Entries) -> Result<Unpacked, Error> {
    unpack(
        tar(entries).as_slice(),
        &d.0.join("layer"),
        Limits::default(),
    )
}

#[test]
fn ordinary_entries() {
    let Some(d) = scratch("ordinary") else { return };
    let l = d.0.join("layer");
    let done = run(
        &d,
        &[
            (T::Directory, "etc/", "", b""),
            (T::Regular, "etc/hosts", "", b"127.0.0.1 localhost\n"),
            (T::Regular, "./usr/bin/tool", "", b"#!/bin/sh\n"),
            (T::Symlink, "usr/bin/alias", "tool", b""),
            (T::Link, "usr/bin/hard", "usr/bin/tool", b""),
            (T::Fifo, "run/pipe", "", b""),
        ],
    )
    .unwrap();
    assert_eq!(done.bytes, 30);
    let m = std::fs::metadata(l.join("etc/hosts")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
        (1000, 1001, 0o644)
    );
    assert_eq!(m.mtime(), 1_000_000);
    assert_eq!(
        std::fs::read_link(l.join("usr/bin/alias")).unwrap(),
        Path::new("tool")
    );
    let (a, b) = (
        std::fs::metadata(l.join("usr/bin/tool")).unwrap(),
        std::fs::metadata(l.join("usr/bin/hard")).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    assert!(std::fs::metadata(l.join("run/pipe"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(std::fs::metadata(l.join("etc")).unwrap().mtime(), 1_000_000);
}

#[test]
fn whiteouts_become_overlay_ones() {
    let Some(d) = scratch("whiteout") else { return };
    let l = d.0.join("layer");
    run(
        &d,
        &[
            (T::Regular, "a/.wh.gone", "", b""),
            (T::Regular, "b/.wh..wh..opq", "", b""),
            (T::Regular, "b/kept", "", b"x"),
            (T::Regular, ".wh..wh.plnk", "", b""),
        ],
    )
    .unwrap();
    let w = std::fs::symlink_metadata(l.join("a/gone")).unwrap();
    assert!(w.file_type().is_char_device());
    assert_eq!(w.rdev(), 0);
    let opaque = crate::sys::linux::get_xattr(&l.join("b"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque, b"y");
    assert!(l.join("b/kept").exists());
    assert!(!l.join(".wh..wh.plnk").exists());
}

#[test]
fn symlinks_resolve_inside_the_layer() {
    let Some(d) = scratch("symlink") else { return };
    let l = d.0.join("layer");
    let outside = d.0.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    run(
        &d,
        &[
            (T::Symlink, "root", "/", b""),
            (T::Symlink, "up", "../../../../../../..", b""),
            (T::Symlink, "out", outside.to_str().unwrap(), b""),
            (T::Regular, "root/etc/evil", "", b"1"),
            (T::Regular, "up/pwned", "", b"2"),
            (T::Regular, "out/escaped", "", b"3"),
            (T::Regular, "/abs/file", "", b"4"),
            (T::Link, "linked", "up/pwned", b""),
        ],
    )
    .unwrap();
    assert_eq!(std::fs::read(l.join("etc/evil")).unwrap(), b"1");
    assert_eq!(std::fs::read(l.join("pwned")).unwrap(), b"2");
    assert_eq!(
        std::fs::read(l.join(outside.strip_prefix("/").unwrap()).join("escaped")).unwrap(),
        b"3"
    );
    assert_eq!(std::fs::read(l.join("abs/file")).unwrap(), b"4");
    assert_eq!(std::fs::read(l.join("linked")).unwrap(), b"2");
    assert!(!outside.join("escaped").exists());
    assert!(!Path::new("/pwned").exists());
    // Nothing left the layer.
    let names: Vec<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn refused_entries() {
    let cases: &[(&str, &Entries, &str)] = &[
        ("dotdot", &[(T::Regular, "a/../../x", "", b"")], "\"..\""),
        (
            "dotdot-link",
            &[(T::Link, "x", "../etc/passwd", b"")],
            "\"..\"",
        ),
        (
            "link-outside",
            &[(T::Link, "x", "/etc/passwd", b"")],
            "hard link",
        ),
        (
            "link-dir",
            &[(T::Directory, "d", "", b""), (T::Link, "x", "d", b"")],
            "hard link",
        ),
        (
            "whiteout-dot",
            &[
                (T::Directory, "d", "", b""),
                (T::Regular, "d/.wh..", "", b""),
            ],
            "its directory itself",
        ),
        (
            "whiteout-dotdot",
            &[(T::Regular, ".wh...", "", b"")],
            "its directory's parent",
        ),
        (
            "through-file",
            &[(T::Regular, "f", "", b"x"), (T::Regular, "f/g", "", b"y")],
            "f",
        ),
    ];
    for (name, entries, why) in cases {
        let Some(d) = scratch(name) else { return };
        let e = run(&d, entries).expect_err(name);
        assert!(matches!(e, Error::Invalid(_)), "{name}: {e:?}");
        assert!(e.to_string().contains(why), "{name}: {e}");
    }
}

#[test]
fn device_nodes_are_left_out() {
    let Some(d) = scratch("devices") else { return };
    let entries: &Entries = &[
        (T::Directory, "dev", "", b""),
        (T::Char, "dev/null", "", b""),
        (T::Block, "dev/sda", "", b""),
        (T::Regular, "dev/keep", "", b"k"),
    ];
    run(&d, entries).unwrap();
    let dev = d.0.join("layer/dev");
    let names: Vec<_> = std::fs::read_dir(&dev)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keep"]);
    // The whole layer is still there after the refused whiteouts' cases.
    assert!(d.0.join("layer").is_dir());
}

#[test]
fn replaced_entries() {
    let Some(d) = scratch("replace") else { return };
    let l = d.0.join("layer");
    run(
        &d,
        &[
            (T::Directory, "x/", "", b""),
            (T::Regular, "x/inner", "", b"1"),
            (T::Regular, "x", "", b"file now"),
            (T::Regular, "y", "", b"file"),
            (T::Directory, "y/", "", b""),
            (T::Regular, "z", "", b"old"),
            (T::Regular, "z", "", b"new"),
        ],
    )
    .unwrap();
    assert_eq!(std::fs::read(l.join("x")).unwrap(), b"file now");
    assert!(l.join("y").is_dir());
    assert_eq!(std::fs::read(l.join("z")).unwrap(), b"new");
}

#[test]
fn limits_hold() {
    let Some(d) = scratch("limits") else { return };
    let big = vec![7u8; 4096];
    let t = tar(&[(T::Regular, "a", "", &big), (T::Regular, "b", "", &big)]);
    let small = Limits {
        max_bytes: 6000,
        max_entries: 100,
    };
    let e = unpack(t.as_slice(), &d.0.join("layer"), small).unwrap_err();
    assert!(e.to_string().contains("max-layer-size"), "{e}");
    let few = Limits {
        max_bytes: 1 << 20,
        max_entries: 1,
    };
    let _ = std::fs::remove_dir_all(d.0.join("layer"));
    std::fs::create_dir_all(d.0.join("layer")).unwrap();
    let e = unpack(t.as_slice(), &d.0.join("layer"), few).unwrap_err();
    assert!(e.to_string().contains("entries"), "{e}");
}

#[test]
fn decompression_is_bounded() {
    // 64 MiB of zeros compress to some 64 KiB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        std::io::Write::write_all(&mut gz, &zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let mut r = decompressed(bomb.as_slice(), 8 << 20).unwrap();
    let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
    let mut r = decompressed(bomb.as_slice(), 64 << 20).unwrap();
    assert_eq!(
        std::io::copy(&mut r, &mut std::io::sink()).unwrap(),
        64 << 20
    );
    // zstd and plain are told apart by their first bytes too.
    let z = zstd::encode_all(&b"hello"[..], 3).unwrap();
    let mut out = String::new();
    decompressed(z.as_slice(), 100)
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "hello");
    assert_eq!(Compression::detect(b"hel"), Compression::None);
}
