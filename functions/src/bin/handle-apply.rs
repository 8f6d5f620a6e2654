//! Lambda: POST /api/chat/handleapply/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::handle_apply).await
}
