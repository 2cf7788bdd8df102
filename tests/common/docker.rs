//! A private dockerd (Debian's docker.io) for benchmarks' reference
//! figures: its own data root, exec root, pidfile and socket, no bridge and
//! no iptables rules of its own, the test rootfs imported as the image
//! `berth-bench`. Driven through its HTTP API on the socket, as the docker
//! CLI does but without the CLI's own start-up in the figures, or by the
//! CLI where a bench wants what only it prints.

use super::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

pub struct Docker {
    dir: PathBuf,
    exec_root: PathBuf,
    socket: PathBuf,
    child: Child,
}

/// The test rootfs, as an image of this dockerd.
pub const IMAGE: &str = "berth-bench";

impl Docker {
    /// None (and why, on stderr) where dockerd is missing or does not
    /// come up.
    pub fn start(dir: &Path) -> Option<Docker> {
        let Ok(path) = installed("dockerd") else {
            eprintln!("no dockerd here (apt-get install docker.io): no Docker figures");
            return None;
        };
        let dir = dir.join("docker");
        std::fs::create_dir_all(&dir).ok()?;
        let mut raw = [0u8; 4];
        getrandom(&mut raw);
        // Short: dockerd and containerd put sockets under it.
        let exec_root = PathBuf::from(format!("/run/bb-{:08x}", u32::from_le_bytes(raw)));
        let socket = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).ok()?;
        let child = Command::new(path)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().ok()?)
            .stderr(log)
            .spawn()
            .ok()?;
        let docker = Docker {
            dir,
            exec_root,
            socket,
            child,
        };
        let t = Instant::now();
        while docker.call("GET", "/_ping", None).0 != 200 {
            if t.elapsed() > Duration::from_secs(60) {
                eprintln!(
                    "dockerd did not come up: no Docker figures; its log is in {}",
                    docker.dir.display()
                );
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs())
            .args(["-c", "."])
            .output()
            .ok()?;
        let (code, body) = docker.call(
            "POST",
            &format!("/images/create?fromSrc=-&repo={IMAGE}&tag=latest"),
            Some(("application/x-tar", &tar.stdout)),
        );
        if code != 200 {
            eprintln!(
                "docker import failed ({code}: {}): no Docker figures",
                String::from_utf8_lossy(&body)
            );
            return None;
        }
        Some(docker)
    }

    /// The docker CLI (Debian's, /usr/bin/docker) on this dockerd.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("/usr/bin/docker");
        cmd.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args);
        cmd
    }

    /// stdout of a docker command that succeeded.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = self.command(args).stderr(Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// One HTTP/1.0 request (the answer ends with the connection): the
    /// status code (0 if the socket does not answer) and the body.
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> (u16, Vec<u8>) {
        let Ok(mut s) = UnixStream::connect(&self.socket) else {
            return (0, Vec::new());
        };
        let (kind, bytes) = body.unwrap_or(("application/json", b""));
        let head = format!(
            "{method} /v1.41{path} HTTP/1.0\r\nHost: docker\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
            bytes.len()
        );
        let mut answer = Vec::new();
        let sent = s
            .write_all(head.as_bytes())
            .and_then(|()| s.write_all(bytes));
        if sent.is_err() {
            return (0, Vec::new());
        }
        // What arrived counts even if the connection ends in a reset.
        let _ = s.read_to_end(&mut answer);
        let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (0, Vec::new());
        };
        let code = String::from_utf8_lossy(&answer[..end])
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, answer[end + 4..].to_vec())
    }

    /// A call with `body` (JSON; none if null) expecting `want`: the
    /// answer's JSON.
    fn json(
        &self,
        method: &str,
        path: &str,
        body: serde_json::Value,
        want: u16,
    ) -> serde_json::Value {
        let body = match body.is_null() {
            true => String::new(),
            false => body.to_string(),
        };
        let (code, answer) = self.call(method, path, Some(("application/json", body.as_bytes())));
        assert_eq!(
            code,
            want,
            "docker {method} {path}: {}",
            String::from_utf8_lossy(&answer)
        );
        serde_json::from_slice(&answer).unwrap_or(serde_json::Value::Null)
    }

    /// Creates and starts a container of the test rootfs running `args`
    /// with network none; its id.
    pub fn run(&self, args: &[&str]) -> String {
        let c = self.json(
            "POST",
            "/containers/create",
            serde_json::json!({"Image": IMAGE, "Cmd": args, "HostConfig": {"NetworkMode": "none"}}),
            201,
        );
        let id = c["Id"].as_str().unwrap().to_string();
        self.json(
            "POST",
            &format!("/containers/{id}/start"),
            serde_json::Value::Null,
            204,
        );
        id
    }

    /// Removes container `id`, with force.
    pub fn remove(&self, id: &str) {
        self.json(
            "DELETE",
            &format!("/containers/{id}?force=1"),
            serde_json::Value::Null,
            204,
        );
    }

    /// `args` run in container `id` (exec create, start attached, its
    /// exit code read back), as `docker exec` does; how long it took.
    pub fn exec(&self, id: &str, args: &[&str]) -> Duration {
        let t = Instant::now();
        let e = self.json(
            "POST",
            &format!("/containers/{id}/exec"),
            serde_json::json!({"Cmd": args, "AttachStdout": true, "AttachStderr": true}),
            201,
        );
        let exec = e["Id"].as_str().unwrap().to_string();
        // Attached: the answer is the process's output, ending with it.
        let body = serde_json::json!({"Detach": false, "Tty": false}).to_string();
        let (code, _) = self.call(
            "POST",
            &format!("/exec/{exec}/start"),
            Some(("application/json", body.as_bytes())),
        );
        assert_eq!(code, 200, "docker exec start");
        let state = self.json(
            "GET",
            &format!("/exec/{exec}/json"),
            serde_json::Value::Null,
            200,
        );
        assert_eq!(state["ExitCode"], 0);
        t.elapsed()
    }

    /// A subscription to the die events of containers, read line by line
    /// (the connection stays open).
    pub fn die_events(&self) -> std::io::Lines<std::io::BufReader<UnixStream>> {
        use std::io::BufRead;
        let mut s = UnixStream::connect(&self.socket).unwrap();
        let filters = r#"{"type":["container"],"event":["die"]}"#;
        let query: String = filters
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let head = format!("GET /v1.41/events?filters={query} HTTP/1.0\r\nHost: docker\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut lines = std::io::BufReader::new(s).lines();
        // The head, up to its blank line.
        for line in lines.by_ref() {
            if line.unwrap().is_empty() {
                break;
            }
        }
        lines
    }

    /// Sends `signal` to container `id`.
    pub fn kill(&self, id: &str, signal: &str) {
        self.json(
            "POST",
            &format!("/containers/{id}/kill?signal={signal}"),
            serde_json::Value::Null,
            204,
        );
    }

    /// The whole life of a `/bin/true` container through the API: create,
    /// start, wait, remove.
    pub fn lifecycle(&self) -> Duration {
        let t = Instant::now();
        let id = self.run(&["/bin/true"]);
        let w = self.json(
            "POST",
            &format!("/containers/{id}/wait"),
            serde_json::Value::Null,
            200,
        );
        assert_eq!(w["StatusCode"], 0);
        self.json(
            "DELETE",
            &format!("/containers/{id}"),
            serde_json::Value::Null,
            204,
        );
        t.elapsed()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        kill(self.child.id() as i32, libc::SIGTERM);
        let t = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if t.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // What a dockerd killed in the middle can leave mounted.
        for root in [&self.dir, &self.exec_root] {
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let mut under: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4))
                .filter(|m| m.starts_with(&*root.to_string_lossy()))
                .collect();
            under.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in under {
                let _ = Command::new("umount").args(["-l", m]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.exec_root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The path of `program` in $PATH (and the sbin directories root has).
pub fn installed(program: &str) -> Result<PathBuf, ()> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found.ok_or(())
}
