//! Profile and settings endpoints (spec 3.2, 3.4, 3.5, 3.7).

use std::sync::Arc;

use chat_shared::service::profile;
use chat_shared::web::respond;
use chat_shared::AppState;
use lambda_http::{Body, Request, Response};

use super::authenticate;

/// POST /api/chat/searchUser — find registered users by username.
pub async fn search_user(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let keyword = p.string("keyword", "搜索关键词").len(1, 50).required()?;
            profile::search_users(&state, &me, &keyword).await
        }
        .await,
    )
}

/// POST /api/chat/userset — replace my settings JSON.
pub async fn userset(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let userset = p.string("userset", "用户设置").len(2, 10_000_000).required()?;
            profile::set_userset(&state, &me, &userset).await
        }
        .await,
    )
}

/// POST /api/chat/updateUserinfo — change nickname, avatar or invite_confirm.
pub async fn update_userinfo(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let fieldname = p.string("fieldname", "修改类型").len(1, 30).required()?;
            let value = p.string("fieldValue", "修改结果").len(1, 10_000_000).required()?;
            profile::update_userinfo(&state, &me, &fieldname, &value).await
        }
        .await,
    )
}

/// POST /api/chat/setPassword — change my password.
pub async fn set_password(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond(
        async {
            let (me, p) = authenticate(&state, &req).await?;
            let old = p.string("oldpassword", "原始密码").required()?;
            let new = p.string("newpassword", "新密码").len(6, 20).required()?;
            let confirm = p.string("checknewpassword", "确认新密码").required()?;
            profile::set_password(&state, &me, &old, &new, &confirm).await
        }
        .await,
    )
}
