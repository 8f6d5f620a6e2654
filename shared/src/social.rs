//! Friends and friend applications (spec 1.6, 4): rows and their wire shapes.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::{iso_time, row_time};

/// Application states (spec 1.6).
pub const PENDING: &str = "pending";
pub const AGREE: &str = "agree";
pub const REFUSE: &str = "refuse";
pub const IGNORE: &str = "ignore";
pub const APPLICATION_STATES: [&str; 4] = [PENDING, REFUSE, AGREE, IGNORE];

/// My contact entry for a friend (`goodfriend`): one row per direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Friend {
    pub id: i64,
    pub user_id: i64,
    pub friend_id: i64,
    /// My remark for the friend.
    pub nickname: String,
    pub friendlookme: i64,
    pub melookfriend: i64,
    pub ismystarfriend: i64,
    pub isblack: i64,
    pub status: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Friend {
    /// A new row with the defaults: visible both ways, not starred, not blacklisted, normal.
    pub fn new(id: i64, user_id: i64, friend_id: i64, nickname: String, now: i64) -> Friend {
        Friend {
            id,
            user_id,
            friend_id,
            nickname,
            friendlookme: 1,
            melookfriend: 1,
            ismystarfriend: 0,
            isblack: 0,
            status: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The row without `order`, `create_time`, `update_time` (spec 4.10).
    pub fn short_json(&self) -> Value {
        json!({
            "id": self.id,
            "user_id": self.user_id,
            "friend_id": self.friend_id,
            "nickname": self.nickname,
            "friendlookme": self.friendlookme,
            "melookfriend": self.melookfriend,
            "ismystarfriend": self.ismystarfriend,
            "isblack": self.isblack,
            "status": self.status,
        })
    }
}

/// An application from `user_id` to `friend_id` (`goodfriendapply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub id: i64,
    pub user_id: i64,
    pub friend_id: i64,
    /// The applicant's note.
    pub nickname: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Application {
    pub fn new(id: i64, user_id: i64, friend_id: i64, nickname: String, now: i64) -> Application {
        Application { id, user_id, friend_id, nickname, status: PENDING.to_owned(), created_at: now, updated_at: now }
    }

    /// Without `order`, `create_time`, `update_time`, with the `userId` association artefact (spec 3.3).
    pub fn short_json(&self) -> Value {
        json!({
            "id": self.id,
            "user_id": self.user_id,
            "friend_id": self.friend_id,
            "nickname": self.nickname,
            "friendlookme": 1,
            "melookfriend": 1,
            "ismystarfriend": 0,
            "isblack": 0,
            "status": self.status,
            "userId": self.user_id,
        })
    }

    /// The full row as `listapplyfriend` returns it (spec 4.2), before `user` is added.
    pub fn row_json(&self) -> Value {
        let mut v = self.short_json();
        v["create_time"] = json!(row_time(self.created_at));
        v["order"] = json!(50);
        v["update_time"] = json!(iso_time(self.updated_at));
        v
    }
}
