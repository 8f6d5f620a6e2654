//! Lambda: POST /api/chat/getUserSetInfo

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::get_user_set_info).await
}
