//! HS256 JWTs with small claims: chat tokens (spec 2.1: `id, username, role, iat, exp, jti`) and
//! admin tokens (spec 7.1: the same names, `role` always `admin`, signed with another key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::Role;

/// Clock leeway when checking `exp`.
pub const LEEWAY_SECS: i64 = 30;
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

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

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
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

fn sign(secret: &[u8], claims: &impl Serialize) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(HEADER), URL_SAFE_NO_PAD.encode(payload));
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

#[derive(Deserialize)]
struct Header {
    alg: String,
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
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRejection::Invalid);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenRejection::Invalid)?;
    if header.alg != "HS256" {
        return Err(TokenRejection::Invalid);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenRejection::Invalid)?;
    let mut m = mac(secret);
    m.update(&token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()]);
    m.verify_slice(&signature).map_err(|_| TokenRejection::Invalid)?;
    let claims: C = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenRejection::Invalid)?;
    if claims.exp() + LEEWAY_SECS < now_secs {
        return Err(TokenRejection::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
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
