//! The end-to-end test harness: a real `berthd` on a temporary socket and
//! root per test, a rootfs made from host binaries, helpers to read events,
//! and cleanup that runs even when a test fails.
#![allow(dead_code)]

use berth::pb::{
    self, containers_client::ContainersClient, events_client::EventsClient, Action, CreateRequest,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::Streaming;

pub type Api = ContainersClient<Channel>;

const ROOTFS_BINARIES: &[&str] = &[
    "sh", "sleep", "cat", "true", "ls", "mkdir", "echo", "dd", "mount", "hostname", "perl",
    "mknod", "touch",
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

fn which(bin: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("{bin} not found on the host");
}

/// The shared libraries `bin` loads, from ldd.
fn libraries(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

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
        let dir = test_dir(test);
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
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if !self.inherit.is_empty() {
            use std::os::fd::AsRawFd;
            use std::os::unix::process::CommandExt;
            let fds: Vec<i32> = self.inherit.iter().map(|f| f.as_raw_fd()).collect();
            // SAFETY: between fork and exec only dup2 runs, which is
            // async-signal-safe; the new fds are not close-on-exec. Through
            // fds 200+ first, in case a source is already one of 7, 8, ….
            unsafe {
                cmd.pre_exec(move || {
                    for (i, fd) in fds.iter().enumerate() {
                        if libc::dup2(*fd, 200 + i as i32) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    for i in 0..fds.len() as i32 {
                        if libc::dup2(200 + i, 7 + i) < 0 || libc::close(200 + i) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
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
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, signal) };
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
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cgroup directories of container `id` on every hierarchy.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in rd.flatten() {
            out.push(e.path().join("berth").join(id));
        }
    }
    out.push(PathBuf::from("/sys/fs/cgroup/berth").join(id));
    out.into_iter().filter(|p| p.exists()).collect()
}

/// The content of cgroup file `file` of container `id`, from whichever
/// hierarchy has it.
pub fn cgroup_file(id: &str, file: &str) -> Option<String> {
    cgroup_dirs(id)
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
        .map(|s| s.trim().to_string())
}

/// Host pids in the container's cgroup.
pub fn cgroup_pids(id: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = cgroup_dirs(id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn kill_cgroup(id: &str) {
    for dir in cgroup_dirs(id) {
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) with a pid read from the test's own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn remove_cgroup(id: &str) {
    for _ in 0..50 {
        let dirs = cgroup_dirs(id);
        if dirs.is_empty() {
            return;
        }
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Monitors of containers under `root`, found by their command line and
/// pid namespace.
pub fn monitor_pids(root: &Path) -> Vec<i32> {
    let needle = root.join("containers");
    let needle = needle.to_string_lossy();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // berth's init is a fork of the monitor: same command line, but
        // in the container's pid namespace.
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("\0monitor\0")
                && cmd.contains(needle.as_ref())
                && ns(&pid.to_string()) == ns("self")
            {
                out.push(pid);
            }
        }
    }
    out
}

fn kill_monitors(root: &Path) {
    for pid in monitor_pids(root) {
        // SAFETY: kill(2) on a monitor of this test's own root.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// A new directory of the test's own under the system's temporary one
/// (`berth-test-NAME-RANDOM`).
pub fn test_dir(name: &str) -> PathBuf {
    let mut raw = [0u8; 4];
    getrandom(&mut raw);
    let dir = std::env::temp_dir().join(format!(
        "berth-test-{name}-{:02x}{:02x}{:02x}{:02x}",
        raw[0], raw[1], raw[2], raw[3]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn getrandom(buf: &mut [u8]) {
    // SAFETY: the pointer and length describe `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    assert_eq!(n as usize, buf.len());
}

/// A field of /proc/PID/status, as a number (kB for memory fields).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Whether a process with this pid exists (zombies count as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// A create request for `args` in the test rootfs.
pub fn spec(name: &str, args: &[&str]) -> CreateRequest {
    CreateRequest {
        name: name.to_string(),
        rootfs: rootfs().display().to_string(),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A create request for `args` with the test's share directory `s`
/// mounted at /s.
pub fn shared(d: &Daemon, name: &str, args: &[&str]) -> CreateRequest {
    let mut req = spec(name, args);
    req.mounts.push(pb::Mount {
        source: d.share("s").display().to_string(),
        destination: "/s".into(),
        read_only: false,
    });
    req
}

/// Every container, running or not.
pub async fn listed(api: &mut Api) -> Vec<pb::Container> {
    api.list(pb::ListRequest { all: true })
        .await
        .unwrap()
        .into_inner()
        .containers
}

/// Creates a container; its id.
pub async fn created(api: &mut Api, req: CreateRequest) -> String {
    api.create(req).await.unwrap().into_inner().id
}

/// Creates and starts a container; its id.
pub async fn started(api: &mut Api, req: CreateRequest) -> String {
    let id = created(api, req).await;
    api.start(pb::StartRequest { id: id.clone() })
        .await
        .unwrap();
    id
}

/// A short action name list, for readable assertions.
pub type Seen = Vec<(Action, i32, Option<i32>)>;

pub struct Events {
    stream: Streaming<pb::Event>,
}

impl Events {
    /// The next event, or None if none arrives within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<pb::Event> {
        match tokio::time::timeout(within, self.stream.message()).await {
            Ok(Ok(Some(e))) => Some(e),
            _ => None,
        }
    }

    /// Events up to and including the first `until`, within 30 s.
    pub async fn until(&mut self, until: Action) -> Vec<pb::Event> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(e) = self.next(left).await else {
                panic!("no {until:?} event within 30s; got {:?}", brief(&out));
            };
            let done = e.action == until as i32;
            out.push(e);
            if done {
                return out;
            }
        }
    }

    /// Every event until the stream ends (within 30 s).
    pub async fn read_to_end(&mut self) -> Vec<pb::Event> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.message()).await {
                Ok(Ok(Some(e))) => out.push(e),
                Ok(Ok(None)) => return out,
                Ok(Err(s)) => panic!("stream failed: {s}"),
                Err(_) => panic!("stream did not end within 30s; got {}", out.len()),
            }
        }
    }

    /// The next event or the stream's end or error, within 30 s.
    pub async fn message(&mut self) -> Result<Option<pb::Event>, tonic::Status> {
        tokio::time::timeout(Duration::from_secs(30), self.stream.message())
            .await
            .expect("no message within 30s")
    }

    /// Asserts that nothing arrives for a while.
    pub async fn quiet(&mut self) {
        if let Some(e) = self.next(Duration::from_millis(300)).await {
            panic!("unexpected event {:?}", brief(&[e]));
        }
    }
}

/// A stop whose signal did not end the process: TERM, the grace ran out,
/// KILL.
pub fn escalated() -> Seen {
    vec![
        (Action::Kill, 15, None),
        (Action::Kill, 9, None),
        (Action::Die, 9, Some(137)),
        (Action::Stop, 0, None),
    ]
}

/// (action, signal, exit code) of each event.
pub fn brief(events: &[pb::Event]) -> Seen {
    events
        .iter()
        .map(|e| (Action::try_from(e.action).unwrap(), e.signal, e.exit_code))
        .collect()
}

/// Asserts seq strictly increases.
pub fn assert_ordered(events: &[pb::Event]) {
    for w in events.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "seq not increasing: {} then {}",
            w[0].seq,
            w[1].seq
        );
    }
}

pub async fn inspect(api: &mut Api, id: &str) -> pb::Container {
    api.inspect(pb::InspectRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .container
        .unwrap()
}

pub async fn status(api: &mut Api, id: &str) -> pb::ContainerState {
    inspect(api, id).await.state.unwrap()
}

/// Runs `script` in a container made by `req` to its end: exit code and
/// everything it wrote.
pub async fn run_script(api: &mut Api, mut req: pb::CreateRequest, script: &str) -> (i32, String) {
    req.args = vec!["sh".into(), "-c".into(), script.into()];
    let id = started(api, req).await;
    finished(api, &id).await
}

/// Waits for the container to exit: its exit code and everything it
/// wrote (stdout and stderr, in order).
pub async fn finished(api: &mut Api, id: &str) -> (i32, String) {
    let exit = api
        .wait(pb::WaitRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut logs = api
        .logs(pb::LogsRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = String::new();
    while let Some(e) = logs.message().await.unwrap() {
        out.push_str(&String::from_utf8_lossy(&e.line));
    }
    (exit.exit_code, out)
}

/// Waits until `path` exists and returns its content.
pub async fn read_when_ready(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

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

/// Runs berthd with `args` alone, expecting it to exit within 10 s.
pub fn berthd_fails(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(berthd())
        .args(args)
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
