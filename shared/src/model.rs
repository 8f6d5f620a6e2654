//! Domain entities and their wire shapes (spec 1.6, 2.6, 3.1).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::{iso_time, row_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Visitor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Visitor => "visitor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "visitor" => Some(Role::Visitor),
            _ => None,
        }
    }
}

/// The statistics fields a visitor device reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStats {
    pub uniplatform: String,
    pub devicemodel: String,
    pub deviceos: String,
    pub devicebrand: String,
}

/// The `user_info` row, kept with its user (its id equals the user's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub gender: String,
    pub birthday: Option<i64>,
    pub bio: Option<String>,
    pub location: Option<String>,
    pub website: Option<String>,
}

impl Default for UserInfo {
    fn default() -> Self {
        UserInfo { gender: "unknown".to_owned(), birthday: None, bio: None, location: None, website: None }
    }
}

/// A chat user as every authenticated request reads it: the row without its password hash and
/// settings, which live apart ([`UserPrivate`]) so that this read stays one small item. Times are
/// Unix seconds; they are formatted only on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub uuid: String,
    pub username: String,
    pub nickname: String,
    pub avatar: String,
    pub devicefingeruuid: String,
    pub stats: DeviceStats,
    pub invite_confirm: i64,
    pub status: i64,
    pub role: Role,
    pub last_login: Option<i64>,
    pub registered_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub userinfo: UserInfo,
}

/// The rarely read, possibly large part of a user row: the password hash (logins, password
/// changes) and the settings JSON (`userset`, up to 65,535 characters: the login family, the
/// profile routes and a stranger's first message read it).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPrivate {
    pub password: String,
    pub userset: String,
}

/// Never prints the hash, so no log line can carry it.
impl std::fmt::Debug for UserPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPrivate").field("password", &"<redacted>").field("userset", &self.userset).finish()
    }
}

/// What a new account starts with; the store assigns the id.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    pub avatar: String,
    pub devicefingeruuid: String,
    pub stats: DeviceStats,
    pub now: i64,
    /// Whether the creation is also a login (`last_login = now`): every route but the admin's.
    pub logged_in: bool,
}

impl NewUser {
    /// The full row for `id`: defaults of spec 1.6.
    pub fn into_user(self, id: i64) -> (User, UserPrivate) {
        let private = UserPrivate { password: self.password, userset: String::new() };
        let user = User {
            id,
            uuid: uuid::Uuid::new_v4().to_string(),
            username: self.username,
            nickname: String::new(),
            avatar: self.avatar,
            devicefingeruuid: self.devicefingeruuid,
            stats: self.stats,
            invite_confirm: 0,
            status: 1,
            role: self.role,
            last_login: self.logged_in.then_some(self.now),
            registered_at: self.now,
            created_at: self.now,
            updated_at: self.now,
            userinfo: UserInfo::default(),
        };
        (user, private)
    }
}

/// A search hit (spec 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub id: i64,
    pub username: String,
    pub avatar: String,
    pub role: Role,
    pub uuid: String,
    pub nickname: String,
}

impl UserSummary {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "avatar": self.avatar,
            "role": self.role.as_str(),
            "uuid": self.uuid,
            "nickname": self.nickname,
        })
    }
}

impl From<&User> for UserSummary {
    fn from(u: &User) -> Self {
        UserSummary {
            id: u.id,
            username: u.username.clone(),
            avatar: u.avatar.clone(),
            role: u.role,
            uuid: u.uuid.clone(),
            nickname: u.nickname.clone(),
        }
    }
}

/// Whether a user is listed in the search directory: registered and enabled (spec 3.2).
pub fn is_searchable(role: Role, status: i64) -> bool {
    role == Role::User && status == 1
}

/// Lower-case ASCII folding: usernames are unique case-insensitively (spec 1.5).
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == 1
    }

    fn userinfo_json(&self) -> Value {
        let i = &self.userinfo;
        json!({
            "id": self.id,
            "gender": i.gender,
            "birthday": i.birthday.map(iso_time),
            "bio": i.bio,
            "location": i.location,
            "website": i.website,
        })
    }

    /// The full row without `password` (spec 1.6), as the login family and admin API return it.
    pub fn row_json(&self, userset: &str) -> Value {
        json!({
            "create_time": row_time(self.created_at),
            "id": self.id,
            "uuid": self.uuid,
            "username": self.username,
            "nickname": self.nickname,
            "avatar": self.avatar,
            "devicefingeruuid": self.devicefingeruuid,
            "uniplatform": self.stats.uniplatform,
            "devicemodel": self.stats.devicemodel,
            "deviceos": self.stats.deviceos,
            "devicebrand": self.stats.devicebrand,
            "userset": userset,
            "invite_confirm": self.invite_confirm,
            "mobile": null,
            "email": null,
            "status": self.status,
            "last_login": self.last_login.map(iso_time),
            "last_login_ip": null,
            "register_time": iso_time(self.registered_at),
            "register_ip": null,
            "is_deleted": 0,
            "wechat_openid": null,
            "qq_openid": null,
            "weibo_uid": null,
            "role": self.role.as_str(),
            "is_email_verified": 0,
            "is_mobile_verified": 0,
            "order": 50,
            "update_time": iso_time(self.updated_at),
        })
    }

    /// LoginUser (spec 2.6): the row plus `token`.
    pub fn login_json(&self, userset: &str, token: &str) -> Value {
        let mut v = self.row_json(userset);
        v["token"] = Value::String(token.to_owned());
        v
    }

    /// Display name: nickname if set, else username (spec 1.5).
    pub fn display_name(&self) -> &str {
        if self.nickname.is_empty() {
            &self.username
        } else {
            &self.nickname
        }
    }

    /// The applicant shape of `listapplyfriend` (spec 4.2).
    pub fn brief_json(&self) -> Value {
        json!({"id": self.id, "username": self.username, "avatar": self.avatar, "nickname": self.nickname, "uuid": self.uuid})
    }

    /// `friendinfo` of `getgoodfriendinfo` (spec 4.6).
    pub fn friend_info_json(&self) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "avatar": self.avatar,
            "nickname": self.nickname,
            "role": self.role.as_str(),
            "status": self.status,
            "userinfo": self.userinfo_json(),
        })
    }

    /// Public profile (spec 3.1).
    pub fn public_json(&self, userset: &str) -> Value {
        json!({
            "id": self.id,
            "uuid": self.uuid,
            "username": self.username,
            "nickname": self.nickname,
            "avatar": self.avatar,
            "role": self.role.as_str(),
            "userset": userset,
            "userinfo": self.userinfo_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> User {
        NewUser {
            username: "my01".into(),
            password: "$argon2id$...".into(),
            role: Role::User,
            avatar: "https://a/chat/user.jpg".into(),
            devicefingeruuid: String::new(),
            stats: DeviceStats::default(),
            now: 1_752_378_365,
            logged_in: true,
        }
        .into_user(6)
        .0
    }

    #[test]
    fn login_shape_has_every_field_of_the_spec_and_no_password() {
        let v = sample().login_json("", "tok");
        let obj = v.as_object().expect("object");
        assert_eq!(obj.len(), 30, "29 row fields plus token");
        assert!(!obj.contains_key("password"));
        assert_eq!(v["create_time"], "2025-07-13 11:46:05");
        assert_eq!(v["register_time"], "2025-07-13T03:46:05.000Z");
        assert_eq!(v["role"], "user");
        assert_eq!(v["order"], 50);
        assert_eq!(v["token"], "tok");
    }

    #[test]
    fn public_shape_matches_spec_3_1() {
        let v = sample().public_json("");
        assert_eq!(v.as_object().map(|o| o.len()), Some(8));
        assert_eq!(
            v["userinfo"],
            json!({"id":6,"gender":"unknown","birthday":null,"bio":null,"location":null,"website":null})
        );
    }
}
