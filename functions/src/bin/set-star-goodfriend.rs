//! Lambda: POST /api/chat/setstargoodfriend/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::set_star_goodfriend).await
}
