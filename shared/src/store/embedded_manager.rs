//! Embedded adapter of [`ManagerStore`] for `chat-local`.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::embedded::{db_error, from_json, next_id, EmbeddedDb};
use super::embedded_tables::{MANAGERS, MANAGER_NAMES};
use super::ManagerStore;
use crate::error::{AppError, AppResult};
use crate::manager::{Manager, NewManager};
use crate::model::username_key;

#[derive(Clone)]
pub struct EmbeddedManagerStore {
    db: EmbeddedDb,
}

impl EmbeddedManagerStore {
    pub fn new(db: EmbeddedDb) -> Self {
        EmbeddedManagerStore { db }
    }
}

fn encode(manager: &Manager) -> AppResult<String> {
    serde_json::to_string(manager).map_err(AppError::internal)
}

#[async_trait]
impl ManagerStore for EmbeddedManagerStore {
    async fn bootstrap(&self, manager: NewManager) -> AppResult<Option<Manager>> {
        self.db
            .write(move |txn| {
                let mut managers = txn.open_table(MANAGERS).map_err(db_error)?;
                if managers.len().map_err(db_error)? > 0 {
                    return Ok(None);
                }
                let manager = manager.into_manager(next_id(txn, "manager")? as i64);
                managers.insert(manager.id as u64, encode(&manager)?.as_str()).map_err(db_error)?;
                txn.open_table(MANAGER_NAMES)
                    .map_err(db_error)?
                    .insert(username_key(&manager.username).as_str(), manager.id as u64)
                    .map_err(db_error)?;
                Ok(Some(manager))
            })
            .await
    }

    async fn get(&self, id: i64) -> AppResult<Option<Manager>> {
        if id <= 0 {
            return Ok(None);
        }
        self.db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let found = txn.open_table(MANAGERS).map_err(db_error)?.get(id as u64).map_err(db_error)?;
                found.map(|g| from_json(g.value())).transpose()
            })
            .await
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<Manager>> {
        let key = username_key(username);
        let id = self
            .db
            .run(move |db| {
                let txn = db.begin_read().map_err(db_error)?;
                let found = txn.open_table(MANAGER_NAMES).map_err(db_error)?.get(key.as_str()).map_err(db_error)?;
                Ok(found.map(|g| g.value()))
            })
            .await?;
        match id {
            Some(id) => self.get(id as i64).await,
            None => Ok(None),
        }
    }

    async fn set_password(&self, id: i64, hash: &str, at: i64) -> AppResult<()> {
        let hash = hash.to_owned();
        self.db
            .write(move |txn| {
                let mut managers = txn.open_table(MANAGERS).map_err(db_error)?;
                let current: Option<Manager> =
                    managers.get(id as u64).map_err(db_error)?.map(|g| from_json(g.value())).transpose()?;
                if let Some(mut manager) = current {
                    manager.password = hash;
                    manager.updated_at = at;
                    managers.insert(id as u64, encode(&manager)?.as_str()).map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }
}
