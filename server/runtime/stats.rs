//! The Stats request: samples of each container's cgroup usage, with CPU
//! percentages measured between consecutive samples.

use super::{cgroup, Container, Result, Runtime};
use crate::events::{now_nanos, timestamp};
use berth::pb;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What a Stats request asks for.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    /// Containers by id, prefix or name; empty: every running one.
    pub keys: Vec<String>,
    pub stream: bool,
    pub interval: Duration,
}

/// The previous sample of a container, for its CPU percentage.
struct Previous {
    run: u64,
    cpu_nanos: u64,
    at: i64,
}

impl Runtime {
    /// Streams samples as `q` asks; the first after one interval. Unknown
    /// containers fail the request before anything is sent.
    pub fn stats(self: &Arc<Self>, q: StatsQuery) -> Result<mpsc::Receiver<pb::StatsResponse>> {
        let named = q
            .keys
            .iter()
            .map(|k| self.find(k))
            .collect::<Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel(4);
        let rt = self.clone();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut previous = HashMap::new();
            let targets = || match named.is_empty() {
                true => rt.running(),
                false => named.clone(),
            };
            for c in targets() {
                rt.sample(&c, &mut previous);
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(q.interval) => {}
                    _ = tx.closed() => return,
                    _ = super::shutting_down(&mut shutdown) => return,
                }
                let containers = targets()
                    .iter()
                    .map(|c| rt.sample(c, &mut previous))
                    .collect();
                let response = pb::StatsResponse {
                    time: Some(timestamp(now_nanos())),
                    containers,
                };
                if tx.send(response).await.is_err() || !q.stream {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// Running and paused containers, oldest first.
    fn running(&self) -> Vec<Arc<Container>> {
        let mut out: Vec<(i64, Arc<Container>)> = self
            .index()
            .by_id
            .values()
            .filter_map(|c| {
                let st = c.state();
                st.record
                    .status
                    .is_running()
                    .then(|| (st.record.created_at, c.clone()))
            })
            .collect();
        out.sort_by_key(|(t, _)| *t);
        out.into_iter().map(|(_, c)| c).collect()
    }

    /// One sample of `c`; updates `previous`.
    fn sample(
        &self,
        c: &Container,
        previous: &mut HashMap<String, Previous>,
    ) -> pb::ContainerStats {
        let (status, run) = {
            let st = c.state();
            (st.record.status, st.record.exits)
        };
        let mut out = pb::ContainerStats {
            id: c.id.clone(),
            name: c.name.clone(),
            status: status.to_pb() as i32,
            ..Default::default()
        };
        if !status.is_running() {
            previous.remove(&c.id);
            return out;
        }
        let u = cgroup::Cgroup::load(&c.id).usage();
        let at = now_nanos();
        if let Some(p) = previous.get(&c.id).filter(|p| p.run == run && at > p.at) {
            let used = u.cpu_nanos.saturating_sub(p.cpu_nanos) as f64;
            out.cpu_percent = used / (at - p.at) as f64 * 100.0;
        }
        previous.insert(
            c.id.clone(),
            Previous {
                run,
                cpu_nanos: u.cpu_nanos,
                at,
            },
        );
        out.cpu_usage_nanos = u.cpu_nanos;
        out.memory_usage_bytes = u.memory;
        // As `docker stats`: no limit, or one above the host's memory,
        // shows the host's memory.
        out.memory_limit_bytes = match (u.memory_limit, self.host_memory) {
            (0, host) => host,
            (l, 0) => l,
            (l, host) => l.min(host),
        };
        out.memory_cache_bytes = u.memory_cache;
        out.pids_current = u.pids;
        out.pids_limit = u.pids_limit;
        out
    }
}
