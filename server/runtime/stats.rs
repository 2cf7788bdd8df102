//! The Stats request: samples of each container's cgroup usage, with CPU
//! percentages measured between consecutive samples.

use super::container::{Container, Status};
use super::error::Result;
use super::Runtime;
use crate::shutdown::shutting_down;
use crate::sys::{procs, time::now_nanos};
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

/// One sample of every requested container.
#[derive(Debug, Clone)]
pub struct Samples {
    pub time: i64,
    pub containers: Vec<Sample>,
}

/// Resource usage of one container; all zero while it is not running.
#[derive(Debug, Clone)]
pub struct Sample {
    pub id: String,
    pub name: String,
    pub status: Status,
    pub cpu_usage_nanos: u64,
    /// CPU used over the last interval: 100 is one CPU fully busy.
    pub cpu_percent: f64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub memory_cache_bytes: u64,
    pub pids_current: u64,
    pub pids_limit: u64,
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
    pub fn stats(self: &Arc<Self>, q: StatsQuery) -> Result<mpsc::Receiver<Samples>> {
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
                    _ = shutting_down(&mut shutdown) => return,
                }
                let containers = targets()
                    .iter()
                    .map(|c| rt.sample(c, &mut previous))
                    .collect();
                let response = Samples {
                    time: now_nanos(),
                    containers,
                };
                if tx.send(response).await.is_err() || !q.stream {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// One sample of container `key` now (no CPU percentage: that needs
    /// two).
    pub fn sample_now(&self, key: &str) -> Result<Sample> {
        let c = self.find(key)?;
        Ok(self.sample(&c, &mut HashMap::new()))
    }

    /// Running and paused containers, oldest first.
    fn running(&self) -> Vec<Arc<Container>> {
        let all: Vec<Arc<Container>> = self.index().by_id.values().cloned().collect();
        let mut out: Vec<(i64, Arc<Container>)> = all
            .into_iter()
            .filter_map(|c| {
                let created_at = {
                    let st = c.state();
                    st.record
                        .status
                        .is_running()
                        .then_some(st.record.created_at)
                };
                created_at.map(|t| (t, c))
            })
            .collect();
        out.sort_by_key(|(t, _)| *t);
        out.into_iter().map(|(_, c)| c).collect()
    }

    /// One sample of `c`; updates `previous`.
    fn sample(&self, c: &Container, previous: &mut HashMap<String, Previous>) -> Sample {
        let (status, run, pid, own_network) = {
            let st = c.state();
            let r = &st.record;
            let own_network = r.spec.network != crate::spec::Network::Host;
            (r.status, r.exits, r.pid, own_network)
        };
        let mut out = Sample {
            id: c.id.clone(),
            name: c.name(),
            status,
            cpu_usage_nanos: 0,
            cpu_percent: 0.0,
            memory_usage_bytes: 0,
            memory_limit_bytes: 0,
            memory_cache_bytes: 0,
            pids_current: 0,
            pids_limit: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            block_read_bytes: 0,
            block_write_bytes: 0,
        };
        if !status.is_running() {
            previous.remove(&c.id);
            return out;
        }
        let u = self.host.usage(&c.id);
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
        out.block_read_bytes = u.block_read;
        out.block_write_bytes = u.block_write;
        // The host's interfaces are not the container's (as docker stats).
        if own_network {
            (out.net_rx_bytes, out.net_tx_bytes) = procs::net_bytes(pid as u32);
        }
        out
    }
}
