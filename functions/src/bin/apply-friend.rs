//! Lambda: POST /api/chat/applyfriend

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::apply_friend).await
}
