//! Lambda: POST /api/chat/setmeOrfriendCanSee/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::set_see_goodfriend).await
}
