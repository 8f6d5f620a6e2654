//! Groups (spec 1.6, 5.0): group and member rows, their wire shapes, the canonical group snapshot
//! carried by every group-related push, avatar recomputation and the group notice.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::{iso_time, row_time};
use crate::message::Party;
use crate::model::User;

/// `group_user.status` of a member (spec 1.5).
pub const ACTIVE: i64 = 1;
/// `group_user.status` of someone waiting for the owner's approval.
pub const PENDING: i64 = 2;

/// A frame larger than this is sent with `group.group_users = []` (spec 5.0; API Gateway posts
/// at most 128 KB).
pub const FRAME_LIMIT: usize = 120 * 1024;
/// Most members whose avatars make up the group avatar.
pub const AVATAR_MEMBERS: usize = 9;
/// Longest group avatar string (the column's size).
pub const AVATAR_MAX_CHARS: usize = 4000;
/// Longest generated group name, in characters.
pub const NAME_MAX_CHARS: usize = 50;

/// A group row. Times are Unix seconds; they are formatted only on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: i64,
    pub uuid: String,
    /// The owner.
    pub user_id: i64,
    pub name: String,
    /// Comma-joined member avatars.
    pub avatar: String,
    /// The announcement.
    pub remark: String,
    /// Join policy 0..10 (spec 1.6).
    pub invite_confirm: i64,
    pub status: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A `group_user` row: one person's membership (active or pending) in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub id: i64,
    pub group_id: i64,
    pub user_id: i64,
    /// My nickname inside the group.
    pub nickname: String,
    pub avatar: String,
    pub status: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl GroupMember {
    pub fn is_active(&self) -> bool {
        self.status == ACTIVE
    }

    pub fn is_pending(&self) -> bool {
        self.status == PENDING
    }

    /// `{id, group_id, user_id, nickname, avatar, status, order}` (snapshot entry, spec 5.0).
    fn snapshot_json(&self) -> Value {
        json!({
            "id": self.id,
            "group_id": self.group_id,
            "user_id": self.user_id,
            "nickname": self.nickname,
            "avatar": self.avatar,
            "status": self.status,
            "order": 50,
        })
    }

    /// The row without `update_time`, with `groupId` and the user's brief profile (spec 5.3).
    pub fn info_json(&self, user: Option<&User>) -> Value {
        let mut v = self.snapshot_json();
        v["create_time"] = json!(row_time(self.created_at));
        v["groupId"] = json!(self.group_id);
        v["user"] = user.map_or(Value::Null, |u| {
            json!({
                "id": u.id,
                "username": u.username,
                "avatar": u.avatar,
                "nickname": u.nickname,
                "uuid": u.uuid,
                "role": u.role.as_str(),
            })
        });
        v
    }
}

impl Group {
    pub fn is_active(&self) -> bool {
        self.status == 1
    }

    /// Every column except `update_time` (spec 5.2, 5.3).
    pub fn listed_json(&self) -> Value {
        json!({
            "create_time": row_time(self.created_at),
            "id": self.id,
            "uuid": self.uuid,
            "user_id": self.user_id,
            "name": self.name,
            "avatar": self.avatar,
            "remark": self.remark,
            "invite_confirm": self.invite_confirm,
            "status": self.status,
            "order": 50,
        })
    }

    /// A `grouplist` entry: the group with only my own membership (spec 5.2).
    pub fn list_json(&self, mine: &GroupMember) -> Value {
        let mut v = self.listed_json();
        v["group_users"] = json!([{
            "group_id": mine.group_id,
            "user_id": mine.user_id,
            "nickname": mine.nickname,
            "avatar": mine.avatar,
        }]);
        v
    }
}

/// Member display name: the group nickname, else the user's nickname, else the username (spec 1.5).
pub fn member_name(member: &GroupMember, user: &User) -> String {
    if member.nickname.is_empty() {
        user.display_name().to_owned()
    } else {
        member.nickname.clone()
    }
}

/// Member avatar: the member row's avatar, else the user's (spec 1.5).
pub fn member_avatar(member: &GroupMember, user: &User) -> String {
    if member.avatar.is_empty() {
        user.avatar.clone()
    } else {
        member.avatar.clone()
    }
}

/// The group snapshot (spec 5.0): every group column plus the active members by row id.
pub fn snapshot(group: &Group, members: &[GroupMember]) -> Value {
    let mut active: Vec<&GroupMember> = members.iter().filter(|m| m.is_active()).collect();
    active.sort_by_key(|m| m.id);
    let mut v = group.listed_json();
    v["update_time"] = json!(iso_time(group.updated_at));
    v["group_users"] = Value::Array(active.into_iter().map(GroupMember::snapshot_json).collect());
    v
}

/// Joins the first [`AVATAR_MEMBERS`] avatars with `,`, dropping whole entries from the end
/// while the result exceeds [`AVATAR_MAX_CHARS`]; `None` without any avatar (spec 5.0).
pub fn joined_avatar<I, S>(avatars: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut parts: Vec<String> = avatars.into_iter().take(AVATAR_MEMBERS).map(|a| a.as_ref().to_owned()).collect();
    if parts.is_empty() {
        return None;
    }
    while parts.len() > 1 && parts.join(",").chars().count() > AVATAR_MAX_CHARS {
        parts.pop();
    }
    let joined = parts.join(",");
    // A single avatar longer than the column cannot be stored whole; keep its prefix.
    Some(if joined.chars().count() > AVATAR_MAX_CHARS {
        joined.chars().take(AVATAR_MAX_CHARS).collect()
    } else {
        joined
    })
}

/// The recomputed group avatar (spec 5.0): the member avatars of the first active members in row
/// id order; `users` must hold at least those members' users. `None` without an active member.
pub fn recomputed_avatar(members: &[GroupMember], users: &[User]) -> Option<String> {
    let mut active: Vec<&GroupMember> = members.iter().filter(|m| m.is_active()).collect();
    active.sort_by_key(|m| m.id);
    let avatars =
        active.into_iter().filter_map(|m| users.iter().find(|u| u.id == m.user_id).map(|u| member_avatar(m, u)));
    joined_avatar(avatars)
}

/// The user ids of the first active members whose avatars make up the group avatar.
pub fn avatar_member_ids(members: &[GroupMember]) -> Vec<i64> {
    let mut active: Vec<&GroupMember> = members.iter().filter(|m| m.is_active()).collect();
    active.sort_by_key(|m| m.id);
    active.into_iter().take(AVATAR_MEMBERS).map(|m| m.user_id).collect()
}

/// The user ids of the active members, by row id: the recipients of a group notice.
pub fn active_member_ids(members: &[GroupMember]) -> Vec<i64> {
    let mut active: Vec<&GroupMember> = members.iter().filter(|m| m.is_active()).collect();
    active.sort_by_key(|m| m.id);
    active.into_iter().map(|m| m.user_id).collect()
}

/// A group notice (spec 5.0): `systemNotice` to the group with its snapshot; `group` and
/// `members` are the values after the route's own change.
pub fn notice(id: &str, group: &Group, members: &[GroupMember], from: &Party, text: &str, create_time: i64) -> Value {
    json!({
        "id": id,
        "from_avatar": from.avatar,
        "from_name": from.name,
        "from_id": from.id,
        "to_id": group.id,
        "to_name": group.name,
        "to_avatar": group.avatar,
        "chatType": "group",
        "type": "systemNotice",
        "data": {"data": text, "dataType": false, "otherData": null},
        "options": {},
        "create_time": create_time,
        "isremove": 0,
        "group": snapshot(group, members),
    })
}

/// What a `singleChat` frame adds around its message (with a 13-digit timestamp).
const FRAME_OVERHEAD: usize = r#"{"type":"singleChat","data":,"timestamp":1234567890123}"#.len();

/// Size in bytes of the frame `{"type":"singleChat","data":<message>,"timestamp":<ms>}`.
pub fn frame_len(message: &Value) -> usize {
    serde_json::to_vec(message).map_or(usize::MAX, |bytes| bytes.len()) + FRAME_OVERHEAD
}

/// Applies the 120 KB rule (spec 5.0): when the frame carrying `message` would exceed
/// [`FRAME_LIMIT`], its `group.group_users` becomes `[]`. Messages without a group are left alone.
pub fn fit_frame(message: &mut Value) {
    let has_members = message.get("group").and_then(|g| g.get("group_users")).is_some_and(Value::is_array);
    if has_members && frame_len(message) > FRAME_LIMIT {
        message["group"]["group_users"] = json!([]);
    }
}

/// JavaScript `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` is
/// percent-encoded as UTF-8.
pub fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeviceStats, NewUser, Role};

    fn group() -> Group {
        Group {
            id: 33,
            uuid: "436937ea-ea54-4866-ae14-c87085219744".into(),
            user_id: 6,
            name: "技术交流群".into(),
            avatar: "https://x/a.png,https://x/b.png".into(),
            remark: String::new(),
            invite_confirm: 0,
            status: 1,
            created_at: 1_755_574_434,
            updated_at: 1_755_574_434,
        }
    }

    fn member(id: i64, user_id: i64, status: i64) -> GroupMember {
        GroupMember {
            id,
            group_id: 33,
            user_id,
            nickname: String::new(),
            avatar: String::new(),
            status,
            created_at: 1_755_574_434,
            updated_at: 1_755_574_434,
        }
    }

    fn user(id: i64, username: &str, nickname: &str) -> User {
        let mut u = NewUser {
            username: username.into(),
            password: String::new(),
            role: Role::User,
            avatar: format!("https://x/{username}.jpg"),
            devicefingeruuid: String::new(),
            stats: DeviceStats::default(),
            now: 0,
            logged_in: true,
        }
        .into_user(id)
        .0;
        u.nickname = nickname.into();
        u
    }

    #[test]
    fn snapshot_matches_spec_5_0() {
        let members = [member(138, 1, ACTIVE), member(137, 6, ACTIVE), member(139, 7, PENDING)];
        let v = snapshot(&group(), &members);
        assert_eq!(v["create_time"], "2025-08-19 11:33:54");
        assert_eq!(v["update_time"], "2025-08-19T03:33:54.000Z");
        assert_eq!(v["order"], 50);
        assert_eq!(v.as_object().map(|o| o.len()), Some(12));
        assert_eq!(
            v["group_users"],
            json!([
                {"id": 137, "group_id": 33, "user_id": 6, "nickname": "", "avatar": "", "status": 1, "order": 50},
                {"id": 138, "group_id": 33, "user_id": 1, "nickname": "", "avatar": "", "status": 1, "order": 50}
            ]),
            "active members only, by row id"
        );
    }

    #[test]
    fn member_names_and_avatars_fall_back_to_the_user() {
        let (mut m, u) = (member(1, 1, ACTIVE), user(1, "my01", ""));
        assert_eq!((member_name(&m, &u), member_avatar(&m, &u)), ("my01".into(), "https://x/my01.jpg".into()));
        let u = user(1, "my01", "老王");
        assert_eq!(member_name(&m, &u), "老王");
        m.nickname = "群里的我".into();
        m.avatar = "https://x/me.png".into();
        assert_eq!((member_name(&m, &u), member_avatar(&m, &u)), ("群里的我".into(), "https://x/me.png".into()));
    }

    #[test]
    fn avatars_take_nine_active_members_and_fit_4000_chars() {
        let members: Vec<GroupMember> = (1..=12).map(|i| member(i, i, if i == 2 { PENDING } else { ACTIVE })).collect();
        let users: Vec<User> = (1..=12).map(|i| user(i, &format!("u{i}"), "")).collect();
        let avatar = recomputed_avatar(&members, &users).expect("avatar");
        let parts: Vec<&str> = avatar.split(',').collect();
        assert_eq!(parts.len(), 9);
        assert_eq!(parts[0], "https://x/u1.jpg");
        assert_eq!(parts[1], "https://x/u3.jpg", "pending members do not count");
        assert_eq!(recomputed_avatar(&[member(1, 1, PENDING)], &users), None);
        let long = "a".repeat(1000);
        let joined = joined_avatar(vec![long.clone(); 9]).expect("avatar");
        assert_eq!(joined, [long.as_str(); 3].join(","), "whole entries dropped from the end");
        assert_eq!(joined_avatar(Vec::<String>::new()), None);
    }

    #[test]
    fn frames_over_120_kb_lose_their_member_list() {
        let g = group();
        let from = Party { id: json!(6), name: "my06", avatar: "https://x/a.png" };
        // Small group: untouched.
        let members: Vec<GroupMember> = (1..=3).map(|i| member(i, i, ACTIVE)).collect();
        let mut small = notice("id", &g, &members, &from, "hi", 1);
        let before = small.clone();
        fit_frame(&mut small);
        assert_eq!(small, before);

        // Find the member count where the frame crosses the limit, then check both sides of it.
        let build = |n: i64| {
            let members: Vec<GroupMember> = (1..=n).map(|i| member(i, i, ACTIVE)).collect();
            notice("id", &g, &members, &from, "hi", 1)
        };
        let mut n = 1;
        while frame_len(&build(n + 1)) <= FRAME_LIMIT {
            n += 1;
        }
        let mut fits = build(n);
        assert!(frame_len(&fits) <= FRAME_LIMIT);
        fit_frame(&mut fits);
        assert_eq!(fits["group"]["group_users"].as_array().map(Vec::len), Some(n as usize), "at the limit: kept");
        let mut over = build(n + 1);
        assert!(frame_len(&over) > FRAME_LIMIT);
        fit_frame(&mut over);
        assert_eq!(over["group"]["group_users"], json!([]), "over the limit: emptied");
        assert_eq!(over["group"]["id"], 33, "the rest of the snapshot stays");
        assert!(frame_len(&over) < FRAME_LIMIT);

        // The size is the real frame's size.
        let frame = json!({"type": "singleChat", "data": over, "timestamp": 1_234_567_890_123_i64});
        assert_eq!(frame.to_string().len(), frame_len(&over));

        // Messages without a group snapshot are never touched.
        let mut plain = json!({"data": "x".repeat(FRAME_LIMIT)});
        let before = plain.clone();
        fit_frame(&mut plain);
        assert_eq!(plain, before);
    }

    #[test]
    fn uri_components_are_encoded_like_javascript() {
        assert_eq!(encode_uri_component("加群申请"), "%E5%8A%A0%E7%BE%A4%E7%94%B3%E8%AF%B7");
        assert_eq!(encode_uri_component("https://a/b.png,c"), "https%3A%2F%2Fa%2Fb.png%2Cc");
        assert_eq!(encode_uri_component("a-_.!~*'() {}\""), "a-_.!~*'()%20%7B%7D%22");
    }
}
