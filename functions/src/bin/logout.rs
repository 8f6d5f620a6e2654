//! Lambda: POST /api/chat/logout

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::logout).await
}
