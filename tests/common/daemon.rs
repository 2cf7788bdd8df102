//! A real berthd per test, on its own socket and root, cleaned up even
//! when the test fails.

use super::*;

/// How long a berthd may take to answer after it is started: a start
/// copies berthd into a sealed memfd, which an emulated VM (the cgroup v2
/// run, under TCG) does many times slower than a host.
const UP_WITHIN: Duration = Duration::from_secs(60);

/// A running berthd with its own root and socket.
pub struct Daemon {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
    log: String,
    /// More berthd flags.
    pub args: Vec<String>,
    /// More environment for berthd.
    pub env: Vec<(String, String)>,
    /// Open files berthd inherits, as fds 7, 8, ….
    pub inherit: Vec<std::os::fd::OwnedFd>,
}

pub fn berthd() -> &'static str {
    env!("CARGO_BIN_EXE_berthd")
}

pub fn berth_cli() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

impl Daemon {
    pub async fn start(test: &str) -> Daemon {
        Daemon::start_with_log(test, "berthd=debug,info").await
    }

    /// Like `start`, with more berthd flags.
    pub async fn start_with_args(test: &str, args: &[&str]) -> Daemon {
        let mut d = Daemon::start(test).await;
        d.stop_daemon(libc::SIGTERM);
        d.args = args.iter().map(|s| s.to_string()).collect();
        d.spawn().await;
        d
    }

    /// Like `start`, with berthd's log filter given (benchmarks log less).
    pub async fn start_with_log(test: &str, log: &str) -> Daemon {
        Daemon::start_in(test_dir(test).keep(), log).await
    }

    /// A berthd whose socket, root and log are in `dir` (the power-cut
    /// test's disk); the directory is removed with the daemon.
    pub async fn start_in(dir: PathBuf, log: &str) -> Daemon {
        let mut d = Daemon {
            root: dir.join("root"),
            socket: dir.join("berth.sock"),
            dir,
            child: None,
            log: log.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            inherit: Vec::new(),
        };
        d.spawn().await;
        d
    }

    /// Starts berthd on this daemon's root and socket, and waits until it
    /// answers.
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("berthd.log"))
            .unwrap();
        let mut cmd = Command::new(berthd());
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .args(self.cri_socket())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .current_dir(&self.dir);
        host::as_from_a_shell(&mut cmd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.inherit.is_empty() {
            use std::os::fd::AsRawFd;
            let fds: Vec<i32> = self.inherit.iter().map(|f| f.as_raw_fd()).collect();
            host::inherit_at_7(&mut cmd, fds);
        }
        let child = cmd.spawn().expect("spawn berthd");
        self.child = Some(child);
        let deadline = Instant::now() + UP_WITHIN;
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "berthd did not come up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops berthd with SIGTERM and waits for it; containers keep running.
    pub fn stop_daemon(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            host::kill(child.id() as i32, signal);
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// berthd's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("berthd runs").id()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub async fn api(&self) -> Api {
        ContainersClient::new(berth::connect(&self.host()).await.unwrap())
    }

    pub async fn images(&self) -> pb::images_client::ImagesClient<Channel> {
        pb::images_client::ImagesClient::new(berth::connect(&self.host()).await.unwrap())
    }

    pub async fn events(&self, containers: &[&str]) -> Events {
        let mut client = EventsClient::new(berth::connect(&self.host()).await.unwrap());
        let stream = client
            .subscribe(pb::SubscribeRequest {
                containers: containers.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        Events { stream }
    }

    /// A subscription as given.
    pub async fn subscribe(&self, req: pb::SubscribeRequest) -> Result<Events, tonic::Status> {
        let mut client = EventsClient::new(berth::connect(&self.host()).await.unwrap());
        let stream = client.subscribe(req).await?.into_inner();
        Ok(Events { stream })
    }

    /// A replay of every event the journal holds, up to now.
    pub async fn replay(&self) -> Events {
        self.subscribe(pb::SubscribeRequest {
            since_seq: Some(0),
            until: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            ..Default::default()
        })
        .await
        .unwrap()
    }

    /// Every event the journal holds, up to now.
    pub async fn journal(&self) -> Vec<pb::Event> {
        self.replay().await.read_to_end().await
    }

    /// A Stop request in its own task and connection.
    pub fn stop_in_background(
        &self,
        id: &str,
        timeout: i32,
    ) -> tokio::task::JoinHandle<Result<(), tonic::Status>> {
        let (host, id) = (self.host(), id.to_string());
        tokio::spawn(async move {
            let mut api = ContainersClient::new(berth::connect(&host).await.unwrap());
            api.stop(pb::StopRequest {
                id,
                timeout_seconds: Some(timeout),
                signal: None,
            })
            .await
            .map(drop)
        })
    }

    /// berthd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("berthd.log")).unwrap_or_default()
    }

    /// A fresh host directory to bind-mount into a container.
    pub fn share(&self, name: &str) -> PathBuf {
        let p = self.dir.join("share").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
}

impl Drop for Daemon {
    /// Kills whatever the test left: container processes (through their
    /// cgroups), monitors, cgroups; stops berthd; removes the directory.
    fn drop(&mut self) {
        let ids: Vec<String> = std::fs::read_dir(self.root.join("containers"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        self.unwire(&ids);
        for id in &ids {
            kill_cgroup(id);
        }
        kill_monitors(&self.root);
        for id in &ids {
            remove_cgroup(id);
        }
        self.stop_daemon(libc::SIGTERM);
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(self.dir.join("berthd.log")) {
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- berthd.log (last lines) ---");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
            for id in &ids {
                let log = self.container_dir(id).join("monitor.log");
                match std::fs::read_to_string(log) {
                    Ok(log) if !log.is_empty() => eprintln!("--- monitor.log of {id} ---\n{log}"),
                    _ => {}
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        release_claims(&self.dir);
    }
}

/// Removes the host-wide entries (subnet claims, published ports) that
/// point into `dir`: the host is left as the test found it.
fn release_claims(dir: &Path) {
    for kind in ["subnets", "published"] {
        let Ok(entries) = std::fs::read_dir(Path::new("/run/berth").join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let to = std::fs::read_to_string(e.path()).unwrap_or_default();
            if Path::new(to.trim()).starts_with(dir) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

impl Daemon {
    /// What a test left on networks: containers still wired are removed
    /// through the daemon (its remove runs the CNI plugins' DEL), pins a
    /// dead daemon left are unmounted, and the networks' bridges, isolation
    /// and masquerade rules go.
    fn unwire(&mut self, ids: &[String]) {
        let wired: Vec<&str> = ids
            .iter()
            .filter(|id| self.container_dir(id).join("network.json").exists())
            .map(String::as_str)
            .collect();
        if !wired.is_empty() && self.child.is_none() {
            // Killed by the test: started again to unwire them.
            self.spawn_blocking();
        }
        if !wired.is_empty() && self.child.is_some() {
            let mut args = vec!["rm", "-f"];
            args.extend(&wired);
            let _ = berth(self, &args);
        }
        for id in ids {
            let pin = self.container_dir(id).join("netns");
            if pin.exists() {
                let _ = Command::new("umount").arg("-l").arg(&pin).output();
            }
        }
        for bridge in bridges(&self.root) {
            let _ = Command::new("ip").args(["link", "del", &bridge]).output();
            for program in ["iptables", "ip6tables"] {
                unrule(program, &bridge);
            }
        }
    }
}

/// Deletes the isolation return rule and masquerade rules of `bridge`.
fn unrule(program: &str, bridge: &str) {
    let rule = [
        "-D",
        "BERTH-ISOLATION",
        "-i",
        bridge,
        "-o",
        bridge,
        "-j",
        "RETURN",
    ];
    let _ = Command::new(program).args(["-w", "5"]).args(rule).output();
    let nat = Command::new(program)
        .args(["-t", "nat", "-S", "POSTROUTING"])
        .output();
    let nat = nat.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let masquerade = format!("! -o {bridge} -j MASQUERADE");
    for rule in nat
        .unwrap_or_default()
        .lines()
        .filter(|r| r.contains(&masquerade))
    {
        let rule = rule.replacen("-A", "-D", 1);
        let _ = Command::new(program)
            .args(["-w", "5", "-t", "nat"])
            .args(rule.split_whitespace())
            .output();
    }
}

impl Daemon {
    /// The CRI socket and CNI conf dir in the test's directory (not the
    /// host's defaults), unless the test gives them.
    fn cri_socket(&self) -> Vec<std::ffi::OsString> {
        let given = |flag: &str| self.args.iter().any(|a| a.starts_with(flag));
        let mut args = Vec::new();
        if !given("--cri-socket") {
            args.extend(["--cri-socket".into(), self.dir.join("cri.sock").into()]);
        }
        if !given("--cni-conf-dir") {
            args.extend(["--cni-conf-dir".into(), self.dir.join("net.d").into()]);
        }
        args
    }

    /// The CRI socket berthd serves.
    pub fn cri_path(&self) -> PathBuf {
        self.dir.join("cri.sock")
    }

    /// Starts berthd again from a synchronous context (Drop).
    fn spawn_blocking(&mut self) {
        let mut child = Command::new(berthd());
        child
            .arg("--socket")
            .arg(&self.socket)
            .arg("--root")
            .arg(&self.root)
            .args(["--log", "warn"])
            .args(self.cri_socket())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(&self.dir);
        host::as_from_a_shell(&mut child);
        child.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = child.spawn();
        let Ok(child) = child else { return };
        self.child = Some(child);
        let deadline = Instant::now() + UP_WITHIN;
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The bridges of the networks under `root` (from their CNI config lists).
pub fn bridges(root: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(root.join("networks")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".conflist"))
        .filter_map(|e| {
            let list: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            list["plugins"][0]["bridge"].as_str().map(str::to_string)
        })
        .collect()
}

/// A new directory of the test's own under the system's temporary one
/// (`berth-test-NAME-RANDOM`), removed when the test ends, failed or not.
pub fn test_dir(name: &str) -> TestDir {
    let mut raw = [0u8; 4];
    getrandom(&mut raw);
    let dir = std::env::temp_dir().join(format!(
        "berth-test-{name}-{:02x}{:02x}{:02x}{:02x}",
        raw[0], raw[1], raw[2], raw[3]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TestDir(dir)
}

/// A test's scratch directory; dropping it removes it.
pub struct TestDir(PathBuf);

impl TestDir {
    /// The path, no longer removed by this guard: its new owner removes it.
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.0)
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs berthd with `args` alone, expecting it to exit within 10 s.
pub fn berthd_fails(args: &[&str]) -> std::process::Output {
    // Never the host's default CRI socket.
    let cri: &[&str] = match args.iter().any(|a| a.starts_with("--cri-socket")) {
        true => &[],
        false => &["--cri-socket", ""],
    };
    let mut child = Command::new(berthd())
        .args(args)
        .args(cri)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("berthd {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
