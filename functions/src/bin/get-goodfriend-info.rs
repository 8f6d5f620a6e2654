//! Lambda: GET /api/chat/getgoodfriendinfo/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::get_goodfriend_info).await
}
