//! The daemon's shutdown, as every long-running task sees it.

use tokio::sync::watch;

/// Resolves once the daemon begins to shut down.
pub async fn shutting_down(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}
