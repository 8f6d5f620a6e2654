//! Lambda: POST /api/chat/groupAgreeOrNo

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_functions::lambda::run(chat_functions::handlers::group_agree_or_no).await
}
