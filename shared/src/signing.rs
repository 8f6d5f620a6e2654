//! Visitor request signature `X-Security-Sign` (spec 2.5): the original's algorithm, compared in
//! constant time, with a symmetric five-minute window.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AppError, AppResult};

/// Allowed clock difference between client and server, either way.
pub const MAX_SKEW_MS: i64 = 300_000;

/// `sha256_hex("deviceId=<d>&salt=<s>&timestamp=<t>APP_SECRET")`.
pub fn visitor_sign(device_id: &str, timestamp: i64, salt: &str) -> String {
    let text = format!("deviceId={device_id}&salt={salt}&timestamp={timestamp}APP_SECRET");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Steps 3–5 of spec 2.5: signature, time window, device id format.
pub fn check_visitor_request(sign: &str, device_id: &str, timestamp: i64, salt: &str, now_ms: i64) -> AppResult<()> {
    let expected = visitor_sign(device_id, timestamp, salt);
    if !bool::from(expected.as_bytes().ct_eq(sign.as_bytes())) {
        return Err(AppError::Fail("非法签名"));
    }
    if (now_ms - timestamp).abs() > MAX_SKEW_MS {
        return Err(AppError::Fail("请求已过期"));
    }
    if !is_valid_device_id(device_id) {
        return Err(AppError::Fail("无效标识"));
    }
    Ok(())
}

/// `^[A-Za-z0-9_-]{36}$`
pub fn is_valid_device_id(device_id: &str) -> bool {
    device_id.len() == 36 && device_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::COURSE_VISITOR_SALT;

    const DEVICE: &str = "8d1a344c-bf16-5425-adbc-d12f49cfa332";
    const TS: i64 = 1_752_835_449_008;
    const SIGN: &str = "a5b40139b65b13cf214d05c27dece58ebe840d888b12272f0ccd15ea72e68998";

    fn fail_message(r: AppResult<()>) -> &'static str {
        match r {
            Err(AppError::Fail(m)) => m,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn reproduces_the_spec_worked_example() {
        assert_eq!(visitor_sign(DEVICE, TS, COURSE_VISITOR_SALT), SIGN);
        assert!(check_visitor_request(SIGN, DEVICE, TS, COURSE_VISITOR_SALT, TS + 1000).is_ok());
    }

    #[test]
    fn rejects_bad_signatures_and_timestamps_either_way() {
        assert_eq!(
            fail_message(check_visitor_request(&SIGN.to_uppercase(), DEVICE, TS, COURSE_VISITOR_SALT, TS)),
            "非法签名"
        );
        assert_eq!(fail_message(check_visitor_request(SIGN, DEVICE, TS, "other", TS)), "非法签名");
        assert_eq!(
            fail_message(check_visitor_request(SIGN, DEVICE, TS, COURSE_VISITOR_SALT, TS + MAX_SKEW_MS + 1)),
            "请求已过期"
        );
        assert_eq!(
            fail_message(check_visitor_request(SIGN, DEVICE, TS, COURSE_VISITOR_SALT, TS - MAX_SKEW_MS - 1)),
            "请求已过期"
        );
        let long = format!("fallback-{DEVICE}");
        let sign = visitor_sign(&long, TS, COURSE_VISITOR_SALT);
        assert_eq!(fail_message(check_visitor_request(&sign, &long, TS, COURSE_VISITOR_SALT, TS)), "无效标识");
    }
}
