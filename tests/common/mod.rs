//! The end-to-end test harness, by concern: a real `berthd` on a temporary
//! socket and root per test (daemon), the rootfs (rootfs), requests and
//! what they read back (requests), event streams (events), probes of the
//! host (host), bridge networks (net), what must survive a crash (survival), the command line (cli) and a real terminal for it
//! (terminal), and benchmark figures (bench), with a private dockerd and a
//! private containerd for reference (docker, containerd). Cleanup runs even when a
//! test fails. Each test binary uses a part of it, so unused items are
//! expected.
#![allow(dead_code)]

pub mod bench;
mod cli;
pub mod containerd;
pub mod cri;
mod daemon;
pub mod docker;
mod events;
mod host;
mod images;
mod net;
mod requests;
mod rootfs;
mod skip;
mod survival;
mod terminal;

#[allow(unused_imports)] // not every test binary runs the CLI
pub use cli::*;
pub use daemon::*;
pub use events::*;
pub use host::*;
#[allow(unused_imports)] // only the image tests use registries
pub use images::*;
#[allow(unused_imports)] // only the network tests use bridges
pub use net::*;
pub use requests::*;
pub use rootfs::*;
pub use skip::*;
#[allow(unused_imports)] // only the crash and power-cut tests
pub use survival::*;
#[allow(unused_imports)] // only the terminal tests use a pty
pub use terminal::*;

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
