//! Lambda: POST /api/chat/setblackgoodfriend/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::set_black_goodfriend).await
}
