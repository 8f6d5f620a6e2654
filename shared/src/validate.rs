//! Request parameters and their validation with `egg-valparams` semantics (spec 1.2, 1.4).
//!
//! Rules are checked in the order a handler asks for them, and the first failure is returned,
//! which reproduces "the first message of the first failing parameter".

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{AppError, AppResult};

/// Unspecified int bounds, as they appear literally in the original's messages.
const INT_MIN: i64 = -10_000_000_000_000_000;
const INT_MAX: i64 = 10_000_000_000_000_000;
/// Unspecified string length bound.
const STR_MAX: i64 = 10_000_000;

/// The merged parameters of one request: path > body > query (spec 1.2, RESOLVED).
#[derive(Debug, Default, Clone)]
pub struct Params {
    path: HashMap<String, String>,
    body: Map<String, Value>,
    query: HashMap<String, Vec<String>>,
}

impl Params {
    pub fn new(path: HashMap<String, String>, body: Map<String, Value>, query: HashMap<String, Vec<String>>) -> Self {
        Params { path, body, query }
    }

    /// The coerced string value of a parameter, `None` when absent, `null` or empty.
    pub fn raw(&self, name: &str) -> Option<String> {
        let value = if let Some(v) = self.path.get(name) {
            Some(v.clone())
        } else if let Some(v) = self.body.get(name) {
            coerce(v)
        } else {
            self.query.get(name).map(|vs| vs.join(","))
        };
        value.filter(|v| !v.is_empty())
    }

    /// A value of the body only, coerced like any other.
    pub fn body_value(&self, name: &str) -> Option<String> {
        self.body.get(name).and_then(coerce).filter(|v| !v.is_empty())
    }

    pub fn string(&self, name: &'static str, desc: &'static str) -> StrRule {
        StrRule { raw: self.raw(name), desc, min: 0, max: STR_MAX, allowed: None }
    }

    pub fn int(&self, name: &'static str, desc: &'static str) -> IntRule {
        IntRule { raw: self.raw(name), desc, min: INT_MIN, max: INT_MAX, allowed: None }
    }
}

/// `${value}` as JavaScript would print it (spec 1.2 value coercion); `None` for `null`.
fn coerce(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(js_number(n)),
        Value::Array(items) => Some(items.iter().map(|v| coerce(v).unwrap_or_default()).collect::<Vec<_>>().join(",")),
        Value::Object(_) => Some(value.to_string()),
    }
}

fn js_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
        Some(f) => f.to_string(),
        None => n.to_string(),
    }
}

/// Length as validator.js `isLength` counts it: code points, ignoring variation selectors.
pub fn js_length(s: &str) -> i64 {
    s.chars().filter(|c| *c != '\u{FE0E}' && *c != '\u{FE0F}').count() as i64
}

fn missing(desc: &str) -> AppError {
    AppError::Validation(format!("{desc}不能为空"))
}

fn in_list_message(desc: &str, raw: &str, allowed: &[&str]) -> AppError {
    let list = allowed.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(",");
    AppError::Validation(format!("{desc} 的值 `{raw}` 必须在 [{list}] 中"))
}

/// A string parameter rule.
#[derive(Debug)]
pub struct StrRule {
    raw: Option<String>,
    desc: &'static str,
    min: i64,
    max: i64,
    allowed: Option<&'static [&'static str]>,
}

impl StrRule {
    pub fn len(mut self, min: i64, max: i64) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    pub fn one_of(mut self, allowed: &'static [&'static str]) -> Self {
        self.allowed = Some(allowed);
        self
    }

    /// `Ok(None)` when absent, `Err` with the spec's message when present but invalid.
    fn check(&self) -> AppResult<Option<String>> {
        let Some(raw) = &self.raw else { return Ok(None) };
        if let Some(allowed) = self.allowed {
            if !allowed.contains(&raw.as_str()) {
                return Err(in_list_message(self.desc, raw, allowed));
            }
        }
        let len = js_length(raw);
        if len < self.min || len > self.max {
            let desc = self.desc;
            let (min, max) = (self.min, self.max);
            return Err(AppError::Validation(if min == 0 {
                format!("{desc} 的长度 必须 大于等于 `0` 少于等于 `{max}`")
            } else {
                format!("{desc} 的长度 必须 在 {min} 和 {max} 之间")
            }));
        }
        Ok(Some(raw.clone()))
    }

    pub fn required(self) -> AppResult<String> {
        self.check()?.ok_or_else(|| missing(self.desc))
    }

    pub fn optional(self) -> AppResult<Option<String>> {
        self.check()
    }

    /// Absent or invalid values silently become the default (valparams `defValue`).
    pub fn or_default(self, default: &str) -> String {
        self.check().ok().flatten().unwrap_or_else(|| default.to_owned())
    }
}

/// An integer parameter rule.
#[derive(Debug)]
pub struct IntRule {
    raw: Option<String>,
    desc: &'static str,
    min: i64,
    max: i64,
    allowed: Option<&'static [i64]>,
}

impl IntRule {
    pub fn range(mut self, min: i64, max: i64) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// A lower bound; the upper bound stays the default (as in the original's messages).
    pub fn at_least(mut self, min: i64) -> Self {
        self.min = min;
        self
    }

    pub fn one_of(mut self, allowed: &'static [i64]) -> Self {
        self.allowed = Some(allowed);
        self
    }

    fn check(&self) -> AppResult<Option<i64>> {
        let Some(raw) = &self.raw else { return Ok(None) };
        let desc = self.desc;
        let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::Validation(format!("{desc} 的值 `{raw}` 的类型不是 `int`")));
        }
        // Values beyond i64 are out of any range we accept.
        let value = raw.parse::<i64>().ok();
        if let Some(allowed) = self.allowed {
            return match value {
                Some(v) if allowed.contains(&v) => Ok(Some(v)),
                _ => {
                    let names: Vec<String> = allowed.iter().map(i64::to_string).collect();
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    Err(in_list_message(desc, raw, &names))
                }
            };
        }
        match value {
            Some(v) if v >= self.min && v <= self.max => Ok(Some(v)),
            _ => {
                let (min, max) = (self.min, self.max);
                Err(AppError::Validation(if min == 0 || max == 0 {
                    format!("{desc} 的数值 必须 大于等于 `{min}` 少于等于 `{max}`")
                } else {
                    format!("{desc} 的数值 必须 在 {min} 和 {max} 之间")
                }))
            }
        }
    }

    pub fn required(self) -> AppResult<i64> {
        self.check()?.ok_or_else(|| missing(self.desc))
    }

    pub fn optional(self) -> AppResult<Option<i64>> {
        self.check()
    }

    pub fn or_default(self, default: i64) -> i64 {
        self.check().ok().flatten().unwrap_or(default)
    }
}

/// Rows before page `page` (1-based) of `limit` rows; pages far past any data saturate instead
/// of overflowing (a page number may be as large as validation allows).
pub fn page_offset(page: i64, limit: i64) -> usize {
    let rows = page.max(1).saturating_sub(1).saturating_mul(limit.max(0));
    usize::try_from(rows).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn page_offsets_saturate() {
        assert_eq!(page_offset(1, 20), 0);
        assert_eq!(page_offset(3, 20), 40);
        assert_eq!(page_offset(9_999_999_999_999_999, 2000), i64::MAX as usize, "saturates, no overflow");
        assert_eq!(page_offset(0, 20), 0);
    }

    fn body(v: Value) -> Params {
        Params::new(HashMap::new(), v.as_object().cloned().unwrap_or_default(), HashMap::new())
    }

    fn message<T: std::fmt::Debug>(r: AppResult<T>) -> String {
        match r {
            Err(AppError::Validation(m)) => m,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn messages_match_the_spec_examples() {
        let p = body(json!({"username": "abc", "password": "123456"}));
        assert_eq!(message(p.string("username", "账号").len(4, 20).required()), "账号 的长度 必须 在 4 和 20 之间");
        let p = body(json!({"password": "123456"}));
        assert_eq!(message(p.string("username", "账号").len(4, 20).required()), "账号不能为空");
        let p = body(json!({"chatType": "x"}));
        assert_eq!(
            message(p.string("chatType", "接收类型").one_of(&["single", "group"]).required()),
            "接收类型 的值 `x` 必须在 [`single`,`group`] 中"
        );
        let p = body(json!({"sendto_id": "abc"}));
        assert_eq!(
            message(p.int("sendto_id", "接收人/群的id值").range(1, INT_MAX).required()),
            "接收人/群的id值 的值 `abc` 的类型不是 `int`"
        );
        let p = body(json!({"sendto_id": 0}));
        assert_eq!(
            message(p.int("sendto_id", "接收人/群的id值").range(1, INT_MAX).required()),
            "接收人/群的id值 的数值 必须 在 1 和 10000000000000000 之间"
        );
        let p = body(json!({"addGroupSet": 11}));
        assert_eq!(
            message(p.int("addGroupSet", "进群设置属性值").range(0, 10).required()),
            "进群设置属性值 的数值 必须 大于等于 `0` 少于等于 `10`"
        );
        let p = body(json!({"friendlookme": 2}));
        assert_eq!(
            message(p.int("friendlookme", "朋友是否可以看我的动态").one_of(&[0, 1]).required()),
            "朋友是否可以看我的动态 的值 `2` 必须在 [`0`,`1`] 中"
        );
        let p = body(json!({"userset": "{"}));
        assert_eq!(
            message(p.string("userset", "用户设置").len(2, STR_MAX).required()),
            "用户设置 的长度 必须 在 2 和 10000000 之间"
        );
    }

    #[test]
    fn coercion_follows_javascript() {
        let p =
            body(json!({"a": 6.0, "b": 1.5, "c": [1, 2], "d": [], "e": null, "f": true, "g": {"x": 1}, "h": "   "}));
        assert_eq!(p.raw("a").as_deref(), Some("6"));
        assert_eq!(p.raw("b").as_deref(), Some("1.5"));
        assert_eq!(p.raw("c").as_deref(), Some("1,2"));
        assert_eq!(p.raw("d"), None, "empty array coerces to the empty string, which is absent");
        assert_eq!(p.raw("e"), None, "null is absent");
        assert_eq!(p.raw("f").as_deref(), Some("true"));
        assert_eq!(p.raw("g").as_deref(), Some(r#"{"x":1}"#));
        assert_eq!(p.raw("h").as_deref(), Some("   "), "values are not trimmed");
    }

    #[test]
    fn path_wins_over_body_wins_over_query() {
        let path = HashMap::from([("id".to_owned(), "1".to_owned())]);
        let query = HashMap::from([
            ("id".to_owned(), vec!["3".to_owned()]),
            ("name".to_owned(), vec!["q".to_owned()]),
            ("page".to_owned(), vec!["7".to_owned()]),
        ]);
        let p = Params::new(path, json!({"id": 2, "name": "b"}).as_object().cloned().unwrap_or_default(), query);
        assert_eq!(p.raw("id").as_deref(), Some("1"));
        assert_eq!(p.raw("name").as_deref(), Some("b"));
        assert_eq!(p.raw("page").as_deref(), Some("7"));
    }

    #[test]
    fn defaults_replace_invalid_values_silently() {
        let p = body(json!({"uniplatform": "x", "devicemodel": "iPhone"}));
        assert_eq!(p.string("uniplatform", "平台类型").len(2, 50).or_default(""), "");
        assert_eq!(p.string("devicemodel", "设备型号").len(1, 50).or_default(""), "iPhone");
        assert_eq!(p.int("page", "页码").range(1, 1000).or_default(1), 1);
    }

    #[test]
    fn length_counts_code_points_without_variation_selectors() {
        assert_eq!(js_length("魂牵一梦"), 4);
        assert_eq!(js_length("❤\u{FE0F}"), 1);
    }
}
