//! Lambda: POST /api/chat/groupnickname

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::group_nickname).await
}
