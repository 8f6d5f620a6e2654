//! The identity endpoints (spec 2, 3.1) through the API Gateway emulation, on every backend.

use chat_shared::clock::{now_ms, now_secs};
use chat_shared::jwt;
use chat_shared::model::{DeviceStats, NewUser, Role};
use chat_shared::store::Created;
use chat_tests::{visitor_sign, Backend, BackendKind, TEST_SECRET};
use serde_json::{json, Value};

fn fail(data: &str) -> Value {
    json!({"msg": "fail", "data": data})
}

async fn register(b: &Backend, username: &str, password: &str) -> Value {
    let (status, body) = b.post_json("/api/regChat", json!({"username": username, "password": password})).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn visitor(b: &Backend, path: &str, device: &str, extra: Value) -> (u16, Value) {
    visitor_at(b, path, device, now_ms(), extra).await
}

async fn visitor_at(b: &Backend, path: &str, device: &str, ts: i64, extra: Value) -> (u16, Value) {
    let mut body = json!({"deviceId": device, "timestamp": ts});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let sign = visitor_sign(device, ts);
    b.call("POST", path, &[("content-type", "application/json"), ("x-security-sign", &sign)], &body.to_string()).await
}

fn device_id(n: u32) -> String {
    format!("{n:08x}-bf16-5425-adbc-d12f49cfa332")
}

async fn register_login_and_logout(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let user = register(&b, "my01", "123456").await;
    assert_eq!(
        (user["username"].as_str(), user["role"].as_str(), user["status"].as_i64()),
        (Some("my01"), Some("user"), Some(1))
    );
    assert!(user.get("password").is_none());
    assert_eq!(user["avatar"], "https://docs-51yrc-com.oss-cn-hangzhou.aliyuncs.com/chat/user.jpg");
    let first = user["token"].as_str().expect("token").to_owned();
    let claims = jwt::verify(TEST_SECRET.as_bytes(), &first, now_secs()).expect("valid token");
    assert_eq!((claims.id, claims.role), (user["id"].as_i64().expect("id"), Role::User));
    assert_eq!(b.state.sessions.token(claims.id).await.expect("redis").as_deref(), Some(first.as_str()));

    let dup = b.post_json("/api/regChat", json!({"username": "MY01", "password": "654321"})).await;
    assert_eq!(dup, (400, fail("该账号已存在，请换一个账号注册")));
    let wrong = b.post_json("/api/loginChat", json!({"username": "my01", "password": "654321"})).await;
    assert_eq!(wrong, (400, fail("账户或密码错误")));
    let unknown = b.post_json("/api/loginChat", json!({"username": "nobody", "password": "654321"})).await;
    assert_eq!(unknown, (400, fail("账号不存在或者被禁用")));

    let (status, login) = b
        .call(
            "POST",
            "/api/loginChat",
            &[("content-type", "application/x-www-form-urlencoded")],
            "username=My01&password=123456",
        )
        .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["data"]["id"], user["id"], "usernames are case-insensitive");
    let second = login["data"]["token"].as_str().expect("token").to_owned();
    assert_ne!(first, second);
    assert_eq!(b.post_with_token("/api/chat/logout", &first).await, (400, fail("Token 令牌不合法！")), "superseded");
    assert_eq!(b.post_with_token("/api/chat/logout", &second).await, (200, json!({"msg":"ok","data":true})));
    assert_eq!(b.post_with_token("/api/chat/logout", &second).await, (400, fail("Token 令牌不合法！")), "logged out");
    assert_eq!(b.state.sessions.token(claims.id).await.expect("redis"), None);
}

async fn validation_and_body_errors(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let cases = [
        (json!({"password": "123456"}), "账号不能为空"),
        (json!({"username": "abc", "password": "123456"}), "账号 的长度 必须 在 4 和 20 之间"),
        (json!({"username": "abcd", "password": "12345"}), "密码 的长度 必须 在 6 和 20 之间"),
        (json!({"username": "abcd", "password": null}), "密码不能为空"),
        (json!({"username": "a".repeat(21), "password": "123456"}), "账号 的长度 必须 在 4 和 20 之间"),
    ];
    for (body, message) in cases {
        assert_eq!(b.post_json("/api/regChat", body.clone()).await, (422, fail(message)), "{body}");
        assert_eq!(b.post_json("/api/loginChat", body.clone()).await, (422, fail(message)), "{body}");
    }
    let bad_json = b.call("POST", "/api/regChat", &[("content-type", "application/json")], "{\"username\":").await;
    assert_eq!(bad_json, (400, fail("invalid JSON, only supports object and array")));
    let huge = format!("username=abcd&password={}", "x".repeat(101 * 1024));
    assert_eq!(b.call("POST", "/api/regChat", &[], &huge).await, (413, fail("request entity too large")));
    assert!(b.state.users.find_by_username("abcd").await.expect("find").is_none(), "nothing stored on failure");
}

async fn login_failures_are_limited_per_username(kind: BackendKind) {
    let b = Backend::new(kind).await;
    register(&b, "limited", "right-password").await;
    for _ in 0..5 {
        let r = b.post_json("/api/loginChat", json!({"username": "limited", "password": "wrong-password"})).await;
        assert_eq!(r, (400, fail("账户或密码错误")));
    }
    let blocked = b.post_json("/api/loginChat", json!({"username": "LIMITED", "password": "right-password"})).await;
    assert_eq!(blocked, (400, fail("登录失败次数过多，请15分钟后再试")));
    let other = b.post_json("/api/loginChat", json!({"username": "someone", "password": "whatever"})).await;
    assert_eq!(other, (400, fail("账号不存在或者被禁用")), "the limit is per username");
}

/// Spec 1.8 #2 under parallel requests: the attempt is counted in the same atomic step as the
/// check, so of 50 wrong passwords sent at once at most 5 get a password check, for chat users
/// and managers alike (each namespace its own counter).
async fn parallel_wrong_passwords_stop_at_the_limit(kind: BackendKind) {
    let b = Backend::new(kind).await;
    register(&b, "raced01", "right-password").await;
    chat_shared::service::admin::bootstrap(&b.state, "racedadmin", "right-password").await.expect("bootstrap");
    for (path, username, wrong_password) in
        [("/api/loginChat", "raced01", "账户或密码错误"), ("/admin/loginevent", "racedadmin", "密码错误")]
    {
        let guess = json!({"username": username, "password": "wrong-password"});
        let answers = futures_util::future::join_all((0..50).map(|_| b.post_json(path, guess.clone()))).await;
        let count =
            |message: &str| answers.iter().filter(|(status, body)| *status == 400 && *body == fail(message)).count();
        let (checked, refused) = (count(wrong_password), count("登录失败次数过多，请15分钟后再试"));
        assert_eq!(checked + refused, answers.len(), "{path}: {answers:?}");
        assert!((1..=5).contains(&checked), "{path}: {checked} passwords were checked");
        let right = b.post_json(path, json!({"username": username, "password": "right-password"})).await;
        assert_eq!(right, (400, fail("登录失败次数过多，请15分钟后再试")), "{path}: locked for the window");
    }
}

async fn legacy_password_hashes_are_upgraded_on_login(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let legacy = "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92"; // sha256("123456")
    let new_user = NewUser {
        username: "olduser".into(),
        password: legacy.into(),
        role: Role::User,
        avatar: String::new(),
        devicefingeruuid: String::new(),
        stats: DeviceStats::default(),
        now: now_secs(),
        logged_in: true,
    };
    let Created::Created(user) = b.state.users.create(new_user, None).await.expect("create") else { panic!("create") };
    let (status, body) = b.post_json("/api/loginChat", json!({"username": "olduser", "password": "123456"})).await;
    assert_eq!(status, 200, "{body}");
    let stored = b.state.users.private(user.id).await.expect("get").expect("user");
    assert!(stored.password.starts_with("$argon2id$"), "legacy hash replaced: {}", stored.password);
    let again = b.post_json("/api/loginChat", json!({"username": "olduser", "password": "123456"})).await;
    assert_eq!(again.0, 200);
}

async fn chat_auth_checks_in_order(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let user = register(&b, "authuser", "123456").await;
    let id = user["id"].as_i64().expect("id");
    assert_eq!(b.post_json("/api/chat/logout", json!({})).await, (400, fail("您没有权限访问即时通讯接口")));
    assert_eq!(b.post_with_token("/api/chat/logout", "garbage").await, (400, fail("Token 令牌不合法！")));
    let forged = jwt::issue(b"another-secret-another-secret-!!", id, "authuser", Role::User, now_secs(), 60);
    assert_eq!(b.post_with_token("/api/chat/logout", &forged).await, (400, fail("Token 令牌不合法！")));
    let expired = jwt::issue(TEST_SECRET.as_bytes(), id, "authuser", Role::User, now_secs() - 3600, 60);
    assert_eq!(b.post_with_token("/api/chat/logout", &expired).await, (400, fail("Token已过期！请重新获取令牌")));
    let valid_but_not_current = jwt::issue(TEST_SECRET.as_bytes(), id, "authuser", Role::User, now_secs(), 60);
    assert_eq!(b.post_with_token("/api/chat/logout", &valid_but_not_current).await, (400, fail("Token 令牌不合法！")));
    let ghost = jwt::issue(TEST_SECRET.as_bytes(), 424_242, "ghost", Role::User, now_secs(), 60);
    b.state.sessions.set_token(424_242, &ghost, 60).await.expect("set");
    assert_eq!(b.post_with_token("/api/chat/logout", &ghost).await, (400, fail("当前用户不存在或者已被禁用")));
    // The token may also come as ?token= or in the body; an unknown /api/chat path is a 404 only after auth.
    let token = user["token"].as_str().expect("token");
    assert_eq!(b.call("GET", &format!("/api/chat/nothing?token={token}"), &[], "").await, (404, fail("404 错误")));
    assert_eq!(b.call("GET", "/api/chat/nothing", &[], "").await, (400, fail("您没有权限访问即时通讯接口")));
    let by_body = b.post_json("/api/chat/logout", json!({"token": token})).await;
    assert_eq!(by_body, (200, json!({"msg":"ok","data":true})));
}

async fn visitor_signature_checks_in_order(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let device = device_id(1);
    // The header is checked before validation.
    assert_eq!(b.post_json("/api/visitorRegister", json!({})).await, (400, fail("非法访问")));
    let sign = visitor_sign(&device, now_ms());
    let r = b.call("POST", "/api/visitorRegister", &[("x-security-sign", &sign)], "timestamp=1").await;
    assert_eq!(r, (422, fail("设备指纹不能为空")));
    let r = b
        .call(
            "POST",
            "/api/visitorRegister",
            &[("x-security-sign", &sign)],
            &format!("deviceId={device}&timestamp=abc"),
        )
        .await;
    assert_eq!(r, (422, fail("时间戳 的值 `abc` 的类型不是 `int`")));
    let ts = now_ms();
    let r = b
        .call(
            "POST",
            "/api/visitorRegister",
            &[("x-security-sign", "0".repeat(64).as_str())],
            &format!("deviceId={device}&timestamp={ts}"),
        )
        .await;
    assert_eq!(r, (400, fail("非法签名")));
    assert_eq!(
        visitor_at(&b, "/api/visitorRegister", &device, now_ms() - 301_000, json!({})).await,
        (400, fail("请求已过期"))
    );
    assert_eq!(
        visitor_at(&b, "/api/visitorRegister", &device, now_ms() + 301_000, json!({})).await,
        (400, fail("请求已过期"))
    );
    let long = format!("fallback-{device}");
    assert_eq!(visitor(&b, "/api/visitorRegister", &long, json!({})).await, (400, fail("无效标识")));
    // None of the refused requests counted against the device: five pass, the sixth is limited.
    for _ in 0..5 {
        assert_eq!(visitor(&b, "/api/visitorRegister", &device, json!({})).await.0, 200);
    }
    assert_eq!(
        visitor(&b, "/api/visitorRegister", &device, json!({})).await,
        (400, fail("请求过于频繁，请1个小时后再试"))
    );
    assert_eq!(
        visitor(&b, "/api/visitorloginChat", &device, json!({"username": "someone", "password": "123456"})).await,
        (400, fail("请求过于频繁，请1个小时后再试")),
        "one counter per device for all visitor endpoints"
    );
}

async fn visitors_register_upgrade_and_never_unlock_accounts(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let device = device_id(2);
    let (status, first) =
        visitor(&b, "/api/visitorRegister", &device, json!({"uniplatform": "web", "devicemodel": "PC"})).await;
    assert_eq!(status, 200, "{first}");
    let v = &first["data"];
    assert_eq!((v["role"].as_str(), v["username"].as_str()), (Some("visitor"), Some("VIS00000002")));
    assert_eq!(
        (v["devicefingeruuid"].as_str(), v["uniplatform"].as_str(), v["deviceos"].as_str()),
        (Some(device.as_str()), Some("web"), Some(""))
    );
    let visitor_token = v["token"].as_str().expect("token").to_owned();
    // Same device again: same account, stats overwritten.
    let (_, again) =
        visitor(&b, "/api/visitorRegister", &device, json!({"uniplatform": "x", "deviceos": "Android"})).await;
    assert_eq!(again["data"]["id"], v["id"]);
    assert_eq!(
        (again["data"]["uniplatform"].as_str(), again["data"]["deviceos"].as_str()),
        (Some(""), Some("Android"))
    );
    assert_eq!(
        b.post_with_token("/api/chat/logout", &visitor_token).await,
        (400, fail("Token 令牌不合法！")),
        "superseded"
    );
    let visitor_token = again["data"]["token"].as_str().expect("token").to_owned();
    assert_eq!(
        b.post_with_token("/api/chat/logout", &visitor_token).await,
        (400, fail("您没有权限访问，请先注册或登录"))
    );

    // The visitor registers: upgraded in place.
    let taken = register(&b, "takenname", "123456").await;
    let dup = visitor(&b, "/api/visitorregChat", &device, json!({"username": "TakenName", "password": "123456"})).await;
    assert_eq!(dup, (400, fail("该账号已存在，请换一个账号注册")));
    let (status, up) =
        visitor(&b, "/api/visitorregChat", &device, json!({"username": "realuser", "password": "secret1"})).await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(
        (up["data"]["id"].clone(), up["data"]["role"].as_str(), up["data"]["username"].as_str()),
        (v["id"].clone(), Some("user"), Some("realuser"))
    );
    assert_eq!(up["data"]["uuid"], v["uuid"]);
    let (status, login) =
        visitor(&b, "/api/visitorloginChat", &device, json!({"username": "realuser", "password": "secret1"})).await;
    assert_eq!((status, login["data"]["id"].clone()), (200, v["id"].clone()));

    // DEVIATION D4: the device no longer unlocks that (now registered) account.
    // (Five visitor requests used up the device's hourly allowance; start a new window.)
    b.state.sessions.reset(&format!("chat_visitor_reg:{device}")).await.expect("reset");
    let (status, fresh) = visitor(&b, "/api/visitorRegister", &device, json!({})).await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["data"]["id"], v["id"]);
    assert_eq!(fresh["data"]["role"], "visitor");
    assert_eq!(fresh["data"]["username"], "VIS00000002", "the upgrade released the visitor name");

    // visitorregChat never overwrites a registered account: a device without a visitor gets a new user.
    let other_device = device_id(3);
    let (status, created) =
        visitor(&b, "/api/visitorregChat", &other_device, json!({"username": "brandnew", "password": "123456"})).await;
    assert_eq!(status, 200, "{created}");
    assert_ne!(created["data"]["id"], taken["id"]);
    assert_eq!(
        (created["data"]["role"].as_str(), created["data"]["devicefingeruuid"].as_str()),
        (Some("user"), Some(""))
    );
    let realuser = b.state.users.find_by_username("realuser").await.expect("find").expect("kept");
    assert_eq!(realuser.role, Role::User);
}

async fn public_profile_by_uuid(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let user = register(&b, "profile1", "123456").await;
    let uuid = user["uuid"].as_str().expect("uuid");
    let (status, body) = b.call("GET", &format!("/api/userinfo/{uuid}"), &[("token", "ignored")], "").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["id"], user["id"]);
    assert_eq!(
        body["data"]["userinfo"],
        json!({"id": user["id"], "gender":"unknown","birthday":null,"bio":null,"location":null,"website":null})
    );
    assert!(body["data"].get("password").is_none() && body["data"].get("token").is_none());
    let unknown = b.call("GET", "/api/userinfo/00000000-0000-4000-8000-000000000000", &[], "").await;
    assert_eq!(unknown, (200, json!({"msg":"ok","data":null})));
    assert_eq!(b.call("GET", "/api/userinfo/short", &[], "").await, (422, fail("uuid值 的长度 必须 在 36 和 36 之间")));
}

async fn preflight_and_unknown_routes(kind: BackendKind) {
    let b = Backend::new(kind).await;
    assert_eq!(b.call("OPTIONS", "/api/loginChat", &[], "").await, (204, serde_json::Value::Null));
    assert_eq!(
        b.call("GET", "/api/loginChat", &[], "").await,
        (404, fail("404 错误")),
        "unknown method on a known path"
    );
    assert_eq!(b.call("POST", "/api/regChat/", &[], "").await, (404, fail("404 错误")), "no trailing slash");
    assert_eq!(b.call("POST", "/api/chatX", &[], "").await, (404, fail("404 错误")));
}

on_every_backend!(
    register_login_and_logout,
    validation_and_body_errors,
    login_failures_are_limited_per_username,
    parallel_wrong_passwords_stop_at_the_limit,
    legacy_password_hashes_are_upgraded_on_login,
    chat_auth_checks_in_order,
    visitor_signature_checks_in_order,
    visitors_register_upgrade_and_never_unlock_accounts,
    public_profile_by_uuid,
    preflight_and_unknown_routes,
);
