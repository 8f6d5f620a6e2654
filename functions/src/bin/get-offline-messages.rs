//! Lambda: POST /api/chat/chatGetmessageOffLine

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::get_offline_messages).await
}
