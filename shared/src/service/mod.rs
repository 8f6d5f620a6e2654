pub mod friends;
pub mod identity;
pub mod profile;
