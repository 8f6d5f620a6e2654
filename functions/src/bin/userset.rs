//! Lambda: POST /api/chat/userset

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::userset).await
}
