//! The embedded database: one redb file under the daemon root holding a
//! record per container, so containers and their exit codes survive a
//! restart of the daemon.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open database {path}: {source}")]
    Open {
        path: String,
        source: redb::DatabaseError,
    },
    #[error("database {0}")]
    Db(String),
    #[error("decode record {id}: {source}")]
    Decode {
        id: String,
        source: serde_json::Error,
    },
}

fn db<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Db(format!("{what}: {e}"))
}

pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database at `path`. Fails if another daemon
    /// has it open.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let database = Database::create(path).map_err(|source| Error::Open {
            path: path.display().to_string(),
            source,
        })?;
        let tx = database.begin_write().map_err(db("begin"))?;
        tx.open_table(CONTAINERS).map_err(db("open table"))?;
        tx.commit().map_err(db("commit"))?;
        Ok(Store { db: database })
    }

    /// Writes the record of `id`, durably.
    pub fn put<T: Serialize>(&self, id: &str, record: &T) -> Result<(), Error> {
        let value = serde_json::to_vec(record).map_err(db("encode"))?;
        let tx = self.db.begin_write().map_err(db("begin"))?;
        {
            let mut table = tx.open_table(CONTAINERS).map_err(db("open table"))?;
            table.insert(id, value.as_slice()).map_err(db("insert"))?;
        }
        tx.commit().map_err(db("commit"))
    }

    /// Deletes the record of `id`, durably.
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(db("begin"))?;
        {
            let mut table = tx.open_table(CONTAINERS).map_err(db("open table"))?;
            table.remove(id).map_err(db("remove"))?;
        }
        tx.commit().map_err(db("commit"))
    }

    /// Every record.
    pub fn load_all<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        let tx = self.db.begin_read().map_err(db("begin read"))?;
        let table = tx.open_table(CONTAINERS).map_err(db("open table"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db("iterate"))? {
            let (k, v) = entry.map_err(db("read"))?;
            let record = serde_json::from_slice(v.value()).map_err(|source| Error::Decode {
                id: k.value().to_string(),
                source,
            })?;
            out.push(record);
        }
        Ok(out)
    }
}
