//! A private containerd (Debian's package) as a CRI runtime, for
//! benchmarks' reference figures: its own root, state, socket and CNI
//! configuration (Debian's bridge and host-local plugins on a subnet of
//! its own), the test rootfs imported as the image the pods' containers
//! run and as its sandbox image (whose process is `sleep infinity`: the
//! test rootfs has no pause).

use super::*;

pub struct Containerd {
    dir: PathBuf,
    pub socket: PathBuf,
    child: Child,
    /// The bridge its CNI configuration makes.
    bridge: String,
}

/// The test rootfs, as images of this containerd.
pub const IMAGE: &str = "berth.bench/app:1";
const SANDBOX_IMAGE: &str = "berth.bench/pause:1";

impl Containerd {
    /// None (and why, on stderr) where containerd is missing or does not
    /// come up.
    pub fn start(dir: &Path, subnet: &str) -> Option<Containerd> {
        let Ok(path) = super::docker::installed("containerd") else {
            eprintln!("no containerd here (apt-get install containerd): no containerd figures");
            return None;
        };
        let dir = dir.join("containerd");
        let net = dir.join("net.d");
        std::fs::create_dir_all(&net).ok()?;
        let mut raw = [0u8; 3];
        getrandom(&mut raw);
        let bridge = format!("cb{:02x}{:02x}{:02x}", raw[0], raw[1], raw[2]);
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0", "name": "bench",
            "plugins": [{"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
                         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                                  "dataDir": dir.join("ipam")}}],
        });
        std::fs::write(net.join("10-bench.conflist"), conflist.to_string()).ok()?;
        let socket = dir.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Root here lacks CAP_SYS_RESOURCE: no score below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{net}"
"#,
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            socket = socket.display(),
            net = net.display(),
        );
        std::fs::write(dir.join("config.toml"), config).ok()?;
        let log = std::fs::File::create(dir.join("containerd.log")).ok()?;
        let child = Command::new(path)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().ok()?)
            .stderr(log)
            .spawn()
            .ok()?;
        let c = Containerd {
            dir,
            socket,
            child,
            bridge,
        };
        let t = Instant::now();
        while !c.ctr(&["version"]) {
            if t.elapsed() > Duration::from_secs(60) {
                eprintln!(
                    "containerd did not come up: no containerd figures; its log is in {}",
                    c.dir.display()
                );
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for (name, cmd) in [(IMAGE, "sh"), (SANDBOX_IMAGE, "sleep infinity")] {
            let args: Vec<&str> = cmd.split(' ').collect();
            let archive = c.dir.join("image.tar");
            // The helper's archives are zstd-compressed; ctr takes a plain tar.
            let config = serde_json::json!({"Cmd": args, "Env": ["PATH=/bin"]});
            let packed = docker_archive(name, config);
            std::fs::write(&archive, zstd::decode_all(&packed[..]).ok()?).ok()?;
            let out = c
                .command(&["-n", "k8s.io", "images", "import", archive.to_str()?])
                .output()
                .ok()?;
            if !out.status.success() {
                eprintln!(
                    "ctr images import failed ({}): no containerd figures",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
        }
        Some(c)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(&self.socket).args(args);
        cmd
    }

    fn ctr(&self, args: &[&str]) -> bool {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // What a bench that stopped short left: every task killed and
        // deleted, so that no shim or container outlives this containerd.
        let tasks = self
            .command(&["-n", "k8s.io", "tasks", "ls", "-q"])
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for task in tasks.split_whitespace() {
            self.ctr(&["-n", "k8s.io", "tasks", "rm", "-f", task]);
        }
        host::kill(self.child.id() as i32, libc::SIGTERM);
        let _ = self.child.wait();
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(self.dir.join("state"))
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}
