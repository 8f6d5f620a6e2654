//! Lambda: POST /api/chat/socket/sendmessage

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::send_message).await
}
