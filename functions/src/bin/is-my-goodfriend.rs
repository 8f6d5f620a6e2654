//! Lambda: POST /api/chat/ismygoodfriend/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::is_my_goodfriend).await
}
