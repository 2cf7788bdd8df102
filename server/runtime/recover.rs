//! Opening the runtime: the database, the containers it records, and
//! re-attaching to those whose monitor still runs after a restart.

use super::container::{Container, Record, Status};
use super::error::{failed, Result};
use super::host::{Host, Monitor};
use super::{containers_dir, host_memory, log_watch, records, Options, Runtime};
use crate::events::Bus;
use crate::monitor::protocol::ExitRecord;
use crate::spec;
use crate::sys::seccomp;
use berth::pb::{self, Action};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The boot the daemon last started in, by the kernel's boot id.
const BOOT_ID_FILE: &str = "boot_id";

/// The kernel's boot id if the root recorded another one (or none): this
/// is the daemon's first start since the host booted.
fn booted_since(root: &Path) -> Option<String> {
    let Ok(now) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") else {
        tracing::warn!(
            "cannot read the kernel's boot id: not starting containers by their restart policies"
        );
        return None;
    };
    let last = std::fs::read_to_string(root.join(BOOT_ID_FILE)).unwrap_or_default();
    (last.trim() != now.trim()).then_some(now)
}

impl Runtime {
    /// Opens the root (creating it) and its database, records the daemon's
    /// start, loads every stored container and re-attaches to those whose
    /// monitor still runs.
    pub async fn open(
        root: &Path,
        host: Box<dyn Host>,
        options: Options,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Runtime>> {
        let containers = containers_dir(root);
        std::fs::create_dir_all(&containers)
            .map_err(|e| failed(format!("create root {}", root.display()), e))?;
        let mut monitors = host.monitors(&containers);
        let (store, records) = match options.rebuild {
            true => {
                let pids = monitors.iter().map(|(id, m)| (id.clone(), m.pid()));
                records::rebuild(root, &pids.collect())?
            }
            false => records::open(root)?,
        };
        let bus = Arc::new(Bus::open(store)?);
        let support = host.support();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        tracing::info!(?support, cpus, "cgroup support");
        let log_watch = log_watch::LogWatch::start()
            .map_err(|e| failed("watch container logs (inotify)", e))?;
        let rt = Arc::new_cyclic(|me| Runtime {
            root: root.to_path_buf(),
            host,
            bus,
            log_limits: options.log_limits,
            support,
            filters: seccomp::Filters::new(),
            machine: spec::Host {
                cpus,
                swap: support.swap,
            },
            host_memory: host_memory(),
            index: RwLock::new(Default::default()),
            shutdown,
            log_watch,
            networks: RwLock::new(Default::default()),
            ports_lock: Default::default(),
            resolver: options
                .dns
                .then(|| crate::dns::Resolver::new(Arc::new(super::resolver::Peers(me.clone())))),
        });
        let resumed_from = rt.bus.last_seq();
        rt.bus.publish(pb::Event {
            action: Action::DaemonStart as i32,
            resumed_from_seq: resumed_from,
            ..Default::default()
        })?;
        tracing::info!(
            resumed_from_seq = resumed_from,
            containers = records.len(),
            "daemon start recorded"
        );
        rt.open_networks().await?;
        let booted = booted_since(root);
        let known: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
        for record in records {
            let monitor = monitors.remove(&record.id);
            rt.recover(record, monitor, booted.is_some()).await;
        }
        records::set_aside_orphans(root, &known, rt.host.as_ref());
        records::delete_removed(root);
        if let Some(boot) = booted {
            tracing::info!(
                "first start since the host booted: starting containers by their restart policies"
            );
            // Those to start wait for their restart in their records
            // before the boot is recorded: a crash in between loses none.
            rt.restart_after_boot();
            if let Err(e) =
                crate::sys::linux::write_atomic(&root.join(BOOT_ID_FILE), boot.as_bytes())
            {
                tracing::warn!(error = %e, "cannot record the boot id");
            }
        }
        Ok(rt)
    }

    /// Brings a stored container back after a daemon restart. After a
    /// host boot a restart it waits for is left to `restart_after_boot`.
    async fn recover(
        self: &Arc<Self>,
        record: Record,
        monitor: Option<Box<dyn Monitor>>,
        booted: bool,
    ) {
        let resume = |c: Arc<Container>| {
            if !booted {
                self.schedule_restart(c);
            }
        };
        let dir = self.dir_of(&record.id);
        // Every copy written again from the database: one a crash cut short
        // (they are not fsynced), or a container made before copies existed.
        if dir.is_dir() {
            if let Err(e) = records::write_copy(&dir, &record) {
                tracing::warn!(container = %record.id, error = %e, "cannot write the record copy");
            }
        }
        let parent = &record.spec.cgroup_parent;
        if !parent.is_empty() {
            if let Err(e) = self.host.place_cgroup(&record.id, parent) {
                tracing::warn!(container = %record.id, cgroup_parent = %parent, error = %e, "cannot set up the container's cgroup parent");
            }
        }
        let was_running = record.status.is_running();
        let c = Arc::new(Container::new(record, dir));
        self.insert(c.clone());
        match monitor {
            Some(m) if was_running => self.reattach(c, m),
            Some(m) => {
                // A start the daemon never recorded: the monitor saw the
                // daemon go before it confirmed, and ends its container.
                tracing::warn!(container = %c.id, monitor = m.pid(), "ending a start that was never recorded");
                if !m.wait_exit(Duration::from_secs(10)) {
                    m.kill();
                    let _ = self.host.kill_all(&c.id);
                    m.wait_exit(Duration::from_secs(10));
                }
                let _ = self.host.remove_cgroup(&c.id);
                ExitRecord::clear(&c.dir);
                // Its connects were journaled, its start not.
                self.disconnect(&c, true).await;
                resume(c);
            }
            None if was_running => {
                // Recorded before the daemon serves, if the store takes it;
                // with auto_remove, removed then too.
                match self.record_exit(&c, None) {
                    Ok(()) => {
                        self.disconnect(&c, false).await;
                        self.remove_if_auto(&c).await;
                        resume(c);
                    }
                    Err(e) => {
                        tracing::error!(container = %c.id, error = %e, "cannot record the exit; trying again");
                        tokio::spawn(self.clone().finish_run(c));
                    }
                }
            }
            // Exited (a crash may have cut its unwiring short), and with
            // auto_remove the daemon may have gone before removing it; or
            // waiting for a restart, which carries on.
            None => {
                self.disconnect(&c, false).await;
                self.remove_if_auto(&c).await;
                resume(c);
            }
        }
    }

    /// Watches a container that kept running while the daemon was down.
    fn reattach(self: &Arc<Self>, c: Arc<Container>, m: Box<dyn Monitor>) {
        let (exits, stopping, status) = {
            let mut st = c.state();
            st.pid1 = m.pid1(st.record.pid);
            let r = &st.record;
            self.host.republish(&c.id, &r.networks);
            (r.exits, r.stop_deadline != 0, r.status)
        };
        // A pause or unpause the daemon did not get to record is undone:
        // the freezer follows the record.
        let matched = match status {
            Status::Paused => self.host.freeze(&c.id),
            _ => self.host.thaw(&c.id),
        };
        if let Err(e) = matched {
            tracing::warn!(container = %c.id, error = %e, "cannot bring the freezer in line with the record");
        }
        tracing::info!(container = %c.id, monitor = m.pid(), "re-attached to running container");
        self.spawn_watcher(c.clone(), m, None);
        self.spawn_oom_watcher(c.clone(), exits);
        self.spawn_prober(c.clone(), exits);
        if stopping {
            self.spawn_stop_driver(c, exits);
        }
    }
}
