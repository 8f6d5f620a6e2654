//! Lambda: creates the first manager from the invoke payload `{"username","password"}` unless one
//! was bootstrapped before (run once after deploy; see README "Deploy")

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run_admin_event(chat_functions::handlers::admin_bootstrap).await
}
