//! A host without processes or cgroups: each container's PID 1 is a flag
//! in `World`, signals follow the kernel's rules closely enough for the
//! state machine (a frozen process keeps its signals pending until thawed;
//! an ignored signal does nothing; SIGKILL always kills), and an exit is
//! written to the container's exit file as the monitor would.

mod host;

use crate::monitor::protocol::{ExitRecord, Failure, Report};
use crate::network::{self, Attachment, Join, NetworkRecord};
use crate::runtime::host::{
    BoxFuture, Confirm, ExecChild, ExecStdio, ExitReports, Host, Monitor, OomNotifier, Pid1,
    Spawned,
};
use crate::spec::Resources;
use crate::sys::cgroup::{self, Support, Usage};
use crate::sys::time::now_nanos;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// One run of a container.
struct Proc {
    id: String,
    dir: PathBuf,
    pid: i32,
    /// PID 1 has exited.
    dead: bool,
    /// Signals sent while frozen, delivered at thaw.
    pending: Vec<i32>,
    /// The monitor has exited (it does right after PID 1 unless held).
    monitor_gone: watch::Sender<bool>,
    /// The daemon went before confirming: the monitor ends PID 1.
    unconfirmed: bool,
}

#[derive(Default)]
pub struct World {
    procs: Vec<Proc>,
    frozen: HashSet<String>,
    /// Signals PID 1 of a container ignores.
    ignores: HashMap<String, Vec<i32>>,
    /// What PID 1 exits with on a signal it handles: the code.
    handles: HashMap<String, (i32, i32)>,
    /// Containers whose monitor stays after PID 1 exits, until released.
    held: HashSet<String>,
    /// Every signal sent, as (container, signal), in order.
    pub signals: Vec<(String, i32)>,
    /// The next start fails with this.
    pub fail_start: Option<Failure>,
    pub oom_kills: HashMap<String, u64>,
    next_pid: i32,
}

#[derive(Clone, Default)]
pub struct Fake(pub Arc<Mutex<World>>);

impl Fake {
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }

    /// PID 1 of `id` ignores `signal` (has no handler for it).
    pub fn ignore(&self, id: &str, signal: i32) {
        self.world()
            .ignores
            .entry(id.into())
            .or_default()
            .push(signal);
    }

    /// PID 1 of `id` exits with `code` when it gets `signal`.
    pub fn handle(&self, id: &str, signal: i32, code: i32) {
        self.world().handles.insert(id.into(), (signal, code));
    }

    /// The monitor of `id` stays after PID 1 exits, until `release`.
    pub fn hold(&self, id: &str) {
        self.world().held.insert(id.into());
    }

    pub fn release(&self, id: &str) {
        let mut w = self.world();
        w.held.remove(id);
        for p in w.procs.iter().filter(|p| p.id == id && p.dead) {
            p.monitor_gone.send_replace(true);
        }
    }

    /// PID 1 of `id` exits by itself with `code`.
    pub fn exit(&self, id: &str, code: i32) {
        let mut w = self.world();
        w.end(id, code, 0);
    }

    pub fn is_frozen(&self, id: &str) -> bool {
        self.world().frozen.contains(id)
    }

    pub fn is_alive(&self, id: &str) -> bool {
        self.world().procs.iter().any(|p| p.id == id && !p.dead)
    }

    /// The signals `id` was sent, in order.
    pub fn signals(&self, id: &str) -> Vec<i32> {
        let w = self.world();
        w.signals
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, s)| *s)
            .collect()
    }
}

impl World {
    fn live(&mut self, id: &str) -> Option<&mut Proc> {
        self.procs.iter_mut().find(|p| p.id == id && !p.dead)
    }

    /// PID 1 of `id` ends; the monitor writes the exit file and exits
    /// (unless held).
    fn end(&mut self, id: &str, code: i32, signal: i32) {
        let held = self.held.contains(id);
        let oom_kills = self.oom_kills.get(id).copied();
        let Some(p) = self.live(id) else { return };
        p.dead = true;
        let record = ExitRecord {
            exit_code: code,
            signal,
            finished_at: now_nanos(),
            oom_kills,
        };
        let data = serde_json::to_vec(&record).unwrap();
        std::fs::write(p.dir.join(crate::monitor::protocol::EXIT_FILE), data).unwrap();
        if !held {
            p.monitor_gone.send_replace(true);
        }
    }

    /// A signal arriving at PID 1 of `id` as the kernel would treat it.
    fn deliver(&mut self, id: &str, signal: i32) {
        if signal == 0 {
            return;
        }
        if self.frozen.contains(id) {
            if let Some(p) = self.live(id) {
                p.pending.push(signal);
            }
            return;
        }
        if signal != libc::SIGKILL {
            if self.ignores.get(id).is_some_and(|s| s.contains(&signal)) {
                return;
            }
            if let Some((s, code)) = self.handles.get(id).copied() {
                if s == signal {
                    return self.end(id, code, 0);
                }
            }
        }
        self.end(id, 128 + signal, signal);
    }
}

struct FakePid1 {
    world: Fake,
    id: String,
    pid: i32,
}

impl Pid1 for FakePid1 {
    fn signal(&self, signal: i32) -> std::io::Result<()> {
        let mut w = self.world.world();
        let alive = w.procs.iter().any(|p| p.pid == self.pid && !p.dead);
        if !alive {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        if signal != 0 {
            w.signals.push((self.id.clone(), signal));
        }
        w.deliver(&self.id, signal);
        Ok(())
    }

    fn exited(&self) -> bool {
        let w = self.world.world();
        !w.procs.iter().any(|p| p.pid == self.pid && !p.dead)
    }
}

struct FakeMonitor {
    world: Fake,
    id: String,
    pid: i32,
    gone: watch::Receiver<bool>,
}

impl Monitor for FakeMonitor {
    fn pid(&self) -> i32 {
        self.pid + 1_000_000
    }

    fn exited(self: Box<Self>) -> BoxFuture<'static, ()> {
        let mut gone = self.gone.clone();
        Box::pin(async move {
            let _ = gone.wait_for(|g| *g).await;
        })
    }

    fn wait_exit(&self, timeout: Duration) -> bool {
        {
            let mut w = self.world.world();
            let unconfirmed = w.procs.iter().any(|p| p.pid == self.pid && p.unconfirmed);
            if unconfirmed {
                w.end(&self.id, 137, libc::SIGKILL);
                w.release_monitor(self.pid);
            }
        }
        let deadline = std::time::Instant::now() + timeout;
        while !*self.gone.borrow() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn kill(&self) {
        let mut w = self.world.world();
        w.end(&self.id, 137, libc::SIGKILL);
        w.release_monitor(self.pid);
    }

    fn pid1(&self, pid: i32) -> Option<Box<dyn Pid1>> {
        (pid == self.pid).then(|| {
            Box::new(FakePid1 {
                world: self.world.clone(),
                id: self.id.clone(),
                pid,
            }) as Box<dyn Pid1>
        })
    }
}

impl World {
    fn release_monitor(&mut self, pid: i32) {
        if let Some(p) = self.procs.iter().find(|p| p.pid == pid) {
            p.monitor_gone.send_replace(true);
        }
    }
}

/// Confirms nothing: a fake monitor never ends a start on its own.
struct NoConfirm;

impl Confirm for NoConfirm {
    fn confirm(self: Box<Self>) -> std::io::Result<Box<dyn ExitReports>> {
        Ok(Box::new(NoReports))
    }
}

/// A fake monitor reports no exit: its exit is read from the world.
struct NoReports;

impl ExitReports for NoReports {
    fn reported(&mut self) -> BoxFuture<'_, Option<ExitRecord>> {
        Box::pin(std::future::pending())
    }

    fn recorded(&self) {}
}

/// Never notifies; OOM kills are counted from `World::oom_kills` at exit.
struct Silent;

impl OomNotifier for Silent {
    fn notified(&mut self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(std::future::pending())
    }
}

impl Fake {
    fn monitor(&self, p: &Proc) -> Box<dyn Monitor> {
        Box::new(FakeMonitor {
            world: self.clone(),
            id: p.id.clone(),
            pid: p.pid,
            gone: p.monitor_gone.subscribe(),
        })
    }
}

impl Fake {
    /// The container's cgroup thawed by someone else (while the daemon
    /// was down).
    pub fn thaw_behind(&self, id: &str) {
        self.world().frozen.remove(id);
    }

    /// A monitor running PID 1 for `id` that the daemon never heard of.
    pub fn orphan(&self, id: &str, dir: &Path) {
        let mut w = self.world();
        w.next_pid += 1;
        let pid = w.next_pid + 100;
        w.procs.push(Proc {
            id: id.into(),
            dir: dir.into(),
            pid,
            dead: false,
            pending: Vec::new(),
            monitor_gone: watch::Sender::new(false),
            unconfirmed: true,
        });
    }
}
