pub mod identity;
pub mod profile;
