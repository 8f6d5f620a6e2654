//! HS256 JWTs with small claims: chat tokens (spec 2.1: `id, username, role, iat, exp, jti`) and
//! admin tokens (spec 7.1: the same names, `role` always `admin`, signed with another key).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::Role;

/// Clock leeway when checking `exp`.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Claims of an admin token (spec 7.1); `role` is checked to be [`ADMIN_ROLE`] on verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminClaims {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

pub const ADMIN_ROLE: &str = "admin";

/// Claims that carry an expiry.
pub trait Expiring {
    fn exp(&self) -> i64;
}

impl Expiring for Claims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

impl Expiring for AdminClaims {
    fn exp(&self) -> i64 {
        self.exp
    }
}

/// Why a token was refused; the auth check maps these to the spec's two messages.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenRejection {
    Expired,
    Invalid,
}

/// Signs a fresh chat token for a user.
pub fn issue(secret: &[u8], id: i64, username: &str, role: Role, now_secs: i64, ttl_secs: u64) -> String {
    sign(
        secret,
        &Claims {
            id,
            username: username.to_owned(),
            role,
            iat: now_secs,
            exp: now_secs + ttl_secs as i64,
            jti: uuid::Uuid::new_v4().to_string(),
        },
    )
}

/// Signs a fresh admin token for a manager.
pub fn issue_admin(secret: &[u8], id: i64, username: &str, now_secs: i64, ttl_secs: u64) -> String {
    sign(
        secret,
        &AdminClaims {
            id,
            username: username.to_owned(),
            role: ADMIN_ROLE.to_owned(),
            iat: now_secs,
            exp: now_secs + ttl_secs as i64,
            jti: uuid::Uuid::new_v4().to_string(),
        },
    )
}

// The one place tokens are made and checked, on `jsonwebtoken` with the algorithm pinned.
fn sign(secret: &[u8], claims: &impl Serialize) -> String {
    // Keys are checked at start (≥ 32 bytes) and HS256 signing of serialisable claims cannot fail.
    EncodingKey::from_secret(secret)
        .and_then(|key| jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key))
        .unwrap_or_default()
}

/// Verifies a chat token: signature (constant time), algorithm and expiry.
pub fn verify(secret: &[u8], token: &str, now_secs: i64) -> Result<Claims, TokenRejection> {
    verify_claims(secret, token, now_secs)
}

/// Verifies an admin token like [`verify`], and that its role is `admin`.
pub fn verify_admin(secret: &[u8], token: &str, now_secs: i64) -> Result<AdminClaims, TokenRejection> {
    let claims: AdminClaims = verify_claims(secret, token, now_secs)?;
    if claims.role != ADMIN_ROLE {
        return Err(TokenRejection::Invalid);
    }
    Ok(claims)
}

fn verify_claims<C: DeserializeOwned + Expiring>(
    secret: &[u8],
    token: &str,
    now_secs: i64,
) -> Result<C, TokenRejection> {
    // Only HS256: `alg: none` and every other algorithm are refused. The signature is compared in
    // constant time by the crate. `exp` is checked below against the caller's clock (with the
    // leeway), after the signature, so a forged token is never reported as merely expired.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let claims = DecodingKey::from_secret(secret)
        .and_then(|key| jsonwebtoken::decode::<C>(token, &key, &validation))
        .map_err(|_| TokenRejection::Invalid)?
        .claims;
    if claims.exp() + LEEWAY_SECS < now_secs {
        return Err(TokenRejection::Expired);
    }
    Ok(claims)
}

/// What the connection registry keeps of a token: enough to tell whether a connection's token is
/// still the user's current one, never the token itself.
pub fn token_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(token.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify_and_carry_only_the_small_claims() {
        let t = issue(SECRET, 6, "my01", Role::User, 1_000, 60);
        let c = verify(SECRET, &t, 1_010).expect("valid");
        assert_eq!((c.id, c.username.as_str(), c.role, c.iat, c.exp), (6, "my01", Role::User, 1_000, 1_060));
        let payload = URL_SAFE_NO_PAD.decode(t.split('.').nth(1).expect("payload")).expect("b64");
        let json: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        let mut keys: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["exp", "iat", "id", "jti", "role", "username"]);
        assert_ne!(t, issue(SECRET, 6, "my01", Role::User, 1_000, 60), "jti makes tokens unique");
    }

    /// Made by the hand-written HS256 signer this module had before `jsonwebtoken` (header
    /// `{"alg":"HS256","typ":"JWT"}`, claims in declaration order): issued tokens stay valid.
    const TOKEN_OF_THE_PREVIOUS_SIGNER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6NiwidXNlcm5hbWUiOiJteTAxIiwicm9sZSI6InVzZXIiLCJpYXQiOjEwMDAsImV4cCI6NDEwMjQ0NDgwMCwianRpIjoiMGYxYjlhNTItM2MxZS00ZDdlLTlhNDEtNWIyZjhjNmQ3ZTEwIn0.GiRjL1JKSO7TvwPoMbUNYRLgu6-NjLkBvAS-NWwaprk";

    #[test]
    fn tokens_issued_before_the_library_still_verify() {
        let claims = verify(SECRET, TOKEN_OF_THE_PREVIOUS_SIGNER, 2_000).expect("still valid");
        assert_eq!(
            (claims.id, claims.username.as_str(), claims.role, claims.exp),
            (6, "my01", Role::User, 4_102_444_800)
        );
        assert_eq!(claims.jti, "0f1b9a52-3c1e-4d7e-9a41-5b2f8c6d7e10");
        assert_eq!(
            verify(b"another-secret-another-secret-!!", TOKEN_OF_THE_PREVIOUS_SIGNER, 2_000),
            Err(TokenRejection::Invalid)
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let t = issue(SECRET, 6, "my01", Role::User, 1_000, 60);
        let payload = t.split('.').nth(1).expect("payload");
        for header in
            [r#"{"alg":"HS512","typ":"JWT"}"#, r#"{"alg":"HS384"}"#, r#"{"alg":"RS256"}"#, r#"{"alg":"None"}"#]
        {
            let forged = format!("{}.{payload}.{}", URL_SAFE_NO_PAD.encode(header), t.split('.').nth(2).expect("sig"));
            assert_eq!(verify(SECRET, &forged, 1_000), Err(TokenRejection::Invalid), "{header}");
        }
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &verify(SECRET, &t, 1_000).expect("claims"),
            &EncodingKey::from_secret(SECRET).expect("key"),
        )
        .expect("HS512 token");
        assert_eq!(verify(SECRET, &hs512, 1_000), Err(TokenRejection::Invalid), "a valid HS512 signature");
    }

    #[test]
    fn rejects_expiry_tampering_and_wrong_keys() {
        let t = issue(SECRET, 6, "my01", Role::Visitor, 1_000, 60);
        assert_eq!(verify(SECRET, &t, 1_060 + LEEWAY_SECS), verify(SECRET, &t, 1_000));
        assert_eq!(verify(SECRET, &t, 1_061 + LEEWAY_SECS), Err(TokenRejection::Expired));
        assert_eq!(verify(b"another-secret-another-secret-!!", &t, 1_000), Err(TokenRejection::Invalid));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD
            .encode(r#"{"id":1,"username":"admin","role":"user","iat":1000,"exp":9999999999,"jti":"x"}"#);
        assert_eq!(verify(SECRET, &parts.join("."), 1_000), Err(TokenRejection::Invalid));
        let none_alg = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), parts[1]);
        assert_eq!(verify(SECRET, &none_alg, 1_000), Err(TokenRejection::Invalid));
        assert_eq!(verify(SECRET, "not-a-jwt", 1_000), Err(TokenRejection::Invalid));
    }

    #[test]
    fn admin_and_chat_tokens_are_not_interchangeable() {
        let admin = issue_admin(SECRET, 1, "admin", 1_000, 60);
        let claims = verify_admin(SECRET, &admin, 1_010).expect("valid admin token");
        assert_eq!((claims.id, claims.role.as_str(), claims.exp), (1, "admin", 1_060));
        // Even under one key, a chat token has no admin role and an admin token no chat role.
        let chat = issue(SECRET, 1, "admin", Role::User, 1_000, 60);
        assert_eq!(verify_admin(SECRET, &chat, 1_010), Err(TokenRejection::Invalid));
        assert_eq!(verify(SECRET, &admin, 1_010), Err(TokenRejection::Invalid));
        assert_eq!(verify_admin(SECRET, &admin, 1_061 + LEEWAY_SECS), Err(TokenRejection::Expired));
    }
}
