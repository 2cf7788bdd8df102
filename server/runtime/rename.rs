//! Rename: a new name in the index, the record and the record's copy,
//! with a rename event carrying the old one.

use super::container::{IfUnsaved, Note};
use super::error::{Error, Result};
use super::{records, Runtime};
use crate::spec;

impl Runtime {
    pub async fn rename(&self, key: &str, name: &str) -> Result<()> {
        spec::validate_name(name)?;
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let mut st = c.state();
        if st.removed {
            return Err(Error::NotFound(key.into()));
        }
        let old = st.record.spec.name.clone();
        // Taken first (its own name too, as Docker refuses that): two
        // renames or a create cannot both have it.
        self.reserve_name(name, &c.id)?;
        let renamed = c.transition(&mut st, &self.bus, IfUnsaved::Discard, |r| {
            r.spec.name = name.to_string();
            vec![Note::rename(old.clone())]
        });
        let mut index = self.index_mut();
        if let Err(e) = renamed {
            index.names.remove(name);
            return Err(e);
        }
        index.names.remove(&old);
        c.set_name(name.to_string());
        drop(index);
        if let Err(e) = records::write_copy(&c.dir, &st.record) {
            tracing::warn!(container = %c.id, error = %e, "cannot write the record copy");
        }
        tracing::info!(container = %c.id, old = %old, name = %name, "renamed");
        Ok(())
    }
}
