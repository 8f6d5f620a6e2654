//! The API's OpenAPI document and a reference page rendered from it, served by chat-local only
//! (the deployed API has no such routes): `GET /openapi.yaml` (the document as written),
//! `GET /openapi.json` (the same, as JSON) and `GET /docs` (a self-contained page under the same
//! Content-Security-Policy discipline as the admin console: nothing loaded from elsewhere).

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chat_shared::web::{html_response, self_contained_page_csp};

/// The document at the repository's root, built into the binary.
pub const OPENAPI_YAML: &str = include_str!("../../../openapi.yaml");
const DOCS_HTML: &str = include_str!("../../assets/api-docs.html");

/// The document as JSON, converted once.
pub fn openapi_json() -> Result<&'static str, String> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    JSON.get_or_init(|| {
        let JsonValue(value) = serde_yaml_ng::from_str(OPENAPI_YAML).map_err(|e| e.to_string())?;
        serde_json::to_string(&value).map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(Clone::clone)
}

/// A YAML value as JSON. Integers beyond 64 bits (some length rules' bounds are 20+ digit
/// numbers) become the nearest double, as any JSON consumer reads them; serde_json alone
/// refuses them.
struct JsonValue(serde_json::Value);

impl<'de> serde::Deserialize<'de> for JsonValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor).map(JsonValue)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i128<E>(self, v: i128) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or_else(|_| (v as f64).into(), Into::into))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or_else(|_| (v as f64).into(), Into::into))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(JsonValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some((key, JsonValue(value))) = map.next_entry::<String, JsonValue>()? {
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

fn document(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

/// GET /openapi.yaml
pub async fn yaml() -> Response {
    document("application/yaml; charset=utf-8", OPENAPI_YAML)
}

/// GET /openapi.json
pub async fn json() -> Response {
    match openapi_json() {
        Ok(json) => document("application/json; charset=utf-8", json),
        Err(e) => {
            tracing::error!(error = %e, "openapi.yaml is not valid YAML");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// GET /docs
pub async fn page() -> Response {
    static CSP: OnceLock<String> = OnceLock::new();
    super::to_axum(html_response(DOCS_HTML, CSP.get_or_init(|| self_contained_page_csp(DOCS_HTML))))
}
