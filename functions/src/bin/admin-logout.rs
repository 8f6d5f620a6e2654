//! Lambda: POST /admin/logout

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run_admin(chat_functions::handlers::admin_logout).await
}
