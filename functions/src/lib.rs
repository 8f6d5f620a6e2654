//! The chat functions: one handler per endpoint (one Lambda binary each under `src/bin/`), the
//! route table, the Lambda entry point, and `chat-local`'s API Gateway emulation.

pub mod handlers;
pub mod lambda;
pub mod local;
pub mod routes;
