//! The HTTP edge: reading an API Gateway (payload v2) request into [`Params`] and writing the
//! `{msg, data}` envelope with CORS headers (spec 1.1–1.3).

use std::collections::HashMap;

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Map, Value};

use crate::error::{envelope, AppError, AppResult};
use crate::validate::Params;

/// Egg's `jsonLimit` / `formLimit`.
pub const BODY_LIMIT_BYTES: usize = 100 * 1024;

const CORS: [(&str, &str); 3] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "GET,POST,OPTIONS"),
    ("access-control-allow-headers", "Content-Type,token,X-Security-Sign,Authorization"),
];

/// A request header as a string, `None` when absent, empty or not UTF-8.
pub fn header_value<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// The request path as the client sent it (API Gateway's `rawPath`).
pub fn raw_path(req: &Request) -> &str {
    let raw = req.raw_http_path();
    if raw.is_empty() {
        req.uri().path()
    } else {
        raw
    }
}

/// Reads path, body and query parameters of a request (spec 1.2).
pub fn params(req: &Request) -> AppResult<Params> {
    let path: HashMap<String, String> =
        req.path_parameters().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in req.query_string_parameters().iter() {
        query.entry(array_key(k).to_owned()).or_default().push(v.to_owned());
    }
    Ok(Params::new(path, parse_body(req)?, query))
}

/// `a[]` names the array `a` (qs semantics).
fn array_key(key: &str) -> &str {
    key.strip_suffix("[]").unwrap_or(key)
}

fn parse_body(req: &Request) -> AppResult<Map<String, Value>> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > BODY_LIMIT_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let content_type = header_value(req, "content-type").unwrap_or("").trim().to_ascii_lowercase();
    let json = content_type.starts_with("application/json") || content_type.contains("+json");
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    if content_type.starts_with("multipart/") {
        // Accepted by no route (spec 1.2): nothing is read from it.
        return Ok(Map::new());
    }
    // A missing or unknown type (text/plain, application/xml, garbage) is sniffed (spec 1.2).
    let sniffed_json = !json && !form && bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if json || sniffed_json {
        return match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(map),
            // Egg's strict body parser accepts arrays but no route reads them.
            Ok(Value::Array(_)) => Ok(Map::new()),
            _ => Err(AppError::BadJson),
        };
    }
    Ok(parse_form(bytes))
}

/// Form bodies with qs semantics: repeated keys and `a[]` keys become arrays.
fn parse_form(bytes: &[u8]) -> Map<String, Value> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).unwrap_or_default();
    let mut map = Map::new();
    for (key, value) in pairs {
        let is_array = key.ends_with("[]");
        let key = array_key(&key).to_owned();
        match map.get_mut(&key) {
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
            None if is_array => {
                map.insert(key, Value::Array(vec![Value::String(value)]));
            }
            None => {
                map.insert(key, Value::String(value));
            }
        }
    }
    map
}

/// The chat token of an HTTP request: header `token`, then `?token=`, then body `token` (spec 2.1).
pub fn chat_token(req: &Request, params: &Params) -> Option<String> {
    if let Some(t) = header_value(req, "token") {
        return Some(t.to_owned());
    }
    if let Some(t) = req.query_string_parameters().first("token").filter(|t| !t.is_empty()) {
        return Some(t.to_owned());
    }
    params.body_value("token")
}

fn with_cors(mut builder: lambda_http::http::response::Builder) -> lambda_http::http::response::Builder {
    for (name, value) in CORS {
        builder = builder.header(name, value);
    }
    builder
}

/// The response of a route: the envelope of `result`, with CORS and JSON headers.
pub fn respond(result: AppResult<Value>) -> Response<Body> {
    let (status, body) = envelope(result);
    json_response(status, &body)
}

/// A JSON response with the standard headers.
pub fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    for (name, value) in CORS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The admin token of an `/admin` request: `Authorization: Bearer <token>` (spec 7.1).
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = header_value(req, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// JSON text with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026`: the same JSON, but
/// inert if it is ever rendered or sniffed as HTML (spec 7). Outside strings JSON has none of them.
pub fn html_safe_json(body: &Value) -> String {
    let text = body.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

/// The response of an `/admin` route: the envelope as HTML-safe JSON, never cached or sniffed.
pub fn respond_admin(result: AppResult<Value>) -> Response<Body> {
    let (status, body) = envelope(result);
    let mut response = json_response(status, &body);
    *response.body_mut() = Body::Text(html_safe_json(&body));
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The Content-Security-Policy of a page that carries its one script and one style inline: only
/// those (by hash) run, it talks to its own origin only, and nothing may frame it.
pub fn self_contained_page_csp(html: &str) -> String {
    let script = inline_block_hash(html, "script");
    let style = inline_block_hash(html, "style");
    format!(
        "default-src 'none'; script-src '{script}'; style-src '{style}'; connect-src 'self'; \
         img-src https: http: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// `sha256-<base64>` of the text inside the page's first `<tag>…</tag>`.
fn inline_block_hash(html: &str, tag: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let body = html.split_once(&open).and_then(|(_, rest)| rest.split_once(&close)).map_or("", |(inside, _)| inside);
    let digest = sha2::Sha256::digest(body.as_bytes());
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// An HTML page with its Content-Security-Policy; never cached, never framed.
pub fn html_response(html: &'static str, content_security_policy: &str) -> Response<Body> {
    let mut response = Response::new(Body::Text(html.to_owned()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in CORS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(csp) = HeaderValue::from_str(content_security_policy) {
        headers.insert("content-security-policy", csp);
    }
    response
}

/// `OPTIONS` on any path: 204 with CORS headers and no body.
pub fn preflight() -> Response<Body> {
    with_cors(Response::builder().status(StatusCode::NO_CONTENT))
        .body(Body::Empty)
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

#[cfg(test)]
mod tests {
    use lambda_http::http::Method;

    use super::*;

    #[test]
    fn page_policies_name_the_hashes_of_the_inline_blocks() {
        assert_eq!(
            inline_block_hash("<p><script>let a = 1;</script>", "script"),
            // printf 'let a = 1;' | openssl dgst -sha256 -binary | base64
            "sha256-xY6QKfH9PRsQnLz56nj6MBwiK5oHg+im1Jkpdp1x/Ck="
        );
        let csp = self_contained_page_csp("<style>a{}</style><script>x()</script>");
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }

    fn post(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = lambda_http::http::Request::builder().method(Method::POST).uri("/api/loginChat");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        builder.body(Body::Text(body.to_owned())).expect("request")
    }

    #[test]
    fn form_and_json_bodies_read_alike() {
        let form = params(&post(Some("application/x-www-form-urlencoded"), "username=abcd&ids[]=1&ids[]=2&r=1&r=2"))
            .expect("form");
        assert_eq!(form.raw("username").as_deref(), Some("abcd"));
        assert_eq!(form.raw("ids").as_deref(), Some("1,2"));
        assert_eq!(form.raw("r").as_deref(), Some("1,2"));
        let json = params(&post(None, r#"{"username":"abcd","ids":[1,2]}"#)).expect("sniffed json");
        assert_eq!(json.raw("username").as_deref(), Some("abcd"));
        assert_eq!(json.raw("ids").as_deref(), Some("1,2"));
        let sniffed_form = params(&post(None, "username=abcd")).expect("sniffed form");
        assert_eq!(sniffed_form.raw("username").as_deref(), Some("abcd"));
    }

    /// Spec 1.2: an unknown `Content-Type` is sniffed like a missing one (JSON if the body starts
    /// with `{`, else form); only multipart is ignored.
    #[test]
    fn unknown_content_types_are_sniffed() {
        for content_type in ["text/plain", "application/xml", "garbled;;==", "TEXT/PLAIN; charset=utf-8"] {
            let json = params(&post(Some(content_type), r#" {"username":"abcd"}"#)).expect("json");
            assert_eq!(json.raw("username").as_deref(), Some("abcd"), "{content_type}");
            let form = params(&post(Some(content_type), "username=abcd&password=123456")).expect("form");
            assert_eq!(form.raw("password").as_deref(), Some("123456"), "{content_type}");
            assert!(matches!(params(&post(Some(content_type), "{\"a\":")), Err(AppError::BadJson)), "{content_type}");
        }
        let multipart = params(&post(Some("multipart/form-data; boundary=x"), "username=abcd")).expect("multipart");
        assert_eq!(multipart.raw("username"), None);
    }

    #[test]
    fn malformed_and_oversized_bodies_fail_with_the_spec_errors() {
        assert!(matches!(params(&post(Some("application/json"), "{\"a\":")), Err(AppError::BadJson)));
        assert!(matches!(params(&post(Some("application/json"), "\"str\"")), Err(AppError::BadJson)));
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(BODY_LIMIT_BYTES));
        assert!(matches!(params(&post(Some("application/json"), &big)), Err(AppError::PayloadTooLarge)));
    }

    #[test]
    fn responses_carry_cors_and_json_headers() {
        let r = respond(Err(AppError::Fail("非法访问")));
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert_eq!(r.headers()["content-type"], "application/json; charset=utf-8");
        let Body::Text(text) = r.body() else { panic!("text body") };
        let body: Value = serde_json::from_str(text).expect("json");
        assert_eq!(body, serde_json::json!({"msg":"fail","data":"非法访问"}));
        assert_eq!(preflight().status(), 204);
    }

    #[test]
    fn admin_json_escapes_html_characters_and_stays_the_same_json() {
        let value = serde_json::json!({"nickname": "<img src=x onerror=alert(1)>", "a&b": "x>y"});
        let text = html_safe_json(&value);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'), "{text}");
        assert!(text.contains("\\u003cimg"), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).expect("valid JSON"), value);
        let r = respond_admin(Err(AppError::Unauthorized));
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let with = |value: &str| {
            lambda_http::http::Request::builder().header("authorization", value).body(Body::Empty).expect("request")
        };
        assert_eq!(bearer_token(&with("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer_token(&with("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with("Basic abc")), None);
        assert_eq!(bearer_token(&with("Bearer ")), None);
    }
}
