//! The test rootfs: a shell and a few tools copied from the host, with
//! the libraries they load.

use super::*;

const ROOTFS_BINARIES: &[&str] = &[
    "sh", "sleep", "cat", "true", "ls", "mkdir", "echo", "dd", "mount", "hostname", "perl",
    "mknod", "touch", "stty", "busybox",
];

/// A rootfs with a shell and a few tools copied from the host, with the
/// libraries they load; built once per test binary.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let done = base.join("rootfs");
        if ROOTFS_BINARIES
            .iter()
            .all(|b| done.join("bin").join(b).exists())
        {
            return done;
        }
        let tmp = base.join(format!("rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for d in ["bin", "tmp", "etc"] {
            std::fs::create_dir_all(tmp.join(d)).unwrap();
        }
        for bin in ROOTFS_BINARIES {
            let host = which(bin);
            std::fs::copy(&host, tmp.join("bin").join(bin)).unwrap();
            for lib in libraries(&host) {
                let dst = tmp.join(lib.strip_prefix("/").unwrap());
                std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                std::fs::copy(&lib, &dst).unwrap();
            }
        }
        // Another test binary may have finished first: either copy is fine.
        // An older rootfs without every tool is replaced.
        if std::fs::rename(&tmp, &done).is_err() {
            let complete = ROOTFS_BINARIES
                .iter()
                .all(|b| done.join("bin").join(b).exists());
            if !complete {
                let old = base.join(format!("rootfs-old-{}", std::process::id()));
                if std::fs::rename(&done, &old).is_ok() {
                    let _ = std::fs::remove_dir_all(&old);
                }
                let _ = std::fs::rename(&tmp, &done);
            }
            let _ = std::fs::remove_dir_all(&tmp);
        }
        done
    })
}

pub fn which(bin: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("{bin} not found on the host");
}

/// The shared libraries `bin` loads, from ldd.
pub fn libraries(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}
