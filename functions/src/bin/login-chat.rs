//! Lambda: POST /api/loginChat

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::login_chat).await
}
