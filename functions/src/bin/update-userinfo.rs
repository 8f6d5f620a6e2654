//! Lambda: POST /api/chat/updateUserinfo

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::update_userinfo).await
}
