//! Lambda: POST /api/chat/revokeMessage

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::revoke_message).await
}
