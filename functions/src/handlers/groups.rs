//! Group endpoints (spec 5). Parameters are validated in the order of the spec's tables.

use std::sync::Arc;

use chat_shared::service::groups;
use chat_shared::validate::Params;
use chat_shared::web::respond;
use chat_shared::{AppResult, AppState};
use lambda_http::{Body, Request, Response};

use super::authenticate;

fn group_id(p: &Params, name: &'static str) -> AppResult<i64> {
    p.int(name, "群id").at_least(1).required()
}

/// POST /api/chat/group/create — create a group with some of my contacts.
pub async fn group_create(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let user_ids = p.string("userIds", "userIds").required()?;
            // Goodfriend row ids; an element that is no integer names no row.
            let rows: Vec<i64> = user_ids.split(',').filter_map(|id| id.trim().parse().ok()).collect();
            groups::create(&state, &me, &rows).await
        }
        .await,
    )
}

/// GET /api/chat/grouplist/{page} — groups I am an active member of.
pub async fn group_list(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let page = p.int("page", "页码").at_least(1).required()?;
            let limit = p.int("limit", "每页多少条").range(1, 100).or_default(30);
            groups::list(&state, &me, page, limit).await
        }
        .await,
    )
}

/// GET /api/chat/groupinfo/{id} — a group with its active members (no membership needed).
pub async fn group_info(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (_, p) = authenticate(&state, &req).await?;
            groups::info(&state, group_id(&p, "id")?).await
        }
        .await,
    )
}

/// POST /api/chat/groupUpdateName — the owner renames the group.
pub async fn group_update_name(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let id = group_id(&p, "id")?;
            let name = p.string("name", "群名称").len(1, 20).required()?;
            groups::rename(&state, &me, id, &name).await
        }
        .await,
    )
}

/// POST /api/chat/groupremark — the owner sets the announcement.
pub async fn group_remark(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let id = group_id(&p, "id")?;
            let remark = p.string("remark", "群公告").len(1, 500).required()?;
            groups::set_remark(&state, &me, id, &remark).await
        }
        .await,
    )
}

/// POST /api/chat/groupnickname — my nickname inside a group.
pub async fn group_nickname(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let id = group_id(&p, "id")?;
            let nickname = p.string("nickname", "群昵称").len(1, 20).required()?;
            groups::set_nickname(&state, &me, id, &nickname).await
        }
        .await,
    )
}

/// POST /api/chat/groupDeleteOrQuit — the owner dissolves the group, a member quits it.
pub async fn group_delete_or_quit(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            groups::delete_or_quit(&state, &me, group_id(&p, "id")?).await
        }
        .await,
    )
}

/// POST /api/chat/groupDeleteUser — the owner removes a member.
pub async fn group_delete_user(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let group = group_id(&p, "group_id")?;
            let user_id = p.int("user_id", "群成员id").at_least(1).required()?;
            groups::delete_user(&state, &me, group, user_id).await
        }
        .await,
    )
}

/// POST /api/chat/groupInviteUser — invite someone, or join by myself (DEVIATION D10).
pub async fn group_invite_user(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let group = group_id(&p, "group_id")?;
            let user_id = p.int("user_id", "用户id").at_least(1).required()?;
            // Validated for its messages' sake only: the effective inviter is the caller.
            let _inviteuser_id = p.int("inviteuser_id", "邀请人的用户id").or_default(0);
            let desc = p.string("addGroupDesc", "加群说明或者邀请说明").len(0, 500).or_default("");
            groups::invite(&state, &me, group, user_id, &desc).await
        }
        .await,
    )
}

/// POST /api/chat/groupAddUserSet — the owner sets the join policy.
pub async fn group_add_user_set(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let group = group_id(&p, "group_id")?;
            let value = p.int("addGroupSet", "进群设置属性值").range(0, 10).required()?;
            groups::set_join_policy(&state, &me, group, value).await
        }
        .await,
    )
}

/// POST /api/chat/groupAgreeOrNo — the owner accepts or rejects a pending member.
pub async fn group_agree_or_no(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let group = group_id(&p, "group_id")?;
            let user_id = p.int("user_id", "进群的用户id").at_least(1).required()?;
            let kind = p.string("type", "同意或者拒绝").one_of(&["agree", "no"]).required()?;
            groups::decide(&state, &me, group, user_id, &kind).await
        }
        .await,
    )
}
