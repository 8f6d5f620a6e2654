//! The admin API (spec 7) on every backend: admin login and tokens, the user list, create, edit,
//! update, the status toggle and delete with its cascade.

use chat_shared::auth::token_digest;
use chat_shared::jwt;
use chat_shared::model::Role;
use chat_shared::service::admin::bootstrap;
use chat_shared::store::{Connection, CONNECTION_TTL_SECS};
use chat_tests::{fail, invalid, ok, Backend, BackendKind, Member, TEST_SECRET};
use serde_json::{json, Value};

const ADMIN: &str = "admin01";
const ADMIN_PASSWORD: &str = "admin-password-1";
const LOGIN_FIRST: (u16, &str) = (401, "请先登录！");

/// A backend with its first manager.
async fn backend(kind: BackendKind) -> Backend {
    let b = Backend::new(kind).await;
    bootstrap(&b.state, ADMIN, ADMIN_PASSWORD).await.expect("bootstrap").expect("first manager");
    b
}

async fn admin_login(b: &Backend) -> String {
    let (status, body) = b.post_json("/admin/loginevent", json!({"username": ADMIN, "password": ADMIN_PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["token"].as_str().expect("token").to_owned()
}

/// A JSON request to an `/admin` route with `Authorization: Bearer <token>`.
async fn admin(b: &Backend, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    b.call(method, path, &[("authorization", &bearer), ("content-type", "application/json")], &body.to_string()).await
}

fn unauthorized() -> (u16, Value) {
    (LOGIN_FIRST.0, json!({"msg": "fail", "data": LOGIN_FIRST.1}))
}

async fn login_chat(b: &Backend, username: &str, password: &str) -> (u16, Value) {
    b.post_json("/api/loginChat", json!({"username": username, "password": password})).await
}

/// Whether `who`'s token still passes `chatUserAuth`: its failure message, or `None`.
async fn chat_refusal(b: &Backend, who: &Member) -> Option<String> {
    let (status, body) = b.post_with_token("/api/chat/chatGetmessageOffLine", &who.token).await;
    (status != 200).then(|| body["data"].as_str().unwrap_or_default().to_owned())
}

async fn admin_login_and_tokens(kind: BackendKind) {
    let b = backend(kind).await;
    assert_eq!(b.post_json("/admin/loginevent", json!({"password": "x"})).await, invalid("管理员账号不能为空"));
    assert_eq!(b.post_json("/admin/loginevent", json!({"username": ADMIN})).await, invalid("管理员密码不能为空"));
    assert_eq!(
        b.post_json("/admin/loginevent", json!({"username": "nobody", "password": "x"})).await,
        fail("该管理员不存在或者被禁用了")
    );
    // Usernames are case-insensitive; the answer carries no password.
    let (status, body) =
        b.post_json("/admin/loginevent", json!({"username": "ADMIN01", "password": ADMIN_PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    let manager = &body["data"]["manager"];
    assert_eq!(manager["username"], ADMIN);
    let mut keys: Vec<_> = manager.as_object().expect("manager").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["avatar", "create_time", "id", "update_time", "username"]);
    let first = body["data"]["token"].as_str().expect("token").to_owned();
    assert_eq!(admin(&b, "GET", "/admin/chatuser", &first, json!({})).await.0, 200);

    // Single session: a new login retires the previous token.
    let second = admin_login(&b).await;
    assert_eq!(admin(&b, "GET", "/admin/chatuser", &first, json!({})).await, unauthorized());
    assert_eq!(admin(&b, "GET", "/admin/chatuser", &second, json!({})).await.0, 200);

    // No token, a malformed one, a chat token, or the admin token in the chat header: all refused.
    assert_eq!(b.call("GET", "/admin/chatuser", &[], "").await, unauthorized());
    assert_eq!(b.call("GET", "/admin/chatuser", &[("authorization", "Basic abc")], "").await, unauthorized());
    assert_eq!(admin(&b, "GET", "/admin/chatuser", "not.a.token", json!({})).await, unauthorized());
    let chat = b.register("chatter1").await;
    assert_eq!(admin(&b, "GET", "/admin/chatuser", &chat.token, json!({})).await, unauthorized());
    // Signed with the chat key and claiming the admin's id: still no admin token.
    let forged = jwt::issue(TEST_SECRET.as_bytes(), 1, ADMIN, Role::User, chat_shared::clock::now_secs(), 60);
    assert_eq!(admin(&b, "GET", "/admin/chatuser", &forged, json!({})).await, unauthorized());
    assert_eq!(b.post_with_token("/api/chat/chatGetmessageOffLine", &second).await, fail("Token 令牌不合法！"));

    // Logout ends the session; the token is dead afterwards.
    assert_eq!(admin(&b, "POST", "/admin/logout", &second, json!({})).await, ok(json!("ok")));
    assert_eq!(admin(&b, "GET", "/admin/chatuser", &second, json!({})).await, unauthorized());
    assert_eq!(admin(&b, "POST", "/admin/logout", &second, json!({})).await, unauthorized());

    // Five failures lock the name for the window, even for the right password.
    for _ in 0..5 {
        let wrong = b.post_json("/admin/loginevent", json!({"username": ADMIN, "password": "wrong"})).await;
        assert_eq!(wrong, fail("密码错误"));
    }
    assert_eq!(
        b.post_json("/admin/loginevent", json!({"username": ADMIN, "password": ADMIN_PASSWORD})).await,
        fail("登录失败次数过多，请15分钟后再试")
    );
    // The chat namespace is separate: a chat user of that name is not locked.
    b.register(ADMIN).await;
    assert_eq!(login_chat(&b, ADMIN, "123456").await.0, 200);
    // A second bootstrap does nothing.
    assert!(bootstrap(&b.state, "another1", "another-password").await.expect("bootstrap").is_none());
}

async fn list_pages_newest_first_and_escapes_html(kind: BackendKind) {
    let b = backend(kind).await;
    let token = admin_login(&b).await;
    let empty = admin(&b, "GET", "/admin/chatuser", &token, json!({})).await;
    assert_eq!(empty, ok(json!({"count": 0, "page": 1, "limit": 10, "totalPage": 0, "rows": []})));
    let mut ids = Vec::new();
    for name in ["list0001", "list0002", "other003", "list0004", "list0005"] {
        ids.push(b.register(name).await.id);
    }
    let visitor = Member::from_login(&b.visitor_register("8d1a344c-bf16-5425-adbc-d12f49cfa332").await.1);
    ids.push(visitor.id);
    ids.reverse();

    let (status, page) = admin(&b, "GET", "/admin/chatuser?page=2&limit=4", &token, json!({})).await;
    assert_eq!(status, 200, "{page}");
    let d = &page["data"];
    assert_eq!(
        (d["count"].clone(), d["page"].clone(), d["limit"].clone(), d["totalPage"].clone()),
        (json!(6), json!(2), json!(4), json!(2))
    );
    let row_ids: Vec<i64> = d["rows"].as_array().expect("rows").iter().map(|r| r["id"].as_i64().expect("id")).collect();
    assert_eq!(row_ids, ids[4..], "newest first, offset (page-1)*limit");
    let row = &d["rows"][0];
    assert!(row.get("password").is_none(), "{row}");
    assert_eq!(row.as_object().map(|o| o.len()), Some(29), "every user column but password");
    // The index route, both roles, and invalid paging values falling back to the defaults.
    let (_, all) = admin(&b, "GET", "/admin/chatuser/index?page=abc&limit=500", &token, json!({})).await;
    assert_eq!((all["data"]["page"].clone(), all["data"]["limit"].clone()), (json!(1), json!(10)));
    assert_eq!(all["data"]["rows"][0]["role"], "visitor");
    assert_eq!(all["data"]["rows"].as_array().map(Vec::len), Some(6));
    let (_, beyond) = admin(&b, "GET", "/admin/chatuser?page=9", &token, json!({})).await;
    assert_eq!((beyond["data"]["count"].clone(), beyond["data"]["rows"].clone()), (json!(6), json!([])));
    // keyword: case-insensitive username substring, counted over all pages.
    let (_, found) = admin(&b, "GET", "/admin/chatuser?keyword=LIST&limit=2", &token, json!({})).await;
    assert_eq!((found["data"]["count"].clone(), found["data"]["totalPage"].clone()), (json!(4), json!(2)));
    assert_eq!(found["data"]["rows"][0]["username"], "list0005");

    // HTML in a nickname is stored as is and sent escaped (still the same JSON).
    let payload = "<img src=x onerror=alert(1)>";
    let xss = b.register("xss00001").await;
    let set = json!({"fieldname": "nickname", "fieldValue": payload});
    assert_eq!(b.call_as("POST", "/api/chat/updateUserinfo", &xss, set).await.0, 200);
    let bearer = format!("Bearer {token}");
    let response = chat_functions::local::dispatch(
        b.state.clone(),
        &axum::http::Request::builder()
            .uri("/admin/chatuser?keyword=xss")
            .header("authorization", &bearer)
            .body(())
            .expect("request")
            .into_parts()
            .0,
        b"",
        "127.0.0.1:50000".parse().expect("addr"),
    )
    .await;
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = std::str::from_utf8(response.body().as_ref()).expect("utf-8").to_owned();
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    assert!(text.contains(r"\u003cimg src=x onerror=alert(1)\u003e"), "{text}");
    let parsed: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(parsed["data"]["rows"][0]["nickname"], payload);
}

async fn create_and_edit_users(kind: BackendKind) {
    let b = backend(kind).await;
    let token = admin_login(&b).await;
    let (status, form) = admin(&b, "GET", "/admin/chatuser/create", &token, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(form["data"]["action"], "/admin/chatuser/save");
    assert_eq!(
        form["data"]["fields"][1],
        json!({"label": "即时通讯用户登录密码", "type": "password", "name": "password", "placeholder": "请输入即时通讯用户登录密码"})
    );

    let save = |body: Value| {
        let (b, token) = (&b, token.clone());
        async move { admin(b, "POST", "/admin/chatuser/save", &token, body).await }
    };
    assert_eq!(save(json!({"password": "123456"})).await, invalid("即时通讯用户账号不能为空"));
    assert_eq!(
        save(json!({"username": "abc", "password": "123456"})).await,
        invalid("即时通讯用户账号 的长度 必须 在 4 和 20 之间")
    );
    assert_eq!(save(json!({"username": "made0001"})).await, invalid("即时通讯用户密码不能为空"));
    assert_eq!(
        save(json!({"username": "made0001", "password": "12345"})).await,
        invalid("即时通讯用户密码 的长度 必须 在 6 和 20 之间")
    );
    let long_avatar = "x".repeat(1001);
    assert_eq!(
        save(json!({"username": "made0001", "password": "123456", "avatar": long_avatar})).await,
        invalid("即时通讯用户头像 的长度 必须 大于等于 `0` 少于等于 `1000`")
    );
    // Fields the route does not name are ignored.
    let created =
        save(json!({"username": "made0001", "password": "123456", "role": "visitor", "status": 0, "nickname": "x"}))
            .await;
    assert_eq!(created, ok(json!("创建成功")));
    assert_eq!(save(json!({"username": "MADE0001", "password": "123456"})).await, fail("即时通讯用户账号已存在"));
    let (_, listed) = admin(&b, "GET", "/admin/chatuser?keyword=made0001", &token, json!({})).await;
    assert_eq!(listed["data"]["rows"][0]["last_login"], Value::Null, "created, never logged in");
    let (status, login) = login_chat(&b, "made0001", "123456").await;
    assert_eq!(status, 200, "{login}");
    let made = Member::from_login(&login);
    let d = &login["data"];
    assert_eq!((d["role"].clone(), d["status"].clone(), d["nickname"].clone()), (json!("user"), json!(1), json!("")));
    assert!(d["avatar"].as_str().is_some_and(|a| a.ends_with("/chat/user.jpg")), "{d}");
    assert!(b.state.users.private(made.id).await.expect("get").expect("row").password.starts_with("$argon2id$"));
    let with_avatar =
        save(json!({"username": "made0002", "password": "123456", "avatar": "https://a.example/x.png"})).await;
    assert_eq!(with_avatar, ok(json!("创建成功")));
    assert_eq!(login_chat(&b, "made0002", "123456").await.1["data"]["avatar"], "https://a.example/x.png");

    // The edit form carries the current row.
    let (status, edit) = admin(&b, "GET", &format!("/admin/chatuser/edit/{}", made.id), &token, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        (edit["data"]["id"].clone(), edit["data"]["data"]["username"].clone()),
        (json!(made.id), json!("made0001"))
    );
    assert_eq!(edit["data"]["action"], format!("/admin/chatuser/update/{}", made.id));
    assert!(edit["data"]["data"].get("password").is_none());
    assert_eq!(admin(&b, "GET", "/admin/chatuser/edit/999999", &token, json!({})).await, fail("该即时通讯用户不存在"));
    assert_eq!(
        admin(&b, "GET", "/admin/chatuser/edit/abc", &token, json!({})).await,
        invalid("id 的值 `abc` 的类型不是 `int`")
    );

    // Update: username always; password and avatar only when given; a new password ends the session.
    let update = |id: i64, body: Value| {
        let (b, token) = (&b, token.clone());
        async move { admin(b, "POST", &format!("/admin/chatuser/update/{id}"), &token, body).await }
    };
    assert_eq!(update(999_999, json!({"username": "whoever"})).await, fail("该即时通讯用户记录不存在"));
    assert_eq!(update(made.id, json!({})).await, invalid("即时通讯用户账号不能为空"));
    assert_eq!(
        update(made.id, json!({"username": "Made0002"})).await,
        fail("该即时通讯用户账号已经存在，不能修改成该即时通讯用户账号")
    );
    let renamed = update(
        made.id,
        json!({"username": "renamed1", "avatar": "https://a.example/y.png", "status": 0, "role": "visitor"}),
    )
    .await;
    assert_eq!(renamed, ok(json!("修改成功")));
    assert_eq!(chat_refusal(&b, &made).await, None, "no new password: the session stays");
    let row = b.state.users.get(made.id).await.expect("get").expect("row");
    assert_eq!(
        (row.username.as_str(), row.avatar.as_str(), row.status, row.role),
        ("renamed1", "https://a.example/y.png", 1, Role::User)
    );
    assert_eq!(login_chat(&b, "made0001", "123456").await, fail("账号不存在或者被禁用"));
    // The old name is free again, the new one taken.
    assert_eq!(save(json!({"username": "made0001", "password": "123456"})).await, ok(json!("创建成功")));
    assert_eq!(save(json!({"username": "RENAMED1", "password": "123456"})).await, fail("即时通讯用户账号已存在"));
    // Renaming to its own name in another case is allowed.
    assert_eq!(update(made.id, json!({"username": "Renamed1"})).await, ok(json!("修改成功")));
    assert_eq!(update(made.id, json!({"username": "renamed1", "password": "654321"})).await, ok(json!("修改成功")));
    assert_eq!(
        chat_refusal(&b, &made).await.as_deref(),
        Some("Token 令牌不合法！"),
        "a reset password ends the session"
    );
    assert_eq!(login_chat(&b, "renamed1", "123456").await, fail("账户或密码错误"));
    assert_eq!(login_chat(&b, "renamed1", "654321").await.0, 200);
}

async fn status_toggle_is_limited_to_user_status(kind: BackendKind) {
    let b = backend(kind).await;
    let token = admin_login(&b).await;
    let user = b.register("toggle01").await;
    let toggle = |body: Value| {
        let (b, token) = (&b, token.clone());
        async move { admin(b, "POST", "/admin/commonUpdateById", &token, body).await }
    };
    assert_eq!(toggle(json!({"keyname": "status", "keyvalue": 0, "model": "User"})).await, invalid("分类id不能为空"));
    assert_eq!(toggle(json!({"id": user.id, "keyvalue": 0, "model": "User"})).await, invalid("keyname不能为空"));
    assert_eq!(toggle(json!({"id": user.id, "keyname": "status", "model": "User"})).await, invalid("keyvalue不能为空"));
    assert_eq!(toggle(json!({"id": user.id, "keyname": "status", "keyvalue": 0})).await, invalid("model不能为空"));
    for (keyname, keyvalue, model) in
        [("role", "visitor", "User"), ("password", "x", "User"), ("status", "2", "User"), ("status", "0", "Group")]
    {
        let body = json!({"id": user.id, "keyname": keyname, "keyvalue": keyvalue, "model": model});
        assert_eq!(toggle(body).await, fail("不允许修改该字段"), "{keyname}={keyvalue} on {model}");
    }
    assert_eq!(
        toggle(json!({"id": 999_999, "keyname": "status", "keyvalue": 0, "model": "User"})).await,
        fail("数据不存在")
    );
    assert_eq!(
        b.state.users.get(user.id).await.expect("get").expect("row").role,
        Role::User,
        "nothing else was written"
    );

    // Disabling: chat requests, logins and search refuse the user at once; enabling undoes it.
    let searcher = b.register("search01").await;
    let search = || b.call_as("POST", "/api/chat/searchUser", &searcher, json!({"keyword": "toggle"}));
    assert_eq!(search().await.1["data"].as_array().map(Vec::len), Some(1));
    let off = json!({"id": user.id, "keyname": "status", "keyvalue": 0, "model": "User"});
    assert_eq!(toggle(off).await, ok(json!("修改成功")));
    assert_eq!(chat_refusal(&b, &user).await.as_deref(), Some("当前用户不存在或者已被禁用"));
    assert_eq!(login_chat(&b, "toggle01", "123456").await, fail("账号不存在或者被禁用"));
    assert_eq!(search().await.1["data"], json!([]));
    let to_disabled = json!({"sendto_id": user.id, "chatType": "single", "type": "text", "data": "hi"});
    assert_eq!(
        b.call_as("POST", "/api/chat/socket/sendmessage", &searcher, to_disabled).await,
        fail("对方不存在或者被禁用，不能发消息")
    );
    let (_, listed) = admin(&b, "GET", "/admin/chatuser?keyword=toggle", &token, json!({})).await;
    assert_eq!(listed["data"]["rows"][0]["status"], 0);
    assert_eq!(
        toggle(json!({"id": user.id, "keyname": "status", "keyvalue": "1", "model": "User"})).await,
        ok(json!("修改成功"))
    );
    assert_eq!(chat_refusal(&b, &user).await, None);
    assert_eq!(search().await.1["data"].as_array().map(Vec::len), Some(1));
}

async fn delete_removes_the_user_and_everything_that_names_it(kind: BackendKind) {
    let b = backend(kind).await;
    let token = admin_login(&b).await;
    let [doomed, friend, owner, stranger] = [
        b.register("doomed01").await,
        b.register("friend01").await,
        b.register("owner001").await,
        b.register("strange1").await,
    ];
    // Its groups: one it owns, one it is a member of, one where it waits for approval.
    let its_group = b.create_group(&doomed, &[&friend]).await;
    let others_group = b.create_group(&owner, &[&doomed, &friend]).await;
    let gated = b.create_group(&stranger, &[&friend]).await;
    let policy = json!({"group_id": gated, "addGroupSet": 1});
    assert_eq!(b.call_as("POST", "/api/chat/groupAddUserSet", &stranger, policy).await.0, 200);
    let join = json!({"group_id": gated, "user_id": doomed.id, "inviteuser_id": doomed.id});
    assert_eq!(b.call_as("POST", "/api/chat/groupInviteUser", &doomed, join).await, ok(json!("等待群主同意")));
    // Applications both ways with the stranger, a message sent, its queue, a live connection.
    assert_eq!(b.state.social.apply(doomed.id, stranger.id, "hi", 1).await.expect("apply").map(|_| ()), Some(()));
    let incoming = b.state.social.apply(stranger.id, doomed.id, "", 1).await.expect("apply").expect("new");
    let msg = json!({"sendto_id": friend.id, "chatType": "single", "type": "text", "data": "bye"});
    let (status, sent) = b.call_as("POST", "/api/chat/socket/sendmessage", &doomed, msg).await;
    assert_eq!(status, 200, "{sent}");
    let message_id = sent["data"]["id"].as_str().expect("message id").to_owned();
    b.queue_offline(&[doomed.id], json!({"data": "queued for it"})).await;
    let conn = Connection {
        id: "conn-doomed".into(),
        user_id: doomed.id,
        token_digest: token_digest(&doomed.token),
        role: Role::User,
    };
    b.state.connections.register(&conn, CONNECTION_TTL_SECS).await.expect("register");

    // Deletion is a POST; the old GET does not exist.
    assert_eq!(admin(&b, "GET", &format!("/admin/chatuser/delete/{}", doomed.id), &token, json!({})).await.0, 404);
    assert_eq!(
        admin(&b, "POST", "/admin/chatuser/delete/999999", &token, json!({})).await,
        fail("该即时通讯用户不存在")
    );
    let deleted = admin(&b, "POST", &format!("/admin/chatuser/delete/{}", doomed.id), &token, json!({})).await;
    assert_eq!(deleted, ok(json!("删除成功")));
    assert_eq!(
        admin(&b, "POST", &format!("/admin/chatuser/delete/{}", doomed.id), &token, json!({})).await,
        fail("该即时通讯用户不存在")
    );

    let s = &b.state;
    assert!(s.users.get(doomed.id).await.expect("get").is_none());
    assert_eq!(chat_refusal(&b, &doomed).await.as_deref(), Some("Token 令牌不合法！"));
    assert!(s.sessions.token(doomed.id).await.expect("token").is_none());
    let shard = chat_shared::store::registry_shard(doomed.id);
    assert!(s.connections.shard_connections(shard).await.expect("shard").iter().all(|c| c.user_id != doomed.id));
    // Friend rows of both directions, applications both ways and their reservations.
    assert!(s.social.friends(doomed.id).await.expect("friends").is_empty());
    assert!(s.social.friend(friend.id, doomed.id).await.expect("friend").is_none());
    assert!(s.social.friend(owner.id, doomed.id).await.expect("friend").is_none());
    assert_eq!(s.social.friends(owner.id).await.expect("friends").len(), 1, "the owner keeps its other friend");
    assert!(s.social.pending_application(doomed.id, stranger.id).await.expect("app").is_none());
    assert!(s.social.application(doomed.id, incoming.id).await.expect("app").is_none());
    assert!(s.social.applications_to(stranger.id, 0, 10).await.expect("apps").is_empty());
    // Its own group is gone with its members; elsewhere its rows are gone, the groups stay.
    assert!(s.groups.group(its_group).await.expect("group").is_none());
    assert!(s.groups.groups_of(friend.id, 0, 10).await.expect("groups").iter().all(|(g, _)| g.id != its_group));
    let members: Vec<i64> = s.groups.members(others_group).await.expect("members").iter().map(|m| m.user_id).collect();
    assert_eq!(members, [owner.id, friend.id]);
    assert!(s.groups.member(gated, doomed.id).await.expect("member").is_none());
    assert!(s.groups.memberships_of(doomed.id).await.expect("memberships").is_empty());
    assert!(b.queued(doomed.id).await.is_empty());
    assert!(s.messages.find(doomed.id, "single", friend.id, &message_id).await.expect("log").is_none());
    // What the others received stays theirs.
    assert_eq!(b.queued(friend.id).await.iter().filter(|m| m["id"] == message_id.as_str()).count(), 1);
    // Its friend's contacts no longer show it.
    let (_, contacts) = b.call_as("GET", "/api/chat/goodfriendlist/1", &friend, json!({})).await;
    assert!(!contacts.to_string().contains("doomed01"), "{contacts}");
    // The name is free again; the id is never reused.
    let again = b.register("doomed01").await;
    assert!(again.id > stranger.id);
    let (_, listed) = admin(&b, "GET", "/admin/chatuser", &token, json!({})).await;
    assert_eq!(listed["data"]["count"], 4);
}

async fn a_deleted_visitor_device_gets_a_new_visitor(kind: BackendKind) {
    let b = backend(kind).await;
    let token = admin_login(&b).await;
    let device = "5c1b344c-bf16-5425-adbc-d12f49cfa332";
    let first = Member::from_login(&b.visitor_register(device).await.1);
    let deleted = admin(&b, "POST", &format!("/admin/chatuser/delete/{}", first.id), &token, json!({})).await;
    assert_eq!(deleted, ok(json!("删除成功")));
    assert!(b.state.users.find_by_device(device).await.expect("device").is_none(), "the binding went with it");
    let (status, body) = b.visitor_register(device).await;
    assert_eq!(status, 200, "{body}");
    assert!(Member::from_login(&body).id > first.id);
    assert_eq!(body["data"]["username"], "VIS5c1b344c", "its name was released too");
}

on_every_backend!(
    admin_login_and_tokens,
    list_pages_newest_first_and_escapes_html,
    create_and_edit_users,
    status_toggle_is_limited_to_user_status,
    delete_removes_the_user_and_everything_that_names_it,
    a_deleted_visitor_device_gets_a_new_visitor,
);
