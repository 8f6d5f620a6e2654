//! Friends and applications (spec 3.3, 3.6, 4) on every backend, pushes checked in the durable
//! offline queue.

use std::sync::Arc;

use chat_tests::{fail, ok, Backend, BackendKind, Member};
use serde_json::json;

async fn apply_agree_and_list(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (alice, bob) = (b.register("alice01").await, b.register("bob00001").await);
    b.call_as("POST", "/api/chat/updateUserinfo", &alice, json!({"fieldname": "nickname", "fieldValue": "魂牵一梦"}))
        .await;
    b.call_as("POST", "/api/chat/updateUserinfo", &bob, json!({"fieldname": "invite_confirm", "fieldValue": "1"}))
        .await;

    // Alice finds Bob and applies.
    let found = b.call_as("POST", "/api/chat/searchUser", &alice, json!({"keyword": "bob"})).await;
    assert_eq!(found.1["data"][0]["id"], bob.id);
    let info = b.call_as("POST", "/api/chat/getUserSetInfo", &alice, json!({"userid": bob.id})).await;
    assert_eq!(
        (info.1["data"]["isgoodfriend"].clone(), info.1["data"]["invite_confirm"].clone()),
        (json!(false), json!(1))
    );
    let auto = b.call_as("POST", "/api/chat/autoAddFriendAndAgree", &alice, json!({"friend_id": bob.id})).await;
    assert_eq!(auto, fail("需要对方审核，不能自动加对方为好友"));
    assert_eq!(
        b.call_as("POST", "/api/chat/applyfriend", &alice, json!({"friend_id": alice.id})).await,
        fail("不能添加自己为好友")
    );
    assert_eq!(
        b.call_as("POST", "/api/chat/applyfriend", &alice, json!({"friend_id": 99999})).await,
        fail("添加的好友不存在")
    );
    let applied =
        b.call_as("POST", "/api/chat/applyfriend", &alice, json!({"friend_id": bob.id, "nickname": "我是alice"})).await;
    assert_eq!(applied, ok(json!("ok")));
    assert_eq!(
        b.call_as("POST", "/api/chat/applyfriend", &alice, json!({"friend_id": bob.id})).await,
        fail("您已经申请过了，请勿重复申请")
    );

    // Bob was notified durably.
    let pushed = b.queued(bob.id).await;
    assert_eq!(pushed.len(), 1);
    let m = &pushed[0];
    assert_eq!(m["from_id"], format!("redirect-applyFriend-{}", alice.id));
    assert_eq!(m["msgidKey"], m["from_id"]);
    assert_eq!(m["from_name"], "好友申请提醒");
    assert_eq!(m["data"]["data"], "用户[魂牵一梦]申请添加您为好友，请尽快处理");
    assert_eq!(m["redirect"], json!({"url": "/pages/applyMyfriend/applyMyfriend", "type": "navigateTo"}));
    assert_eq!(
        (m["to_id"].clone(), m["chatType"].clone(), m["type"].clone()),
        (json!(bob.id), json!("single"), json!("text"))
    );

    // Bob sees it.
    let pending = b.call_as("POST", &format!("/api/chat/isApplyfriend/{}", alice.uuid), &bob, json!({})).await;
    assert_eq!(pending.0, 200);
    let app_id = pending.1["data"]["id"].as_i64().expect("id");
    assert_eq!(pending.1["data"]["userId"], alice.id);
    assert_eq!(pending.1["data"]["nickname"], "我是alice");
    assert_eq!(
        b.call_as("POST", &format!("/api/chat/isApplyfriend/{}", bob.uuid), &alice, json!({})).await,
        fail("用户申请信息不存在")
    );
    let list = b.call_as("GET", "/api/chat/listapplyfriend/1", &bob, json!({})).await;
    assert_eq!(list.1["data"]["pendingCount"], 1);
    let row = &list.1["data"]["alldata"][0];
    assert_eq!(
        (row["id"].as_i64(), row["status"].as_str(), row["userId"].as_i64()),
        (Some(app_id), Some("pending"), Some(alice.id))
    );
    assert_eq!(row["user"]["username"], "alice01");
    assert_eq!(row["order"], 50);

    // Bob agrees with a remark: both rows exist, both are told, with one shared id.
    let handle = |status: &str| json!({"status": status, "nickname": "爱丽丝"});
    assert_eq!(
        b.call_as("POST", &format!("/api/chat/handleapply/{app_id}"), &alice, handle("agree")).await,
        fail("申请不存在或已处理"),
        "only the addressee decides"
    );
    assert_eq!(
        b.call_as("POST", &format!("/api/chat/handleapply/{app_id}"), &bob, handle("agree")).await,
        ok(json!("ok"))
    );
    assert_eq!(
        b.call_as("POST", &format!("/api/chat/handleapply/{app_id}"), &bob, handle("agree")).await,
        fail("申请不存在或已处理")
    );
    let to_alice = b.queued(alice.id).await;
    let to_bob = b.queued(bob.id).await;
    assert_eq!((to_alice.len(), to_bob.len()), (1, 2));
    assert_eq!(to_alice[0]["id"], to_bob[1]["id"]);
    assert_eq!(to_alice[0]["type"], "systemNotice");
    assert_eq!(to_alice[0]["data"]["data"], "我们已经是好友了，可以开始聊天了");
    assert_eq!((to_alice[0]["from_id"].clone(), to_alice[0]["to_name"].clone()), (json!(bob.id), json!("爱丽丝")));
    assert_eq!((to_bob[1]["from_id"].clone(), to_bob[1]["to_id"].clone()), (json!(alice.id), json!(bob.id)));

    // Both lists, A–Z grouped.
    let bobs = b.call_as("GET", "/api/chat/goodfriendlist/1", &bob, json!({})).await;
    assert_eq!(bobs.1["data"]["count"], 1);
    assert_eq!(bobs.1["data"]["rows"]["indexList"], json!(["A"]), "remark 爱丽丝 starts with A (ài)");
    let entry = &bobs.1["data"]["rows"]["newList"][0]["list"][0];
    assert_eq!(
        (entry["beizhu"].as_str(), entry["name"].as_str(), entry["friend_id"].as_i64()),
        (Some("爱丽丝"), Some("爱丽丝"), Some(alice.id))
    );
    let alices = b.call_as("GET", "/api/chat/goodfriendlist/1", &alice, json!({})).await;
    assert_eq!(
        alices.1["data"]["rows"]["newList"][0]["list"][0]["name"], "bob00001",
        "alice's row remark is bob's (empty) nickname"
    );
    assert_eq!(
        b.call_as("GET", "/api/chat/goodfriendlist/2", &alice, json!({})).await,
        ok(json!({"count": 0, "rows": []}))
    );
    let info = b.call_as("POST", "/api/chat/getUserSetInfo", &alice, json!({"userid": bob.id})).await;
    assert_eq!(
        (info.1["data"]["isgoodfriend"].clone(), info.1["data"]["isgoodfriend_status"].clone()),
        (json!(true), json!(true))
    );
    let detail = b.call_as("GET", &format!("/api/chat/getgoodfriendinfo/{}", alice.id), &bob, json!({})).await;
    assert_eq!(detail.1["data"]["friendinfo"]["nickname"], "魂牵一梦");
    assert_eq!(detail.1["data"]["friendinfo"]["userinfo"]["gender"], "unknown");
}

async fn black_star_visibility_and_delete(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (alice, bob) = (b.register("alice02").await, b.register("bob00002").await);
    assert_eq!(
        b.call_as("POST", "/api/chat/autoAddFriendAndAgree", &alice, json!({"friend_id": bob.id})).await,
        ok(json!("ok"))
    );
    assert_eq!(b.queued(bob.id).await[0]["from_id"], alice.id, "the target is told first, from me");
    let path = |action: &str, id: i64| format!("/api/chat/{action}/{id}");
    assert_eq!(b.call_as("POST", &path("setstargoodfriend", bob.id), &alice, json!({})).await, ok(json!("ok")));
    let see = b
        .call_as("POST", &path("setmeOrfriendCanSee", bob.id), &alice, json!({"friendlookme": 0, "melookfriend": 1}))
        .await;
    assert_eq!(see, ok(json!("ok")));
    assert_eq!(
        b.call_as("POST", &path("setmeOrfriendCanSee", bob.id), &alice, json!({"friendlookme": 2, "melookfriend": 1}))
            .await,
        (422, json!({"msg":"fail","data":"朋友是否可以看我的动态 的值 `2` 必须在 [`0`,`1`] 中"}))
    );
    let mine = b.call_as("POST", &path("ismygoodfriend", bob.id), &alice, json!({})).await;
    assert_eq!(
        (mine.1["data"]["ismystarfriend"].clone(), mine.1["data"]["friendlookme"].clone()),
        (json!(1), json!(0))
    );
    assert!(mine.1["data"].get("create_time").is_none());

    // Alice blacklists Bob: her row only.
    assert_eq!(b.call_as("POST", &path("setblackgoodfriend", bob.id), &alice, json!({})).await, ok(json!("ok")));
    assert_eq!(b.call_as("POST", &path("ismygoodfriend", bob.id), &alice, json!({})).await, fail("不是好友"));
    assert_eq!(
        b.call_as("POST", &path("setstargoodfriend", bob.id), &alice, json!({})).await,
        fail("好友不存在或者被拉黑，无法操作")
    );
    let as_bob = b.call_as("POST", "/api/chat/getUserSetInfo", &bob, json!({"userid": alice.id})).await;
    assert_eq!(as_bob.1["data"]["isgoodfriend_status"], false);
    assert_eq!(
        b.call_as("POST", &path("ismygoodfriend", alice.id), &bob, json!({})).await.0,
        200,
        "bob's row is untouched"
    );
    assert_eq!(
        b.call_as("POST", &path("setblackgoodfriend", bob.id), &alice, json!({})).await,
        ok(json!("ok")),
        "toggles back"
    );

    // Delete: both rows and the applications go, so they can apply again.
    assert_eq!(
        b.call_as("POST", &path("deletegoodfriend", bob.id), &alice, json!({})).await,
        ok(json!("删除好友成功"))
    );
    assert_eq!(
        b.call_as("POST", &path("deletegoodfriend", bob.id), &alice, json!({})).await,
        fail("不是好友关系，无权操作")
    );
    assert_eq!(b.call_as("GET", &path("getgoodfriendinfo", alice.id), &bob, json!({})).await, fail("好友不存在"));
    assert_eq!(b.call_as("POST", "/api/chat/applyfriend", &bob, json!({"friend_id": alice.id})).await, ok(json!("ok")));
    assert_eq!(b.call_as("POST", "/api/chat/applyfriend", &alice, json!({"friend_id": bob.id})).await, ok(json!("ok")));
}

async fn refused_applications_allow_a_new_one(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (alice, bob) = (b.register("alice03").await, b.register("bob00003").await);
    b.call_as("POST", "/api/chat/applyfriend", &alice, json!({"friend_id": bob.id})).await;
    let list = b.call_as("GET", "/api/chat/listapplyfriend/1?limit=500", &bob, json!({})).await;
    let app_id = list.1["data"]["alldata"][0]["id"].as_i64().expect("id");
    assert_eq!(
        b.call_as("POST", &format!("/api/chat/handleapply/{app_id}"), &bob, json!({"status": "maybe"})).await,
        (422, json!({"msg":"fail","data":"处理状态 的值 `maybe` 必须在 [`pending`,`refuse`,`agree`,`ignore`] 中"}))
    );
    assert_eq!(
        b.call_as("POST", &format!("/api/chat/handleapply/{app_id}"), &bob, json!({"status": "refuse"})).await,
        ok(json!("ok"))
    );
    assert!(b.queued(alice.id).await.is_empty(), "no push on refuse");
    assert_eq!(
        b.call_as("GET", "/api/chat/goodfriendlist/1", &bob, json!({})).await,
        ok(json!({"count": 0, "rows": []}))
    );
    assert_eq!(
        b.call_as("POST", "/api/chat/applyfriend", &alice, json!({"friend_id": bob.id})).await,
        ok(json!("ok")),
        "may apply again"
    );
    let list = b.call_as("GET", "/api/chat/listapplyfriend/1", &bob, json!({})).await;
    assert_eq!(list.1["data"]["pendingCount"], 1);
    assert_eq!(list.1["data"]["alldata"].as_array().map(Vec::len), Some(2), "newest first, refused one kept");
    assert_eq!(list.1["data"]["alldata"][1]["status"], "refuse");
    assert_eq!(
        b.call_as("GET", "/api/chat/listapplyfriend/0", &bob, json!({})).await,
        (422, json!({"msg":"fail","data":"页码 的数值 必须 在 1 和 10000000000000000 之间"}))
    );
}

async fn accepting_one_application_twice_at_once_makes_one_pair(kind: BackendKind) {
    let b = Arc::new(Backend::new(kind).await);
    let (alice, bob) = (b.register("alice04").await, b.register("bob00004").await);
    b.call_as("POST", "/api/chat/applyfriend", &alice, json!({"friend_id": bob.id})).await;
    let pending = b.call_as("POST", &format!("/api/chat/isApplyfriend/{}", alice.uuid), &bob, json!({})).await;
    let app_id = pending.1["data"]["id"].as_i64().expect("id");
    let bob = Arc::new(bob);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (b, bob) = (b.clone(), bob.clone());
            tokio::spawn(async move {
                b.call_as("POST", &format!("/api/chat/handleapply/{app_id}"), &bob, json!({"status": "agree"})).await
            })
        })
        .collect();
    let mut oks = 0;
    for task in tasks {
        let (status, body) = task.await.expect("task");
        match status {
            200 => oks += 1,
            400 => assert!(body["data"] == "申请不存在或已处理" || body["data"] == "系统异常，请稍后再试", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(oks, 1, "exactly one acceptance wins");
    let bobs = b.state.social.friends(bob.id).await.expect("friends");
    let alices = b.state.social.friends(alice.id).await.expect("friends");
    assert_eq!((bobs.len(), alices.len()), (1, 1), "one row per side");
    assert_eq!(b.queued(alice.id).await.len(), 1, "notified once");
}

async fn visitors_reach_only_the_whitelisted_friend_routes(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let bob = b.register("bob00005").await;
    let (_, v) = b.visitor_register("feedbeef-bf16-5425-adbc-d12f49cfa332").await;
    let visitor = Member {
        id: v["data"]["id"].as_i64().expect("id"),
        uuid: v["data"]["uuid"].as_str().expect("uuid").to_owned(),
        token: v["data"]["token"].as_str().expect("token").to_owned(),
    };
    let refused = fail("您没有权限访问，请先注册或登录");
    for (method, path) in [
        ("GET", "/api/chat/listapplyfriend/1".to_owned()),
        ("GET", "/api/chat/goodfriendlist/1".to_owned()),
        ("POST", format!("/api/chat/handleapply/{}", 1)),
        ("POST", format!("/api/chat/isApplyfriend/{}", bob.uuid)),
        ("POST", format!("/api/chat/setblackgoodfriend/{}", bob.id)),
    ] {
        assert_eq!(b.call_as(method, &path, &visitor, json!({})).await, refused, "{method} {path}");
    }
    assert_eq!(
        b.call_as("POST", "/api/chat/applyfriend", &visitor, json!({"friend_id": bob.id})).await,
        ok(json!("ok"))
    );
    assert_eq!(
        b.call_as("POST", &format!("/api/chat/ismygoodfriend/{}", bob.id), &visitor, json!({})).await,
        fail("不是好友")
    );
    let info = b.call_as("POST", "/api/chat/getUserSetInfo", &bob, json!({"userid": visitor.id})).await;
    assert_eq!(info, fail("用户不存在或者为游客，无法加为好友"), "visitors cannot be added ({})", visitor.uuid);
}

on_every_backend!(
    visitors_reach_only_the_whitelisted_friend_routes,
    apply_agree_and_list,
    black_star_visibility_and_delete,
    refused_applications_allow_a_new_one,
    accepting_one_application_twice_at_once_makes_one_pair,
);
