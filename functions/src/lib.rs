//! The chat functions: one handler per endpoint (one multi-call Lambda binary, `src/bootstrap.rs`), the
//! route table, the Lambda entry point, and `chat-local`'s API Gateway emulation.

pub mod handlers;
pub mod lambda;
pub mod local;
pub mod routes;
