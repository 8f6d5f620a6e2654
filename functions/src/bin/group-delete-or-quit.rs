//! Lambda: POST /api/chat/groupDeleteOrQuit

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::group_delete_or_quit).await
}
