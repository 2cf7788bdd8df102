//! The state machine on a fake host (fake.rs): no root, no processes. Each
//! test checks the events journaled, in order, and the state left.

mod fake;

use super::{Error, Options, Runtime, Status, WaitCondition};
use crate::events::{Filter, Start};
use crate::logs::Limits;
use berth::pb::Action;
use fake::Fake;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;

const TERM: i32 = libc::SIGTERM;
const KILL: i32 = libc::SIGKILL;

/// A runtime on its own tokio runtime and root; dropping `tokio` is a
/// daemon killed with -9 (every task gone, the store closed).
struct Daemon {
    tokio: tokio::runtime::Runtime,
    rt: Arc<Runtime>,
    fake: Fake,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Root {
        let dir = std::env::temp_dir().join(format!("berth-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        Root(dir)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Daemon {
    fn open(root: &Root, fake: &Fake) -> Daemon {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, shutdown) = tokio::sync::watch::channel(false);
        let options = Options {
            log_limits: Limits::default(),
            rebuild: false,
            dns: false,
        };
        let host = Box::new(fake.clone());
        let rt = tokio
            .block_on(Runtime::open(
                &root.0.join("state"),
                host,
                options,
                shutdown,
            ))
            .unwrap();
        Daemon {
            tokio,
            rt,
            fake: fake.clone(),
            _shutdown: tx,
        }
    }

    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.tokio.block_on(f)
    }

    fn create(&self, root: &Root, name: &str) -> String {
        let req = crate::spec::Request {
            name: name.into(),
            rootfs: root.0.join("rootfs").display().to_string(),
            args: vec!["/bin/true".into()],
            ..Default::default()
        };
        self.run(self.rt.create(req)).unwrap().0
    }

    fn started(&self, root: &Root, name: &str) -> String {
        let id = self.create(root, name);
        self.run(self.rt.start(&id)).unwrap();
        id
    }

    fn status(&self, id: &str) -> Status {
        self.rt.inspect(id).unwrap().status
    }

    /// Waits until the container is not running; its exit code.
    fn exited(&self, id: &str) -> i32 {
        let wait = self.rt.wait(id, WaitCondition::NotRunning, None);
        let exit = self.run(async { tokio::time::timeout(Duration::from_secs(10), wait).await });
        exit.expect("the container exits").unwrap().code
    }

    /// The container's events, journaled so far, as "kill(15)", "die(137)".
    fn events(&self, id: &str) -> Vec<String> {
        let filter = Filter {
            containers: vec![id.into()],
            ..Default::default()
        };
        let bus = self.rt.bus();
        let now = crate::sys::time::now_nanos();
        let sub = bus.subscribe(filter, Start::After(0), Some(now)).unwrap();
        let events: Vec<_> = self.run(sub.collect());
        events
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let action = Action::try_from(e.action).unwrap();
                let name = action.as_str_name().trim_start_matches("ACTION_");
                let name = name.to_lowercase();
                match action {
                    Action::Kill => format!("kill({})", e.signal),
                    Action::Die => format!("die({})", e.exit_code.unwrap_or(-1)),
                    _ => name,
                }
            })
            .collect()
    }

    /// Waits until `id`'s events are `want` (the exit watcher runs on its
    /// own).
    fn events_become(&self, id: &str, want: &[&str]) {
        for _ in 0..500 {
            if self.events(id) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(self.events(id), want);
    }
}

fn precondition(r: Result<(), Error>) -> String {
    match r {
        Err(Error::FailedPrecondition(m)) => m,
        r => panic!("expected FailedPrecondition, got {r:?}"),
    }
}

#[test]
fn create_then_start() {
    let root = Root::new("start");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.started(&root, "web");
    assert_eq!(d.status(&id), Status::Running);
    assert_eq!(d.events(&id), ["create", "start"]);
    // Start of a running container: nothing.
    d.run(d.rt.start(&id)).unwrap();
    assert_eq!(d.events(&id), ["create", "start"]);
}

#[test]
fn stop_without_a_term_handler_kills_when_the_grace_runs_out() {
    let root = Root::new("grace");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.create(&root, "web");
    d.fake.ignore(&id, TERM);
    d.run(d.rt.start(&id)).unwrap();
    d.run(d.rt.stop(&id, Some(1), None)).unwrap();
    assert_eq!(d.exited(&id), 137);
    let e = ["create", "start", "kill(15)", "kill(9)", "die(137)", "stop"];
    assert_eq!(d.events(&id), e);
}

#[test]
fn stop_that_the_process_handles_returns_at_once() {
    let root = Root::new("handled");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.create(&root, "web");
    d.fake.handle(&id, TERM, 3);
    d.run(d.rt.start(&id)).unwrap();
    d.run(d.rt.stop(&id, None, None)).unwrap();
    assert_eq!(d.exited(&id), 3);
    assert_eq!(
        d.events(&id),
        ["create", "start", "kill(15)", "die(3)", "stop"]
    );
    // Stop of an exited container: nothing.
    d.run(d.rt.stop(&id, None, None)).unwrap();
    assert_eq!(d.events(&id).len(), 5);
}

#[test]
fn stop_with_timeout_zero_kills_right_after_the_signal() {
    let root = Root::new("zero");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.create(&root, "web");
    d.fake.ignore(&id, TERM);
    d.run(d.rt.start(&id)).unwrap();
    d.run(d.rt.stop(&id, Some(0), None)).unwrap();
    let e = ["create", "start", "kill(15)", "kill(9)", "die(137)", "stop"];
    assert_eq!(d.events(&id), e);
}

#[test]
fn stops_coalesce_and_the_earliest_deadline_wins() {
    let root = Root::new("coalesce");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.create(&root, "web");
    d.fake.ignore(&id, TERM);
    d.run(d.rt.start(&id)).unwrap();
    // Forever, then a minute: the signal goes out once, nobody kills yet.
    let (rt, key) = (d.rt.clone(), id.clone());
    let forever = d
        .tokio
        .spawn(async move { rt.stop(&key, Some(-1), None).await });
    d.events_become(&id, &["create", "start", "kill(15)"]);
    let (rt, key) = (d.rt.clone(), id.clone());
    let minute = d
        .tokio
        .spawn(async move { rt.stop(&key, Some(60), None).await });
    std::thread::sleep(Duration::from_millis(100));
    assert!(d.fake.is_alive(&id));
    // A later, longer stop does not push the deadline back; zero kills.
    let (rt, key) = (d.rt.clone(), id.clone());
    let hour = d
        .tokio
        .spawn(async move { rt.stop(&key, Some(3600), None).await });
    d.run(d.rt.stop(&id, Some(0), None)).unwrap();
    for stop in [forever, minute, hour] {
        d.run(stop).unwrap().unwrap();
    }
    assert_eq!(d.fake.signals(&id), [TERM, KILL]);
    let e = ["create", "start", "kill(15)", "kill(9)", "die(137)", "stop"];
    assert_eq!(d.events(&id), e);
}

#[test]
fn kill_sends_kill_by_default_and_no_stop_event() {
    let root = Root::new("kill");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.create(&root, "web");
    d.fake.ignore(&id, libc::SIGHUP);
    d.run(d.rt.start(&id)).unwrap();
    d.run(d.rt.kill(&id, "HUP", false)).unwrap();
    assert_eq!(d.status(&id), Status::Running);
    d.run(d.rt.kill(&id, "", false)).unwrap();
    assert_eq!(d.exited(&id), 137);
    let e = ["create", "start", "kill(1)", "kill(9)", "die(137)"];
    assert_eq!(d.events(&id), e);
    let m = precondition(d.run(d.rt.kill(&id, "", false)));
    assert!(m.contains("not running"), "{m}");
    assert_eq!(d.events(&id).len(), 5);
}

#[test]
fn pause_and_unpause_freeze_and_thaw() {
    let root = Root::new("pause");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.started(&root, "web");
    d.run(d.rt.pause(&id)).unwrap();
    assert!(d.fake.is_frozen(&id));
    assert_eq!(d.status(&id), Status::Paused);
    precondition(d.run(d.rt.pause(&id)));
    d.run(d.rt.unpause(&id)).unwrap();
    assert!(!d.fake.is_frozen(&id));
    precondition(d.run(d.rt.unpause(&id)));
    assert_eq!(d.events(&id), ["create", "start", "pause", "unpause"]);
}

#[test]
fn stop_of_a_paused_container_thaws_it_right_after_the_stop_signal() {
    // As Docker: the process can handle TERM at once (a server saves and
    // exits 0), not only after the grace.
    let root = Root::new("paused-stop");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.started(&root, "db");
    d.run(d.rt.pause(&id)).unwrap();
    d.run(d.rt.stop(&id, Some(3600), None)).unwrap();
    assert_eq!(d.exited(&id), 143);
    let e = [
        "create", "start", "pause", "kill(15)", "unpause", "die(143)", "stop",
    ];
    assert_eq!(d.events(&id), e);
    // TERM ignored: thawed at once all the same, KILL when the grace ends.
    let id = d.create(&root, "web");
    d.fake.ignore(&id, TERM);
    d.run(d.rt.start(&id)).unwrap();
    d.run(d.rt.pause(&id)).unwrap();
    d.run(d.rt.stop(&id, Some(0), None)).unwrap();
    assert_eq!(d.exited(&id), 137);
    assert!(!d.fake.is_frozen(&id));
    let e = [
        "create", "start", "pause", "kill(15)", "unpause", "kill(9)", "die(137)", "stop",
    ];
    assert_eq!(d.events(&id), e);
}

#[test]
fn kill_of_a_paused_container() {
    let root = Root::new("paused-kill");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.started(&root, "web");
    // KILL thaws it, without an unpause event.
    d.run(d.rt.pause(&id)).unwrap();
    d.run(d.rt.kill(&id, "KILL", false)).unwrap();
    assert_eq!(d.exited(&id), 137);
    assert_eq!(
        d.events(&id),
        ["create", "start", "pause", "kill(9)", "die(137)"]
    );
    // Any other signal thaws it at once too (the stop signal is the
    // default), with an unpause event after the kill.
    let id = d.started(&root, "db");
    d.run(d.rt.pause(&id)).unwrap();
    d.run(d.rt.kill(&id, "TERM", false)).unwrap();
    assert_eq!(d.exited(&id), 143);
    assert!(!d.fake.is_frozen(&id));
    let e = [
        "create", "start", "pause", "kill(15)", "unpause", "die(143)",
    ];
    assert_eq!(d.events(&id), e);
    // With a stop signal of its own, only that signal and KILL thaw it.
    let req = crate::spec::Request {
        name: "custom".into(),
        rootfs: root.0.join("rootfs").display().to_string(),
        args: vec!["/bin/true".into()],
        stop_signal: "SIGUSR1".into(),
        ..Default::default()
    };
    let id = d.run(d.rt.create(req)).unwrap().0;
    d.fake.ignore(&id, libc::SIGHUP);
    d.run(d.rt.start(&id)).unwrap();
    d.run(d.rt.pause(&id)).unwrap();
    d.run(d.rt.kill(&id, "HUP", false)).unwrap();
    assert_eq!(d.status(&id), Status::Paused);
    assert!(d.fake.is_frozen(&id));
    d.run(d.rt.kill(&id, "USR1", false)).unwrap();
    assert_eq!(d.exited(&id), 128 + libc::SIGUSR1);
    let e = [
        "create", "start", "pause", "kill(1)", "kill(10)", "unpause", "die(138)",
    ];
    assert_eq!(d.events(&id), e);
}

#[test]
fn remove_needs_force_while_running() {
    let root = Root::new("remove");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.started(&root, "web");
    let m = precondition(d.run(d.rt.remove(&id, false)));
    assert!(m.contains("stop") && m.contains("force"), "{m}");
    d.run(d.rt.pause(&id)).unwrap();
    precondition(d.run(d.rt.remove(&id, false)));
    d.run(d.rt.remove(&id, true)).unwrap();
    let e = ["create", "start", "pause", "kill(9)", "die(137)", "destroy"];
    assert_eq!(d.events(&id), e);
    assert!(matches!(d.rt.inspect(&id), Err(Error::NotFound(_))));
    // The name is free again at once.
    d.create(&root, "web");
    // An exited container goes without force.
    let id = d.started(&root, "db");
    d.fake.exit(&id, 7);
    assert_eq!(d.exited(&id), 7);
    d.run(d.rt.start(&id)).unwrap();
    d.fake.exit(&id, 7);
    assert_eq!(d.exited(&id), 7);
    d.run(d.rt.remove(&id, false)).unwrap();
    let e = ["create", "start", "die(7)", "start", "die(7)", "destroy"];
    assert_eq!(d.events(&id), e);
}

#[test]
fn an_exit_not_yet_recorded_races_pause_kill_and_remove() {
    let root = Root::new("race");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.started(&root, "web");
    // PID 1 has exited; its monitor has not reported it yet.
    d.fake.hold(&id);
    d.fake.exit(&id, 0);
    assert!(precondition(d.run(d.rt.kill(&id, "TERM", false))).contains("not running"));
    assert!(precondition(d.run(d.rt.kill(&id, "TERM", true))).contains("not running"));
    assert!(precondition(d.run(d.rt.pause(&id))).contains("not running"));
    // Stop of a process that is gone: no kill event; it still stops (its
    // restart policy would not start it again), and ends with the exit.
    let (rt, key) = (d.rt.clone(), id.clone());
    let stop = d
        .tokio
        .spawn(async move { rt.stop(&key, Some(0), None).await });
    // (Not stopped_by_user: the kill of TERM above set it already. Until
    // the stop holds, a remove could take the container's lock first.)
    while d.rt.inspect(&id).unwrap().stop_deadline == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (rt, key) = (d.rt.clone(), id.clone());
    let remove = d.tokio.spawn(async move { rt.remove(&key, true).await });
    std::thread::sleep(Duration::from_millis(100));
    assert!(!stop.is_finished(), "stop waits for the exit");
    assert!(!remove.is_finished(), "remove waits for the exit");
    d.fake.release(&id);
    d.run(stop).unwrap().unwrap();
    d.run(remove).unwrap().unwrap();
    assert_eq!(
        d.events(&id),
        ["create", "start", "die(0)", "stop", "destroy"]
    );
    assert!(d.fake.signals(&id).is_empty());
}

#[test]
fn a_failed_start_changes_nothing() {
    use crate::monitor::protocol::{Failure, Step};
    let root = Root::new("failed");
    let d = Daemon::open(&root, &Fake::default());
    let id = d.create(&root, "web");
    d.fake.world().fail_start = Some(Failure::new(Step::Exec, "no such file"));
    let err = d.run(d.rt.start(&id)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    d.fake.world().fail_start = Some(Failure::new(Step::MountProc, "EPERM"));
    let err = d.run(d.rt.start(&id)).unwrap_err();
    assert_eq!(err.to_string(), "start container web: mount /proc: EPERM");
    assert_eq!(d.status(&id), Status::Created);
    assert_eq!(d.events(&id), ["create"]);
}

#[test]
fn every_state_comes_back_after_a_restart() {
    let root = Root::new("recover");
    let fake = Fake::default();
    let d = Daemon::open(&root, &fake);
    let created = d.create(&root, "created");
    let running = d.started(&root, "running");
    let paused = d.started(&root, "paused");
    d.run(d.rt.pause(&paused)).unwrap();
    let exited = d.started(&root, "exited");
    fake.exit(&exited, 7);
    assert_eq!(d.exited(&exited), 7);
    let stopping = d.create(&root, "stopping");
    fake.ignore(&stopping, TERM);
    d.run(d.rt.start(&stopping)).unwrap();
    let (rt, key) = (d.rt.clone(), stopping.clone());
    d.tokio
        .spawn(async move { rt.stop(&key, Some(-1), None).await });
    d.events_become(&stopping, &["create", "start", "kill(15)"]);
    let dies = d.started(&root, "dies");
    drop(d);

    // While the daemon is down: one exits, the freezer of another is
    // thawed behind its back.
    fake.exit(&dies, 5);
    Fake::thaw_behind(&fake, &paused);

    let d = Daemon::open(&root, &fake);
    assert_eq!(d.status(&created), Status::Created);
    assert_eq!(d.status(&running), Status::Running);
    assert_eq!(d.status(&paused), Status::Paused);
    assert!(fake.is_frozen(&paused), "the freezer follows the record");
    assert_eq!(d.status(&exited), Status::Exited);
    assert_eq!(d.rt.inspect(&exited).unwrap().exit_code, 7);
    assert_eq!(d.status(&dies), Status::Exited);
    assert_eq!(d.events(&dies), ["create", "start", "die(5)"]);
    // Re-attached: signals reach the running ones, exits are recorded.
    d.run(d.rt.kill(&running, "", false)).unwrap();
    assert_eq!(d.exited(&running), 137);
    // The stop in progress carries on: the earliest deadline still wins.
    d.run(d.rt.stop(&stopping, Some(0), None)).unwrap();
    let e = ["create", "start", "kill(15)", "kill(9)", "die(137)", "stop"];
    assert_eq!(d.events(&stopping), e);
    d.run(d.rt.unpause(&paused)).unwrap();
    assert_eq!(d.status(&paused), Status::Running);
}

#[test]
fn a_start_the_daemon_never_recorded_is_ended() {
    let root = Root::new("unrecorded");
    let fake = Fake::default();
    let d = Daemon::open(&root, &fake);
    let id = d.create(&root, "web");
    let dir = d.rt.dir_of(&id);
    drop(d);
    // The monitor runs, but the record says created: the daemon went
    // before it recorded (and confirmed) the start.
    Fake::orphan(&fake, &id, &dir);
    let d = Daemon::open(&root, &fake);
    assert!(!fake.is_alive(&id));
    assert_eq!(d.status(&id), Status::Created);
    assert_eq!(d.events(&id), ["create"]);
    d.run(d.rt.start(&id)).unwrap();
    assert_eq!(d.status(&id), Status::Running);
}
