//! Lambda: POST /api/regChat

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::reg_chat).await
}
