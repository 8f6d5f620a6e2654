//! The store ports' contract, checked against every adapter set (embedded; DynamoDB + Redis).

use std::time::Duration;

use chat_shared::auth::token_digest;
use chat_shared::clock::now_ms;
use chat_shared::group::{ACTIVE, PENDING};
use chat_shared::manager::NewManager;
use chat_shared::model::{DeviceStats, NewUser, Role, User};
use chat_shared::store::{AdminEdit, Edited, GroupChange, Joined, NewGroup};
use chat_shared::store::{Connection, QueuedMessage, SentMessage, StoredMessage};
use chat_shared::store::{Created, Decided, DeviceBinding, FriendRemarks, LoginUpdate, ProfileChange, Upgraded};
use chat_tests::{Backend, BackendKind};
use serde_json::json;

fn new_user(username: &str, role: Role, device: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        password: "hash".to_owned(),
        role,
        avatar: "a.jpg".to_owned(),
        devicefingeruuid: device.to_owned(),
        stats: DeviceStats::default(),
        now: 1_700_000_000,
        logged_in: true,
    }
}

async fn users_are_unique_case_insensitively_and_findable(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let users = &b.state.users;
    let Created::Created(alice) = users.create(new_user("Alice", Role::User, ""), None).await.expect("create") else {
        panic!("first creation must succeed")
    };
    assert!(alice.id > 0);
    assert!(matches!(
        users.create(new_user("ALICE", Role::User, ""), None).await.expect("dup"),
        Created::UsernameTaken
    ));
    let Created::Created(bob) = users.create(new_user("bob1", Role::User, ""), None).await.expect("create") else {
        panic!("bob")
    };
    assert!(bob.id > alice.id, "ids come from an increasing counter and are never reused");
    assert_eq!(users.find_by_username("alice").await.expect("find").map(|u| u.id), Some(alice.id));
    assert_eq!(users.find_by_username("alice").await.expect("find").map(|u| u.username), Some("Alice".to_owned()));
    assert_eq!(users.find_by_uuid(&alice.uuid).await.expect("uuid").map(|u| u.id), Some(alice.id));
    assert_eq!(users.get(alice.id).await.expect("get"), Some(*alice.clone()));
    assert!(users.get(9_999_999).await.expect("get").is_none());
    assert!(users.find_by_username("nobody").await.expect("find").is_none());
    assert!(users.find_by_uuid("00000000-0000-4000-8000-000000000000").await.expect("uuid").is_none());
}

async fn device_bindings_replace_only_what_was_read(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let users = &b.state.users;
    let device = "dev-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    let bind = |replaces| Some(DeviceBinding { device_id: device.to_owned(), replaces });
    let Created::Created(v1) =
        users.create(new_user("VISdev-aaaa", Role::Visitor, device), bind(None)).await.expect("v1")
    else {
        panic!("v1")
    };
    assert_eq!(users.find_by_device(device).await.expect("find").map(|u| u.id), Some(v1.id));
    // A second "first binding" loses: the device is bound already.
    let r = users.create(new_user("VISother", Role::Visitor, device), bind(None)).await.expect("v2");
    assert!(matches!(r, Created::DeviceRebound), "got {r:?}");
    assert!(users.find_by_username("VISother").await.expect("find").is_none(), "nothing half-written");
    // Replacing a binding we did not read loses too.
    let r = users.create(new_user("VISother", Role::Visitor, device), bind(Some(v1.id + 100))).await.expect("v2");
    assert!(matches!(r, Created::DeviceRebound));
    // Replacing the binding we read wins.
    let Created::Created(v2) =
        users.create(new_user("VISother", Role::Visitor, device), bind(Some(v1.id))).await.expect("v2")
    else {
        panic!("replacement")
    };
    assert_eq!(users.find_by_device(device).await.expect("find").map(|u| u.id), Some(v2.id));
}

async fn logins_and_upgrades_update_in_place(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let users = &b.state.users;
    let Created::Created(v) = users.create(new_user("VISupgrade", Role::Visitor, "dev1"), None).await.expect("create")
    else {
        panic!("create")
    };
    let stats = DeviceStats {
        uniplatform: "web".into(),
        devicemodel: "PC".into(),
        deviceos: "Linux".into(),
        devicebrand: "X".into(),
    };
    users
        .record_login(v.id, 1_800_000_000, LoginUpdate { rehash: Some("new-hash".into()), stats: Some(stats.clone()) })
        .await
        .expect("login");
    let after = users.get(v.id).await.expect("get").expect("exists");
    assert_eq!((after.last_login, &after.stats), (Some(1_800_000_000), &stats));
    assert_eq!(users.private(v.id).await.expect("private").map(|p| p.password), Some("new-hash".to_owned()));
    let Created::Created(_) = users.create(new_user("taken", Role::User, ""), None).await.expect("create") else {
        panic!("taken")
    };
    assert!(matches!(users.upgrade_visitor(&after, "TAKEN", "h", 1).await.expect("upgrade"), Upgraded::UsernameTaken));
    let Upgraded::Upgraded(up) = users.upgrade_visitor(&after, "realname", "h2", 1_800_000_100).await.expect("upgrade")
    else {
        panic!("upgrade")
    };
    assert_eq!((up.id, up.role, up.username.as_str()), (v.id, Role::User, "realname"));
    let stored = users.get(v.id).await.expect("get").expect("exists");
    assert_eq!((stored.role, stored.username.as_str()), (Role::User, "realname"));
    assert_eq!(users.private(v.id).await.expect("private").map(|p| p.password), Some("h2".to_owned()));
    assert_eq!(stored.uuid, v.uuid, "identity is kept");
    assert!(users.find_by_username("VISupgrade").await.expect("find").is_none(), "old name released");
    assert_eq!(users.find_by_username("RealName").await.expect("find").map(|u| u.id), Some(v.id));
    assert!(matches!(
        users.upgrade_visitor(&stored, "again", "h3", 1).await.expect("upgrade"),
        Upgraded::NotAnActiveVisitor
    ));
}

async fn sessions_and_fixed_window_counters(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let s = &b.state.sessions;
    assert_eq!(s.token(7).await.expect("get"), None);
    s.set_token(7, "t1", 60).await.expect("set");
    s.set_token(7, "t2", 60).await.expect("set");
    assert_eq!(s.token(7).await.expect("get").as_deref(), Some("t2"), "issuing replaces the token");
    s.delete_token(7).await.expect("del");
    assert_eq!(s.token(7).await.expect("get"), None);
    s.set_token(8, "short", 1).await.expect("set");
    assert_eq!(s.count("k").await.expect("count"), 0);
    assert_eq!(s.hit("k", 2).await.expect("hit"), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(s.hit("k", 2).await.expect("hit"), 2, "a later hit does not restart the window");
    assert_eq!(s.count("k").await.expect("count"), 2);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(s.count("k").await.expect("count"), 0, "the window ended 2 s after the first hit");
    assert_eq!(s.token(8).await.expect("get"), None, "tokens expire with their TTL");
    assert_eq!(s.hit("k", 2).await.expect("hit"), 1);
    s.reset("k").await.expect("reset");
    assert_eq!(s.count("k").await.expect("count"), 0);
}

async fn profile_changes_and_bounded_search(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let users = &b.state.users;
    let mut ids = Vec::new();
    for name in ["Findme_1", "findme%2", "other", "FINDME3"] {
        let Created::Created(u) = users.create(new_user(name, Role::User, ""), None).await.expect("create") else {
            panic!("create")
        };
        ids.push(u.id);
    }
    users.create(new_user("findmevisitor", Role::Visitor, "dev-x"), None).await.expect("visitor");
    users.update_profile(ids[0], ProfileChange::Nickname("魂牵一梦".into()), 5).await.expect("nickname");
    users.update_profile(ids[0], ProfileChange::InviteConfirm(1), 6).await.expect("invite");
    users.update_profile(ids[0], ProfileChange::Userset("{}".into()), 7).await.expect("userset");
    let u = users.get(ids[0]).await.expect("get").expect("user");
    assert_eq!((u.nickname.as_str(), u.invite_confirm, u.updated_at), ("魂牵一梦", 1, 7));
    let private = users.private_many(&[ids[0], ids[1], 999_999]).await.expect("private");
    assert_eq!(private.get(&ids[0]).map(|p| p.userset.as_str()), Some("{}"));
    assert_eq!(private.get(&ids[1]).map(|p| p.userset.as_str()), Some(""), "settings start empty");
    assert_eq!(private.len(), 2, "only users that exist");

    let hits = users.search("findme", ids[3], 20).await.expect("search");
    let found: Vec<i64> = hits.iter().map(|h| h.id).collect();
    assert_eq!(found, vec![ids[0], ids[1]], "visitors and the caller excluded, ascending ids");
    assert_eq!(hits[0].nickname, "魂牵一梦", "the directory follows profile changes");
    assert_eq!(users.search("%", 0, 20).await.expect("search").len(), 1, "% is literal");
    assert_eq!(users.search("findme", 0, 2).await.expect("search").len(), 2, "capped at the limit");
    assert!(users.search("nomatch", 0, 20).await.expect("search").is_empty());
}

async fn social_rows_and_the_offline_queue(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (social, queue) = (&b.state.social, &b.state.offline);
    let app = social.apply(1, 2, "hi", 100).await.expect("apply").expect("created");
    assert!(social.apply(1, 2, "again", 101).await.expect("apply").is_none(), "one pending per ordered pair");
    let reverse = social.apply(2, 1, "", 102).await.expect("apply").expect("the other direction is separate");
    assert_eq!(social.pending_application(1, 2).await.expect("pending").map(|a| a.id), Some(app.id));
    assert_eq!(social.application(2, app.id).await.expect("get").map(|a| a.nickname), Some("hi".to_owned()));
    assert!(social.application(1, app.id).await.expect("get").is_none(), "addressed to 2 only");
    assert_eq!(social.count_pending_to(2).await.expect("count"), 1);
    let remarks = || FriendRemarks { decider_row: "remark by 2".into(), applicant_row: "remark by 1".into() };
    assert_eq!(social.decide(&app, "agree", remarks(), 200).await.expect("decide"), Decided::Done);
    assert_eq!(social.decide(&app, "agree", remarks(), 201).await.expect("decide"), Decided::NotPending);
    assert_eq!(social.friend(2, 1).await.expect("row").map(|f| f.nickname), Some("remark by 2".to_owned()));
    let mut row = social.friend(1, 2).await.expect("row").expect("exists");
    assert_eq!((row.nickname.as_str(), row.isblack, row.friendlookme), ("remark by 1", 0, 1));
    row.isblack = 1;
    social.update_friend(&row).await.expect("update");
    assert_eq!(social.friend(1, 2).await.expect("row").map(|f| f.isblack), Some(1));
    assert_eq!(social.decide(&reverse, "ignore", remarks(), 300).await.expect("decide"), Decided::Done);
    assert!(social.apply(2, 1, "", 301).await.expect("apply").is_some(), "ignored: may apply again");
    assert_eq!(social.applications_to(1, 0, 10).await.expect("list").len(), 2);
    assert_eq!(social.applications_to(1, 1, 10).await.expect("list").len(), 1, "offset");
    social.unfriend(1, 2).await.expect("unfriend");
    assert!(social.friend(1, 2).await.expect("row").is_none() && social.friend(2, 1).await.expect("row").is_none());
    assert!(social.applications_to(1, 0, 10).await.expect("list").is_empty(), "applications between them removed");
    assert!(social.apply(1, 2, "", 400).await.expect("apply").is_some(), "may apply again after unfriending");

    // Stored once, referenced from every queue, oldest first.
    let stored: Vec<StoredMessage> =
        (0..3).map(|i| StoredMessage::new(serde_json::json!({"n": i, "isremove": 0}))).collect();
    for message in &stored {
        queue.store(message).await.expect("store");
        queue.enqueue(&message.key, &[7, 8]).await.expect("enqueue");
    }
    queue.enqueue(&stored[0].key, &[7]).await.expect("a repeated reference");
    let numbers =
        |queued: &[QueuedMessage]| queued.iter().map(|(_, m)| m.as_ref().map(|m| m["n"].clone())).collect::<Vec<_>>();
    let peeked = queue.peek(7, 2).await.expect("peek");
    assert_eq!(numbers(&peeked), [Some(json!(0)), Some(json!(1))], "oldest first, one reference each");
    queue.remove(7, &[peeked[0].0.clone()]).await.expect("remove");
    assert_eq!(numbers(&queue.peek(7, 10).await.expect("peek")), [Some(json!(1)), Some(json!(2))]);
    assert_eq!(numbers(&queue.peek(8, 10).await.expect("peek")).len(), 3, "another queue is not touched");
    assert!(queue.peek(9, 10).await.expect("peek").is_empty());

    // A revoke marks the one stored message: every queue sees it, and storing again keeps it.
    queue.mark_revoked(&stored[1].key).await.expect("revoke");
    queue.store(&stored[1]).await.expect("store again");
    for user in [7, 8] {
        let queued = queue.peek(user, 10).await.expect("peek");
        let revoked = queued.iter().find(|(k, _)| *k == stored[1].key).and_then(|(_, m)| m.clone()).expect("queued");
        assert_eq!(revoked["isremove"], 1, "user {user}");
    }
    assert_eq!(queue.load(&stored[1].key).await.expect("load").map(|m| m.message["isremove"].clone()), Some(json!(1)));
    assert_eq!(queue.load(&stored[2].key).await.expect("load").map(|m| m.message), Some(stored[2].message.clone()));
    assert_eq!(queue.load("no-such-key").await.expect("load"), None);
    queue.mark_revoked("no-such-key").await.expect("revoking nothing is fine");
}

fn new_group(owner: i64, members: Vec<i64>) -> NewGroup {
    NewGroup { user_id: owner, name: "群".to_owned(), avatar: "a.png".to_owned(), members, now: 1_700_000_000 }
}

async fn group_ids_of(b: &Backend, user: i64, offset: usize, limit: usize) -> Vec<i64> {
    let groups = b.state.groups.groups_of(user, offset, limit).await.expect("groups_of");
    assert!(groups.iter().all(|(g, mine)| mine.group_id == g.id && mine.user_id == user && mine.status == ACTIVE));
    groups.into_iter().map(|(g, _)| g.id).collect()
}

async fn groups_members_and_my_groups(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let groups = &b.state.groups;
    let (group, members) = groups.create(new_group(10, vec![10, 11, 12])).await.expect("create");
    assert!(group.id > 0);
    assert_eq!(group.uuid.len(), 36);
    assert_eq!(
        (group.user_id, group.remark.as_str(), group.invite_confirm, group.status, group.created_at),
        (10, "", 0, 1, 1_700_000_000)
    );
    assert_eq!(members.iter().map(|m| m.user_id).collect::<Vec<_>>(), vec![10, 11, 12], "rows in the order given");
    assert!(members.windows(2).all(|w| w[0].id < w[1].id), "row ids from an increasing counter");
    assert!(members.iter().all(|m| m.status == ACTIVE && m.nickname.is_empty() && m.avatar.is_empty()));
    assert_eq!(groups.group(group.id).await.expect("group"), Some(group.clone()));
    assert_eq!(groups.members(group.id).await.expect("members"), members);
    assert_eq!(groups.group_with_members(group.id).await.expect("both"), Some((group.clone(), members.clone())));
    assert_eq!(groups.member(group.id, 11).await.expect("member"), Some(members[1].clone()));
    assert_eq!(groups.member(group.id, 99).await.expect("member"), None);
    assert_eq!(groups.group(9_999_999).await.expect("group"), None);
    assert_eq!(groups.group_with_members(9_999_999).await.expect("both"), None);
    assert!(groups.members(9_999_999).await.expect("members").is_empty());

    // "My groups": active memberships, newest group first, paged.
    let (second, _) = groups.create(new_group(11, vec![11, 10])).await.expect("create");
    assert!(second.id > group.id, "group ids are never reused");
    assert_eq!(group_ids_of(&b, 10, 0, 10).await, vec![second.id, group.id]);
    assert_eq!(group_ids_of(&b, 10, 0, 1).await, vec![second.id]);
    assert_eq!(group_ids_of(&b, 10, 1, 10).await, vec![group.id]);
    assert_eq!(group_ids_of(&b, 12, 0, 10).await, vec![group.id]);
    assert!(groups.is_active_member_of_any(12).await.expect("any"));
    assert!(!groups.is_active_member_of_any(13).await.expect("any"));

    // Column and nickname changes.
    assert!(groups.update(group.id, GroupChange::Name("新名字".into()), 1_700_000_100).await.expect("update"));
    assert!(groups.update(group.id, GroupChange::Remark("公告".into()), 1_700_000_100).await.expect("update"));
    assert!(groups.update(group.id, GroupChange::InviteConfirm(1), 1_700_000_100).await.expect("update"));
    assert!(groups.update(group.id, GroupChange::Avatar("b.png,c.png".into()), 1_700_000_200).await.expect("update"));
    let changed = groups.group(group.id).await.expect("group").expect("exists");
    assert_eq!(
        (changed.name.as_str(), changed.remark.as_str(), changed.invite_confirm, changed.avatar.as_str()),
        ("新名字", "公告", 1, "b.png,c.png")
    );
    assert_eq!((changed.uuid.as_str(), changed.updated_at), (group.uuid.as_str(), 1_700_000_200));
    assert!(!groups.update(9_999_999, GroupChange::Name("x".into()), 1).await.expect("update"), "no such group");
    assert!(groups.set_nickname(group.id, 11, "小明", 1_700_000_300).await.expect("nickname"));
    assert_eq!(groups.member(group.id, 11).await.expect("member").map(|m| m.nickname), Some("小明".to_owned()));
    assert!(!groups.set_nickname(group.id, 99, "x", 1).await.expect("nickname"), "no such member");

    // A pending row is a member row, but not an active membership.
    let Joined::Added(pending) = groups.join(group.id, 13, PENDING, 1_700_000_400, 500).await.expect("join") else {
        panic!("a new member row")
    };
    assert_eq!((pending.group_id, pending.user_id, pending.status), (group.id, 13, PENDING));
    assert!(pending.id > members[2].id);
    assert_eq!(groups.members(group.id).await.expect("members").last(), Some(&pending), "by row id");
    assert!(!groups.is_active_member_of_any(13).await.expect("any"));
    assert_eq!(groups.join(group.id, 13, ACTIVE, 1, 500).await.expect("join"), Joined::AlreadyMember);
    assert_eq!(groups.join(group.id, 10, ACTIVE, 1, 500).await.expect("join"), Joined::AlreadyMember);
    assert_eq!(groups.join(9_999_999, 13, ACTIVE, 1, 500).await.expect("join"), Joined::NoGroup);
    assert!(groups.approve(group.id, 13, 1_700_000_500).await.expect("approve"));
    assert!(!groups.approve(group.id, 13, 1).await.expect("approve"), "only once");
    assert!(!groups.approve(group.id, 99, 1).await.expect("approve"), "no such row");
    assert_eq!(groups.member(group.id, 13).await.expect("member").map(|m| m.status), Some(ACTIVE));
    assert_eq!(group_ids_of(&b, 13, 0, 10).await, vec![group.id]);
    let Joined::Added(_) = groups.join(group.id, 14, PENDING, 1, 500).await.expect("join") else { panic!("added") };
    assert!(groups.reject(group.id, 14).await.expect("reject"));
    assert!(!groups.reject(group.id, 14).await.expect("reject"), "gone");
    assert!(!groups.reject(group.id, 13).await.expect("reject"), "active rows are not rejected");
    assert_eq!(groups.member(group.id, 14).await.expect("member"), None);
    let Joined::Added(direct) = groups.join(group.id, 15, ACTIVE, 1, 500).await.expect("join") else { panic!("added") };
    assert_eq!(direct.status, ACTIVE);
    assert_eq!(group_ids_of(&b, 15, 0, 10).await, vec![group.id]);

    // Leaving.
    groups.remove_member(group.id, 12).await.expect("remove");
    groups.remove_member(group.id, 12).await.expect("removing nothing is fine");
    assert_eq!(groups.member(group.id, 12).await.expect("member"), None);
    assert!(!groups.is_active_member_of_any(12).await.expect("any"));

    // Dissolving removes the group, every row and every index entry.
    groups.dissolve(group.id).await.expect("dissolve");
    assert_eq!(groups.group(group.id).await.expect("group"), None);
    assert!(groups.members(group.id).await.expect("members").is_empty());
    assert_eq!(group_ids_of(&b, 10, 0, 10).await, vec![second.id]);
    assert!(group_ids_of(&b, 15, 0, 10).await.is_empty());
    assert!(!groups.is_active_member_of_any(13).await.expect("any"));
    assert_eq!(groups.join(group.id, 16, ACTIVE, 1, 500).await.expect("join"), Joined::NoGroup);
}

/// More members than one DynamoDB transaction can hold (1 + 2 per member > 100 items).
async fn big_groups_are_created_and_dissolved_whole(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let groups = &b.state.groups;
    let users: Vec<i64> = (100..160).collect();
    let (group, members) = groups.create(new_group(100, users.clone())).await.expect("create");
    assert_eq!(members.len(), 60);
    let stored = groups.members(group.id).await.expect("members");
    assert_eq!(stored, members);
    assert_eq!(group_ids_of(&b, 159, 0, 10).await, vec![group.id]);
    groups.dissolve(group.id).await.expect("dissolve");
    assert_eq!(groups.group_with_members(group.id).await.expect("both"), None);
    assert!(groups.members(group.id).await.expect("members").is_empty());
    for user in [100, 130, 159] {
        assert!(!groups.is_active_member_of_any(user).await.expect("any"));
    }
}

/// The member cap counts active and pending rows, frees a place on leave and reject, and of
/// several joins racing for the last place exactly one wins.
async fn the_member_cap_holds_under_concurrency(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let groups = &b.state.groups;
    let (group, _) = groups.create(new_group(1, vec![1, 2])).await.expect("create");
    let Joined::Added(_) = groups.join(group.id, 3, PENDING, 1, 4).await.expect("join") else { panic!("added") };
    let racers = (10..18).map(|user| groups.join(group.id, user, ACTIVE, 1, 4));
    let results = futures_util::future::join_all(racers).await;
    let won: Vec<_> = results.iter().filter(|r| matches!(r, Ok(Joined::Added(_)))).collect();
    assert_eq!(won.len(), 1, "one place left, one winner: {results:?}");
    assert!(results.iter().all(|r| matches!(r, Ok(Joined::Added(_) | Joined::Full))), "{results:?}");
    assert_eq!(groups.members(group.id).await.expect("members").len(), 4);
    assert_eq!(groups.join(group.id, 20, ACTIVE, 1, 4).await.expect("join"), Joined::Full);
    assert!(groups.reject(group.id, 3).await.expect("reject"));
    let Joined::Added(_) = groups.join(group.id, 20, ACTIVE, 1, 4).await.expect("join") else { panic!("freed") };
    assert_eq!(groups.join(group.id, 21, ACTIVE, 1, 4).await.expect("join"), Joined::Full);
    groups.remove_member(group.id, 2).await.expect("leave");
    groups.remove_member(group.id, 2).await.expect("leaving twice frees one place only");
    let Joined::Added(_) = groups.join(group.id, 21, ACTIVE, 1, 4).await.expect("join") else { panic!("freed") };
    assert_eq!(groups.join(group.id, 22, ACTIVE, 1, 4).await.expect("join"), Joined::Full);
}

async fn connections_are_current_while_their_token_is(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (registry, sessions) = (&b.state.connections, &b.state.sessions);
    sessions.set_token(7, "token-a", 60).await.expect("token");
    let conn = |id: &str, user: i64, token: &str| Connection {
        id: id.to_owned(),
        user_id: user,
        token_digest: token_digest(token),
        role: Role::User,
    };
    assert_eq!(registry.register(&conn("c1", 7, "token-a"), 60).await.expect("register"), 0);
    assert_eq!(registry.register(&conn("c2", 7, "token-a"), 60).await.expect("register"), 1, "one other device");
    registry.register(&conn("c3", 8, "token-b"), 60).await.expect("register");
    let mut current: Vec<String> =
        registry.current_connections(&[7, 8, 9]).await.expect("current").into_iter().map(|c| c.id).collect();
    current.sort();
    assert_eq!(current, ["c1", "c2"], "user 8 has no current token, user 9 no connection");
    sessions.set_token(7, "token-new", 60).await.expect("token");
    assert!(registry.current_connections(&[7]).await.expect("current").is_empty(), "superseded by a new login");
    // Many recipients at once (on a cluster their keys spread over every master's slots): each
    // connection is matched with its own user's token.
    let many: Vec<i64> = (100..160).collect();
    for &user in &many {
        let token = if user % 3 == 0 { "stale".to_owned() } else { format!("token-{user}") };
        sessions.set_token(user, &format!("token-{user}"), 60).await.expect("token");
        registry.register(&conn(&format!("m{user}"), user, &token), 60).await.expect("register");
    }
    let mut current: Vec<i64> =
        registry.current_connections(&many).await.expect("current").into_iter().map(|c| c.user_id).collect();
    current.sort();
    assert_eq!(current, many.iter().copied().filter(|u| u % 3 != 0).collect::<Vec<_>>());
    for &user in &many {
        registry.unregister(&format!("m{user}")).await.expect("unregister");
    }
    assert_eq!(registry.unregister("c1").await.expect("unregister"), Some(conn("c1", 7, "token-a")));
    assert_eq!(registry.unregister("c1").await.expect("unregister"), None);
    let mut all: Vec<String> = registry.shard_connections(0).await.expect("shard").into_iter().map(|c| c.id).collect();
    all.sort();
    assert_eq!(all, ["c2", "c3"]);
    // Shards hold the connections of 1000 users each.
    registry.register(&conn("far", 1999, "token-c"), 60).await.expect("register");
    let shard: Vec<String> = registry.shard_connections(1).await.expect("shard").into_iter().map(|c| c.id).collect();
    assert_eq!(shard, ["far"]);
    assert!(registry.shard_connections(0).await.expect("shard").iter().all(|c| c.id != "far"));
    assert_eq!(registry.unregister("far").await.expect("unregister").map(|c| c.user_id), Some(1999));
    assert!(registry.shard_connections(1).await.expect("shard").is_empty(), "unregistered from its shard too");
    // Registrations expire like API Gateway's connections.
    registry.register(&conn("short", 8, "token-b"), 1).await.expect("register");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(registry.shard_connections(0).await.expect("shard").iter().all(|c| c.id != "short"));
}

async fn the_sent_log_finds_counts_and_revokes_once(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let log = &b.state.messages;
    let entry = SentMessage {
        id: "m1".into(),
        sender: 1,
        chat_type: "single".into(),
        to_id: 2,
        to_name: "two".into(),
        to_avatar: "https://example.com/2.png".into(),
        create_time: now_ms(),
        revoked: false,
        stored: "k1".into(),
    };
    log.record(&entry).await.expect("record");
    assert!(!log.claim_stranger_message(1, 2).await.expect("claim"), "a message was sent before (as a friend)");
    assert!(log.claim_stranger_message(2, 1).await.expect("claim"), "per direction");
    let found = log.find(1, "single", 2, "m1").await.expect("find").expect("found");
    assert_eq!(found.stored, "k1", "the entry names its stored message");
    assert_eq!(found.to_name, "two");
    assert!(log.find(3, "single", 2, "m1").await.expect("find").is_none(), "another sender's key");
    assert!(log.find(1, "group", 2, "m1").await.expect("find").is_none(), "another chat type");
    assert!(log.mark_revoked(&found).await.expect("revoke"));
    assert!(!log.mark_revoked(&found).await.expect("revoke"), "only the first revoke acts");
    assert!(log.find(1, "single", 2, "m1").await.expect("find").expect("found").revoked);
}

/// Spec 6.6 `sendCount` 1: of 20 parallel claims exactly one wins; a second claim never does,
/// and a deleted sender's claims go with it.
async fn a_stranger_claim_is_won_once_even_in_parallel(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let log = &b.state.messages;
    let claims = futures_util::future::join_all((0..20).map(|_| log.claim_stranger_message(7, 8))).await;
    let won = claims.into_iter().map(|c| c.expect("claim")).filter(|&won| won).count();
    assert_eq!(won, 1);
    assert!(!log.claim_stranger_message(7, 8).await.expect("claim"));
    assert!(log.find(7, "single", 8, "#stranger").await.expect("find").is_none(), "a claim is no message");
    log.forget_sender(7).await.expect("forget");
    assert!(log.claim_stranger_message(7, 8).await.expect("claim"), "the deleted sender's claim is gone");
}

async fn created(b: &Backend, username: &str, role: Role, device: &str) -> User {
    let binding = (!device.is_empty()).then(|| DeviceBinding { device_id: device.to_owned(), replaces: None });
    match b.state.users.create(new_user(username, role, device), binding).await.expect("create") {
        Created::Created(u) => *u,
        other => panic!("create {username}: {other:?}"),
    }
}

/// More users than index shards: the admin list is one newest-first order across them (count,
/// offsets), the search one ascending order; on DynamoDB the index keys spread over every shard.
async fn lists_and_searches_merge_every_index_shard(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(created(&b, &format!("spread{i:02}"), Role::User, "").await.id);
    }
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    let page = b.state.users.list(Some("spread"), 0, 100).await.expect("list");
    assert_eq!(page.count, 40);
    assert_eq!(page.rows.iter().map(|u| u.id).collect::<Vec<_>>(), newest_first);
    let middle = b.state.users.list(Some("spread"), 10, 5).await.expect("list");
    assert_eq!(middle.rows.iter().map(|u| u.id).collect::<Vec<_>>(), newest_first[10..15].to_vec(), "offset paging");
    let found = b.state.users.search("spread", 0, 20).await.expect("search");
    assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), ids[..20].to_vec(), "ascending ids");
    if kind != BackendKind::Embedded {
        let client = chat_shared::store::dynamo::client(b.dynamodb_endpoint.as_deref()).await;
        let table = b.table.as_deref().expect("users table");
        for shard in 0..chat_shared::store::dynamo::INDEX_SHARDS {
            let out = client
                .query()
                .table_name(table)
                .index_name(chat_shared::store::dynamo::USERS_BY_ID_INDEX)
                .key_condition_expression("listed = :l")
                .expression_attribute_values(":l", aws_sdk_dynamodb::types::AttributeValue::S(format!("user#{shard}")))
                .send()
                .await
                .expect("query");
            assert!(out.count() >= 2, "shard {shard} holds its share of 40 users, not none");
        }
    }
}

async fn the_admin_list_edits_status_and_deletion(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let users = &b.state.users;
    let a = created(&b, "ListA", Role::User, "").await;
    let v = created(&b, "listb", Role::Visitor, "dev-list-b").await;
    let o = created(&b, "other", Role::User, "").await;
    let ids = |rows: &[User]| rows.iter().map(|u| u.id).collect::<Vec<_>>();
    let all = users.list(None, 0, 10).await.expect("list");
    assert_eq!((all.count, ids(&all.rows)), (3, vec![o.id, v.id, a.id]), "every role, newest first");
    let matching = users.list(Some("list"), 0, 1).await.expect("list");
    assert_eq!((matching.count, ids(&matching.rows)), (2, vec![v.id]), "counted over all pages");
    assert_eq!(users.list(Some("list"), 1, 5).await.expect("list").rows[0].id, a.id, "case-insensitive");
    let past = users.list(None, 3, 10).await.expect("list");
    assert_eq!((past.count, past.rows.len()), (3, 0));

    let edit = |username: &str, password: Option<&str>| AdminEdit {
        username: username.to_owned(),
        password: password.map(str::to_owned),
        avatar: None,
    };
    assert_eq!(users.admin_update(&a, edit("OTHER", None), 10).await.expect("edit"), Edited::UsernameTaken);
    let renamed = AdminEdit { avatar: Some("b.jpg".into()), ..edit("Renamed", Some("hash2")) };
    assert_eq!(users.admin_update(&a, renamed, 11).await.expect("edit"), Edited::Updated);
    let now = users.get(a.id).await.expect("get").expect("row");
    assert_eq!(
        (now.username.as_str(), now.avatar.as_str(), now.updated_at, now.role),
        ("Renamed", "b.jpg", 11, Role::User)
    );
    assert_eq!(users.private(a.id).await.expect("private").map(|p| p.password), Some("hash2".to_owned()));
    assert_eq!(users.find_by_username("renamed").await.expect("find").map(|u| u.id), Some(a.id));
    assert!(users.find_by_username("lista").await.expect("find").is_none(), "the old name is released");
    assert_eq!(users.admin_update(&a, edit("Again", None), 12).await.expect("edit"), Edited::NotFound, "a stale read");
    assert_eq!(users.list(Some("renamed"), 0, 5).await.expect("list").count, 1, "the list follows renames");

    // Status: disabled users leave the search directory and come back when enabled.
    assert_eq!(users.search("renamed", 0, 20).await.expect("search").len(), 1);
    assert!(users.set_status(&now, 0, 13).await.expect("status"));
    assert_eq!(users.get(a.id).await.expect("get").map(|u| u.status), Some(0));
    assert!(users.search("renamed", 0, 20).await.expect("search").is_empty());
    assert!(users.set_status(&now, 1, 14).await.expect("status"));
    assert_eq!(users.search("renamed", 0, 20).await.expect("search").len(), 1);
    assert!(users.set_status(&v, 0, 15).await.expect("status"));
    assert!(users.search("listb", 0, 20).await.expect("search").is_empty(), "visitors stay out when enabled or not");

    // Deletion takes the row, the reservation and the device binding.
    assert!(users.delete(&now).await.expect("delete"));
    assert!(users.private(now.id).await.expect("private").is_none(), "the private part goes with the row");
    assert!(!users.delete(&now).await.expect("delete"), "already gone");
    assert!(users.get(a.id).await.expect("get").is_none());
    assert!(users.find_by_username("renamed").await.expect("find").is_none());
    assert!(users.find_by_uuid(&a.uuid).await.expect("uuid").is_none());
    assert!(users.delete(&v).await.expect("delete"));
    assert!(users.find_by_device("dev-list-b").await.expect("device").is_none());
    assert_eq!(ids(&users.list(None, 0, 10).await.expect("list").rows), vec![o.id]);
    // A device rebound to a newer visitor keeps its binding when the old account goes.
    let old = created(&b, "VISold00", Role::Visitor, "dev-rebound").await;
    let rebind = Some(DeviceBinding { device_id: "dev-rebound".into(), replaces: Some(old.id) });
    let Created::Created(newer) =
        users.create(new_user("VISnew00", Role::Visitor, "dev-rebound"), rebind).await.expect("rebind")
    else {
        panic!("rebind")
    };
    assert!(users.delete(&old).await.expect("delete"));
    assert_eq!(users.find_by_device("dev-rebound").await.expect("device").map(|u| u.id), Some(newer.id));
}

async fn the_first_manager_is_bootstrapped_once(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (_, managers) = b.state.admin().expect("admin configured");
    let manager =
        |name: &str| NewManager { username: name.to_owned(), password: "h".into(), avatar: "a".into(), now: 100 };
    let first = managers.bootstrap(manager("Root")).await.expect("bootstrap").expect("created");
    assert!(managers.bootstrap(manager("second")).await.expect("bootstrap").is_none());
    assert_eq!(managers.find_by_username("root").await.expect("find"), Some(first.clone()));
    assert!(managers.find_by_username("second").await.expect("find").is_none());
    assert_eq!(managers.get(first.id).await.expect("get"), Some(first.clone()));
    assert!(managers.get(first.id + 1).await.expect("get").is_none());
    managers.set_password(first.id, "h2", 200).await.expect("password");
    let now = managers.get(first.id).await.expect("get").expect("manager");
    assert_eq!((now.password.as_str(), now.updated_at, now.created_at), ("h2", 200, 100));
    // Managers are not chat users.
    assert!(b.state.users.find_by_username("root").await.expect("find").is_none());
}

async fn a_users_connections_queue_and_log_can_be_cleared(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let s = &b.state;
    let conn = |id: &str, user: i64| Connection {
        id: id.to_owned(),
        user_id: user,
        token_digest: "d".into(),
        role: Role::User,
    };
    for (id, user) in [("u1-a", 1), ("u1-b", 1), ("u2-a", 2)] {
        s.connections.register(&conn(id, user), 60).await.expect("register");
    }
    assert_eq!(s.connections.unregister_user(1).await.expect("unregister"), 2);
    let left: Vec<String> =
        s.connections.shard_connections(0).await.expect("shard").into_iter().map(|c| c.id).collect();
    assert_eq!(left, ["u2-a"]);
    assert_eq!(s.connections.unregister("u1-a").await.expect("unregister"), None, "the reverse entry went too");
    for (users, n) in [(vec![1], 1), (vec![1, 2], 3)] {
        let message = StoredMessage::new(serde_json::json!(n));
        s.offline.store(&message).await.expect("store");
        s.offline.enqueue(&message.key, &users).await.expect("enqueue");
    }
    s.offline.clear(1).await.expect("clear");
    assert!(b.queued(1).await.is_empty());
    assert_eq!(b.queued(2).await, [serde_json::json!(3)]);
    let entry = |id: &str, sender: i64, to_id: i64| SentMessage {
        id: id.to_owned(),
        sender,
        chat_type: "single".into(),
        to_id,
        to_name: String::new(),
        to_avatar: String::new(),
        create_time: now_ms(),
        revoked: false,
        stored: String::new(),
    };
    for e in [entry("m1", 1, 2), entry("m2", 1, 3), entry("m3", 11, 2), entry("m4", 2, 1)] {
        s.messages.record(&e).await.expect("record");
    }
    s.messages.forget_sender(1).await.expect("forget");
    assert!(s.messages.find(1, "single", 2, "m1").await.expect("find").is_none());
    assert!(s.messages.find(1, "single", 3, "m2").await.expect("find").is_none());
    assert!(s.messages.find(11, "single", 2, "m3").await.expect("find").is_some(), "user 11 is not user 1");
    assert!(s.messages.find(2, "single", 1, "m4").await.expect("find").is_some(), "messages to user 1 stay");
}

on_every_backend!(
    the_admin_list_edits_status_and_deletion,
    the_first_manager_is_bootstrapped_once,
    a_users_connections_queue_and_log_can_be_cleared,
    connections_are_current_while_their_token_is,
    the_sent_log_finds_counts_and_revokes_once,
    a_stranger_claim_is_won_once_even_in_parallel,
    social_rows_and_the_offline_queue,
    profile_changes_and_bounded_search,
    users_are_unique_case_insensitively_and_findable,
    device_bindings_replace_only_what_was_read,
    logins_and_upgrades_update_in_place,
    sessions_and_fixed_window_counters,
    groups_members_and_my_groups,
    big_groups_are_created_and_dissolved_whole,
    the_member_cap_holds_under_concurrency,
    lists_and_searches_merge_every_index_shard,
);

on_redis_cluster!(
    sessions_and_fixed_window_counters,
    connections_are_current_while_their_token_is,
    a_users_connections_queue_and_log_can_be_cleared,
);
