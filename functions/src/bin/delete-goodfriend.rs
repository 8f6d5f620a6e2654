//! Lambda: POST /api/chat/deletegoodfriend/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::delete_goodfriend).await
}
