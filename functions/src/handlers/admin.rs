//! Chat-user management (spec 7): the admin JSON API and the web console page.

use std::sync::{Arc, OnceLock};

use chat_shared::manager::Manager;
use chat_shared::service::admin;
use chat_shared::validate::Params;
use chat_shared::web::{bearer_token, html_response, params, respond_admin, self_contained_page_csp};
use chat_shared::{AppResult, AppState};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};

/// The console: one page, its script and style inline (no build step, nothing external).
const CONSOLE_HTML: &str = include_str!("../../assets/admin-console.html");

/// Parses the request and checks the admin token (spec 7.1) of an `/admin` route.
async fn admin_auth(state: &AppState, req: &Request) -> AppResult<(Manager, Params)> {
    let manager = admin::authenticate(state, bearer_token(req)).await?;
    Ok((manager, params(req)?))
}

/// `即时通讯用户账号` 4–20, then the optional `即时通讯用户头像` ≤ 1000 (spec 7.4, 7.6).
fn username(p: &Params) -> AppResult<String> {
    p.string("username", "即时通讯用户账号").len(4, 20).required()
}

fn avatar(p: &Params) -> AppResult<Option<String>> {
    p.string("avatar", "即时通讯用户头像").len(0, 1000).optional()
}

/// The `id` path parameter of edit and delete (int ≥ 1).
fn path_id(p: &Params) -> AppResult<i64> {
    p.int("id", "id").at_least(1).required()
}

/// POST /admin/loginevent — an admin logs in and gets an admin token.
pub async fn admin_login(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            let p = params(&req)?;
            let username = p.string("username", "管理员账号").required()?;
            let password = p.string("password", "管理员密码").required()?;
            admin::login(&state, &username, &password).await
        }
        .await,
    )
}

/// POST /admin/logout — ends the admin session.
pub async fn admin_logout(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            let (manager, _) = admin_auth(&state, &req).await?;
            admin::logout(&state, &manager).await
        }
        .await,
    )
}

/// GET /admin/chatuser (and /admin/chatuser/index) — all chat users, newest first, paginated.
pub async fn admin_user_list(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            let (_, p) = admin_auth(&state, &req).await?;
            let page = p.int("page", "page").at_least(1).or_default(1);
            let limit = p.int("limit", "limit").range(1, 100).or_default(10);
            let keyword = p.string("keyword", "keyword").optional()?;
            admin::list(&state, page, limit, keyword.as_deref()).await
        }
        .await,
    )
}

/// GET /admin/chatuser/create — the create form's description.
pub async fn admin_user_create_form(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            admin_auth(&state, &req).await?;
            Ok(admin::create_form())
        }
        .await,
    )
}

/// POST /admin/chatuser/save — creates a chat user.
pub async fn admin_user_save(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            let (_, p) = admin_auth(&state, &req).await?;
            let username = username(&p)?;
            let password = p.string("password", "即时通讯用户密码").len(6, 20).required()?;
            let avatar = avatar(&p)?;
            admin::save(&state, &username, &password, avatar).await
        }
        .await,
    )
}

/// GET /admin/chatuser/edit/{id} — the edit form with the user's current row.
pub async fn admin_user_edit(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            let (_, p) = admin_auth(&state, &req).await?;
            admin::edit_form(&state, path_id(&p)?).await
        }
        .await,
    )
}

/// POST /admin/chatuser/update/{id} — changes username, and password and avatar when given.
pub async fn admin_user_update(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            let (_, p) = admin_auth(&state, &req).await?;
            let id = p.int("id", "即时通讯用户id").required()?;
            let username = username(&p)?;
            let password = p.string("password", "即时通讯用户密码").len(6, 20).optional()?;
            let avatar = avatar(&p)?;
            admin::update(&state, id, &username, password.as_deref(), avatar).await
        }
        .await,
    )
}

/// POST /admin/chatuser/delete/{id} — deletes a chat user and everything that names it.
pub async fn admin_user_delete(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            let (_, p) = admin_auth(&state, &req).await?;
            admin::delete(&state, path_id(&p)?).await
        }
        .await,
    )
}

/// POST /admin/commonUpdateById — the status toggle (only `User.status` ∈ {0, 1}).
pub async fn admin_common_update(state: Arc<AppState>, req: Request) -> Response<Body> {
    respond_admin(
        async {
            let (_, p) = admin_auth(&state, &req).await?;
            let id = p.int("id", "分类id").required()?;
            let keyname = p.string("keyname", "keyname").required()?;
            let keyvalue = p.string("keyvalue", "keyvalue").required()?;
            let model = p.string("model", "model").required()?;
            admin::common_update(&state, id, &keyname, &keyvalue, &model).await
        }
        .await,
    )
}

/// The console's Content-Security-Policy: only its own inline script and style (by hash) run,
/// it talks to its own origin only, and nothing may frame it.
fn console_csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| self_contained_page_csp(CONSOLE_HTML))
}

/// GET /admin — the web console.
pub async fn admin_console(_state: Arc<AppState>, _req: Request) -> Response<Body> {
    html_response(CONSOLE_HTML, console_csp())
}

/// The `admin-bootstrap` function's event: the first manager's credentials.
#[derive(Deserialize)]
pub struct BootstrapEvent {
    pub username: String,
    pub password: String,
}

/// admin-bootstrap — creates the first manager unless one was bootstrapped before; answers
/// `{"created": bool}`. Invoked once after deploy (README "Deploy").
pub async fn admin_bootstrap(state: Arc<AppState>, event: BootstrapEvent) -> AppResult<Value> {
    let created = admin::bootstrap(&state, &event.username, &event.password).await?;
    match &created {
        Some(manager) => tracing::info!(manager_id = manager.id, "bootstrapped the first manager"),
        None => tracing::info!("a manager was bootstrapped before; nothing done"),
    }
    Ok(json!({ "created": created.is_some() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_policy_names_the_hashes_of_its_inline_blocks() {
        let csp = console_csp();
        assert!(csp.contains("script-src 'sha256-") && csp.contains("style-src 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
}
