//! Lambda: GET /admin (the web console)

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::admin_console).await
}
