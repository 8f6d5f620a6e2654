//! Lambda: POST /api/chat/groupAddUserSet

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::group_add_user_set).await
}
