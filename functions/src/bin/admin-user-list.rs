//! Lambda: GET /admin/chatuser and GET /admin/chatuser/index

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run_admin(chat_functions::handlers::admin_user_list).await
}
