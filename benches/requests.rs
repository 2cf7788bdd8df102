//! `cargo bench --bench requests`: what a request costs over the unix
//! socket, and what reading every connection's header blocks before the
//! HTTP/2 layer (server/daemon/authority.rs) adds to it. Two daemons, one
//! with the rewriter and one without (BERTH_UNIX_AUTHORITY_REWRITE=0),
//! take rounds in turn of N unary List calls (10 containers listed) and N
//! Inspect calls on one connection, then of N List calls each on a new
//! connection. Prints medians and p99s per call. BERTH_BENCH_N sets N
//! (default 300).

#[path = "../tests/common/mod.rs"]
mod common;

use berth::pb;
use std::time::{Duration, Instant};

struct Side {
    name: &'static str,
    daemon: common::Daemon,
    list: Vec<Duration>,
    inspect: Vec<Duration>,
    connect: Vec<Duration>,
}

async fn side(name: &'static str, rewrite: bool) -> Side {
    let mut daemon = common::Daemon::start_with_log(name, "warn").await;
    if !rewrite {
        daemon.stop_daemon(libc::SIGTERM);
        daemon
            .env
            .push(("BERTH_UNIX_AUTHORITY_REWRITE".into(), "0".into()));
        daemon.spawn().await;
    }
    let mut api = daemon.api().await;
    for i in 0..10 {
        common::created(&mut api, common::spec(&format!("c{i}"), &["true"])).await;
    }
    Side {
        name,
        daemon,
        list: Vec::new(),
        inspect: Vec::new(),
        connect: Vec::new(),
    }
}

async fn round(s: &mut Side, n: usize) {
    let mut api = s.daemon.api().await;
    for _ in 0..n {
        let t = Instant::now();
        let r = api
            .list(pb::ListRequest {
                all: true,
                ..Default::default()
            })
            .await
            .unwrap();
        s.list.push(t.elapsed());
        assert_eq!(r.into_inner().containers.len(), 10);
        let t = Instant::now();
        api.inspect(pb::InspectRequest { id: "c3".into() })
            .await
            .unwrap();
        s.inspect.push(t.elapsed());
    }
    for _ in 0..n / 10 {
        let t = Instant::now();
        let mut api = s.daemon.api().await;
        api.list(pb::ListRequest {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
        s.connect.push(t.elapsed());
    }
}

#[tokio::main]
async fn main() {
    let n = common::bench::samples();
    let mut sides = [
        side("bench-rewrite", true).await,
        side("bench-plain", false).await,
    ];
    // Warm both up, then take turns so that both see the same machine.
    for s in sides.iter_mut() {
        round(s, 50).await;
        s.list.clear();
        s.inspect.clear();
        s.connect.clear();
    }
    for _ in 0..10 {
        for s in sides.iter_mut() {
            round(s, n / 10).await;
        }
    }
    println!("unary calls over the unix socket, {n} of each per daemon, in turns:");
    for s in sides {
        println!("{}:", s.name);
        common::bench::report("list", s.list);
        common::bench::report("inspect", s.inspect);
        common::bench::report("connect", s.connect);
    }
}
