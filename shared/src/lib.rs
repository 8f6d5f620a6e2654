//! Everything the chat functions share: configuration, the error envelope, request parsing and
//! validation, visitor signatures, passwords, tokens, domain services, store ports and adapters.

pub mod auth;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod error;
pub mod group;
pub mod jwt;
pub mod manager;
pub mod message;
pub mod model;
pub mod password;
pub mod push;
pub mod secrets;
pub mod service;
pub mod signing;
pub mod social;
pub mod sortword;
pub mod state;
pub mod store;
pub mod validate;
pub mod web;

pub use error::{AppError, AppResult};
pub use state::AppState;
