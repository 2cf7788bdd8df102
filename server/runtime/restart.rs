//! Restart: stop (if it runs), start, then the restart event.

use super::container::{IfUnsaved, Note};
use super::error::Result;
use super::Runtime;
use berth::pb::Action;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Runtime {
    /// `timeout` as Stop takes it. Events: those of the stop (kill, die,
    /// stop) and the start, then restart.
    pub async fn restart(self: &Arc<Self>, key: &str, timeout: Option<i32>) -> Result<()> {
        let c = self.find(key)?;
        // The exit the stop causes is not the end auto_remove waits for.
        c.restarting.fetch_add(1, Ordering::SeqCst);
        let ran = async {
            self.stop(&c.id, timeout, None).await?;
            // Journaled once the start is, before its exit can be.
            self.start_then(&c.id, |c| {
                let mut st = c.state();
                c.transition(&mut st, &self.bus, IfUnsaved::Discard, |_| {
                    vec![Note::new(Action::Restart)]
                })
            })
            .await
        }
        .await;
        c.restarting.fetch_sub(1, Ordering::SeqCst);
        if let Err(e) = ran {
            // It stays exited: now auto_remove may take it.
            self.remove_if_auto(&c).await;
            return Err(e);
        }
        Ok(())
    }
}
