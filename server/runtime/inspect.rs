//! Inspect and List: containers as they stand.

use super::container::{Container, Record};
use super::error::Result;
use super::Runtime;
use std::sync::Arc;

impl Runtime {
    pub fn inspect(&self, key: &str) -> Result<Record> {
        let c = self.find(key)?;
        let record = c.state().record.clone();
        Ok(record)
    }

    /// Newest first; with `all`, those not running too.
    pub fn list(&self, all: bool) -> Vec<Record> {
        let containers: Vec<Arc<Container>> = self.index().by_id.values().cloned().collect();
        let mut out: Vec<Record> = containers
            .iter()
            .filter_map(|c| {
                let st = c.state();
                (all || st.record.status.is_running()).then(|| st.record.clone())
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        out
    }
}
