//! Lambda: POST /api/chat/isApplyfriend/{uuid}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::is_apply_friend).await
}
