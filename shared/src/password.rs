//! Password hashing (spec 2.4): argon2id for new hashes; legacy unsalted sha256 hex verified in
//! constant time and flagged for upgrade. Hashing runs on the blocking pool, off the async runtime.

use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// How long a request waits for a free hashing slot before it fails (500 envelope) rather than
/// queueing without end.
pub const QUEUE_DEADLINE: Duration = Duration::from_secs(10);

/// Result of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but stored as a legacy sha256 hash that must be replaced.
    YesLegacy,
}

/// argon2 work space: one slot per CPU, each with its ~19 MiB memory buffer, allocated once and
/// reused. So parallel logins and registrations wait for a slot instead of each allocating (and
/// the allocator keeping) their own buffer: the memory hashing can take is bounded by the CPUs,
/// not by the number of requests.
struct HashingSlots {
    free: Semaphore,
    buffers: Mutex<Vec<Vec<Block>>>,
}

static SLOTS: LazyLock<HashingSlots> = LazyLock::new(|| HashingSlots {
    free: Semaphore::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get)),
    buffers: Mutex::new(Vec::new()),
});

/// Runs `work` on the blocking pool with a slot's memory buffer. The slot and the buffer go back
/// only when the work is done, even if the request that asked for it is gone by then (a client
/// that hangs up mid-login must not free its slot while its hash still runs).
async fn in_slot<T: Send + 'static>(work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static) -> AppResult<T> {
    let slot = tokio::time::timeout(QUEUE_DEADLINE, SLOTS.free.acquire())
        .await
        .map_err(|_| AppError::internal("password hashing: no free slot within the deadline"))?
        .map_err(AppError::internal)?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let mut buffer = SLOTS.buffers.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        let result = work(&mut buffer);
        // A stored hash with more memory than ours grew the buffer: keep only the usual size.
        if buffer.len() > DEFAULT_BLOCKS {
            buffer.truncate(DEFAULT_BLOCKS);
            buffer.shrink_to_fit();
        }
        SLOTS.buffers.lock().unwrap_or_else(PoisonError::into_inner).push(buffer);
        result
    })
    .await
    .map_err(AppError::internal)
}

/// Blocks of argon2's default memory cost (19 MiB): what our hashes use.
const DEFAULT_BLOCKS: usize = Params::DEFAULT_M_COST as usize;
/// The most memory and passes a stored hash may ask for; more is treated as a mismatch rather
/// than allocated (hashes come from our own store, but a corrupt row must not take the process).
const MAX_STORED_M_COST: u32 = 4 * Params::DEFAULT_M_COST;
const MAX_STORED_T_COST: u32 = 16;

/// The first `blocks` blocks of `buffer`, grown (once, then reused) if it is smaller.
fn blocks_of(buffer: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if buffer.len() < blocks {
        buffer.resize(blocks, Block::default());
    }
    &mut buffer[..blocks]
}

fn hash_in(buffer: &mut Vec<Block>, password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(AppError::internal)?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            blocks_of(buffer, params.block_count()),
        )
        .map_err(AppError::internal)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(AppError::internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(AppError::internal)?),
    };
    Ok(phc.to_string())
}

fn is_legacy(stored: &str) -> bool {
    stored.len() == 64 && stored.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn verify_in(buffer: &mut Vec<Block>, password: &str, stored: &str) -> Verified {
    if is_legacy(stored) {
        let digest = hex::encode(Sha256::digest(password.as_bytes()));
        return if bool::from(digest.as_bytes().ct_eq(stored.as_bytes())) { Verified::YesLegacy } else { Verified::No };
    }
    let mut matches = || -> Option<bool> {
        let parsed = PasswordHash::new(stored).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.map_or(Some(Version::V0x13), |v| Version::try_from(v).ok())?;
        let params = Params::try_from(&parsed).ok()?;
        if params.m_cost() > MAX_STORED_M_COST || params.t_cost() > MAX_STORED_T_COST {
            return None;
        }
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).ok()?;
        let mut out = vec![0u8; expected.len()];
        let blocks = blocks_of(buffer, params.block_count());
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
            .ok()?;
        Some(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
    };
    if matches().unwrap_or(false) {
        Verified::Yes
    } else {
        Verified::No
    }
}

/// argon2id PHC string of `password`.
pub async fn hash(password: &str) -> AppResult<String> {
    let password = password.to_owned();
    in_slot(move |buffer| hash_in(buffer, &password)).await?
}

/// Checks `password` against a stored argon2 or legacy hash.
pub async fn verify(password: &str, stored: &str) -> AppResult<Verified> {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    in_slot(move |buffer| verify_in(buffer, &password, &stored)).await
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

    /// Hashes made here and by the `argon2` crate's own hasher verify both ways (the PHC string is
    /// the same format), and many at once all come out right through the bounded slots.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pooled_hashes_are_standard_phc_strings() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash("secret-1").await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(Argon2::default().verify_password(b"secret-1", &parsed).is_ok(), "the crate verifies ours");
        let theirs = Argon2::default()
            .hash_password(b"secret-2", &SaltString::generate(&mut OsRng))
            .expect("crate hash")
            .to_string();
        assert_eq!(verify("secret-2", &theirs).await.expect("verify"), Verified::Yes, "we verify the crate's");
        let hashes = futures_util::future::join_all((0..16).map(|i| async move {
            let password = format!("password-{i}");
            let stored = hash(&password).await.expect("hash");
            (verify(&password, &stored).await.expect("verify"), verify("wrong", &stored).await.expect("verify"))
        }))
        .await;
        assert!(hashes.iter().all(|v| *v == (Verified::Yes, Verified::No)), "{hashes:?}");
    }

    #[tokio::test]
    async fn legacy_sha256_is_accepted_and_flagged() {
        let legacy = "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92";
        assert_eq!(verify("123456", legacy).await.expect("verify"), Verified::YesLegacy);
        assert_eq!(verify("654321", legacy).await.expect("verify"), Verified::No);
        assert_eq!(verify("123456", "garbage").await.expect("verify"), Verified::No);
    }
}
