//! Lambda: GET /admin/chatuser/create

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run_admin(chat_functions::handlers::admin_user_create_form).await
}
