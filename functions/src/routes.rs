//! The route table: which handler serves which method and path, and which Lambda function it is.
//! `chat-local` dispatches with it, the Lambda binary selects a function's handler by it, and
//! template.yaml declares the same routes and functions for API Gateway.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chat_shared::AppState;
use lambda_http::{Body, Request, Response};

use crate::handlers;

pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
pub type Handler = fn(Arc<AppState>, Request) -> HandlerFuture;

pub struct Route {
    pub method: &'static str,
    /// API Gateway route path; `{name}` segments become path parameters.
    pub path: &'static str,
    /// The Lambda function serving it: its `Handler` in template.yaml and its `events/<function>.json`.
    pub function: &'static str,
    pub handler: Handler,
}

macro_rules! route {
    ($method:literal, $path:literal, $function:literal, $handler:path) => {
        Route {
            method: $method,
            path: $path,
            function: $function,
            handler: |state, req| Box::pin($handler(state, req)),
        }
    };
}

pub static ROUTES: &[Route] = &[
    route!("POST", "/api/regChat", "reg-chat", handlers::reg_chat),
    route!("POST", "/api/loginChat", "login-chat", handlers::login_chat),
    route!("POST", "/api/chat/logout", "logout", handlers::logout),
    route!("POST", "/api/visitorRegister", "visitor-register", handlers::visitor_register),
    route!("POST", "/api/visitorregChat", "visitor-reg-chat", handlers::visitor_reg_chat),
    route!("POST", "/api/visitorloginChat", "visitor-login-chat", handlers::visitor_login_chat),
    route!("GET", "/api/userinfo/{uuid}", "user-info", handlers::user_info),
    route!("POST", "/api/chat/searchUser", "search-user", handlers::search_user),
    route!("POST", "/api/chat/userset", "userset", handlers::userset),
    route!("POST", "/api/chat/updateUserinfo", "update-userinfo", handlers::update_userinfo),
    route!("POST", "/api/chat/setPassword", "set-password", handlers::set_password),
    route!("POST", "/api/chat/getUserSetInfo", "get-user-set-info", handlers::get_user_set_info),
    route!("POST", "/api/chat/isApplyfriend/{uuid}", "is-apply-friend", handlers::is_apply_friend),
    route!("POST", "/api/chat/applyfriend", "apply-friend", handlers::apply_friend),
    route!("GET", "/api/chat/listapplyfriend/{page}", "list-apply-friend", handlers::list_apply_friend),
    route!("POST", "/api/chat/handleapply/{id}", "handle-apply", handlers::handle_apply),
    route!("POST", "/api/chat/autoAddFriendAndAgree", "auto-add-friend", handlers::auto_add_friend),
    route!("GET", "/api/chat/goodfriendlist/{page}", "goodfriend-list", handlers::goodfriend_list),
    route!("GET", "/api/chat/getgoodfriendinfo/{id}", "get-goodfriend-info", handlers::get_goodfriend_info),
    route!("POST", "/api/chat/setblackgoodfriend/{id}", "set-black-goodfriend", handlers::set_black_goodfriend),
    route!("POST", "/api/chat/setstargoodfriend/{id}", "set-star-goodfriend", handlers::set_star_goodfriend),
    route!("POST", "/api/chat/setmeOrfriendCanSee/{id}", "set-see-goodfriend", handlers::set_see_goodfriend),
    route!("POST", "/api/chat/ismygoodfriend/{id}", "is-my-goodfriend", handlers::is_my_goodfriend),
    route!("POST", "/api/chat/deletegoodfriend/{id}", "delete-goodfriend", handlers::delete_goodfriend),
    route!("POST", "/api/chat/group/create", "group-create", handlers::group_create),
    route!("GET", "/api/chat/grouplist/{page}", "group-list", handlers::group_list),
    route!("GET", "/api/chat/groupinfo/{id}", "group-info", handlers::group_info),
    route!("POST", "/api/chat/groupUpdateName", "group-update-name", handlers::group_update_name),
    route!("POST", "/api/chat/groupremark", "group-remark", handlers::group_remark),
    route!("POST", "/api/chat/groupnickname", "group-nickname", handlers::group_nickname),
    route!("POST", "/api/chat/groupDeleteOrQuit", "group-delete-or-quit", handlers::group_delete_or_quit),
    route!("POST", "/api/chat/groupDeleteUser", "group-delete-user", handlers::group_delete_user),
    route!("POST", "/api/chat/groupInviteUser", "group-invite-user", handlers::group_invite_user),
    route!("POST", "/api/chat/groupAddUserSet", "group-add-user-set", handlers::group_add_user_set),
    route!("POST", "/api/chat/groupAgreeOrNo", "group-agree-or-no", handlers::group_agree_or_no),
    route!("POST", "/api/chat/socket/sendmessage", "send-message", handlers::send_message),
    route!("POST", "/api/chat/chatGetmessageOffLine", "get-offline-messages", handlers::get_offline_messages),
    route!("POST", "/api/chat/revokeMessage", "revoke-message", handlers::revoke_message),
    route!("GET", "/admin", "admin-console", handlers::admin_console),
    route!("POST", "/admin/loginevent", "admin-login", handlers::admin_login),
    route!("POST", "/admin/logout", "admin-logout", handlers::admin_logout),
    route!("GET", "/admin/chatuser", "admin-user-list", handlers::admin_user_list),
    route!("GET", "/admin/chatuser/index", "admin-user-list", handlers::admin_user_list),
    route!("GET", "/admin/chatuser/create", "admin-user-create-form", handlers::admin_user_create_form),
    route!("POST", "/admin/chatuser/save", "admin-user-save", handlers::admin_user_save),
    route!("GET", "/admin/chatuser/edit/{id}", "admin-user-edit", handlers::admin_user_edit),
    route!("POST", "/admin/chatuser/update/{id}", "admin-user-update", handlers::admin_user_update),
    route!("POST", "/admin/chatuser/delete/{id}", "admin-user-delete", handlers::admin_user_delete),
    route!("POST", "/admin/commonUpdateById", "admin-common-update", handlers::admin_common_update),
];

/// The `$default` route's function and handler (preflight and 404).
pub static DEFAULT_ROUTE: Route = route!("ANY", "$default", "not-found", handlers::not_found);

/// The WebSocket API's routes (`method` "WS", `path` the route key); `chat-local`'s socket
/// emulates them, template.yaml declares them on the WebSocket API.
pub static WS_ROUTES: &[Route] = &[
    route!("WS", "$connect", "ws-connect", handlers::ws_connect),
    route!("WS", "$disconnect", "ws-disconnect", handlers::ws_disconnect),
    route!("WS", "$default", "ws-default", handlers::ws_default),
];

/// Functions invoked with plain events rather than through an API: the post-connect step
/// (asynchronous invoke from `ws-connect`), the scheduled keepalive, the admin bootstrap and the
/// delivery fan-out (SQS event source mapping).
pub static EVENT_FUNCTIONS: &[&str] = &["ws-post-connect", "ws-keepalive", "admin-bootstrap", "message-fanout"];

/// Every Lambda function: the HTTP and WebSocket routes' functions and the event functions.
pub fn functions() -> Vec<&'static str> {
    let mut names: Vec<&str> =
        http_and_ws_routes().map(|r| r.function).chain(EVENT_FUNCTIONS.iter().copied()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Every route a function serves, HTTP and WebSocket alike, and `$default`.
pub fn http_and_ws_routes() -> impl Iterator<Item = &'static Route> {
    ROUTES.iter().chain(WS_ROUTES).chain(std::iter::once(&DEFAULT_ROUTE))
}

/// The routes `function` serves (a function may serve several paths).
pub fn routes_of(function: &str) -> impl Iterator<Item = &'static Route> + '_ {
    http_and_ws_routes().filter(move |r| r.function == function)
}

/// Routes under `/admin/` need the admin settings (spec 7.1); the console page at `/admin` does not.
pub fn is_admin(route: &Route) -> bool {
    route.path.starts_with("/admin/")
}

/// The WebSocket route with this route key.
pub fn ws_route(route_key: &str) -> Option<&'static Route> {
    WS_ROUTES.iter().find(|r| r.path == route_key)
}

/// Matches a path against a route path, returning its path parameters.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let mut want = template.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {
                params.push((w[1..w.len() - 1].to_owned(), g.to_owned()));
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// The route for a method and path, with its path parameters; `None` → `$default`.
pub fn find(method: &str, path: &str) -> Option<(&'static Route, Vec<(String, String)>)> {
    ROUTES.iter().find_map(|r| {
        if r.method != method {
            return None;
        }
        match_path(r.path, path).map(|p| (r, p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_exactly_with_parameters() {
        assert_eq!(
            match_path("/api/userinfo/{uuid}", "/api/userinfo/abc"),
            Some(vec![("uuid".to_owned(), "abc".to_owned())])
        );
        assert_eq!(match_path("/api/userinfo/{uuid}", "/api/userinfo/"), None);
        assert_eq!(match_path("/api/userinfo/{uuid}", "/api/userinfo/a/b"), None);
        assert_eq!(match_path("/api/regChat", "/api/regChat/"), None, "no trailing slash");
        assert_eq!(match_path("/api/regChat", "/api/regchat"), None, "case-sensitive");
        assert!(find("GET", "/api/regChat").is_none(), "unknown method on a known path is a 404");
        assert_eq!(find("POST", "/api/regChat").map(|(r, _)| r.function), Some("reg-chat"));
    }
}
