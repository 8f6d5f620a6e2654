//! Password hashing (spec 2.4): argon2id for new hashes; legacy unsalted sha256 hex verified in
//! constant time and flagged for upgrade. Hashing runs on the blocking pool, off the async runtime.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AppError, AppResult};

/// Result of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but stored as a legacy sha256 hash that must be replaced.
    YesLegacy,
}

fn hash_blocking(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(AppError::internal)
}

fn is_legacy(stored: &str) -> bool {
    stored.len() == 64 && stored.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn verify_blocking(password: &str, stored: &str) -> Verified {
    if is_legacy(stored) {
        let digest = hex::encode(Sha256::digest(password.as_bytes()));
        return if bool::from(digest.as_bytes().ct_eq(stored.as_bytes())) { Verified::YesLegacy } else { Verified::No };
    }
    match PasswordHash::new(stored) {
        Ok(parsed) if Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() => Verified::Yes,
        _ => Verified::No,
    }
}

/// argon2id PHC string of `password`.
pub async fn hash(password: &str) -> AppResult<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.map_err(AppError::internal)?
}

/// Checks `password` against a stored argon2 or legacy hash.
pub async fn verify(password: &str, stored: &str) -> AppResult<Verified> {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    tokio::task::spawn_blocking(move || verify_blocking(&password, &stored)).await.map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_round_trip() {
        let h = hash("123456").await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert_eq!(verify("123456", &h).await.expect("verify"), Verified::Yes);
        assert_eq!(verify("1234567", &h).await.expect("verify"), Verified::No);
    }

    #[tokio::test]
    async fn legacy_sha256_is_accepted_and_flagged() {
        let legacy = "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92";
        assert_eq!(verify("123456", legacy).await.expect("verify"), Verified::YesLegacy);
        assert_eq!(verify("654321", legacy).await.expect("verify"), Verified::No);
        assert_eq!(verify("123456", "garbage").await.expect("verify"), Verified::No);
    }
}
