//! sig-proxy: the signals a foreground `berth run` receives are passed on
//! to its container, as `docker run` passes them on, so Ctrl-C stops the
//! container rather than leaving it running behind a CLI that is gone.

use crate::{Api, Failure};
use berth::pb;
use tokio::signal::unix::{signal, SignalKind};
use tokio_stream::{wrappers::SignalStream, StreamExt, StreamMap};

/// Passes signals on while it lives.
pub struct Proxy(tokio::task::JoinHandle<()>);

impl Drop for Proxy {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// From now on, INT, TERM, HUP, QUIT, USR1, USR2 and WINCH sent to this
/// process go to container `id` (and no longer end this process). One the
/// container cannot take (it has exited) is dropped.
pub fn proxy(mut api: Api, id: String) -> Result<Proxy, Failure> {
    let kinds = [
        ("INT", SignalKind::interrupt()),
        ("TERM", SignalKind::terminate()),
        ("HUP", SignalKind::hangup()),
        ("QUIT", SignalKind::quit()),
        ("USR1", SignalKind::user_defined1()),
        ("USR2", SignalKind::user_defined2()),
        ("WINCH", SignalKind::window_change()),
    ];
    let mut all = StreamMap::new();
    for (name, kind) in kinds {
        let stream = signal(kind)
            .map_err(|e| Failure(format!("cannot catch SIG{name} to pass it on: {e}"), 125))?;
        all.insert(name, SignalStream::new(stream));
    }
    Ok(Proxy(tokio::spawn(async move {
        while let Some((name, ())) = all.next().await {
            let req = pb::KillRequest {
                id: id.clone(),
                signal: name.into(),
                all: false,
            };
            let _ = api.kill(req).await;
        }
    })))
}
