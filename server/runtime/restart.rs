//! Restart: stop (if it runs), start, then the restart event.

use super::container::{IfUnsaved, Note};
use super::error::{Error, Result};
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
            self.start(&c.id).await
        }
        .await;
        c.restarting.fetch_sub(1, Ordering::SeqCst);
        if let Err(e) = ran {
            // It stays exited: now auto_remove may take it.
            self.remove_if_auto(&c).await;
            return Err(e);
        }
        let _op = c.op.lock().await;
        let mut st = c.state();
        if st.removed {
            return Err(Error::NotFound(key.into()));
        }
        c.transition(&mut st, &self.bus, IfUnsaved::Discard, |_| {
            vec![Note::new(Action::Restart)]
        })
    }
}
