pub mod admin;
pub mod friends;
pub mod groups;
pub mod identity;
pub mod messaging;
pub mod profile;
pub mod websocket;
