//! Chat tokens (spec 2.1): HS256 JWTs with claims `id, username, role, iat, exp, jti` only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
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

/// Signs a fresh token for a user.
pub fn issue(secret: &[u8], id: i64, username: &str, role: Role, now_secs: i64, ttl_secs: u64) -> String {
    let claims = Claims {
        id,
        username: username.to_owned(),
        role,
        iat: now_secs,
        exp: now_secs + ttl_secs as i64,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let payload = serde_json::to_vec(&claims).unwrap_or_default();
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

/// Verifies signature (constant time), algorithm and expiry.
pub fn verify(secret: &[u8], token: &str, now_secs: i64) -> Result<Claims, TokenRejection> {
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
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenRejection::Invalid)?;
    if claims.exp + LEEWAY_SECS < now_secs {
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
}
