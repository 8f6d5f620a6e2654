//! Lambda: GET /api/chat/goodfriendlist/{page}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::goodfriend_list).await
}
