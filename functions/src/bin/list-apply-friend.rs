//! Lambda: GET /api/chat/listapplyfriend/{page}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::list_apply_friend).await
}
