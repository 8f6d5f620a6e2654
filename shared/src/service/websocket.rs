//! The WebSocket protocol (spec 6.3, 6.4) over the gateway ports: the same code behind API
//! Gateway's routes and `chat-local`'s socket.

use serde_json::{json, Value};

use crate::auth::{self, token_digest, Caller, Refusal};
use crate::clock::now_ms;
use crate::error::AppResult;
use crate::jwt;
use crate::message::single_chat_frame;
use crate::model::{Role, User};
use crate::push::{post_one, Posted};
use crate::state::AppState;
use crate::store::{registry_shard, Connection, CONNECTION_TTL_SECS};

pub const WELCOME: &str = "欢迎您访问我们的系统！";
/// Redis key set by `updateUserinfo` (spec 3.5), read when another device connects.
fn modify_key(user_id: i64) -> String {
    format!("user:modify:{user_id}")
}

/// `$connect`: API Gateway gets its 200 at once; the checks and frames follow in the post-connect
/// step, because nothing may be posted to a connection before `$connect` returned (spec 6.3.1).
pub async fn connect(state: &AppState, connection_id: &str, token: Option<&str>) -> AppResult<()> {
    state.follow_up.after_connect(connection_id, token).await
}

/// The post-connect step: refuse (one fail frame, then close), or register the connection and
/// send the avatar prompt, the welcome frame and the role's prompts, in that order (6.3.1–6.3.2).
pub async fn after_connect(state: &AppState, connection_id: &str, token: Option<&str>) -> AppResult<()> {
    let caller = match auth::websocket_auth(state, token).await {
        Ok(caller) => caller,
        Err(Ok(Refusal(reason))) => return refuse(state, connection_id, reason).await,
        Err(Err(e)) => {
            // The client cannot be told why; closing lets it reconnect instead of waiting forever.
            let _ = state.gateway.close(connection_id).await;
            return Err(e);
        }
    };
    let token = token.unwrap_or_default();
    let conn = Connection {
        id: connection_id.to_owned(),
        user_id: caller.user.id,
        token_digest: token_digest(token),
        role: caller.claims.role,
    };
    let others = state.connections.register(&conn, CONNECTION_TTL_SECS).await?;
    let mut frames = Vec::new();
    if conn.role == Role::User && others > 0 {
        match state.sessions.value(&modify_key(conn.user_id)).await? {
            Some(change) if change == "avatar" => {
                frames.push(single_chat_frame(&prompt(state, &caller.user, Prompt::AvatarChanged)))
            }
            Some(_) => state.sessions.reset(&modify_key(conn.user_id)).await?,
            None => {}
        }
    }
    frames.push(json!({"type": "system", "data": WELCOME, "timestamp": now_ms()}).to_string().into_bytes());
    for kind in prompts_for(state, &caller).await? {
        frames.push(single_chat_frame(&prompt(state, &caller.user, kind)));
    }
    // In order, to this connection only; prompts are never stored offline (spec 6.2).
    for frame in frames {
        if post_one(state.connections.as_ref(), state.gateway.as_ref(), &conn, &frame).await != Posted::Accepted {
            break;
        }
    }
    Ok(())
}

async fn refuse(state: &AppState, connection_id: &str, reason: &str) -> AppResult<()> {
    let frame = json!({"msg": "fail", "data": reason}).to_string();
    if let Err(e) = state.gateway.post(connection_id, frame.as_bytes()).await {
        tracing::warn!(connection = connection_id, error = %e, "could not post the refusal");
    }
    state.gateway.close(connection_id).await
}

/// `$disconnect`: the connection leaves the registry (spec 6.3.6).
pub async fn disconnect(state: &AppState, connection_id: &str) -> AppResult<()> {
    state.connections.unregister(connection_id).await.map(drop)
}

/// `$default`: a client frame (spec 6.3.4). Pings get a pong; everything else is ignored.
pub async fn client_frame(state: &AppState, connection_id: &str, body: &str) -> AppResult<()> {
    let answer = match serde_json::from_str::<Value>(body) {
        Ok(frame) if frame["type"] == "ping" => match frame["token"].as_str() {
            // Signature and expiry only, as the original.
            Some(token) => jwt::verify(&state.config.jwt_secret, token, crate::clock::now_secs()).is_ok(),
            None => true,
        },
        Ok(_) => false,
        Err(_) => body.trim() == "ping",
    };
    if answer {
        let pong = json!({"type": "pong", "timestamp": now_ms()}).to_string();
        if state.gateway.post(connection_id, pong.as_bytes()).await? == Posted::Gone {
            state.connections.unregister(connection_id).await?;
        }
    }
    Ok(())
}

/// The server keepalive (spec 6.3.5), scheduled: the registry's shards, up to the highest user
/// id's, go to the fan-out queue in pages whose jobs ping one shard each (gone connections pruned
/// on the way), so no invocation's work grows with the number of sockets. Returns the jobs queued.
pub async fn keepalive(state: &AppState) -> AppResult<usize> {
    let shards = registry_shard(state.users.highest_id().await?) + 1;
    state.delivery.schedule_keepalive(shards).await
}

/// Connect-time prompts (spec 6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    SetPassword,
    GroupList,
    FriendList,
    UserInfoSet,
    WhoCanChatMe,
    Search,
    ApplyAddMeFriendSet,
    VisitorLogin,
    AvatarChanged,
}

const USER_INFO_SET_URL: &str = "/pages/setpageInfo/setpageInfo?action=userinfoSet&title=%E8%B4%A6%E5%8F%B7%E4%BF%A1%E6%81%AF%E8%AE%BE%E7%BD%AE&redirectUrl=%2Fpages%2Fxiaoxi%2Fxiaoxi&redirectType=switchTab";

/// The prompts of the caller's token role, in order, with their conditions.
async fn prompts_for(state: &AppState, caller: &Caller) -> AppResult<Vec<Prompt>> {
    let in_a_group = state.groups.is_active_member_of_any(caller.user.id).await?;
    Ok(match caller.claims.role {
        Role::Visitor => {
            let mut list = Vec::new();
            if in_a_group {
                list.push(Prompt::GroupList);
            }
            list.extend([Prompt::WhoCanChatMe, Prompt::VisitorLogin]);
            list
        }
        Role::User => {
            let has_friend = state.social.has_friend_to_chat(caller.user.id).await?;
            let mut list = vec![Prompt::SetPassword];
            if in_a_group {
                list.push(Prompt::GroupList);
            }
            if has_friend {
                list.push(Prompt::FriendList);
            }
            list.extend([Prompt::UserInfoSet, Prompt::WhoCanChatMe, Prompt::Search, Prompt::ApplyAddMeFriendSet]);
            list
        }
    })
}

/// One prompt message for `me` (spec 6.4's table).
pub fn prompt(state: &AppState, me: &User, kind: Prompt) -> Value {
    let img = format!("{}/chat/img", state.config.asset_base.trim_end_matches('/'));
    let kefu = format!("{}/chat/kefu.png", state.config.asset_base.trim_end_matches('/'));
    let (key, avatar, name, text, url) = match kind {
        Prompt::SetPassword => (
            "setPassword",
            format!("{img}/setPassword.png"),
            "修改密码",
            "您可以点击这里，修改密码",
            "/pages/setpageInfo/setpageInfo?action=setPassword&title=%E4%BF%AE%E6%94%B9%E5%AF%86%E7%A0%81",
        ),
        Prompt::GroupList => (
            "groupList",
            format!("{img}/qunliaoNoticeIcon.png"),
            "我的群聊",
            "可查看我加入的群聊列表",
            "/pages/applyMyfriend/applyMyfriend?action=grouplist&title=%E6%88%91%E7%9A%84%E7%BE%A4%E8%81%8A%E5%88%97%E8%A1%A8",
        ),
        Prompt::FriendList => (
            "friendsList",
            format!("{img}/friendList.png"),
            "我的通讯录",
            "可查看我的通讯录好友",
            "/pages/friendsList/friendsList",
        ),
        Prompt::UserInfoSet => {
            ("userInfoSet", me.avatar.clone(), "头像设置", "不满意你的头像可以更换", USER_INFO_SET_URL)
        }
        Prompt::WhoCanChatMe => (
            "whoCanChatMe",
            format!("{img}/whoCanChatMe.png"),
            "聊天消息条数限制",
            "谁可以和我聊天，可向我发几条消息",
            "/pages/setpageInfo/setpageInfo?action=chatset&title=%E5%92%8C%E6%88%91%E8%81%8A%E5%A4%A9%E8%AE%BE%E7%BD%AE",
        ),
        Prompt::Search => ("search", format!("{img}/search.png"), "搜索加好友", "搜索账号加好友或聊天", "/pages/search/search"),
        Prompt::ApplyAddMeFriendSet => (
            "applyAddMeFriendSet",
            format!("{img}/applyAddMeFriendSet.png"),
            "加我为好友时是否需要我验证",
            "默认不需要，您可以去设置",
            "/pages/setpageInfo/setpageInfo?action=applyAddMeFriendSet&title=%E7%94%B3%E8%AF%B7%E5%8A%A0%E6%88%91%E4%B8%BA%E5%A5%BD%E5%8F%8B%E8%AE%BE%E7%BD%AE",
        ),
        Prompt::VisitorLogin => {
            ("visitorLogin", kefu, "登录提示", "欢迎您，登录可以获取更多功能！", "/pages/loginCenter/loginCenter")
        }
        Prompt::AvatarChanged => {
            ("userInfoSet", me.avatar.clone(), "头像更换成功", "不满意你的头像可以继续更换", USER_INFO_SET_URL)
        }
    };
    let from_id = format!("redirect-{key}-{}", me.id);
    let mut redirect = json!({"url": url, "type": "navigateTo"});
    if kind == Prompt::AvatarChanged {
        redirect["doaction"] = json!("avatar");
    }
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "from_avatar": avatar,
        "from_name": name,
        "from_id": from_id,
        "to_id": me.id,
        "to_name": me.display_name(),
        "to_avatar": me.avatar,
        "chatType": "single",
        "type": "text",
        "data": {"data": text, "dataType": false, "otherData": null},
        "redirect": redirect,
        "options": {},
        "create_time": now_ms(),
        "isremove": 0,
        "group": {},
        "msgidKey": from_id,
    })
}
