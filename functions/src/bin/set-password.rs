//! Lambda: POST /api/chat/setPassword

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::set_password).await
}
