//! The fake host's side of what the runtime asks (`Host`): processes
//! in `World`, networks as records with no wiring.

use super::*;

impl Host for Fake {
    fn claim_network(
        &self,
        _root: &Path,
        id: &str,
        name: &str,
        asked: network::Asked,
    ) -> Result<NetworkRecord, network::Error> {
        let subnet = asked
            .subnet
            .unwrap_or_else(|| "10.99.0.0/16".parse().unwrap());
        Ok(NetworkRecord {
            id: id.into(),
            name: name.into(),
            subnet,
            gateway: asked.gateway.or(subnet.nth(1)).unwrap(),
            bridge: NetworkRecord::bridge_name(id),
            ipv6: None,
            mtu: asked.mtu,
            labels: Default::default(),
            created_at: 0,
            ip_range: None,
            aux: Default::default(),
            internal: false,
        })
    }

    fn restore_network(&self, _: &Path, _: &NetworkRecord) {}

    fn release_network(&self, _: &Path, _: &NetworkRecord) {}

    fn destroy_network<'a>(&'a self, _: &'a Path, _: &'a NetworkRecord) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn pin_netns<'a>(&'a self, _: &'a Path) -> BoxFuture<'a, Result<(), network::Error>> {
        Box::pin(async { Ok(()) })
    }

    fn attach<'a>(
        &'a self,
        _dir: &'a Path,
        _id: &'a str,
        join: Join<'a>,
    ) -> BoxFuture<'a, Result<Attachment, network::Error>> {
        Box::pin(async move {
            let net = join.net;
            Ok(Attachment {
                network_id: net.id.clone(),
                network: net.name.clone(),
                ifname: join.ifname.to_string(),
                ip: net.subnet.nth(2).unwrap(),
                prefix: net.subnet.prefix(),
                gateway: net.gateway,
                mac: String::new(),
                ports: join.ports.to_vec(),
                ipv6: None,
                ipv6_ports: false,
            })
        })
    }

    fn place_cgroup(&self, _: &str, _: &str) -> Result<(), cgroup::Error> {
        Ok(())
    }

    fn forget_cgroup(&self, _: &str) {}

    fn attach_plugins<'a>(
        &'a self,
        _: &'a Path,
        _: &'a str,
        _: serde_json::Value,
        _: &'a [network::PortSpec],
        _: &'a [network::PortSpec],
    ) -> BoxFuture<'a, Result<Attachment, network::Error>> {
        Box::pin(async { Err(network::Error::Plugin("no CNI plugins in the fake".into())) })
    }

    fn detach<'a>(
        &'a self,
        _: &'a Path,
        _: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async { Vec::new() })
    }

    fn republish(&self, _: &str, _: &[Attachment]) {}

    fn cgroup_path(&self, id: &str) -> String {
        format!("berth/{id}")
    }

    fn support(&self) -> Support {
        Support::everything()
    }

    fn spawn<'a>(
        &'a self,
        id: &'a str,
        dir: &'a Path,
        _gate: Option<std::os::fd::OwnedFd>,
    ) -> BoxFuture<'a, std::io::Result<Spawned>> {
        Box::pin(async move {
            let mut w = self.world();
            w.next_pid += 1;
            let pid = w.next_pid + 100;
            let failed = w.fail_start.take();
            let proc = Proc {
                id: id.into(),
                dir: dir.into(),
                pid,
                dead: failed.is_some(),
                pending: Vec::new(),
                monitor_gone: watch::Sender::new(failed.is_some()),
                unconfirmed: false,
            };
            let monitor = self.monitor(&proc);
            w.procs.push(proc);
            drop(w);
            let (report, pid1) = match failed {
                Some(f) => (Report::Failed(f), None),
                None => (
                    Report::Started {
                        pid,
                        started_at: now_nanos(),
                    },
                    Some(Box::new(FakePid1 {
                        world: self.clone(),
                        id: id.into(),
                        pid,
                    }) as Box<dyn Pid1>),
                ),
            };
            Ok(Spawned {
                monitor,
                report,
                pid1,
                confirm: Box::new(NoConfirm),
            })
        })
    }

    fn monitors(&self, _containers: &Path) -> HashMap<String, Box<dyn Monitor>> {
        let w = self.world();
        w.procs
            .iter()
            .filter(|p| !*p.monitor_gone.borrow())
            .map(|p| (p.id.clone(), self.monitor(p)))
            .collect()
    }

    fn freeze(&self, id: &str) -> Result<(), cgroup::Error> {
        let mut w = self.world();
        if w.live(id).is_none() {
            return Err(cgroup::Error::NoFreezer(id.into()));
        }
        w.frozen.insert(id.into());
        Ok(())
    }

    fn thaw(&self, id: &str) -> Result<(), cgroup::Error> {
        let mut w = self.world();
        w.frozen.remove(id);
        let pending = w.live(id).map(|p| std::mem::take(&mut p.pending));
        for s in pending.unwrap_or_default() {
            w.deliver(id, s);
        }
        Ok(())
    }

    fn signal_all(&self, id: &str, signal: i32) -> Result<(), cgroup::Error> {
        let mut w = self.world();
        w.signals.push((id.into(), signal));
        w.deliver(id, signal);
        Ok(())
    }

    fn kill_all(&self, id: &str) -> Result<(), cgroup::Error> {
        self.world().end(id, 137, libc::SIGKILL);
        Ok(())
    }

    fn pids(&self, _: &str) -> Vec<u32> {
        Vec::new()
    }

    fn set_limits(&self, _: &str, _: &Resources, _: &Resources) -> Result<(), cgroup::Error> {
        Ok(())
    }

    fn remove_cgroup(&self, _: &str) -> Result<(), cgroup::Error> {
        Ok(())
    }

    fn usage(&self, _: &str) -> Usage {
        Usage::default()
    }

    fn oom_kills(&self, id: &str) -> Option<u64> {
        Some(self.world().oom_kills.get(id).copied().unwrap_or(0))
    }

    fn oom_notifier(&self, _: &str) -> std::io::Result<Box<dyn OomNotifier>> {
        Ok(Box::new(Silent))
    }

    fn spawn_exec(&self, _: &Path, _: &Path, _: ExecStdio) -> std::io::Result<ExecChild> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}
