//! Groups (spec 5) on every backend. Nobody is connected here, so every notice lands in the
//! recipients' durable offline queues, where it is checked.

use chat_tests::{fail, invalid, ok, Backend, BackendKind, Member};
use serde_json::{json, Value};

const GROUP_PNG: &str = "https://docs-51yrc-com.oss-cn-hangzhou.aliyuncs.com/chat/group.png";
const USER_JPG: &str = "https://docs-51yrc-com.oss-cn-hangzhou.aliyuncs.com/chat/user.jpg";
const VISITORS_REFUSED: &str = "您没有权限访问，请先注册或登录";

async fn visitor(b: &Backend, device: &str) -> Member {
    let (status, body) = b.visitor_register(device).await;
    assert_eq!(status, 200, "{body}");
    Member::from_login(&body)
}

async fn post(b: &Backend, path: &str, who: &Member, body: Value) -> (u16, Value) {
    b.call_as("POST", &format!("/api/chat/{path}"), who, body).await
}

async fn get(b: &Backend, path: &str, who: &Member) -> (u16, Value) {
    b.call_as("GET", &format!("/api/chat/{path}"), who, json!({})).await
}

async fn nickname(b: &Backend, who: &Member, nickname: &str) {
    let body = json!({"fieldname": "nickname", "fieldValue": nickname});
    assert_eq!(post(b, "updateUserinfo", who, body).await.0, 200);
}

/// The ids of my goodfriend rows.
async fn my_rows(b: &Backend, me: &Member) -> Vec<i64> {
    b.state.social.friends(me.id).await.expect("friends").iter().map(|f| f.id).collect()
}

/// Takes everything queued for a user.
async fn drain(b: &Backend, user: &Member) -> Vec<Value> {
    let items = b.state.offline.peek(user.id, 100).await.expect("offline queue");
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    b.state.offline.remove(user.id, &keys).await.expect("remove");
    items.into_iter().map(|(_, m)| m.expect("stored")).collect()
}

/// Checks the common part of a group notice (spec 5.0).
fn assert_group_notice(m: &Value, group_id: i64, text: &str) {
    assert_eq!(
        (m["chatType"].as_str(), m["type"].as_str(), m["to_id"].as_i64()),
        (Some("group"), Some("systemNotice"), Some(group_id)),
        "{m}"
    );
    assert_eq!(m["data"], json!({"data": text, "dataType": false, "otherData": null}));
    assert_eq!((m["options"].clone(), m["isremove"].clone()), (json!({}), json!(0)));
    assert_eq!(m["group"]["id"], group_id);
    assert_eq!(m["to_name"], m["group"]["name"]);
    assert_eq!(m["to_avatar"], m["group"]["avatar"]);
    assert!(m["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(m["create_time"].as_i64().is_some_and(|t| t > 1_700_000_000_000));
    assert!(m.get("redirect").is_none() && m.get("msgidKey").is_none());
}

fn member_ids(snapshot: &Value) -> Vec<i64> {
    snapshot["group_users"].as_array().expect("group_users").iter().filter_map(|u| u["user_id"].as_i64()).collect()
}

/// `YYYY/M/D HH:mm:ss` (spec 1.5).
fn is_local_time(s: &str) -> bool {
    let Some((date, time)) = s.split_once(' ') else { return false };
    let date: Vec<&str> = date.split('/').collect();
    let time: Vec<&str> = time.split(':').collect();
    let digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    date.len() == 3
        && date.iter().all(digits)
        && date[0].len() == 4
        && !date[1].starts_with('0')
        && !date[2].starts_with('0')
        && time.len() == 3
        && time.iter().all(|p| digits(p) && p.len() == 2)
}

async fn create_list_info_and_owner_changes(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let owner = b.register("owner001").await;
    let (a, c, stranger) = (b.register("mem00001").await, b.register("mem00002").await, b.register("stranger").await);
    nickname(&b, &owner, "老王").await;
    b.befriend(owner.id, a.id).await;
    b.befriend(owner.id, c.id).await;
    b.befriend(stranger.id, a.id).await;

    // Validation and the row checks: my own, usable goodfriend rows only.
    assert_eq!(post(&b, "group/create", &owner, json!({})).await, invalid("userIds不能为空"));
    assert_eq!(post(&b, "group/create", &owner, json!({"userIds": []})).await, invalid("userIds不能为空"));
    let theirs = my_rows(&b, &stranger).await;
    assert_eq!(post(&b, "group/create", &owner, json!({"userIds": theirs})).await, fail("请选择加入群聊的用户"));
    let (a_id, c_id) = (a.id, c.id);
    let user_ids_are_not_row_ids = [a_id * 1000 + 7, c_id * 1000 + 7];
    assert_eq!(
        post(&b, "group/create", &owner, json!({"userIds": user_ids_are_not_row_ids})).await,
        fail("请选择加入群聊的用户")
    );
    let mut row = b.state.social.friend(owner.id, c.id).await.expect("row").expect("exists");
    row.isblack = 1;
    b.state.social.update_friend(&row).await.expect("blacklist");
    let rows = my_rows(&b, &owner).await;
    let csv = rows.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(post(&b, "group/create", &owner, json!({"userIds": csv})).await, ok(json!("ok")), "form-style list");
    let (_, list) = get(&b, "grouplist/1", &owner).await;
    let group_id = list["data"][0]["id"].as_i64().expect("id");
    assert_eq!(list["data"][0]["name"], "老王、mem00001", "the blacklisted contact is left out");

    // The creation notice went to both members, from me.
    for who in [&owner, &a] {
        let queued = drain(&b, who).await;
        assert_eq!(queued.len(), 1, "one notice each");
        let m = &queued[0];
        assert_group_notice(m, group_id, "老王创建了一个群，大家可以开始聊天了");
        assert_eq!((m["from_id"].as_i64(), m["from_name"].as_str()), (Some(owner.id), Some("老王")));
        assert_eq!(m["from_avatar"], USER_JPG);
        assert_eq!(member_ids(&m["group"]), vec![owner.id, a.id]);
        assert_eq!(m["group"]["group_users"][0].as_object().map(|o| o.len()), Some(7));
        assert_eq!(m["group"]["user_id"], owner.id);
        assert!(m["group"]["update_time"].as_str().is_some_and(|t| t.ends_with(".000Z")));
    }
    assert!(drain(&b, &c).await.is_empty());

    // A bigger group: owner first, then ascending user ids; default group values.
    row.isblack = 0;
    b.state.social.update_friend(&row).await.expect("unblacklist");
    assert_eq!(post(&b, "group/create", &owner, json!({"userIds": my_rows(&b, &owner).await})).await.0, 200);
    let (status, list) = get(&b, "grouplist/1", &a).await;
    assert_eq!(status, 200);
    let groups = list["data"].as_array().expect("list");
    assert_eq!(groups.len(), 2);
    let newest = &groups[0];
    let big_id = newest["id"].as_i64().expect("id");
    assert!(big_id > group_id, "group id descending");
    assert_eq!(newest["name"], "老王、mem00001、mem00002");
    assert_eq!(newest["avatar"], [USER_JPG; 3].join(","));
    assert_eq!(
        (newest["user_id"].as_i64(), newest["remark"].as_str(), newest["invite_confirm"].as_i64()),
        (Some(owner.id), Some(""), Some(0))
    );
    assert_eq!((newest["status"].as_i64(), newest["order"].as_i64()), (Some(1), Some(50)));
    assert!(newest.get("update_time").is_none());
    assert!(newest["uuid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(newest["create_time"].as_str().is_some_and(|t| t.len() == 19));
    assert_eq!(newest["group_users"], json!([{"group_id": big_id, "user_id": a.id, "nickname": "", "avatar": ""}]));
    assert_eq!(newest.as_object().map(|o| o.len()), Some(11));
    let (_, page2) = get(&b, "grouplist/2?limit=1", &a).await;
    assert_eq!(page2["data"][0]["id"], group_id);
    let (_, bad_limit) = get(&b, "grouplist/1?limit=1000", &a).await;
    assert_eq!(bad_limit["data"].as_array().map(Vec::len), Some(2), "limit outside 1–100 means 30");
    assert_eq!(get(&b, "grouplist/0", &a).await, invalid("页码 的数值 必须 在 1 和 10000000000000000 之间"));
    assert_eq!(get(&b, "grouplist/1", &stranger).await, ok(json!([])));

    // Anyone may look at a group.
    let (status, info) = get(&b, &format!("groupinfo/{big_id}"), &stranger).await;
    assert_eq!(status, 200);
    let info = &info["data"];
    assert!(info.get("update_time").is_none());
    assert_eq!(info["name"], "老王、mem00001、mem00002");
    assert_eq!(member_ids(info), vec![owner.id, a.id, c.id]);
    let first = &info["group_users"][0];
    assert_eq!(
        (first["groupId"].as_i64(), first["group_id"].as_i64(), first["status"].as_i64(), first["order"].as_i64()),
        (Some(big_id), Some(big_id), Some(1), Some(50))
    );
    assert!(first.get("update_time").is_none() && first["create_time"].is_string());
    assert_eq!(
        first["user"],
        json!({"id": owner.id, "username": "owner001", "avatar": USER_JPG, "nickname": "老王", "uuid": owner.uuid, "role": "user"})
    );
    assert_eq!(get(&b, "groupinfo/99999", &stranger).await, fail("群不存在或被封禁"));
    assert_eq!(get(&b, "groupinfo/abc", &stranger).await, invalid("群id 的值 `abc` 的类型不是 `int`"));
    drain(&b, &owner).await;
    drain(&b, &a).await;
    drain(&b, &c).await;

    // Rename: owner only, announced to every active member.
    let rename = |id: Value, name: &str| json!({"id": id, "name": name});
    assert_eq!(post(&b, "groupUpdateName", &a, rename(json!(big_id), "x")).await, fail("只有群主才能修改群名称"));
    assert_eq!(post(&b, "groupUpdateName", &owner, json!({"name": "x"})).await, invalid("群id不能为空"));
    assert_eq!(
        post(&b, "groupUpdateName", &owner, rename(json!(big_id), &"名".repeat(21))).await,
        invalid("群名称 的长度 必须 在 1 和 20 之间")
    );
    assert_eq!(post(&b, "groupUpdateName", &owner, json!({"id": big_id})).await, invalid("群名称不能为空"));
    assert_eq!(post(&b, "groupUpdateName", &owner, rename(json!(big_id), "技术交流群")).await, ok(json!("ok")));
    for who in [&owner, &a, &c] {
        let queued = drain(&b, who).await;
        assert_eq!(queued.len(), 1);
        assert_group_notice(&queued[0], big_id, "群名称修改为：技术交流群");
        assert_eq!(queued[0]["to_name"], "技术交流群");
        assert_eq!((queued[0]["from_id"].as_i64(), queued[0]["from_name"].as_str()), (Some(owner.id), Some("老王")));
    }
    assert!(drain(&b, &stranger).await.is_empty());

    // My nickname in the group: members only, no push; the owner's member name follows it.
    assert_eq!(
        post(&b, "groupnickname", &stranger, json!({"id": big_id, "nickname": "路人"})).await,
        fail("你不在该群聊中，无法修改昵称")
    );
    assert_eq!(
        post(&b, "groupnickname", &owner, json!({"id": big_id, "nickname": "王".repeat(21)})).await,
        invalid("群昵称 的长度 必须 在 1 和 20 之间")
    );
    assert_eq!(post(&b, "groupnickname", &owner, json!({"id": big_id, "nickname": "群主大人"})).await, ok(json!("ok")));
    assert_eq!(post(&b, "groupnickname", &a, json!({"id": big_id, "nickname": "小A"})).await, ok(json!("ok")));
    assert!(drain(&b, &owner).await.is_empty() && drain(&b, &c).await.is_empty(), "no push");
    let (_, list) = get(&b, "grouplist/1", &a).await;
    assert_eq!(list["data"][0]["group_users"][0]["nickname"], "小A");
    let (_, info) = get(&b, &format!("groupinfo/{big_id}"), &c).await;
    assert_eq!(info["data"]["group_users"][1]["nickname"], "小A");

    // The announcement.
    assert_eq!(post(&b, "groupremark", &a, json!({"id": big_id, "remark": "x"})).await, fail("只有群主才能修改群公告"));
    assert_eq!(
        post(&b, "groupremark", &owner, json!({"id": big_id, "remark": "x".repeat(501)})).await,
        invalid("群公告 的长度 必须 在 1 和 500 之间")
    );
    assert_eq!(post(&b, "groupremark", &owner, json!({"id": big_id, "remark": "欢迎新同学"})).await, ok(json!("ok")));
    let queued = drain(&b, &c).await;
    assert_group_notice(&queued[0], big_id, "[公告] \n\n 欢迎新同学");
    assert_eq!(queued[0]["group"]["remark"], "欢迎新同学");
    assert_eq!(queued[0]["from_name"], "群主大人", "member display name");
    let (_, info) = get(&b, &format!("groupinfo/{big_id}"), &c).await;
    assert_eq!(
        (info["data"]["name"].as_str(), info["data"]["remark"].as_str()),
        (Some("技术交流群"), Some("欢迎新同学"))
    );

    // The owner without a member row cannot notify anyone, and nothing is saved.
    b.state.groups.remove_member(big_id, owner.id).await.expect("remove");
    assert_eq!(post(&b, "groupUpdateName", &owner, rename(json!(big_id), "新名字")).await, fail("无法通知群成员"));
    assert_eq!(
        post(&b, "groupremark", &owner, json!({"id": big_id, "remark": "新公告"})).await,
        fail("无法通知群成员")
    );
    let (_, info) = get(&b, &format!("groupinfo/{big_id}"), &c).await;
    assert_eq!(
        (info["data"]["name"].as_str(), info["data"]["remark"].as_str()),
        (Some("技术交流群"), Some("欢迎新同学"))
    );

    // Visitors: the whitelist allows the reads, nickname, quit and invite only.
    let v = visitor(&b, "0badcafe-bf16-5425-adbc-d12f49cfa332").await;
    for path in
        ["group/create", "groupUpdateName", "groupremark", "groupDeleteUser", "groupAddUserSet", "groupAgreeOrNo"]
    {
        assert_eq!(post(&b, path, &v, json!({"id": big_id})).await, fail(VISITORS_REFUSED), "{path}");
    }
    assert_eq!(get(&b, "grouplist/1", &v).await, ok(json!([])));
    assert_eq!(get(&b, &format!("groupinfo/{big_id}"), &v).await.0, 200);
    assert_eq!(
        post(&b, "groupnickname", &v, json!({"id": big_id, "nickname": "游客"})).await,
        fail("你不在该群聊中，无法修改昵称")
    );
}

async fn invites_self_joins_and_owner_approval(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let owner = b.register("owner002").await;
    let a = b.register("mem00011").await;
    nickname(&b, &owner, "老王").await;
    let group_id = b.create_group(&owner, &[&a]).await;
    let outsider = b.register("outsid01").await;
    let c = b.register("joiner01").await;
    drain(&b, &owner).await;
    drain(&b, &a).await;
    let invite = |user: i64| json!({"group_id": group_id, "user_id": user});

    // DEVIATION D10: only members invite others; `inviteuser_id` is ignored.
    let forged = json!({"group_id": group_id, "user_id": c.id, "inviteuser_id": owner.id});
    assert_eq!(post(&b, "groupInviteUser", &outsider, forged).await, fail("你不在该群聊中，操作失败"));
    assert_eq!(
        post(&b, "groupInviteUser", &a, json!({"group_id": 99999, "user_id": c.id})).await,
        fail("群不存在或者被封禁")
    );
    assert_eq!(post(&b, "groupInviteUser", &a, json!({"group_id": group_id})).await, invalid("用户id不能为空"));
    assert_eq!(post(&b, "groupInviteUser", &a, json!({"user_id": c.id})).await, invalid("群id不能为空"));
    assert_eq!(post(&b, "groupInviteUser", &a, invite(99999)).await, fail("加群的用户不存在或已被封禁，无法加入群聊"));
    assert_eq!(post(&b, "groupInviteUser", &a, invite(owner.id)).await, fail("用户已经在群里"));

    // A member invites: everyone active (the newcomer included) hears of it.
    let by_a = json!({"group_id": group_id, "user_id": c.id, "inviteuser_id": -1, "addGroupDesc": "来吧"});
    assert_eq!(post(&b, "groupInviteUser", &a, by_a).await, ok(json!("加群成功")));
    for who in [&owner, &a, &c] {
        let queued = drain(&b, who).await;
        assert_eq!(queued.len(), 1);
        let m = &queued[0];
        assert_group_notice(m, group_id, "[mem00011]邀请 [joiner01] 加入了群聊");
        let prefix = format!("redirect-applyAddGroup{group_id}-{}-", c.id);
        assert!(m["from_id"].as_str().is_some_and(|f| f.starts_with(&prefix)), "{}", m["from_id"]);
        assert_eq!((m["from_name"].as_str(), m["from_avatar"].as_str()), (Some("加群申请提醒"), Some(GROUP_PNG)));
        assert_eq!(member_ids(&m["group"]), vec![owner.id, a.id, c.id]);
        assert_eq!(m["group"]["avatar"], [USER_JPG; 3].join(","), "avatar recomputed");
    }
    assert_eq!(post(&b, "groupInviteUser", &owner, invite(c.id)).await, fail("用户已经在群里"));

    // Joining by myself needs no membership.
    let d = b.register("joiner02").await;
    assert_eq!(post(&b, "groupInviteUser", &d, invite(d.id)).await, ok(json!("加群成功")));
    let queued = drain(&b, &a).await;
    assert_group_notice(&queued[0], group_id, "[joiner02] 加入了群聊");
    drain(&b, &owner).await;
    drain(&b, &c).await;
    drain(&b, &d).await;

    // The join policy: owner only.
    let policy = |value: Value| json!({"group_id": group_id, "addGroupSet": value});
    assert_eq!(post(&b, "groupAddUserSet", &a, policy(json!(1))).await, fail("群不存在或者被封禁或者你无权操作"));
    assert_eq!(
        post(&b, "groupAddUserSet", &owner, policy(json!(11))).await,
        invalid("进群设置属性值 的数值 必须 大于等于 `0` 少于等于 `10`")
    );
    assert_eq!(post(&b, "groupAddUserSet", &owner, policy(json!(1))).await, ok(json!("设置成功")));
    assert!(drain(&b, &a).await.is_empty(), "no push");
    let (_, info) = get(&b, &format!("groupinfo/{group_id}"), &a).await;
    assert_eq!(info["data"]["invite_confirm"], 1);

    // invite_confirm 1: joining needs the owner's approval, which only the owner is asked for.
    let e = b.register("joiner03").await;
    nickname(&b, &e, "小 E/&").await;
    let apply = json!({"group_id": group_id, "user_id": e.id, "addGroupDesc": "我想加群"});
    assert_eq!(post(&b, "groupInviteUser", &e, apply.clone()).await, ok(json!("等待群主同意")));
    assert_eq!(post(&b, "groupInviteUser", &e, apply).await, fail("已申请加入群聊，正在等待群主同意"));
    assert!(drain(&b, &a).await.is_empty() && drain(&b, &e).await.is_empty(), "the owner only");
    let queued = drain(&b, &owner).await;
    assert_eq!(queued.len(), 1);
    let m = &queued[0];
    let group_name = m["group"]["name"].as_str().expect("name").to_owned();
    assert_eq!(
        (m["chatType"].as_str(), m["type"].as_str(), m["to_id"].as_i64()),
        (Some("single"), Some("text"), Some(owner.id))
    );
    assert_eq!((m["from_name"].as_str(), m["from_avatar"].as_str()), (Some("加群处理"), Some(GROUP_PNG)));
    assert_eq!((m["to_name"].as_str(), m["to_avatar"].as_str()), (Some("老王"), Some(USER_JPG)));
    assert_eq!(m["data"]["data"], format!("请处理申请 [小 E/&] 加入了群[{group_name}]"));
    let key = m["from_id"].as_str().expect("from_id");
    assert!(key.starts_with(&format!("redirect-applyAddGroup{group_id}-{}-", e.id)));
    assert_eq!(m["msgidKey"], key);
    assert!(!member_ids(&m["group"]).contains(&e.id), "pending members are not in the snapshot");
    let redirect = &m["redirect"];
    assert_eq!(redirect["type"], "navigateTo");
    let time = redirect["desc"]["addGroupTime"].as_i64().expect("time");
    assert_eq!(
        redirect["desc"],
        json!({
            "addGroupUserType": "用户自主进群",
            "inviteUser": "",
            "addGroupTime": time,
            "addGroupDesc": "我想加群",
            "addGroupUserRole": "user",
            "msgidKey": key,
        })
    );
    assert!(key.ends_with(&format!("-{time}")) && m["create_time"] == time);
    let url = redirect["url"].as_str().expect("url");
    let expected_start = format!(
        "/pages/setpageInfo/setpageInfo?action=applyAddGroup&title=%E5%8A%A0%E7%BE%A4%E7%94%B3%E8%AF%B7&id={group_id}&name="
    );
    assert!(url.starts_with(&expected_start), "{url}");
    assert!(url.contains(&format!(
        "&chatType=group&applyUserid={}&applyUsername=小 E/&&applyUseruuid={}&applyUseravatar=https%3A%2F%2F",
        e.id, e.uuid
    )));
    assert!(url.contains(
        "&applydesc=%7B%22addGroupUserType%22%3A%22%E7%94%A8%E6%88%B7%E8%87%AA%E4%B8%BB%E8%BF%9B%E7%BE%A4%22%2C%22inviteUser%22%3A%22%22"
    ));
    assert_eq!(get(&b, "grouplist/1", &e).await, ok(json!([])), "pending members see no group");

    // A member's invitation is pending too, and says who invited.
    let f = b.register("joiner04").await;
    assert_eq!(post(&b, "groupInviteUser", &a, invite(f.id)).await, ok(json!("等待群主同意")));
    let m = &drain(&b, &owner).await[0];
    assert_eq!(m["data"]["data"], format!("请处理申请 [mem00011]邀请 [joiner04] 加入了群[{group_name}]"));
    assert_eq!(
        (m["redirect"]["desc"]["addGroupUserType"].as_str(), m["redirect"]["desc"]["inviteUser"].as_str()),
        (Some("邀请进群"), Some("mem00011 "))
    );
    // The owner's own invitation needs no approval.
    let g = b.register("joiner05").await;
    assert_eq!(post(&b, "groupInviteUser", &owner, invite(g.id)).await, ok(json!("加群成功")));
    assert_group_notice(&drain(&b, &a).await[0], group_id, "[老王]邀请 [joiner05] 加入了群聊");

    // The owner decides.
    let decide = |user: i64, kind: &str| json!({"group_id": group_id, "user_id": user, "type": kind});
    assert_eq!(post(&b, "groupAgreeOrNo", &a, decide(e.id, "agree")).await, fail("群不存在或者被封禁或者你无权操作"));
    assert_eq!(
        post(&b, "groupAgreeOrNo", &owner, decide(e.id, "maybe")).await,
        invalid("同意或者拒绝 的值 `maybe` 必须在 [`agree`,`no`] 中")
    );
    assert_eq!(
        post(&b, "groupAgreeOrNo", &owner, json!({"group_id": group_id, "type": "no"})).await,
        invalid("进群的用户id不能为空")
    );
    assert_eq!(post(&b, "groupAgreeOrNo", &owner, decide(a.id, "agree")).await, fail("非法操作"));
    assert_eq!(post(&b, "groupAgreeOrNo", &owner, decide(outsider.id, "no")).await, fail("非法操作"));
    drain(&b, &owner).await;
    drain(&b, &a).await;
    assert_eq!(post(&b, "groupAgreeOrNo", &owner, decide(e.id, "agree")).await, ok(json!("处理成功")));
    for who in [&owner, &a, &e] {
        let queued = drain(&b, who).await;
        assert_eq!(queued.len(), 1);
        assert_group_notice(&queued[0], group_id, "[小 E/&] 加入了群聊");
        assert_eq!(queued[0]["from_name"], "加群申请提醒");
        assert!(member_ids(&queued[0]["group"]).contains(&e.id));
    }
    assert_eq!(get(&b, "grouplist/1", &e).await.1["data"][0]["id"], group_id);
    assert_eq!(post(&b, "groupAgreeOrNo", &owner, decide(e.id, "agree")).await, fail("非法操作"), "only once");
    assert_eq!(post(&b, "groupAgreeOrNo", &owner, decide(f.id, "no")).await, ok(json!("处理成功")));
    assert!(drain(&b, &f).await.is_empty() && drain(&b, &a).await.is_empty(), "no push for no");
    assert_eq!(post(&b, "groupAgreeOrNo", &owner, decide(f.id, "no")).await, fail("非法操作"));
    assert_eq!(post(&b, "groupInviteUser", &f, invite(f.id)).await, ok(json!("等待群主同意")), "may apply again");

    // invite_confirm 2: visitors log in first, unless the owner invites them.
    assert_eq!(
        post(&b, "groupAddUserSet", &owner, json!({"group_id": group_id, "addGroupSet": 2})).await,
        ok(json!("设置成功"))
    );
    let v = visitor(&b, "5eedf00d-bf16-5425-adbc-d12f49cfa332").await;
    assert_eq!(post(&b, "groupInviteUser", &v, invite(v.id)).await, fail("请先登录再申请进群"));
    assert_eq!(post(&b, "groupInviteUser", &a, invite(v.id)).await, fail("请先登录再申请进群"));
    let h = b.register("joiner06").await;
    assert_eq!(post(&b, "groupInviteUser", &h, invite(h.id)).await, ok(json!("加群成功")));
    assert_eq!(post(&b, "groupInviteUser", &owner, invite(v.id)).await, ok(json!("加群成功")));
    drain(&b, &a).await;
    // A visitor member may invite; its label is empty (only users are named as inviters).
    let i = b.register("joiner07").await;
    assert_eq!(post(&b, "groupInviteUser", &v, invite(i.id)).await, ok(json!("加群成功")));
    assert_group_notice(&drain(&b, &a).await[0], group_id, "[joiner07] 加入了群聊");
    // invite_confirm 3..10 behave like 0.
    assert_eq!(post(&b, "groupAddUserSet", &owner, json!({"group_id": group_id, "addGroupSet": 7})).await.0, 200);
    let j = b.register("joiner08").await;
    assert_eq!(post(&b, "groupInviteUser", &j, invite(j.id)).await, ok(json!("加群成功")));
}

async fn remove_quit_and_dissolve(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let owner = b.register("owner003").await;
    let (a, c, d) = (b.register("mem00021").await, b.register("mem00022").await, b.register("mem00023").await);
    let group_id = b.create_group(&owner, &[&a, &c, &d]).await;
    for who in [&owner, &a, &c, &d] {
        drain(&b, who).await;
    }
    let (_, info) = get(&b, &format!("groupinfo/{group_id}"), &a).await;
    assert_eq!(info["data"]["avatar"].as_str().map(|s| s.split(',').count()), Some(4));

    // Removing members: owner only, never himself, silently, the avatar follows.
    let remove = |user: i64| json!({"group_id": group_id, "user_id": user});
    assert_eq!(post(&b, "groupDeleteUser", &a, remove(c.id)).await, fail("只有群主才能操作"));
    assert_eq!(post(&b, "groupDeleteUser", &owner, remove(owner.id)).await, fail("群主不能删除自己"));
    assert_eq!(post(&b, "groupDeleteUser", &owner, json!({"group_id": group_id})).await, invalid("群成员id不能为空"));
    assert_eq!(
        post(&b, "groupDeleteUser", &owner, json!({"group_id": 0, "user_id": c.id})).await,
        invalid("群id 的数值 必须 在 1 和 10000000000000000 之间")
    );
    assert_eq!(post(&b, "groupDeleteUser", &owner, remove(c.id)).await, ok(json!("删除群成员成功")));
    assert_eq!(post(&b, "groupDeleteUser", &owner, remove(c.id)).await, ok(json!("删除群成员成功")), "absent is fine");
    let (_, info) = get(&b, &format!("groupinfo/{group_id}"), &a).await;
    assert_eq!(member_ids(&info["data"]), vec![owner.id, a.id, d.id]);
    assert_eq!(info["data"]["avatar"].as_str().map(|s| s.split(',').count()), Some(3));
    assert_eq!(get(&b, "grouplist/1", &c).await, ok(json!([])));
    for who in [&owner, &a, &c, &d] {
        assert!(drain(&b, who).await.is_empty(), "no push");
    }

    // A member quits: only the owner is told.
    assert_eq!(post(&b, "groupnickname", &a, json!({"id": group_id, "nickname": "阿A"})).await.0, 200);
    assert_eq!(post(&b, "groupDeleteOrQuit", &a, json!({})).await, invalid("群id不能为空"));
    assert_eq!(post(&b, "groupDeleteOrQuit", &a, json!({"id": group_id})).await, ok(json!("ok")));
    assert!(drain(&b, &a).await.is_empty() && drain(&b, &d).await.is_empty());
    let queued = drain(&b, &owner).await;
    assert_eq!(queued.len(), 1);
    let m = &queued[0];
    let text = m["data"]["data"].as_str().expect("text");
    let time = text.strip_prefix("阿A于 ").and_then(|t| t.strip_suffix(" 已退出群聊")).expect(text);
    assert!(is_local_time(time), "{text}");
    assert_group_notice(m, group_id, text);
    assert_eq!((m["from_id"].as_i64(), m["from_name"].as_str()), (Some(a.id), Some("阿A")));
    assert_eq!(member_ids(&m["group"]), vec![owner.id, d.id]);
    assert_eq!(post(&b, "groupDeleteOrQuit", &a, json!({"id": group_id})).await, fail("你不在该群聊中，操作失败"));
    assert_eq!(post(&b, "groupDeleteOrQuit", &a, json!({"id": 99999})).await, fail("群不存在"));

    // A pending member may withdraw by quitting, too.
    assert_eq!(post(&b, "groupAddUserSet", &owner, json!({"group_id": group_id, "addGroupSet": 1})).await.0, 200);
    let p = b.register("pending1").await;
    assert_eq!(post(&b, "groupInviteUser", &p, json!({"group_id": group_id, "user_id": p.id})).await.0, 200);
    let q = b.register("pending2").await;
    assert_eq!(post(&b, "groupInviteUser", &q, json!({"group_id": group_id, "user_id": q.id})).await.0, 200);
    assert_eq!(post(&b, "groupDeleteOrQuit", &q, json!({"id": group_id})).await, ok(json!("ok")));
    drain(&b, &owner).await;

    // The owner dissolves: every member that was active hears of it, pending ones do not.
    assert_eq!(post(&b, "groupDeleteOrQuit", &owner, json!({"id": group_id})).await, ok(json!("ok")));
    for who in [&owner, &d] {
        let queued = drain(&b, who).await;
        assert_eq!(queued.len(), 1);
        let m = &queued[0];
        let text = m["data"]["data"].as_str().expect("text");
        let time = text.strip_prefix("群主于 ").and_then(|t| t.strip_suffix(" 解散了该群")).expect(text);
        assert!(is_local_time(time), "{text}");
        assert_group_notice(m, group_id, text);
        assert_eq!((m["from_id"].as_i64(), m["from_name"].as_str()), (Some(owner.id), Some("owner003")));
        assert_eq!(member_ids(&m["group"]), vec![owner.id, d.id], "the snapshot from before");
    }
    assert!(drain(&b, &p).await.is_empty() && drain(&b, &a).await.is_empty() && drain(&b, &c).await.is_empty());
    assert_eq!(get(&b, &format!("groupinfo/{group_id}"), &d).await, fail("群不存在或被封禁"));
    assert_eq!(get(&b, "grouplist/1", &d).await, ok(json!([])));
    assert_eq!(post(&b, "groupDeleteOrQuit", &owner, json!({"id": group_id})).await, fail("群不存在"));
    assert!(b.state.groups.members(group_id).await.expect("members").is_empty(), "every member row went");
    assert_eq!(
        post(&b, "groupInviteUser", &p, json!({"group_id": group_id, "user_id": p.id})).await,
        fail("群不存在或者被封禁")
    );
}

/// A visitor member leaves through the whitelisted route; a visitor's groups are listed.
async fn visitors_list_and_quit_their_groups(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let owner = b.register("owner004").await;
    let a = b.register("mem00031").await;
    let group_id = b.create_group(&owner, &[&a]).await;
    let v = visitor(&b, "cafef00d-bf16-5425-adbc-d12f49cfa332").await;
    let join = json!({"group_id": group_id, "user_id": v.id});
    assert_eq!(post(&b, "groupInviteUser", &v, join).await, ok(json!("加群成功")));
    assert_eq!(get(&b, "grouplist/1", &v).await.1["data"][0]["id"], group_id);
    assert!(b.state.groups.is_active_member_of_any(v.id).await.expect("any"));
    assert_eq!(post(&b, "groupnickname", &v, json!({"id": group_id, "nickname": "游客甲"})).await, ok(json!("ok")));
    drain(&b, &owner).await;
    assert_eq!(post(&b, "groupDeleteOrQuit", &v, json!({"id": group_id})).await, ok(json!("ok")));
    let queued = drain(&b, &owner).await;
    assert!(queued[0]["data"]["data"].as_str().is_some_and(|t| t.starts_with("游客甲于 ")));
    assert!(!b.state.groups.is_active_member_of_any(v.id).await.expect("any"));
}

on_every_backend!(
    create_list_info_and_owner_changes,
    invites_self_joins_and_owner_approval,
    remove_quit_and_dissolve,
    visitors_list_and_quit_their_groups,
);
