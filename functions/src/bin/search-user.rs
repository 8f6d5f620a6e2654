//! Lambda: POST /api/chat/searchUser

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::search_user).await
}
