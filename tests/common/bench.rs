//! What benchmarks print: medians and percentiles of samples.

use super::*;

/// Prints the median, p99 and minimum of `samples` (for benchmarks).
pub fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{name:<10} median {:>8.3} ms   p99 {:>8.3} ms   min {:>8.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
    );
}

/// How many samples a benchmark takes: BERTH_BENCH_N, default 300.
pub fn samples() -> usize {
    std::env::var("BERTH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// runc (Debian's package) on the test rootfs, for the reference figures:
/// a bundle whose process is `args`, its state under `dir`.
pub struct Runc {
    bundle: PathBuf,
    root: PathBuf,
}

impl Runc {
    /// None where runc is missing.
    pub fn new(dir: &Path, args: &[&str]) -> Option<Runc> {
        let bundle = dir.join("runc-bundle");
        std::fs::create_dir_all(&bundle).ok()?;
        let ok = std::process::Command::new("runc")
            .arg("spec")
            .current_dir(&bundle)
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let path = bundle.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        config["root"] = serde_json::json!({"path": rootfs(), "readonly": true});
        config["process"]["terminal"] = serde_json::json!(false);
        config["process"]["args"] = serde_json::json!(args);
        std::fs::write(&path, serde_json::to_vec(&config).ok()?).ok()?;
        Some(Runc {
            bundle,
            root: dir.join("runc-state"),
        })
    }

    fn runc(&self, args: &[&str]) -> bool {
        std::process::Command::new("runc")
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.bundle)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `runc run -d ID`: the container started in the background.
    pub fn start(&self, id: &str) -> bool {
        self.runc(&["run", "-d", id])
    }

    /// The whole life of container `id`: `runc run` in the foreground
    /// (create, start, wait, and delete once it has exited).
    pub fn lifecycle(&self, id: &str) -> Duration {
        let t = Instant::now();
        assert!(self.runc(&["run", id]), "runc run failed");
        t.elapsed()
    }

    /// `runc exec ID true`.
    pub fn exec(&self, id: &str) -> Duration {
        let t = Instant::now();
        assert!(self.runc(&["exec", id, "true"]), "runc exec failed");
        t.elapsed()
    }

    /// `runc delete -f ID`.
    pub fn delete(&self, id: &str) {
        self.runc(&["delete", "-f", id]);
    }
}
