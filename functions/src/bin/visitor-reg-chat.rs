//! Lambda: POST /api/visitorregChat

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::visitor_reg_chat).await
}
