//! Lambda: POST /api/visitorRegister

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::visitor_register).await
}
