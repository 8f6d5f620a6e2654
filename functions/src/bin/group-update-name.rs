//! Lambda: POST /api/chat/groupUpdateName

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::group_update_name).await
}
