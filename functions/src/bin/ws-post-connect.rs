//! Lambda: the WebSocket post-connect step, invoked asynchronously by ws-connect

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run_event(chat_functions::handlers::ws_post_connect).await
}
