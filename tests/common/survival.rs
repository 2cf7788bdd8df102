//! What must survive a crash of berthd or of the whole machine: the checks
//! the crash test makes after each kill -9 and the power-cut test after a
//! reboot, given what the API had acknowledged and what a subscriber had
//! received before.

use super::*;
use std::collections::HashSet;
use tonic::Code;

/// What the API acknowledged.
#[derive(Default, Clone)]
pub struct Acked {
    pub created: HashSet<String>,
    /// Removes asked for (acknowledged or not): such a container may be
    /// there or not.
    pub remove_tried: HashSet<String>,
    pub removed: HashSet<String>,
    /// Exits a Wait answered: (container, exit code).
    pub exits: Vec<(String, i32)>,
    pub ops: u64,
}

/// A small xorshift generator: a test prints its seed, so a run can be
/// told apart from another.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// After berthd came back (`when` says after what): every acknowledged
/// create is there and every acknowledged remove is gone; the journal
/// holds every event `received`, with the same seq, no seq twice or
/// missing, no container created twice, a die with the code of every
/// acknowledged exit; the state the API reports matches the processes
/// that run; each container's starts and dies alternate and agree with
/// its exit count.
pub async fn check_survivors(when: &str, d: &Daemon, acked: &Acked, received: &[pb::Event]) {
    let mut api = d.api().await;
    for id in acked.created.difference(&acked.remove_tried) {
        api.inspect(pb::InspectRequest { id: id.clone() })
            .await
            .unwrap_or_else(|e| panic!("{when}: acknowledged container {id} is gone: {e}"));
    }
    for id in &acked.removed {
        let err = api
            .inspect(pb::InspectRequest { id: id.clone() })
            .await
            .err()
            .unwrap_or_else(|| panic!("{when}: removed container {id} is back"));
        assert_eq!(err.code(), Code::NotFound);
    }
    let journal = d.journal().await;
    assert_eq!(journal.first().map(|e| e.seq), Some(1));
    for (i, e) in journal.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "{when}: journal seq gap or repeat");
    }
    for e in received {
        assert_eq!(
            journal.get(e.seq as usize - 1),
            Some(e),
            "{when}: event {} changed or lost",
            e.seq
        );
    }
    let mut created = HashSet::new();
    for e in journal.iter().filter(|e| e.action == Action::Create as i32) {
        assert!(created.insert(&e.id), "{when}: {} created twice", e.id);
    }
    for (id, code) in &acked.exits {
        assert!(
            journal.iter().any(|e| &e.id == id
                && e.action == Action::Die as i32
                && e.exit_code == Some(*code)),
            "{when}: the acknowledged exit {code} of {id} has no die event"
        );
    }
    let start = journal
        .iter()
        .rev()
        .find(|e| e.action == Action::DaemonStart as i32)
        .unwrap();
    assert_eq!(start.resumed_from_seq, start.seq - 1);
    // What the API says runs, runs.
    for c in &listed(&mut api).await {
        check_state(&mut api, &d.root, &c.id).await;
    }
    // Exits and events agree, restarts included (they may go on meanwhile).
    let before = listed(&mut api).await;
    let journal = d.journal().await;
    let after = listed(&mut api).await;
    for c in &before {
        check_runs(when, &journal, c, &after);
    }
}

/// Each container's runs in the journal: start and die alternate, and
/// there is a die for each exit its state counts: the state before the
/// journal was read counts no more, the state after no fewer.
pub fn check_runs(
    when: &str,
    journal: &[pb::Event],
    before: &pb::Container,
    after: &[pb::Container],
) {
    let c = before;
    let mut dies = 0;
    let mut running = false;
    for e in journal.iter().filter(|e| e.id == c.id) {
        match Action::try_from(e.action).unwrap() {
            Action::Start => {
                assert!(!running, "{when}: {} started twice (seq {})", c.name, e.seq);
                running = true;
            }
            Action::Die => {
                assert!(running, "{when}: {} died twice (seq {})", c.name, e.seq);
                running = false;
                dies += 1;
            }
            _ => {}
        }
    }
    let st = c.state.as_ref().unwrap();
    let later = after
        .iter()
        .find(|a| a.id == c.id)
        .map_or(u64::MAX, |a| a.state.as_ref().unwrap().exit_count);
    assert!(
        st.exit_count <= dies && dies <= later,
        "{when}: {} counts {} then {later} exits, the journal {dies} dies",
        c.name,
        st.exit_count
    );
    assert!(st.restart_count <= st.exit_count);
}

/// What the host says about a container: (PID 1 alive, frozen, number of
/// its monitors, processes in its cgroups, traces on networks).
pub fn observe(root: &Path, id: &str, pid: u32) -> (bool, bool, usize, usize, usize) {
    let frozen = frozen(id);
    let dir = root.join("containers").join(id);
    let monitors = monitor_pids(root)
        .into_iter()
        .filter(|m| {
            std::fs::read(format!("/proc/{m}/cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0)
                    .any(|a| a == dir.as_os_str().as_encoded_bytes())
            })
        })
        .count();
    let procs = cgroup_dirs(id)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .map(|s| s.lines().count())
        .sum();
    let wired = traces(root, id).len();
    (pid > 0 && alive(pid), frozen, monitors, procs, wired)
}

/// RUNNING exactly when PID 1 is alive, PAUSED exactly when frozen,
/// neither means no process, no monitor and nothing on a network. Checked between two identical
/// inspects, retried for a moment while an exit is still being recorded.
pub async fn check_state(api: &mut Api, root: &Path, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let a = status(api, id).await;
        let seen = observe(root, id, a.pid);
        let b = status(api, id).await;
        if a == b {
            let (alive, frozen, monitors, procs, wired) = seen;
            let want = match pb::Status::try_from(a.status).unwrap() {
                pb::Status::Running => alive && !frozen && monitors == 1,
                pb::Status::Paused => alive && frozen && monitors == 1,
                _ => !alive && monitors == 0 && procs == 0 && wired == 0,
            };
            if want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {id}: API says {:?} (pid {}), host says alive={alive} frozen={frozen} monitors={monitors} procs={procs} network traces={wired} {:?}",
                pb::Status::try_from(a.status).unwrap(),
                a.pid,
                traces(root, id)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
