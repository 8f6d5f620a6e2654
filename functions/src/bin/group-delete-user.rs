//! Lambda: POST /api/chat/groupDeleteUser

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::group_delete_user).await
}
