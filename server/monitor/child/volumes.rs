//! An image's volume starts with what the image has at its path, as
//! Docker's do: at the container's first start, before the volume is
//! mounted, the image's tree there (files, directories and symlinks, with
//! their owners and modes; the volume's directory takes the path's own)
//! is copied into the empty volume. A marker beside the volume records
//! that it was done, so what the container later deletes stays deleted.

use super::mounts::in_root;
use crate::monitor::protocol::{Failure, Step};
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

/// Fills the volume directory `volume` from `dest` inside `root` (the
/// container's merged root) unless that was done before.
pub fn populate(root: &Path, volume: &Path, dest: &str) -> Result<(), Failure> {
    let err = |e: std::io::Error| {
        Failure::new(Step::BindMount, format!("copy {dest} into its volume: {e}"))
    };
    let marker = volume.with_extension("populated");
    if marker.exists() {
        return Ok(());
    }
    // The marker is written before the volume is mounted, so before the
    // container ever ran with it: a volume with content but no marker
    // holds a copy cut short (the start killed half-way), made again.
    if std::fs::read_dir(volume).map_err(err)?.next().is_some() {
        std::fs::remove_dir_all(volume).map_err(err)?;
        std::fs::create_dir(volume).map_err(err)?;
    }
    let from = in_root(root, Path::new(dest), true).map_err(err)?;
    let meta = std::fs::symlink_metadata(&from).map_err(err)?;
    if meta.is_dir() {
        copy_tree(&from, volume).map_err(err)?;
        same_owner_and_mode(&meta, volume).map_err(err)?;
    }
    std::fs::write(&marker, b"").map_err(err)
}

/// Copies what `from` holds into the directory `to`, never following a
/// symlink. Device nodes, sockets and fifos are left out.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            continue;
        }
        same_owner_and_mode(&meta, &dst)?;
    }
    Ok(())
}

fn same_owner_and_mode(meta: &std::fs::Metadata, path: &Path) -> std::io::Result<()> {
    lchown(path, Some(meta.uid()), Some(meta.gid()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
}
