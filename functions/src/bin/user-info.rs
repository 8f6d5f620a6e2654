//! Lambda: GET /api/userinfo/{uuid}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::user_info).await
}
