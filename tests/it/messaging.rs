//! Messaging through chat-local's gateway with real WebSocket clients (spec 6): connect checks,
//! live delivery to every device, offline storage and pull, gone connections, send limits,
//! revoke, and group fan-out.

use std::time::Duration;

use chat_shared::auth::token_digest;
use chat_shared::clock::now_ms;
use chat_shared::model::Role;
use chat_shared::store::{Connection, SentMessage, CONNECTION_TTL_SECS};
use chat_tests::{Backend, BackendKind, Member};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of chat-local.
struct Client {
    socket: Socket,
}

/// Frames are awaited at most this long (generous for a loaded CI machine; a passing test never waits it out).
const FRAME_WAIT: Duration = Duration::from_secs(10);

impl Client {
    async fn connect(addr: &str, token: &str) -> Client {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}")).await.expect("ws");
        Client { socket }
    }

    /// Connects and reads up to the welcome frame and the prompts that follow it.
    async fn connect_ready(addr: &str, token: &str) -> Client {
        let mut client = Client::connect(addr, token).await;
        let welcome = client.next_where(|f| f["type"] == "system").await;
        assert_eq!(welcome["data"], "欢迎您访问我们的系统！");
        client
    }

    async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(FRAME_WAIT, self.socket.next()).await.ok().flatten().and_then(Result::ok)
    }

    /// The next text frame matching `want` (others are skipped).
    async fn next_where(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.next().await {
                Some(Message::Text(text)) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                    if want(&frame) {
                        return frame;
                    }
                }
                Some(_) => {}
                None => panic!("no matching frame arrived"),
            }
        }
    }

    /// The next `singleChat` frame carrying message `id`.
    async fn message(&mut self, id: &str) -> Value {
        self.next_where(|f| f["type"] == "singleChat" && f["data"]["id"] == id).await
    }

    /// Every text frame that arrives within `wait` (for asserting that nothing more comes).
    async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Ok(Some(Ok(message))) = tokio::time::timeout(wait, self.socket.next()).await {
            if let Message::Text(text) = message {
                frames.push(serde_json::from_str(&text).expect("JSON frame"));
            }
        }
        frames
    }

    async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::Text(text.into())).await.expect("send");
    }
}

async fn post(b: &Backend, path: &str, token: &str, body: Value) -> (u16, Value) {
    b.call("POST", path, &[("token", token), ("content-type", "application/json")], &body.to_string()).await
}

async fn send_text(b: &Backend, from: &Member, to: i64, chat_type: &str, text: &str) -> (u16, Value) {
    let data = json!({"data": text, "dataType": false, "otherData": null}).to_string();
    post(
        b,
        "/api/chat/socket/sendmessage",
        &from.token,
        json!({"sendto_id": to, "chatType": chat_type, "type": "text", "data": data, "options": "%7B%7D"}),
    )
    .await
}

async fn connect_refusals_send_one_fail_frame_then_close(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let addr = b.serve();
    let me = b.register("wsuser01").await;
    for (token, reason) in [("", "缺少 token 参数"), ("not-a-jwt", "Token 不合法")] {
        let mut client = Client::connect(&addr, token).await;
        let frame = client.next_where(|_| true).await;
        assert_eq!(frame, json!({"msg": "fail", "data": reason}));
        match client.next().await {
            Some(Message::Close(Some(close))) => assert_eq!(u16::from(close.code), 1000),
            other => panic!("expected a close, got {other:?}"),
        }
    }
    // A superseded token (a newer login exists) is refused too (D9).
    let old = me.token.clone();
    let (_, login) = b.post_json("/api/loginChat", json!({"username": "wsuser01", "password": "123456"})).await;
    assert!(login["data"]["token"].as_str().is_some_and(|t| t != old));
    let mut client = Client::connect(&addr, &old).await;
    assert_eq!(client.next_where(|_| true).await, json!({"msg": "fail", "data": "Token 不合法"}));
    let shard = chat_shared::store::registry_shard(me.id);
    assert!(
        b.state.connections.shard_connections(shard).await.expect("list").is_empty(),
        "refused sockets never register"
    );
}

async fn accepted_connections_get_welcome_prompts_and_pongs(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let addr = b.serve();
    let me = b.register("wsuser02").await;
    let mut client = Client::connect(&addr, &me.token).await;
    let welcome = client.next_where(|_| true).await;
    assert_eq!(welcome["type"], "system");
    assert_eq!(welcome["data"], "欢迎您访问我们的系统！");
    let mut prompts = Vec::new();
    for _ in 0..5 {
        let frame = client.next_where(|f| f["type"] == "singleChat").await;
        prompts.push(frame["data"]["from_id"].as_str().unwrap_or_default().to_owned());
    }
    let id = me.id;
    assert_eq!(
        prompts,
        [
            format!("redirect-setPassword-{id}"),
            format!("redirect-userInfoSet-{id}"),
            format!("redirect-whoCanChatMe-{id}"),
            format!("redirect-search-{id}"),
            format!("redirect-applyAddMeFriendSet-{id}"),
        ],
        "a user without friends or groups gets these prompts, in order"
    );
    assert!(client.drain(Duration::from_millis(300)).await.is_empty(), "and nothing else");
    client.send_text(r#"{"type":"ping"}"#).await;
    let pong = client.next_where(|_| true).await;
    assert_eq!(pong["type"], "pong");
    assert!(pong["timestamp"].as_i64().is_some());
    client.send_text("ping").await;
    assert_eq!(client.next_where(|_| true).await["type"], "pong");
    client.send_text(r#"{"type":"ping","token":"forged"}"#).await;
    client.send_text(r#"{"type":"hello"}"#).await;
    assert!(client.drain(Duration::from_millis(300)).await.is_empty(), "a bad-token ping and other frames get nothing");
    // The keepalive pings every registered connection.
    let reached = chat_functions::handlers::ws_keepalive(b.state.clone()).await;
    assert!(reached.is_ok());
    assert_eq!(client.next_where(|_| true).await, json!({"type": "ping"}));
}

async fn a_visitor_gets_the_login_reminder(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let addr = b.serve();
    let (status, body) = b.visitor_register("aaaabbbb-cccc-4ddd-8eee-ffff00001111").await;
    assert_eq!(status, 200, "{body}");
    let (id, token) = (body["data"]["id"].as_i64().expect("id"), body["data"]["token"].as_str().expect("token"));
    let mut client = Client::connect_ready(&addr, token).await;
    let who = client.next_where(|f| f["type"] == "singleChat").await;
    assert_eq!(who["data"]["from_id"], format!("redirect-whoCanChatMe-{id}"));
    let remind = client.next_where(|f| f["type"] == "singleChat").await["data"].clone();
    assert_eq!(remind["from_id"], format!("redirect-visitorLogin-{id}"));
    assert_eq!(remind["msgidKey"], remind["from_id"]);
    assert_eq!(remind["from_name"], "登录提示");
    assert_eq!(remind["data"]["data"], "欢迎您，登录可以获取更多功能！");
    assert_eq!(remind["redirect"], json!({"url": "/pages/loginCenter/loginCenter", "type": "navigateTo"}));
    assert_eq!(remind["to_id"], id);
    assert!(b.queued(id).await.is_empty(), "prompts are never stored offline");
}

async fn a_message_reaches_every_device_of_an_online_recipient(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let addr = b.serve();
    let (alice, bob) = (b.register("alice01").await, b.register("bob00001").await);
    let mut phone = Client::connect_ready(&addr, &bob.token).await;
    let mut laptop = Client::connect_ready(&addr, &bob.token).await;
    let mut alice_socket = Client::connect_ready(&addr, &alice.token).await;
    let (status, sent) = send_text(&b, &alice, bob.id, "single", "你好").await;
    assert_eq!(status, 200, "{sent}");
    let message = &sent["data"];
    assert_eq!(message["from_id"], alice.id);
    assert_eq!(message["to_id"], bob.id);
    assert_eq!(message["chatType"], "single");
    assert_eq!(message["options"], json!({}));
    assert_eq!(message["isremove"], 0);
    let id = message["id"].as_str().expect("id");
    for device in [&mut phone, &mut laptop] {
        let frame = device.message(id).await;
        assert_eq!(&frame["data"], message, "the pushed message is the response's message");
        assert!(frame["timestamp"].as_i64().is_some());
    }
    assert!(b.queued(bob.id).await.is_empty(), "delivered live, nothing queued");
    let others = alice_socket.drain(Duration::from_millis(300)).await;
    assert!(others.iter().all(|f| f["data"]["id"] != id), "the sender's own sockets get nothing");
}

async fn an_offline_recipient_pulls_the_message_once_after_reconnecting(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let addr = b.serve();
    let (alice, bob) = (b.register("alice02").await, b.register("bob00002").await);
    b.befriend(alice.id, bob.id).await;
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let (status, sent) = send_text(&b, &alice, bob.id, "single", text).await;
        assert_eq!(status, 200, "{sent}");
        ids.push(sent["data"]["id"].as_str().expect("id").to_owned());
    }
    let stored: Vec<_> =
        b.queued(bob.id).await.iter().map(|m| m["id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(stored, ids, "queued in order while offline");
    // Without a connection nothing is removed.
    assert_eq!(post(&b, "/api/chat/chatGetmessageOffLine", &bob.token, json!({})).await.1["data"], "ok");
    assert_eq!(b.queued(bob.id).await.len(), 3);
    let mut bob_socket = Client::connect_ready(&addr, &bob.token).await;
    let (status, body) = post(&b, "/api/chat/chatGetmessageOffLine", &bob.token, json!({})).await;
    assert_eq!((status, body), (200, json!({"msg": "ok", "data": "ok"})));
    for id in &ids {
        // Prompts may still be arriving; the messages are the frames from Alice.
        let frame = bob_socket.next_where(|f| f["type"] == "singleChat" && f["data"]["from_id"] == alice.id).await;
        assert_eq!(frame["data"]["id"], id.as_str(), "delivered in the stored order");
    }
    assert!(b.queued(bob.id).await.is_empty(), "delivered items are removed");
    post(&b, "/api/chat/chatGetmessageOffLine", &bob.token, json!({})).await;
    let again = bob_socket.drain(Duration::from_millis(300)).await;
    assert!(again.iter().all(|f| f["data"]["from_id"] != alice.id), "exactly once");
}

async fn a_gone_connection_is_dropped_and_the_message_kept_offline(kind: BackendKind) {
    let b = Backend::new(kind).await;
    b.serve();
    let (alice, bob) = (b.register("alice03").await, b.register("bob00003").await);
    // A registration whose socket is gone (the gateway has no such connection).
    let stale = Connection {
        id: "stale-connection-id".into(),
        user_id: bob.id,
        token_digest: token_digest(&bob.token),
        role: Role::User,
    };
    b.state.connections.register(&stale, CONNECTION_TTL_SECS).await.expect("register");
    assert_eq!(b.state.connections.current_connections(&[bob.id]).await.expect("current"), vec![stale.clone()]);
    let (status, sent) = send_text(&b, &alice, bob.id, "single", "are you there").await;
    assert_eq!(status, 200, "{sent}");
    assert!(b.state.connections.current_connections(&[bob.id]).await.expect("current").is_empty(), "gone → removed");
    let stored = b.queued(bob.id).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0], sent["data"], "kept offline, never lost");
}

async fn strangers_get_one_message_and_settings_can_refuse_them(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (alice, bob, carol) = (b.register("alice04").await, b.register("bob00004").await, b.register("carol004").await);
    assert_eq!(send_text(&b, &alice, bob.id, "single", "first").await.0, 200, "one message before friendship");
    let (status, body) = send_text(&b, &alice, bob.id, "single", "second").await;
    assert_eq!((status, body["data"].as_str()), (400, Some("在成为好友之前，对方只允许向他发一条消息")));
    assert_eq!(b.queued(bob.id).await.len(), 1, "the refused message is not stored");
    // Once Bob has Alice as a friend the limit is gone.
    b.befriend(alice.id, bob.id).await;
    assert_eq!(send_text(&b, &alice, bob.id, "single", "third").await.0, 200);
    // Bob lets only friends message him.
    let userset = json!({"chatset": {"user": {"sendCount": 0, "needFollow": false}, "visitor": {"sendCount": 0}}});
    let (status, _) = post(&b, "/api/chat/userset", &bob.token, json!({"userset": userset.to_string()})).await;
    assert_eq!(status, 200);
    let (status, body) = send_text(&b, &carol, bob.id, "single", "hi").await;
    assert_eq!((status, body["data"].as_str()), (400, Some("对方设置成：需要您先成为他的好友才能发消息")));
    let (status, body) = send_text(&b, &carol, 999_999, "single", "hi").await;
    assert_eq!((status, body["data"].as_str()), (400, Some("对方不存在或者被禁用，不能发消息")));
    let (status, body) = send_text(&b, &carol, bob.id, "x", "hi").await;
    assert_eq!((status, body["data"].as_str()), (422, Some("接收类型 的值 `x` 必须在 [`single`,`group`] 中")));
}

/// Spec 6.6 under parallel requests: of 20 first messages sent at once to a stranger exactly one
/// is accepted (and stored), the rest get the limit's message.
async fn parallel_first_messages_to_a_stranger_accept_one(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let (alice, bob) = (b.register("alice07").await, b.register("bob00007").await);
    let sends = (0..20).map(|i| {
        let text = format!("hello {i}");
        let (b, alice) = (&b, &alice);
        async move { send_text(b, alice, bob.id, "single", &text).await }
    });
    let answers = futures_util::future::join_all(sends).await;
    let accepted = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused = answers
        .iter()
        .filter(|(status, body)| *status == 400 && body["data"] == "在成为好友之前，对方只允许向他发一条消息")
        .count();
    assert_eq!((accepted, refused), (1, 19), "{answers:?}");
    assert_eq!(b.queued(bob.id).await.len(), 1, "only the accepted message is stored");
}

async fn only_the_sender_revokes_and_only_within_five_minutes(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let addr = b.serve();
    let (alice, bob, carol) = (b.register("alice05").await, b.register("bob00005").await, b.register("carol005").await);
    let (_, sent) = send_text(&b, &alice, bob.id, "single", "oops").await;
    let message = sent["data"].clone();
    let id = message["id"].as_str().expect("id").to_owned();
    let revoke = |token: String, id: String| {
        let b = &b;
        let to_avatar = message["to_avatar"].clone();
        async move {
            post(
                b,
                "/api/chat/revokeMessage",
                &token,
                json!({"to_id": bob.id, "to_name": "forged", "to_avatar": to_avatar, "id": id, "chatType": "single",
                       "create_time": now_ms()}),
            )
            .await
        }
    };
    let (status, body) = revoke(carol.token.clone(), id.clone()).await;
    assert_eq!((status, body["data"].as_str()), (400, Some("消息不存在，无法撤回")), "not the sender");
    let mut bob_socket = Client::connect_ready(&addr, &bob.token).await;
    let (status, body) = revoke(alice.token.clone(), id.clone()).await;
    assert_eq!(status, 200, "{body}");
    let notice = &body["data"];
    assert_eq!(notice["id"], id.as_str());
    assert_eq!(notice["actionType"], "revoke");
    assert_eq!(notice["type"], "systemNotice");
    assert_eq!(notice["to_name"], message["to_name"], "the stored name, not the client's");
    assert_eq!(notice["data"]["data"], "alice05撤回了一条消息");
    assert_eq!(notice["group"], Value::Null);
    let pushed = bob_socket.next_where(|f| f["data"]["actionType"] == "revoke").await;
    assert_eq!(&pushed["data"], notice);
    // The queued copy (Bob was offline when it was sent) is marked revoked.
    let stored = b.queued(bob.id).await;
    assert_eq!(stored.iter().find(|m| m["id"] == id.as_str()).map(|m| m["isremove"].clone()), Some(json!(1)));
    // Revoking again answers the same without pushing again.
    let (status, again) = revoke(alice.token.clone(), id.clone()).await;
    assert_eq!((status, again["data"]["id"].as_str()), (200, Some(id.as_str())));
    assert!(bob_socket.drain(Duration::from_millis(300)).await.iter().all(|f| f["data"]["actionType"] != "revoke"));
    // A message older than five minutes by the server's clock cannot be revoked.
    let old = SentMessage {
        id: "00000000-0000-4000-8000-000000000001".into(),
        sender: alice.id,
        chat_type: "single".into(),
        to_id: bob.id,
        to_name: "bob00005".into(),
        to_avatar: "https://example.com/a.png".into(),
        create_time: now_ms() - 5 * 60 * 1000 - 1000,
        revoked: false,
        stored: String::new(),
    };
    b.state.messages.record(&old).await.expect("record");
    let (status, body) = revoke(alice.token.clone(), old.id.clone()).await;
    assert_eq!((status, body["data"].as_str()), (400, Some("消息超过5分钟，不能撤回")));
}

async fn a_group_message_reaches_online_members_and_queues_for_the_rest(kind: BackendKind) {
    let b = Backend::new(kind).await;
    let addr = b.serve();
    let owner = b.register("owner001").await;
    let mut members = Vec::new();
    for i in 0..49 {
        let member = b.register(&format!("member{i:02}")).await;
        b.befriend(owner.id, member.id).await;
        members.push(member);
    }
    let rows: Vec<i64> = b.state.social.friends(owner.id).await.expect("friends").iter().map(|f| f.id).collect();
    let (status, body) = post(&b, "/api/chat/group/create", &owner.token, json!({"userIds": rows})).await;
    assert_eq!((status, body["data"].as_str()), (200, Some("ok")), "{body}");
    let (_, list) = b.call("GET", "/api/chat/grouplist/1", &[("token", &owner.token)], "").await;
    let group_id = list["data"][0]["id"].as_i64().expect("group id");
    // Half the members are online.
    let mut online = Vec::new();
    for member in members.iter().take(25) {
        online.push(Client::connect_ready(&addr, &member.token).await);
    }
    let before: Vec<usize> = {
        let mut counts = Vec::new();
        for member in &members {
            counts.push(b.queued(member.id).await.len());
        }
        counts
    };
    let (status, sent) = send_text(&b, &owner, group_id, "group", "大家好").await;
    assert_eq!(status, 200, "{sent}");
    let message = &sent["data"];
    assert_eq!(message["chatType"], "group");
    assert_eq!(message["to_id"], group_id);
    assert_eq!(message["group"]["group_users"].as_array().map(Vec::len), Some(50));
    let id = message["id"].as_str().expect("id");
    for client in &mut online {
        assert_eq!(&client.message(id).await["data"], message);
    }
    for (i, member) in members.iter().enumerate() {
        let now: Vec<Value> = b.queued(member.id).await;
        let has = now.iter().any(|m| m["id"] == id);
        assert_eq!(has, i >= 25, "member {i}: queued only when offline");
        assert_eq!(now.len(), before[i] + usize::from(i >= 25));
    }
    assert!(b.queued(owner.id).await.iter().all(|m| m["id"] != id), "not to the sender");
}

on_every_backend!(
    connect_refusals_send_one_fail_frame_then_close,
    accepted_connections_get_welcome_prompts_and_pongs,
    a_visitor_gets_the_login_reminder,
    a_message_reaches_every_device_of_an_online_recipient,
    an_offline_recipient_pulls_the_message_once_after_reconnecting,
    a_gone_connection_is_dropped_and_the_message_kept_offline,
    strangers_get_one_message_and_settings_can_refuse_them,
    parallel_first_messages_to_a_stranger_accept_one,
    only_the_sender_revokes_and_only_within_five_minutes,
    a_group_message_reaches_online_members_and_queues_for_the_rest,
);

on_redis_cluster!(
    accepted_connections_get_welcome_prompts_and_pongs,
    a_message_reaches_every_device_of_an_online_recipient,
    a_gone_connection_is_dropped_and_the_message_kept_offline,
    a_group_message_reaches_online_members_and_queues_for_the_rest,
);
