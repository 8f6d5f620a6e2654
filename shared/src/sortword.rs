//! A–Z grouping of contacts with npm `sort-word@1.0.7` semantics (spec 4.5), from the package's
//! own table shipped verbatim in `shared/data/sort-word-base.js`.

use std::sync::LazyLock;

use serde_json::{json, Value};

const BASE_JS: &str = include_str!("../data/sort-word-base.js");

/// `(letter, characters)` in A→Z order, parsed from lines like `'A': 'aA阿啊…',`.
static TABLE: LazyLock<Vec<(char, Vec<char>)>> = LazyLock::new(|| {
    BASE_JS
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix('\'')?;
            let letter = rest.chars().next().filter(char::is_ascii_uppercase)?;
            let (_, value) = rest.split_once(':')?;
            let value = value.trim().trim_end_matches(',').trim_matches('\'');
            Some((letter, value.chars().collect()))
        })
        .collect()
});

/// The group title of a name: the letter whose table holds the name's first UTF-16 code unit,
/// else `#`. The lookup is literal (the package's regex lookup crashed on metacharacters).
pub fn group_title(name: &str) -> char {
    // A character outside the BMP starts with a surrogate code unit, which no table holds.
    let Some(first) = name.chars().next().filter(|c| (*c as u32) <= 0xFFFF) else { return '#' };
    TABLE.iter().find(|(_, chars)| chars.contains(&first)).map_or('#', |(letter, _)| *letter)
}

/// `{newList, indexList, total}` for items in query order; `name_of` gives each item's name.
pub fn group(items: Vec<Value>, name_of: impl Fn(&Value) -> String) -> Value {
    let mut groups: Vec<(char, Vec<Value>)> = Vec::new();
    for item in items {
        let title = group_title(&name_of(&item));
        match groups.iter_mut().find(|(t, _)| *t == title) {
            Some((_, list)) => list.push(item),
            None => groups.push((title, vec![item])),
        }
    }
    // By character code of the title, `#` last.
    groups.sort_by_key(|(title, _)| if *title == '#' { u32::MAX } else { *title as u32 });
    let index: Vec<String> = groups.iter().map(|(t, _)| t.to_string()).collect();
    let total = groups.len();
    let new_list: Vec<Value> =
        groups.into_iter().map(|(title, list)| json!({"title": title.to_string(), "list": list})).collect();
    json!({"newList": new_list, "indexList": index, "total": total})
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_table_is_the_package_file_verbatim() {
        assert_eq!(
            hex::encode(Sha256::digest(BASE_JS.as_bytes())),
            "505ff892cdd57b2ac0da78e9991028a6eea83326bbf961e912e62c583f24caaa"
        );
        assert_eq!(TABLE.len(), 26);
        assert_eq!(TABLE[0].0, 'A');
        assert_eq!(TABLE[25].0, 'Z');
    }

    #[test]
    fn names_group_by_pinyin_initial_or_hash() {
        assert_eq!(group_title("好友魂牵一梦"), 'H');
        assert_eq!(group_title("my01"), 'M');
        assert_eq!(group_title("Zed"), 'Z');
        assert_eq!(group_title("阿"), 'A');
        assert_eq!(group_title("(bracket"), '#', "regex metacharacters are literal");
        assert_eq!(group_title("1abc"), '#');
        assert_eq!(group_title("😀"), '#');
        assert_eq!(group_title(""), '#');
    }

    #[test]
    fn groups_keep_query_order_and_sort_titles_with_hash_last() {
        let items = vec![json!({"name": "zz"}), json!({"name": "1x"}), json!({"name": "aa"}), json!({"name": "ab"})];
        let grouped = group(items, |v| v["name"].as_str().unwrap_or("").to_owned());
        assert_eq!(grouped["indexList"], json!(["A", "Z", "#"]));
        assert_eq!(grouped["total"], 3);
        assert_eq!(grouped["newList"][0]["list"], json!([{"name": "aa"}, {"name": "ab"}]));
    }
}
