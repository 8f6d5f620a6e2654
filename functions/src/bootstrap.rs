//! The Lambda binary of every function: `_HANDLER` (the function's `Handler` in template.yaml)
//! selects which one this process serves; `bootstrap <function>` does the same by hand, and
//! `bootstrap --list` prints the function names.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let name = std::env::args().nth(1).or_else(|| std::env::var("_HANDLER").ok()).unwrap_or_default();
    if name == "--list" {
        chat_functions::routes::functions().iter().for_each(|f| println!("{f}"));
        return Ok(());
    }
    // Lives as long as the process: leaked once so every request's log span can borrow it.
    chat_functions::lambda::run_function(name.leak()).await
}
