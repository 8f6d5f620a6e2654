//! Lambda: POST /api/chat/autoAddFriendAndAgree

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::auto_add_friend).await
}
