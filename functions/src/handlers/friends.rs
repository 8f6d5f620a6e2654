//! Friend endpoints (spec 3.3, 3.6, 4). `:id` is the friend's user id except in `handleapply`.

use std::sync::Arc;

use chat_shared::service::friends;
use chat_shared::social::APPLICATION_STATES;
use chat_shared::validate::Params;
use chat_shared::web::respond;
use chat_shared::{AppResult, AppState};
use lambda_http::{Body, Request, Response};

use super::authenticate;

/// `page` (path) and `limit` (query, invalid or out of range → default).
fn paging(p: &Params, max_limit: i64, default_limit: i64) -> AppResult<(i64, i64)> {
    let page = p.int("page", "页码").at_least(1).required()?;
    let limit = p.int("limit", "每页多少条").range(1, max_limit).or_default(default_limit);
    Ok((page, limit))
}

fn friend_id(p: &Params, desc: &'static str) -> AppResult<i64> {
    p.int("id", desc).at_least(1).required()
}

/// POST /api/chat/getUserSetInfo — a user's friend/chat settings as seen by me.
pub async fn get_user_set_info(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let user_id = p.int("userid", "用户id").at_least(1).required()?;
            friends::user_set_info(&state, &me, user_id).await
        }
        .await,
    )
}

/// POST /api/chat/isApplyfriend/{uuid} — the pending application this user sent me.
pub async fn is_apply_friend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let uuid = p.string("uuid", "uuid值").len(36, 36).required()?;
            friends::pending_application_from(&state, &me, &uuid).await
        }
        .await,
    )
}

/// POST /api/chat/applyfriend — apply to befriend a user.
pub async fn apply_friend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let friend_id = p.int("friend_id", "我申请添加的好友id").at_least(1).required()?;
            let nickname = p.string("nickname", "我的昵称或者说明").len(1, 50).or_default("");
            friends::apply(&state, &me, friend_id, &nickname).await
        }
        .await,
    )
}

/// GET /api/chat/listapplyfriend/{page} — applications addressed to me.
pub async fn list_apply_friend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let (page, limit) = paging(&p, 100, 10)?;
            friends::applications(&state, &me, page, limit).await
        }
        .await,
    )
}

/// POST /api/chat/handleapply/{id} — accept, refuse or ignore an application.
pub async fn handle_apply(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let id = p.int("id", "申请表的id").at_least(1).required()?;
            let remark = p.string("nickname", "好友备注").len(1, 50).or_default("");
            let status = p.string("status", "处理状态").one_of(&APPLICATION_STATES).required()?;
            friends::decide(&state, &me, id, &remark, &status).await
        }
        .await,
    )
}

/// POST /api/chat/autoAddFriendAndAgree — add a user who accepts everyone.
pub async fn auto_add_friend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let friend_id = p.int("friend_id", "我申请添加的好友id").at_least(1).required()?;
            let nickname = p.string("nickname", "说明").len(1, 50).or_default("");
            friends::auto_add(&state, &me, friend_id, &nickname).await
        }
        .await,
    )
}

/// GET /api/chat/goodfriendlist/{page} — my contacts grouped A–Z.
pub async fn goodfriend_list(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let (page, limit) = paging(&p, 2000, 2000)?;
            friends::contacts(&state, &me, page, limit).await
        }
        .await,
    )
}

/// GET /api/chat/getgoodfriendinfo/{id} — one contact with profile.
pub async fn get_goodfriend_info(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            friends::contact(&state, &me, friend_id(&p, "好友id")?).await
        }
        .await,
    )
}

/// POST /api/chat/setblackgoodfriend/{id} — toggle blacklist.
pub async fn set_black_goodfriend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            friends::toggle_black(&state, &me, friend_id(&p, "好友id")?).await
        }
        .await,
    )
}

/// POST /api/chat/setstargoodfriend/{id} — toggle star.
pub async fn set_star_goodfriend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            friends::toggle_star(&state, &me, friend_id(&p, "好友id")?).await
        }
        .await,
    )
}

/// POST /api/chat/setmeOrfriendCanSee/{id} — moments visibility flags.
pub async fn set_see_goodfriend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let id = friend_id(&p, "朋友id")?;
            let lookme = p.int("friendlookme", "朋友是否可以看我的动态").one_of(&[0, 1]).required()?;
            let look = p
                .int("melookfriend", "我的朋友圈是否出现朋友的信息（我是否看朋友的动态）")
                .one_of(&[0, 1])
                .required()?;
            friends::set_visibility(&state, &me, id, lookme, look).await
        }
        .await,
    )
}

/// POST /api/chat/ismygoodfriend/{id} — is this user my (non-blacklisted) contact?
pub async fn is_my_goodfriend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            friends::is_friend(&state, &me, friend_id(&p, "朋友id")?).await
        }
        .await,
    )
}

/// POST /api/chat/deletegoodfriend/{id} — remove a friend on both sides.
pub async fn delete_goodfriend(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            friends::remove(&state, &me, friend_id(&p, "朋友id")?).await
        }
        .await,
    )
}
