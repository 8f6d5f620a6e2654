//! Lambda: the scheduled WebSocket keepalive (a ping to every connection)

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run_event(|state, _: serde_json::Value| chat_functions::handlers::ws_keepalive(state)).await
}
