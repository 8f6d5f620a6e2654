//! Managers: the admins of the chat-user management API (spec 7.1), kept apart from chat users.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::{iso_time, row_time};

/// A `manager` row. Times are Unix seconds; they are formatted only on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manager {
    pub id: i64,
    pub username: String,
    /// PHC string (argon2id) or a legacy sha256 hex digest.
    pub password: String,
    pub avatar: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the bootstrap manager starts with; the store assigns the id.
#[derive(Debug, Clone)]
pub struct NewManager {
    pub username: String,
    /// The password hash.
    pub password: String,
    pub avatar: String,
    pub now: i64,
}

impl NewManager {
    pub fn into_manager(self, id: i64) -> Manager {
        Manager {
            id,
            username: self.username,
            password: self.password,
            avatar: self.avatar,
            created_at: self.now,
            updated_at: self.now,
        }
    }
}

impl Manager {
    /// The `manager` object of the login response, without the password (spec 7.1).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "avatar": self.avatar,
            "create_time": row_time(self.created_at),
            "update_time": iso_time(self.updated_at),
        })
    }
}
