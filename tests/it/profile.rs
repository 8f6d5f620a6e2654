//! Profile and settings endpoints (spec 3.2, 3.4, 3.5, 3.7) on every backend.

use chat_tests::{Backend, BackendKind};
use serde_json::{json, Value};

fn fail(data: &str) -> (u16, Value) {
    (400, json!({"msg": "fail", "data": data}))
}

fn ok(data: Value) -> (u16, Value) {
    (200, json!({"msg": "ok", "data": data}))
}

async fn register(b: &Backend, username: &str) -> (i64, String) {
    let (status, body) = b.post_json("/api/regChat", json!({"username": username, "password": "123456"})).await;
    assert_eq!(status, 200, "{body}");
    (body["data"]["id"].as_i64().expect("id"), body["data"]["token"].as_str().expect("token").to_owned())
}

async fn visitor_token(b: &Backend) -> String {
    let (status, v) = b.visitor_register("abcdef01-bf16-5425-adbc-d12f49cfa332").await;
    assert_eq!(status, 200, "{v}");
    v["data"]["token"].as_str().expect("token").to_owned()
}

async fn post(b: &Backend, path: &str, token: &str, body: Value) -> (u16, Value) {
    b.call("POST", path, &[("token", token), ("content-type", "application/json")], &body.to_string()).await
}

async fn search_finds_registered_users_only(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (me, token) = register(&b, "searcher").await;
    let (alice, _) = register(&b, "alice_100").await;
    let (_, _) = register(&b, "bob%200").await;
    let visitor = visitor_token(&b).await;
    let (status, body) = post(&b, "/api/chat/searchUser", &token, json!({"keyword": "ALICE"})).await;
    assert_eq!(status, 200, "{body}");
    let hits = body["data"].as_array().expect("array");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["id"], alice);
    let mut keys: Vec<&str> = hits[0].as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["avatar", "id", "nickname", "role", "username", "uuid"]);
    let percent = post(&b, "/api/chat/searchUser", &token, json!({"keyword": "%"})).await;
    assert_eq!(percent.1["data"].as_array().map(Vec::len), Some(1), "only bob%200: % is literal");
    let underscore = post(&b, "/api/chat/searchUser", &token, json!({"keyword": "_"})).await;
    assert_eq!(underscore.1["data"].as_array().map(Vec::len), Some(1), "only alice_100: _ is literal");
    let myself = post(&b, "/api/chat/searchUser", &token, json!({"keyword": "searcher"})).await;
    assert_eq!(myself, ok(json!([])), "self excluded (id {me})");
    let visitors = post(&b, "/api/chat/searchUser", &token, json!({"keyword": "VIS"})).await;
    assert_eq!(visitors, ok(json!([])), "visitors excluded");
    assert_eq!(
        post(&b, "/api/chat/searchUser", &token, json!({})).await,
        (422, json!({"msg":"fail","data":"搜索关键词不能为空"}))
    );
    assert_eq!(
        post(&b, "/api/chat/searchUser", &visitor, json!({"keyword": "alice"})).await,
        fail("您没有权限访问，请先注册或登录")
    );
}

async fn userset_must_be_a_json_object(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (id, token) = register(&b, "settings1").await;
    let settings =
        r#"{"chatset":{"visitor":{"sendCount":0,"needFollow":false},"user":{"sendCount":1,"needFollow":false}}}"#;
    assert_eq!(post(&b, "/api/chat/userset", &token, json!({"userset": settings})).await, ok(json!("ok")));
    let stored = b.state.users.private(id).await.expect("get").expect("user");
    assert_eq!(stored.userset, settings, "stored verbatim");
    let (status, login) = b.post_json("/api/loginChat", json!({"username": "settings1", "password": "123456"})).await;
    assert_eq!((status, login["data"]["userset"].as_str()), (200, Some(settings)), "a login answers with the settings");
    // That login made its token the current one.
    let token = login["data"]["token"].as_str().expect("token").to_owned();
    for bad in ["[1,2]", "not json", "\"str\""] {
        assert_eq!(
            post(&b, "/api/chat/userset", &token, json!({"userset": bad})).await,
            fail("用户设置格式不正确"),
            "{bad}"
        );
    }
    let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(65_535));
    assert_eq!(post(&b, "/api/chat/userset", &token, json!({"userset": huge})).await, fail("用户设置格式不正确"));
    assert_eq!(
        post(&b, "/api/chat/userset", &token, json!({"userset": "{"})).await,
        (422, json!({"msg":"fail","data":"用户设置 的长度 必须 在 2 和 10000000 之间"}))
    );
    assert_eq!(
        b.state.users.private(id).await.expect("get").expect("user").userset,
        settings,
        "failures change nothing"
    );
    let visitor = visitor_token(&b).await;
    assert_eq!(post(&b, "/api/chat/userset", &visitor, json!({"userset": "{}"})).await, ok(json!("ok")), "whitelisted");
}

async fn update_userinfo_changes_one_field(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (id, token) = register(&b, "profile2").await;
    let update = |field: &str, value: &str| json!({"fieldname": field, "fieldValue": value});
    assert_eq!(
        post(&b, "/api/chat/updateUserinfo", &token, update("nickname", "魂牵一梦")).await,
        ok(json!("修改昵称成功"))
    );
    assert_eq!(b.state.sessions.value(&format!("user:modify:{id}")).await.expect("redis").as_deref(), Some("nickname"));
    assert_eq!(
        post(&b, "/api/chat/updateUserinfo", &token, update("avatar", "https://x/a.png")).await,
        ok(json!("头像更新成功"))
    );
    assert_eq!(
        post(&b, "/api/chat/updateUserinfo", &token, update("invite_confirm", " 1")).await,
        ok(json!("设置成功"))
    );
    let u = b.state.users.get(id).await.expect("get").expect("user");
    assert_eq!((u.nickname.as_str(), u.avatar.as_str(), u.invite_confirm), ("魂牵一梦", "https://x/a.png", 1));
    assert_eq!(post(&b, "/api/chat/updateUserinfo", &token, update("username", "x")).await, fail("账号不可修改"));
    assert_eq!(
        post(&b, "/api/chat/updateUserinfo", &token, update("nickname", &"字".repeat(31))).await,
        fail("昵称长度不能超过30个字符")
    );
    assert_eq!(
        post(&b, "/api/chat/updateUserinfo", &token, update("avatar", &"a".repeat(1001))).await,
        fail("头像地址过长不能超过1000个字符")
    );
    assert_eq!(
        post(&b, "/api/chat/updateUserinfo", &token, update("invite_confirm", "2")).await,
        fail("添加我为好友设置值错误")
    );
    assert_eq!(post(&b, "/api/chat/updateUserinfo", &token, update("role", "admin")).await, fail("不支持修改该字段"));
    assert_eq!(
        post(&b, "/api/chat/updateUserinfo", &token, json!({"fieldname": "nickname"})).await,
        (422, json!({"msg":"fail","data":"修改结果不能为空"}))
    );
    let u = b.state.users.get(id).await.expect("get").expect("user");
    assert_eq!((u.nickname.as_str(), u.invite_confirm), ("魂牵一梦", 1), "refused changes store nothing");
}

async fn set_password_checks_and_replaces_the_hash(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (_, token) = register(&b, "changer").await;
    let change =
        |old: &str, new: &str, check: &str| json!({"oldpassword": old, "newpassword": new, "checknewpassword": check});
    assert_eq!(
        post(&b, "/api/chat/setPassword", &token, change("123456", "12345", "12345")).await,
        (422, json!({"msg":"fail","data":"新密码 的长度 必须 在 6 和 20 之间"}))
    );
    assert_eq!(
        post(&b, "/api/chat/setPassword", &token, change("123456", "654321", "654320")).await,
        fail("新密码与确认新密码不一致")
    );
    assert_eq!(
        post(&b, "/api/chat/setPassword", &token, change("000000", "654321", "654321")).await,
        fail("原始密码错误，无法修改密码")
    );
    assert_eq!(
        post(&b, "/api/chat/setPassword", &token, change("123456", "654321", "654321")).await,
        ok(json!("修改密码成功"))
    );
    assert_eq!(b.post_with_token("/api/chat/logout", &token).await, ok(json!(true)), "the current token stays valid");
    let old = b.post_json("/api/loginChat", json!({"username": "changer", "password": "123456"})).await;
    assert_eq!(old, fail("账户或密码错误"));
    let new = b.post_json("/api/loginChat", json!({"username": "changer", "password": "654321"})).await;
    assert_eq!(new.0, 200);
}

on_every_backend!(
    search_finds_registered_users_only,
    userset_must_be_a_json_object,
    update_userinfo_changes_one_field,
    set_password_checks_and_replaces_the_hash,
);
